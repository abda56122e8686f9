//! The daemon's state: applies core decisions to the store, keeps the grant
//! index and the deadlines in step, and reports what happened as [`Event`]s
//! for the bus edge to broadcast.
//!
//! Data flows one way: caller facts -> core decision -> one transaction with
//! its audit events -> in-memory index and timers -> events.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

mod activation;
mod blocking;
mod break_glass;
mod changes;
mod checker;
mod custody;
mod denials;
mod drafts;
mod error;
mod lifecycle;
mod memberships;
mod mfa;
mod oncall;
mod policy;
mod queries;
mod recordings;
mod reports;
mod roles;
mod schedule;
mod sessions;
mod standing;
mod tick;
mod tickets;
mod tracking;
mod transitions;
mod unused;
mod vendors;

pub use blocking::run_blocking;
pub use checker::{EgressGate, GrantChecker};
pub use custody::{CustodyError, Written};
pub use error::EngineError;
pub use mfa::LoginStep;
pub use recordings::{RecordedSession, RecordingStart};
pub use reports::report;
pub use tickets::NewRequest;

use sessions::write_journaled;
use tracking::empty_index;

use crate::admissions::Admissions;
use crate::clock::Clock;
use crate::config::{Config, Resource};
use crate::core::model::{Request, RequestId, State, Uid, UnixTime};
use crate::core::workflow::WorkflowError;
use crate::deadlines::Deadlines;
use crate::grants::GrantIndex;
use crate::store::{AuditBell, Doorbell, Journal, Store};

const JITD: &str = "jitd";

/// Something other processes should hear about (D-Bus signals).
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    Submitted {
        id: RequestId,
        uid: Uid,
        resource: String,
        route: &'static str,
    },
    Decided {
        id: RequestId,
        state: State,
    },
    Activated {
        id: RequestId,
        uid: Uid,
        resource: String,
        expires_at: UnixTime,
    },
    Extended {
        id: RequestId,
        expires_at: UnixTime,
    },
    Expiring {
        id: RequestId,
        expires_at: UnixTime,
    },
    Ended {
        id: RequestId,
        uid: Uid,
        /// The holder's name, for clearing sudo timestamps.
        user: String,
        resource: String,
        reason: State,
    },
    /// A vendor's access started, ended or is due for deletion: the
    /// keeper brings its account where it should be.
    VendorChanged {
        id: crate::core::vendor::VendorId,
    },
}

pub type Result<T> = std::result::Result<T, EngineError>;

pub struct Engine {
    config: Arc<Config>,
    store: Store,
    clock: Arc<dyn Clock>,
    deadlines: Deadlines,
    /// Break-glass justifications owed, by grant (a separate id space).
    justifications: Deadlines,
    /// Grants of resources with `revoke_unused_after` that no session
    /// used yet, by grant: revoked when due unless one did meanwhile.
    unused: Deadlines,
    /// Vendor requests lapsing and ended vendors due for deletion, by
    /// vendor (a separate id space).
    vendor_deadlines: Deadlines,
    grants: Arc<RwLock<GrantIndex>>,
    /// Vendors hold no grant until their egress rules are in place.
    egress: Arc<checker::EgressGate>,
    started_at: UnixTime,
    /// Rung when notifications were queued.
    doorbell: Arc<Doorbell>,
    /// Rung after every commit with audit events, when a SIEM feed is configured.
    audit_bell: Arc<AuditBell>,
    /// Sessions admitted before their rows are written ([`Journal`]):
    /// written together by [`Engine::write_admitted`], and before anything
    /// reads sessions or the audit trail.
    admissions: Arc<Admissions>,
    /// Managed accounts checked out, by name: the grant holding each. The
    /// account's own logins count as that grant's (`custody.rs`).
    checked_out: HashMap<String, custody::Checkout>,
    /// Root's escrowed recovery password, while it is on the host (T35).
    recovery_file: std::path::PathBuf,
    /// Where `jit.db` is: the reports read it through a connection of
    /// their own.
    state_dir: std::path::PathBuf,
    /// The on-call schedules, read when their files change: who policy
    /// rules naming a schedule cover.
    rosters: Arc<crate::oncall::Rosters>,
}

