//! pam_jit's two calls (CheckGrant, RegisterSession), whichever way they
//! arrive: through the bus, or on the private socket. The carriers identify
//! the caller; the rules live here, once.

use std::sync::{Arc, Mutex};

use super::BusError;
use crate::admissions::Admitter;
use crate::core::denials::Attempt;
use crate::core::model::Uid;
use crate::denials::DenialLog;
use crate::engine::{run_blocking, Engine, EngineError, GrantChecker, LoginStep};
use crate::polkit::asker::{AskerMissing, PolkitAsker};
use crate::sessions::pidfd::Process;
use crate::sessions::SessionEnds;
use crate::sessions::{ContainError, SessionControl};
use crate::store::SessionRecord;

/// What pam_jit's session hook is told: (session, grant, expires_at). The
/// D-Bus methods spell the tuple out: zbus takes an alias for one struct.
type Registered = (u64, u64, i64);

/// A PAM process inside its grant's cgroup ([`Gate::bind`]).
pub struct Bound {
    process: Process,
    grant: u64,
    cgroup: String,
}

impl Bound {
    pub fn into_process(self) -> Process {
        self.process
    }
}

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
    admitter: Admitter,
    control: SessionControl,
    ends: SessionEnds,
    /// Denied account checks, on their way to the audit trail.
    denials: DenialLog,
    /// Why polkitd cannot ask, with the polkit gate on.
    polkit_missing: Option<AskerMissing>,
}

impl Gate {
    pub fn new(engine: Arc<Mutex<Engine>>, control: SessionControl, ends: SessionEnds) -> Gate {
        let (checker, admitter, denials) = {
            let engine = engine.lock().unwrap_or_else(|e| e.into_inner());
            (engine.checker(), engine.admitter(), engine.denial_log())
        };
        Gate {
            engine,
            checker,
            admitter,
            control,
            ends,
            denials,
            polkit_missing: None,
        }
    }

    /// With the polkit gate's asker as resolved at start ([`resolve`](crate::polkit::asker::resolve)).
    pub fn with_polkit(self, asker: Result<Option<PolkitAsker>, AskerMissing>) -> Gate {
        let (asker, missing) = match asker {
            Ok(asker) => (asker, None),
            Err(missing) => (None, Some(missing)),
        };
        Gate {
            checker: self.checker.with_polkit_asker(asker),
            polkit_missing: missing,
            ..self
        }
    }

