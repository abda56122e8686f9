//! `org.jit.Daemon1` on `/org/jit/Daemon1`.
//!
//! Each method identifies the caller from the bus, then runs the engine on
//! the blocking pool (SQLite must not stall the executor) and returns JSON.

use serde::Serialize;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use zbus::message::Header;
use zbus::object_server::SignalEmitter;
use zbus::{interface, Connection};

use super::{BusError, Callers};
use crate::api::{rfc3339, AuditView, RequestView};
use crate::core::model::RequestId;
use crate::directory::Person;
use crate::engine::{Engine, EngineError, Event, GrantChecker};

pub struct Daemon {
    engine: Arc<Mutex<Engine>>,
    checker: GrantChecker,
    callers: Callers,
    /// Wakes the expiry timer after anything that may add an earlier deadline.
    rearm: Arc<Notify>,
}

type Reply<T> = Result<T, BusError>;

fn to_json<T: Serialize>(value: &T) -> Reply<String> {
    serde_json::to_string(value).map_err(|e| BusError::Failed(e.to_string()))
}

impl Daemon {
    pub fn new(engine: Arc<Mutex<Engine>>, callers: Callers, rearm: Arc<Notify>) -> Daemon {
        let checker = engine.lock().unwrap_or_else(|e| e.into_inner()).checker();
        Daemon {
            engine,
            checker,
            callers,
            rearm,
        }
    }

    async fn caller(&self, conn: &Connection, header: &Header<'_>) -> Reply<Person> {
        let uid = self.callers.uid(conn, header.sender()).await?;
        tokio::task::spawn_blocking(move || Person::lookup(uid))
            .await
            .map_err(|e| BusError::Failed(e.to_string()))?
            .map_err(|e| BusError::from(EngineError::from(e)))
    }

    /// Runs `op` against the engine off the executor.
    async fn run<T: Send + 'static>(
        &self,
        op: impl FnOnce(&mut Engine) -> Result<T, EngineError> + Send + 'static,
    ) -> Reply<T> {
        let engine = Arc::clone(&self.engine);
        tokio::task::spawn_blocking(move || {
            op(&mut engine.lock().unwrap_or_else(|e| e.into_inner()))
        })
        .await
        .map_err(|e| BusError::Failed(e.to_string()))?
        .map_err(BusError::from)
    }

    /// Runs a state-changing `op`, broadcasts its events and returns the request.
    async fn change(
        &self,
        conn: &Connection,
        op: impl FnOnce(&mut Engine) -> Result<(crate::core::model::Request, Vec<Event>), EngineError>
            + Send
            + 'static,
    ) -> Reply<String> {
        let (req, events) = self.run(op).await?;
        self.rearm.notify_one();
        emit(conn, &events).await;
        to_json(&RequestView::from(&req))
    }
}

