//! pam_jit's two calls (CheckGrant, RegisterSession), whichever way they
//! arrive: through the bus, or on the private socket. The carriers identify
//! the caller; the rules live here, once.

use std::sync::{Arc, Mutex};

use super::BusError;
use crate::core::model::Uid;
use crate::directory::Person;
use crate::engine::{run_blocking, run_soon, Engine, EngineError, GrantChecker};
use crate::pidfd::Process;
use crate::session_ends::SessionEnds;
use crate::sessions::SessionControl;
use crate::store::SessionRecord;

/// What pam_jit's session hook is told: (session, grant, expires_at). The
/// D-Bus methods spell the tuple out: zbus takes an alias for one struct.
type Registered = (u64, u64, i64);

/// The session the PAM service is opening, as pam_jit describes it.
pub struct SessionOpening {
    pub uid: u32,
    pub resource: String,
    pub service: String,
    pub tty: String,
    pub rhost: String,
}

#[derive(Clone)]
pub struct Gate {
    engine: Arc<Mutex<Engine>>,
    checker: GrantChecker,
    control: SessionControl,
    ends: SessionEnds,
}

impl Gate {
    pub fn new(engine: Arc<Mutex<Engine>>, control: SessionControl, ends: SessionEnds) -> Gate {
        let checker = engine.lock().unwrap_or_else(|e| e.into_inner()).checker();
        Gate {
            engine,
            checker,
            control,
            ends,
        }
    }

    pub fn control(&self) -> &SessionControl {
        &self.control
    }

    pub fn engine(&self) -> Arc<Mutex<Engine>> {
        Arc::clone(&self.engine)
    }

    /// The hot path of every sudo and login: no SQLite, no engine lock.
    /// Returns (active, grant, expires_at, pending request).
    pub fn check(
        &self,
        caller: Uid,
        uid: u32,
        resource: &str,
    ) -> Result<(bool, u64, i64, u64), BusError> {
        Ok(match self.checker.check(caller, uid, resource)? {
            Some((id, expires_at)) => (true, id, expires_at, 0),
            None => (
                false,
                0,
                0,
                self.checker.pending(caller, uid, resource)?.unwrap_or(0),
            ),
        })
    }

    /// The caller's process (`pid`, as the kernel or the bus reports it) is
    /// the session: it is moved into the grant's cgroup, so that everything
    /// it starts can be ended with the grant, and the session ends when it
    /// exits ([`SessionEnds`]). `held` is that process if the carrier
    /// already holds it. Root only.
    pub async fn register(
        &self,
        caller: Uid,
        pid: u32,
        held: Option<Process>,
        opening: SessionOpening,
    ) -> Result<Registered, BusError> {
        if caller != 0 {
            return Err(EngineError::NotRoot.into());
        }
        let SessionOpening {
            uid,
            resource,
            service,
            tty,
            rhost,
        } = opening;
        let Some((grant, _)) = self.checker.check(caller, uid, &resource)? else {
            return Err(EngineError::NoGrant { uid, resource }.into());
        };
        // Held from here: the caller waits for our answer, so this pid is
        // still its process.
        let process = match held.filter(|p| p.pid == pid && p.is_running()) {
            Some(process) => process,
            None => Process::hold(pid)
                .map_err(|e| BusError::Failed(format!("the session's process {pid}: {e}")))?,
        };
        let started = process.started;
        let control = self.control.clone();
        let (session, expires_at) = self
            .run_now_if_free(move |e| {
                // Into its cgroup before the reply: the PAM caller forks the
                // command only after we answer. Under the engine's lock, so
                // that no revocation falls between the check and the move.
                let cgroup = control.adopt(grant, pid).unwrap_or_else(|err| {
                    tracing::warn!(pid, error = %err, "could not move the session into a cgroup");
                    None
                });
                let session = SessionRecord {
                    id: 0,
                    grant,
                    uid,
                    service,
                    tty,
                    rhost,
                    pid,
                    started: Some(started),
                    cgroup,
                    opened_at: 0,
                    closed_at: None,
                };
                e.admit_session(&Person::root(), session, &resource)
            })
            .await?;
        let registered = (session.id, grant, expires_at);
        self.ends.write_opens_soon();
        self.ends.watch(session.id, process);
        Ok(registered)
    }

    /// Runs `op` at once if the engine is free ([`run_soon`]).
    async fn run_now_if_free<T: Send + 'static>(
        &self,
        op: impl FnOnce(&mut Engine) -> Result<T, EngineError> + Send + 'static,
    ) -> Result<T, BusError> {
        bus_result(run_soon(&self.engine, op).await)
    }

    /// Runs `op` against the engine off the executor ([`run_blocking`]).
    pub async fn run<T: Send + 'static>(
        &self,
        op: impl FnOnce(&mut Engine) -> Result<T, EngineError> + Send + 'static,
    ) -> Result<T, BusError> {
        bus_result(run_blocking(&self.engine, op).await)
    }
}

fn bus_result<T>(
    ran: Result<Result<T, EngineError>, tokio::task::JoinError>,
) -> Result<T, BusError> {
    ran.map_err(|e| BusError::Failed(e.to_string()))?
        .map_err(BusError::from)
}