impl Engine {
    /// Opens the store and brings it up to date: whatever expired or lapsed
    /// while jitd was down is ended (with audit events) before anyone can ask.
    pub fn open(
        config: Arc<Config>,
        state_dir: &Path,
        clock: Arc<dyn Clock>,
    ) -> Result<(Engine, Vec<Event>)> {
        let mut store = Store::open(state_dir)?;
        let (mut journal, journaled) = Journal::open(state_dir)?;
        // Before the first tick: grants that expired while jitd was down
        // end every session they had, the journaled ones too.
        let next_session = write_journaled(&mut store, journaled)?;
        journal.clear()?;
        let left = denials::write_left_denials(&mut store, config.denials.max_tracked.get())?;
        if left > 0 {
            tracing::warn!(
                windows = left,
                "wrote the denied access counted by the previous jitd"
            );
        }
        let doorbell = Arc::new(Doorbell::default());
        // Before the first tick: what ended while jitd was down is notified too.
        if let Some(planner) = crate::notifier::planner(&config) {
            store.notify_with(planner, Arc::clone(&doorbell));
        }
        let audit_bell = Arc::new(AuditBell::default());
        if config.siem.enabled() {
            store.feed_with(Arc::clone(&audit_bell));
        }
        let started_at = clock.wall();
        let index = empty_index(&config);
        let egress = Arc::new(checker::EgressGate::new(
            config.vendors.as_ref().map(|v| v.uids.clone()),
        ));
        let rosters = Arc::new(crate::oncall::Rosters::new(
            &config.oncall,
            Arc::clone(&clock),
        ));
        let mut engine = Engine {
            config,
            store,
            clock,
            deadlines: Deadlines::default(),
            justifications: Deadlines::default(),
            unused: Deadlines::default(),
            vendor_deadlines: Deadlines::default(),
            grants: Arc::new(RwLock::new(index)),
            egress,
            started_at,
            doorbell,
            audit_bell,
            admissions: Arc::new(Admissions::new(journal, next_session)),
            checked_out: HashMap::new(),
            recovery_file: state_dir.join(crate::accounts::RECOVERY_FILE),
            state_dir: state_dir.to_owned(),
            rosters,
        };
        engine.reload()?;
        engine.write_oncall_changes()?;
        let events = engine.tick()?;
        Ok((engine, events))
    }

    /// What wakes the notification worker.
    pub fn doorbell(&self) -> Arc<Doorbell> {
        Arc::clone(&self.doorbell)
    }

    /// What wakes the SIEM feed's senders.
    pub fn audit_bell(&self) -> Arc<AuditBell> {
        Arc::clone(&self.audit_bell)
    }

    /// The wall clock jitd uses (Unix seconds).
    pub fn now(&self) -> UnixTime {
        self.clock.wall()
    }

    /// Where the gate counts denied access until it is written
    /// ([`Engine::write_denials`]).
    pub fn denial_log(&self) -> crate::denials::DenialLog {
        crate::denials::DenialLog::new(self.denial_policy(), Arc::clone(&self.clock))
    }

    #[cfg(test)]
    pub fn store_conn_for_tests(&self) -> &rusqlite::Connection {
        self.store.conn()
    }

    fn resource(&self, name: &str) -> std::result::Result<&Resource, WorkflowError> {
        self.config
            .resource(name)
            .ok_or_else(|| WorkflowError::UnknownResource(name.to_owned()))
    }

    fn load(&self, id: RequestId) -> Result<Request> {
        self.store
            .request(id)?
            .ok_or(EngineError::Workflow(WorkflowError::NotFound(id)))
    }
}

#[cfg(test)]
mod policy_tests;
#[cfg(test)]
mod schedule_tests;
#[cfg(test)]
mod step_up_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tickets_tests;
#[cfg(test)]
mod unused_tests;
#[cfg(test)]
mod vendor_tests;