fn duration(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

#[interface(name = "org.jit.Daemon1", introspection_docs = false)]
impl Daemon {
    async fn request(
        &self,
        resource: String,
        duration_secs: u64,
        reason: String,
        ticket: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, BusError> {
        let who = self.caller(conn, &header).await?;
        let ticket = (!ticket.is_empty()).then_some(ticket);
        self.change(conn, move |e| {
            e.submit(
                &who,
                &resource,
                duration(duration_secs),
                &reason,
                ticket.as_deref(),
            )
        })
        .await
    }

    async fn extend(
        &self,
        grant: RequestId,
        duration_secs: u64,
        reason: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, BusError> {
        let who = self.caller(conn, &header).await?;
        self.change(conn, move |e| {
            e.extend(&who, grant, duration(duration_secs), &reason)
        })
        .await
    }

    async fn approve(
        &self,
        id: RequestId,
        comment: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, BusError> {
        let who = self.caller(conn, &header).await?;
        self.change(conn, move |e| e.approve(&who, id, &comment))
            .await
    }

    async fn deny(
        &self,
        id: RequestId,
        comment: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, BusError> {
        let who = self.caller(conn, &header).await?;
        self.change(conn, move |e| e.deny(&who, id, &comment)).await
    }

    async fn revoke(
        &self,
        id: RequestId,
        comment: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, BusError> {
        let who = self.caller(conn, &header).await?;
        self.change(conn, move |e| e.revoke(&who, id, &comment))
            .await
    }

    async fn show(
        &self,
        id: RequestId,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, BusError> {
        let who = self.caller(conn, &header).await?;
        let req = self.run(move |e| e.show(&who, id)).await?;
        to_json(&RequestView::from(&req))
    }

    async fn list(
        &self,
        filter: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, BusError> {
        let who = self.caller(conn, &header).await?;
        to_json(&self.run(move |e| e.list(&who, &filter)).await?)
    }

    /// The hot path of every sudo and login: no SQLite, no engine lock.
    #[zbus(out_args("active", "grant", "expires_at"))]
    async fn check_grant(
        &self,
        uid: u32,
        resource: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(bool, u64, i64), BusError> {
        let caller = self.callers.uid(conn, header.sender()).await?;
        Ok(match self.checker.check(caller, uid, &resource)? {
            Some((id, expires_at)) => (true, id, expires_at),
            None => (false, 0, 0),
        })
    }

    async fn audit(
        &self,
        since: i64,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, BusError> {
        let who = self.caller(conn, &header).await?;
        let records = self.run(move |e| e.audit(&who, since)).await?;
        let views: Vec<AuditView> = records
            .into_iter()
            .map(|r| AuditView {
                id: r.id,
                at: rfc3339(r.at),
                actor: r.actor,
                actor_uid: r.actor_uid,
                event: r.event,
                request: r.request,
                detail: r.detail,
            })
            .collect();
        to_json(&views)
    }

    async fn verify_audit(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, BusError> {
        let who = self.caller(conn, &header).await?;
        to_json(&self.run(move |e| e.verify_audit(&who)).await?)
    }

    async fn status(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, BusError> {
        let who = self.caller(conn, &header).await?;
        to_json(&self.run(move |e| e.status(&who)).await?)
    }

    #[zbus(property)]
    fn version(&self) -> String {
        crate::api::VERSION.into()
    }

    #[zbus(signal)]
    async fn request_submitted(
        e: &SignalEmitter<'_>,
        id: u64,
        uid: u32,
        resource: &str,
        route: &str,
    ) -> zbus::Result<()>;
    #[zbus(signal)]
    async fn request_decided(e: &SignalEmitter<'_>, id: u64, state: &str) -> zbus::Result<()>;
    #[zbus(signal)]
    async fn grant_activated(
        e: &SignalEmitter<'_>,
        id: u64,
        uid: u32,
        resource: &str,
        expires_at: i64,
    ) -> zbus::Result<()>;
    #[zbus(signal)]
    async fn grant_expiring(e: &SignalEmitter<'_>, id: u64, expires_at: i64) -> zbus::Result<()>;
    #[zbus(signal)]
    async fn grant_extended(e: &SignalEmitter<'_>, id: u64, expires_at: i64) -> zbus::Result<()>;
    #[zbus(signal)]
    async fn grant_ended(
        e: &SignalEmitter<'_>,
        id: u64,
        uid: u32,
        resource: &str,
        reason: &str,
    ) -> zbus::Result<()>;
}

/// Broadcasts engine events as signals. A failed send is logged, not fatal:
/// the state change is already committed and audited.
pub async fn emit(conn: &Connection, events: &[Event]) {
    let Ok(e) = SignalEmitter::new(conn, crate::api::OBJECT_PATH) else {
        return;
    };
    for event in events {
        let sent = match event {
            Event::Submitted {
                id,
                uid,
                resource,
                route,
            } => Daemon::request_submitted(&e, *id, *uid, resource, route).await,
            Event::Decided { id, state } => Daemon::request_decided(&e, *id, state.as_str()).await,
            Event::Activated {
                id,
                uid,
                resource,
                expires_at,
            } => Daemon::grant_activated(&e, *id, *uid, resource, *expires_at).await,
            Event::Expiring { id, expires_at } => {
                Daemon::grant_expiring(&e, *id, *expires_at).await
            }
            Event::Extended { id, expires_at } => {
                Daemon::grant_extended(&e, *id, *expires_at).await
            }
            Event::Ended {
                id,
                uid,
                resource,
                reason,
            } => Daemon::grant_ended(&e, *id, *uid, resource, reason.as_str()).await,
        };
        if let Err(err) = sent {
            tracing::warn!(%err, ?event, "could not send signal");
        }
    }
}