    /// What weakens the gate on this host, read now.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = crate::sudoers::gate_warnings();
        warnings.extend(crate::pam_stacks::warnings());
        if !self.control.contains_sessions() {
            warnings.push(ContainError::NoCgroupV2.to_string());
        }
        warnings.extend(self.polkit_missing.iter().map(|m| m.to_string()));
        warnings
    }

    pub fn control(&self) -> &SessionControl {
        &self.control
    }

    pub fn engine(&self) -> Arc<Mutex<Engine>> {
        Arc::clone(&self.engine)
    }

    /// Where denied account checks are counted; jitd runs its flusher.
    pub fn denials(&self) -> &DenialLog {
        &self.denials
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

    /// pam_jit's account check (`CheckAccess`): [`Gate::check`], and a
    /// denial is counted for the audit trail with the PAM service, tty and
    /// remote host pam_jit names ([`DenialLog::note`]; nothing more on a
    /// grant). Root only: pam_jit asks from sudo or sshd, and nobody else
    /// may put denials in anyone's name (T39).
    pub fn check_access(
        &self,
        caller: Uid,
        uid: u32,
        resource: &str,
        service: &str,
        tty: &str,
        rhost: &str,
    ) -> Result<(bool, u64, i64, u64), BusError> {
        if caller != 0 {
            return Err(EngineError::NotRoot.into());
        }
        let answer = self.check(caller, uid, resource)?;
        if !answer.0 {
            self.denials
                .note(Attempt::new(uid, resource, service, tty, rhost));
        }
        Ok(answer)
    }

    /// Puts the caller's process (`held`, else `pid`) into its grant's cgroup, before it can
    /// start anything: from here on everything it starts ends with the
    /// grant, whatever the host program does with pam_jit's later answers
    /// (sudo ignores `PAM_SESSION_ERR`, sshd every session failure). Done at
    /// a granted account check on the private socket (a failure is then a
    /// denial of the account check, which every host honours), and at
    /// registration for a process that was not bound then. Root only.
    ///
    /// No lock is held across the move: a grant that ends meanwhile has
    /// already left the index when its cgroup is killed, so the check after
    /// the move sees the end.
    pub fn bind(
        &self,
        caller: Uid,
        pid: u32,
        held: Option<Process>,
        uid: u32,
        resource: &str,
    ) -> Result<Bound, BusError> {
        if caller != 0 {
            return Err(EngineError::NotRoot.into());
        }
        let process = caller_process(pid, held)?;
        self.contain(process, uid, resource).map_err(|(_, e)| e)
    }

    /// Moves `process` into `uid`'s grant for `resource`'s cgroup and
    /// checks the grant again after the move. A refusal hands the process
    /// back, for the caller to end if it must.
    fn contain(
        &self,
        process: Process,
        uid: u32,
        resource: &str,
    ) -> Result<Bound, (Process, BusError)> {
        let refuse = |process, e: BusError| Err((process, e));
        let grant = match self.checker.check(0, uid, resource) {
            Ok(Some((grant, _))) => grant,
            Ok(None) => return refuse(process, no_grant(uid, resource)),
            Err(e) => return refuse(process, e.into()),
        };
        let cgroup = match self.control.adopt(grant, process.pid) {
            Ok(cgroup) => cgroup,
            Err(e) => {
                tracing::error!(pid = process.pid, grant, error = %e, "refused a session that cannot be contained");
                return refuse(process, BusError::Failed(e.to_string()));
            }
        };
        match self.checker.check(0, uid, resource) {
            Ok(Some((still, _))) if still == grant => Ok(Bound {
                process,
                grant,
                cgroup,
            }),
            _ => refuse(process, no_grant(uid, resource)),
        }
    }

    /// Registers the session of the caller's process (`pid`, as the kernel
    /// or the bus reports it; `held` if the carrier holds it): `bound` if
    /// the account check bound it and it is still in the grant's cgroup,
    /// else it is bound now ([`Gate::bind`]). The session ends when the process
    /// exits ([`SessionEnds`]). A refusal ends the process ([`SessionControl::end_refused`]):
    /// sshd starts the session whatever it is told. Root only.
    pub async fn register(
        &self,
        caller: Uid,
        pid: u32,
        bound: Option<Bound>,
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
        // A vendor bound at its account check whose egress rules went
        // since (a failed apply): no session.
        if self.checker.holds_back(uid) {
            return Err(EngineError::NoGrant { uid, resource }.into());
        }
        let bound = match bound.filter(|b| b.process.pid == pid && b.process.is_running()) {
            Some(bound) if self.control.grant_of_process(pid) == Some(bound.grant) => bound,
            // Bound at the account check, and moved out since by a module
            // between the hooks (pam_systemd puts a login into a logind
            // session scope): contained again, or refused.
            Some(moved) => {
                tracing::debug!(
                    pid,
                    grant = moved.grant,
                    "the session's process left its grant's cgroup after the account check; moving it back"
                );
                self.contain_or_end(moved.process, uid, &resource)?
            }
            None => self.contain_or_end(caller_process(pid, held)?, uid, &resource)?,
        };
        let Bound {
            process,
            grant,
            cgroup,
        } = bound;
        let started = process.started;
        let session = SessionRecord {
            id: 0,
            grant,
            uid,
            service,
            tty,
            rhost,
            pid,
            started: Some(started),
            cgroup: Some(cgroup),
            opened_at: 0,
            closed_at: None,
        };
        // One journal append, on this thread: no engine lock, no hand-off.
        let (session, expires_at) = match self.admitter.admit(session, &resource) {
            Ok(admitted) => admitted,
            Err(e) => {
                self.control.end_refused(&process);
                return Err(e.into());
            }
        };
        let registered = (session.id, grant, expires_at);
        self.ends.write_opens_soon();
        self.ends.watch(session.id, grant, process);
        Ok(registered)
    }

    /// [`Gate::contain`]; a refused process is ended
    /// ([`SessionControl::end_refused`]).
    fn contain_or_end(
        &self,
        process: Process,
        uid: u32,
        resource: &str,
    ) -> Result<Bound, BusError> {
        self.contain(process, uid, resource)
            .map_err(|(process, e)| {
                self.control.end_refused(&process);
                e
            })
    }

    /// Runs `op` against the engine off the executor ([`run_blocking`]).
    /// pam_jit's `auth` hook: the login's next step for `uid` (with no
    /// `code`, what to ask for; with one, whether it is right), as (state,
    /// text): `code`; `enroll` and the seed to show (a QR code and its
    /// URI); `accepted`; `refused` and why. Root only: the hook runs in a
    /// root process (sshd), and a code is spent by asking.
    pub async fn mfa_login(
        &self,
        caller: Uid,
        uid: u32,
        code: String,
    ) -> Result<(String, String), BusError> {
        if caller != 0 {
            return Err(EngineError::NotRoot.into());
        }
        let who = crate::directory::Person::lookup(uid).map_err(EngineError::from)?;
        let step = self.run(move |e| e.mfa_login(&who, &code)).await?;
        Ok(match step {
            LoginStep::Code => ("code".into(), String::new()),
            LoginStep::Enroll(uri) => ("enroll".into(), enrollment_text(uri.expose())),
            LoginStep::Accepted => ("accepted".into(), String::new()),
            LoginStep::Refused(why) => ("refused".into(), why),
        })
    }

    pub async fn run<T: Send + 'static>(
        &self,
        op: impl FnOnce(&mut Engine) -> Result<T, EngineError> + Send + 'static,
    ) -> Result<T, BusError> {
        bus_result(run_blocking(&self.engine, op).await)
    }
}

/// The caller's process: `held` if the carrier holds it (the private
/// socket's peer pidfd), which must still run, else `pid`, held from now on.
fn caller_process(pid: u32, held: Option<Process>) -> Result<Process, BusError> {
    match held {
        Some(process) if process.pid == pid && process.is_running() => Ok(process),
        Some(_) => Err(BusError::Failed(format!(
            "the caller's process {pid} has exited"
        ))),
        None => Process::hold(pid)
            .map_err(|e| BusError::Failed(format!("the session's process {pid}: {e}"))),
    }
}

fn no_grant(uid: u32, resource: &str) -> BusError {
    EngineError::NoGrant {
        uid,
        resource: resource.to_owned(),
    }
    .into()
}

fn bus_result<T>(
    ran: Result<Result<T, EngineError>, tokio::task::JoinError>,
) -> Result<T, BusError> {
    ran.map_err(|e| BusError::Failed(e.to_string()))?
        .map_err(BusError::from)
}

/// What a vendor sees at their first login: the seed as a QR code for an
/// authenticator app, and as its URI for those who type it.
fn enrollment_text(uri: &str) -> String {
    let mut text = String::from(
        "Your account needs a second factor. Scan this with an authenticator app:\n\n",
    );
    if let Ok(drawn) = crate::core::mfa::qr_code(uri) {
        text.push_str(&drawn);
        text.push('\n');
    }
    text.push_str("\nor enter this in it: ");
    text.push_str(uri);
    text.push('\n');
    text
}
