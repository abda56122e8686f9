//! The daemon's state: applies core decisions to the store, keeps the grant
//! index and the deadlines in step, and reports what happened as [`Event`]s
//! for the bus edge to broadcast.
//!
//! Data flows one way: caller facts -> core decision -> one transaction with
//! its audit events -> in-memory index and timers -> events.

use serde_json::json;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock, TryLockError};
use std::time::Duration;
use thiserror::Error;
use tokio::task::JoinError;

mod break_glass;
mod recordings;

pub use recordings::{RecordedSession, RecordingStart};

use crate::admissions::{Admissions, Admitter};
use crate::api::{RequestView, ResourceView, StatusView, VerifyView};
use crate::clock::{local_weekday_minute, Clock};
use crate::config::{Config, Resource};
use crate::core::break_glass::BreakGlassError;
use crate::core::model::{
    Decision, Kind, Request, RequestHead, RequestId, Role, Route, State, Uid, UnixTime,
};
use crate::core::risk::{assess, RiskContext};
use crate::core::routing::{route, RouteFacts};
use crate::core::workflow::{self, Actor, Approved, Submission, WorkflowError};
use crate::deadlines::{Deadlines, Due};
use crate::directory::{DirectoryError, Person};
use crate::grants::GrantIndex;
use crate::polkit::asker::PolkitAsker;
use crate::store::{
    AuditEvent, AuditRecord, Doorbell, Journal, ListFilter, NotificationRecord, SessionRecord,
    Store, StoreError, Writer,
};

/// Recent history that raises risk looks back this far.
const HISTORY_WINDOW_SECS: i64 = 30 * 24 * 3600;
const JITD: &str = "jitd";
/// `List` answers with at most this many of the newest matching requests,
/// keeping replies well under the system bus's message size limit.
const LIST_LIMIT: u32 = 1000;

#[derive(Debug, Error)]
pub enum EngineError {
    #[error(transparent)]
    Workflow(#[from] WorkflowError),
    #[error(transparent)]
    BreakGlass(#[from] BreakGlassError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    #[error("unknown list filter '{0}'; use open, pending, active or all")]
    BadFilter(String),
    #[error(
        "you already hold grant {id} for '{resource}'; use 'jitctl extend {id}' for more time"
    )]
    AlreadyActive { id: RequestId, resource: String },
    #[error("only root (and polkitd, for the polkit gate) may ask about another user's grants")]
    CheckOthers,
    #[error(
        "you have {limit} pending requests, the most one may have; \
         withdraw one ('jitctl revoke ID') or wait for a decision"
    )]
    TooManyPending { limit: u32 },
    #[error("reading the audit trail needs the security or auditor role")]
    NotAuditor,
    #[error("only root may register PAM sessions")]
    NotRoot,
    #[error("uid {uid} holds no active grant for '{resource}'")]
    NoGrant { uid: Uid, resource: String },
    #[error("{0} is too long")]
    TooLong(&'static str),
    #[error("recording {0} not found")]
    NoRecording(u64),
    #[error("recording {0} is already closed")]
    RecordingClosed(u64),
    #[error("recording {0} belongs to another user; only root and auditors may read it")]
    NotYourRecording(u64),
    #[error("a recording ends with a SHA-256 (64 hex digits) and a short reason")]
    BadRecordingEnd,
    #[error(
        "session {session} is recorded already (recording {recording}): one recorder per session"
    )]
    SessionRecorded { session: u64, recording: u64 },
    #[error("only the process that opened recording {0} may close it")]
    NotRecorder(u64),
    #[error("grant {grant} has {max} recordings open already")]
    TooManyRecordings { grant: u64, max: usize },
    #[error(
        "not inside a jit session of yours: log in through a service gated by pam_jit \
         (or use 'jitctl shell')"
    )]
    NotInSession,
    #[error("{0}")]
    Io(String),
    #[error("recording {id}: cannot read {path}: {reason}")]
    RecordingUnreadable {
        id: u64,
        path: String,
        reason: String,
    },
}

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
}

pub type Result<T> = std::result::Result<T, EngineError>;

/// A reader of requests, with the roles that decide what they may see.
struct Viewer {
    uid: Uid,
    sees_all: bool,
    /// Manager and security, which apply to every resource.
    roles: Vec<Role>,
    /// Resources this person owns.
    owns: Vec<String>,
}

impl Viewer {
    /// Their own requests, those they decided on, and those their roles
    /// may decide on.
    fn may_see(&self, req: &Request) -> bool {
        let owner = self.owns.contains(&req.resource);
        req.uid == self.uid
            || self.sees_all
            || req.decisions.iter().any(|d| d.uid == self.uid)
            || req
                .route
                .deciding_roles()
                .iter()
                .any(|r| self.roles.contains(r) || (owner && *r == Role::Owner))
    }
}

#[derive(Clone)]
pub struct GrantChecker {
    grants: Arc<RwLock<GrantIndex>>,
    clock: Arc<dyn Clock>,
    /// polkitd's account while the polkit gate is on.
    polkit: Option<PolkitAsker>,
}

impl GrantChecker {
    /// Lets `asker` (polkitd's account) ask about anyone's grant for its resource.
    pub fn with_polkit_asker(self, asker: Option<PolkitAsker>) -> GrantChecker {
        GrantChecker {
            polkit: asker,
            ..self
        }
    }

    /// Root may ask about anyone, a user about themselves, and polkitd's
    /// account about anyone's grant for the polkit gate's resource.
    fn may_ask(&self, caller: Uid, uid: Uid, resource: &str) -> Result<()> {
        let polkitd = self
            .polkit
            .as_ref()
            .is_some_and(|a| a.may_ask(caller, resource));
        if caller == 0 || caller == uid || polkitd {
            Ok(())
        } else {
            Err(EngineError::CheckOthers)
        }
    }

    /// The newest pending request of `uid` for `resource` ([`GrantChecker::may_ask`]).
    pub fn pending(&self, caller: Uid, uid: Uid, resource: &str) -> Result<Option<RequestId>> {
        self.may_ask(caller, uid, resource)?;
        Ok(self
            .grants
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .pending(uid, resource))
    }

    /// The active grant of `uid` for `resource` ([`GrantChecker::may_ask`]).
    pub fn check(
        &self,
        caller: Uid,
        uid: Uid,
        resource: &str,
    ) -> Result<Option<(RequestId, UnixTime)>> {
        self.may_ask(caller, uid, resource)?;
        let index = self.grants.read().unwrap_or_else(|e| e.into_inner());
        Ok(index.check(uid, resource, self.clock.wall()))
    }
}

/// Runs `op` against `engine` on tokio's blocking pool: SQLite must not
/// stall the executor.
pub async fn run_blocking<T: Send + 'static>(
    engine: &Arc<Mutex<Engine>>,
    op: impl FnOnce(&mut Engine) -> Result<T> + Send + 'static,
) -> std::result::Result<Result<T>, JoinError> {
    let engine = Arc::clone(engine);
    tokio::task::spawn_blocking(move || op(&mut engine.lock().unwrap_or_else(|e| e.into_inner())))
        .await
}

/// Runs `op` at once on this thread if nobody holds `engine`, else as
/// [`run_blocking`]. For the short engine calls around each sudo: a hop to
/// the blocking pool and back costs two thread wake-ups (~0.1 ms measured
/// here) on a path where sudo waits or is about to; other callers on this
/// runtime wait at most as long as `op` (~0.2 ms for a registration).
pub async fn run_soon<T: Send + 'static>(
    engine: &Arc<Mutex<Engine>>,
    op: impl FnOnce(&mut Engine) -> Result<T> + Send + 'static,
) -> std::result::Result<Result<T>, JoinError> {
    // The guard must not live across the await below.
    let op = match engine.try_lock() {
        Ok(mut held) => return Ok(op(&mut held)),
        Err(TryLockError::Poisoned(e)) => return Ok(op(&mut e.into_inner())),
        Err(TryLockError::WouldBlock) => op,
    };
    run_blocking(engine, op).await
}

pub struct Engine {
    config: Arc<Config>,
    store: Store,
    clock: Arc<dyn Clock>,
    deadlines: Deadlines,
    /// Break-glass justifications owed, by grant (a separate id space).
    justifications: Deadlines,
    grants: Arc<RwLock<GrantIndex>>,
    started_at: UnixTime,
    /// Rung when notifications were queued.
    doorbell: Arc<Doorbell>,
    /// Sessions admitted before their rows are written ([`Journal`]):
    /// written together by [`Engine::write_admitted`], and before anything
    /// reads sessions or the audit trail.
    admissions: Arc<Admissions>,
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
        let doorbell = Arc::new(Doorbell::default());
        // Before the first tick: what ended while jitd was down is notified too.
        if let Some(planner) = crate::notifier::planner(&config) {
            store.notify_with(planner, Arc::clone(&doorbell));
        }
        let started_at = clock.wall();
        let index = empty_index(&config);
        let mut engine = Engine {
            config,
            store,
            clock,
            deadlines: Deadlines::default(),
            justifications: Deadlines::default(),
            grants: Arc::new(RwLock::new(index)),
            started_at,
            doorbell,
            admissions: Arc::new(Admissions::new(journal, next_session)),
        };
        engine.reload()?;
        let events = engine.tick()?;
        Ok((engine, events))
    }

    /// Rebuilds the deadlines and the grant index from the store.
    pub fn reload(&mut self) -> Result<()> {
        self.deadlines = Deadlines::default();
        self.justifications = Deadlines::default();
        *self.grants.write().unwrap_or_else(|e| e.into_inner()) = empty_index(&self.config);
        for head in self.store.open_heads()? {
            self.track(&head);
        }
        self.track_justifications()
    }

    /// What wakes the notification worker.
    pub fn doorbell(&self) -> Arc<Doorbell> {
        Arc::clone(&self.doorbell)
    }

    /// Answers CheckGrant from the shared index, without the engine's lock.
    pub fn checker(&self) -> GrantChecker {
        GrantChecker {
            grants: Arc::clone(&self.grants),
            clock: Arc::clone(&self.clock),
            polkit: None,
        }
    }

    /// Boot-clock time of the next deadline.
    pub fn next_deadline(&self) -> Option<Duration> {
        match (self.deadlines.next(), self.justifications.next()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Refuses a new pending request from someone who has as many as the
    /// limit allows: each one notifies approvers (threat T30).
    fn check_pending_limit(&self, who: &Person) -> Result<()> {
        let limit = self.config.limits.pending_per_user;
        let pending = self
            .grants
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .pending_of(who.uid);
        if !who.is_root() && pending >= limit as usize {
            return Err(EngineError::TooManyPending { limit });
        }
        Ok(())
    }

    /// `uid`'s active grant for `resource`, if any.
    fn active_grant(
        &self,
        uid: Uid,
        resource: &str,
        now: UnixTime,
    ) -> Option<(RequestId, UnixTime)> {
        self.grants
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .check(uid, resource, now)
    }

    /// Puts a request into the index and the deadlines as its state says,
    /// replacing whatever was there for it. An active grant's next deadline
    /// is its expiry warning, then its expiry.
    fn track(&mut self, req: &RequestHead) {
        self.untrack(req);
        let (precise, boot) = (self.clock.wall_precise(), self.clock.boot());
        let now = precise.as_secs() as UnixTime;
        match (req.state, req.kind, req.expires_at) {
            (State::Active, Kind::Grant, Some(exp)) => {
                self.grants
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(req.uid, &req.resource, req.id, exp);
                let warn = exp - workflow::secs(self.config.requests.expiry_warning.0);
                if warn > now {
                    self.deadlines
                        .schedule(req.id, Due::Warn, warn, precise, boot);
                } else {
                    self.deadlines
                        .schedule(req.id, Due::Expire, exp, precise, boot);
                }
            }
            (State::Pending, kind, _) => {
                if kind == Kind::Grant {
                    self.grants
                        .write()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert_pending(req.uid, &req.resource, req.id);
                }
                let lapse = req.requested_at + workflow::secs(self.config.requests.pending_ttl.0);
                self.deadlines
                    .schedule(req.id, Due::Lapse, lapse, precise, boot);
            }
            _ => {}
        }
    }

    fn untrack(&mut self, req: &RequestHead) {
        self.deadlines.cancel(req.id);
        if req.kind == Kind::Grant {
            self.grants
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .remove(req.uid, &req.resource, req.id);
        }
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

    /// The roles `who` holds for requests on `resource`.
    fn roles_of(&self, who: &Person, resource: Option<&Resource>) -> Vec<Role> {
        let roles = &self.config.roles;
        let mut held = Vec::new();
        if resource.is_some_and(|r| who.matches_any(&r.owners)) {
            held.push(Role::Owner);
        }
        if who.matches_any(&roles.manager) {
            held.push(Role::Manager);
        }
        if who.matches_any(&roles.security) {
            held.push(Role::Security);
        }
        held
    }

    fn actor(&self, who: &Person, req: &Request) -> Actor {
        let roles = self.roles_of(who, self.config.resource(&req.resource));
        Actor {
            uid: who.uid,
            name: who.name.clone(),
            may_revoke_any: who.is_root() || roles.contains(&Role::Security),
            roles,
        }
    }

    /// Root, security and auditors see every request and the whole audit trail.
    fn sees_all(&self, who: &Person) -> bool {
        who.is_root()
            || who.matches_any(&self.config.roles.security)
            || who.matches_any(&self.config.roles.auditor)
    }

    /// What `who` may see, worked out once per call: every role check is
    /// an NSS group lookup.
    fn viewer(&self, who: &Person) -> Viewer {
        Viewer {
            uid: who.uid,
            sees_all: self.sees_all(who),
            roles: self.roles_of(who, None),
            owns: self
                .config
                .resources
                .iter()
                .filter(|r| who.matches_any(&r.owners))
                .map(|r| r.name.clone())
                .collect(),
        }
    }

    fn assess(
        &self,
        who: &Person,
        resource: &Resource,
        duration: Duration,
        now: UnixTime,
    ) -> Result<(crate::core::risk::RiskAssessment, Route)> {
        let history = self
            .store
            .history(who.uid, &resource.name, now - HISTORY_WINDOW_SECS)?;
        let (weekday, minute) = local_weekday_minute(now);
        let ctx = RiskContext {
            sensitivity: resource.sensitivity,
            privileged: resource.privileged,
            production: resource.is_production(),
            duration,
            off_hours: !self.config.risk.business_hours.contains(weekday, minute),
            first_request: !history.held_before,
            recent_denials: history.recent_denials,
            recent_break_glass: history.recent_break_glass,
        };
        let risk = assess(&ctx, &self.config.risk.weights);
        let chosen = route(
            RouteFacts {
                score: risk.score,
                duration,
                privileged: resource.privileged,
                production: resource.is_production(),
                has_owners: !resource.owners.is_empty(),
            },
            self.config.risk.thresholds,
        );
        Ok((risk, chosen))
    }

    /// A new pending request, scored and routed.
    fn draft(
        &self,
        who: &Person,
        res: &Resource,
        kind: Kind,
        sub: &Submission<'_>,
        now: UnixTime,
    ) -> Result<Request> {
        let (risk, route) = self.assess(who, res, sub.duration, now)?;
        Ok(Request {
            id: 0,
            kind,
            uid: who.uid,
            user: who.name.clone(),
            resource: res.name.clone(),
            duration: sub.duration,
            reason: sub.reason.to_owned(),
            ticket: sub.ticket.map(str::to_owned),
            requested_at: now,
            route,
            risk,
            state: State::Pending,
            decisions: Vec::new(),
            expires_at: None,
            ended_at: None,
            ended_by: None,
            follow_up: None,
        })
    }

    pub fn submit(
        &mut self,
        who: &Person,
        resource: &str,
        duration: Duration,
        reason: &str,
        ticket: Option<&str>,
    ) -> Result<(Request, Vec<Event>)> {
        let res = self.resource(resource)?.clone();
        if !who.matches_any(&res.eligible) {
            return Err(WorkflowError::NotEligible(res.name).into());
        }
        self.check_pending_limit(who)?;
        workflow::validate_submission(
            &res.name,
            &Submission {
                duration,
                reason,
                ticket,
            },
            res.max_duration,
        )?;
        let now = self.clock.wall();
        if let Some((id, _)) = self.active_grant(who.uid, &res.name, now) {
            return Err(EngineError::AlreadyActive {
                id,
                resource: res.name,
            });
        }
        let sub = Submission {
            duration,
            reason,
            ticket,
        };
        let mut req = self.draft(who, &res, Kind::Grant, &sub, now)?;
        let auto = req.route == Route::Auto;
        req.id = self.store.write(|w| -> Result<RequestId> {
            let id = w.insert_request(&req)?;
            audit_submission(w, who, id, &req, "requested")?;
            if auto {
                activate(w, id, &req, now, "policy")?;
            }
            Ok(id)
        })?;
        let mut events = vec![submitted(&req)];
        if auto {
            req = self.load(req.id)?;
            events.extend(self.after_activation(&req));
        } else {
            self.track(&req.head());
        }
        Ok((req, events))
    }

    pub fn extend(
        &mut self,
        who: &Person,
        grant_id: RequestId,
        duration: Duration,
        reason: &str,
    ) -> Result<(Request, Vec<Event>)> {
        let grant = self.load(grant_id)?;
        workflow::check_extendable(&grant, &self.actor(who, &grant))?;
        self.check_pending_limit(who)?;
        let res = self.resource(&grant.resource)?.clone();
        workflow::validate_reason(reason)?;
        if duration < Duration::from_secs(1) {
            return Err(WorkflowError::ZeroDuration.into());
        }
        let now = self.clock.wall();
        let current = grant.expires_at.unwrap_or(now);
        let reach = workflow::extension_reach(current, duration, now);
        workflow::validate_submission(
            &res.name,
            &Submission {
                duration: reach,
                reason,
                ticket: None,
            },
            res.max_duration,
        )?;
        if let Some(pending) = self.store.pending_extensions(grant_id)?.first() {
            return Err(WorkflowError::ExtensionPending {
                id: grant_id,
                pending: *pending,
            }
            .into());
        }
        let sub = Submission {
            duration,
            reason,
            ticket: grant.ticket.as_deref(),
        };
        let mut req = self.draft(who, &res, Kind::Extension { of: grant_id }, &sub, now)?;
        let auto = req.route == Route::Auto;
        let cap = res.max_duration;
        req.id = self.store.write(|w| -> Result<RequestId> {
            let id = w.insert_request(&req)?;
            audit_submission(w, who, id, &req, "extension_requested")?;
            if auto {
                apply_extension(w, id, &req, &grant, now, cap, "policy")?;
            }
            Ok(id)
        })?;
        let mut events = vec![submitted(&req)];
        if auto {
            events.extend(self.after_extension(req.id, grant_id)?);
        } else {
            self.track(&req.head());
        }
        let req = self.load(req.id)?;
        Ok((req, events))
    }

    pub fn approve(
        &mut self,
        who: &Person,
        id: RequestId,
        comment: &str,
    ) -> Result<(Request, Vec<Event>)> {
        let req = self.load(id)?;
        let now = self.clock.wall();
        let outcome = workflow::approve(&req, &self.actor(who, &req), comment, now)?;
        let parent = match req.kind {
            Kind::Extension { of } => Some(self.load(of)?),
            Kind::Grant => None,
        };
        let cap = self
            .resource(&req.resource)
            .map(|r| r.max_duration)
            .unwrap_or_default();
        let complete = matches!(outcome, Approved::Complete(_));
        self.store.write(|w| -> Result<()> {
            let decision = match &outcome {
                Approved::Partial(d) | Approved::Complete(d) => d,
            };
            record_decision(w, who, id, decision, "approved")?;
            if complete {
                match &parent {
                    None => activate(w, id, &req, now, &who.name)?,
                    Some(grant) => apply_extension(w, id, &req, grant, now, cap, &who.name)?,
                }
            }
            Ok(())
        })?;
        let events = if !complete {
            Vec::new()
        } else if let Some(grant) = parent {
            self.deadlines.cancel(id);
            self.after_extension(id, grant.id)?
        } else {
            let granted = self.load(id)?;
            let events = self.after_activation(&granted);
            return Ok((granted, events));
        };
        Ok((self.load(id)?, events))
    }

    pub fn deny(
        &mut self,
        who: &Person,
        id: RequestId,
        comment: &str,
    ) -> Result<(Request, Vec<Event>)> {
        let req = self.load(id)?;
        let now = self.clock.wall();
        let decision = workflow::deny(&req, &self.actor(who, &req), comment, now)?;
        self.store.write(|w| -> Result<()> {
            record_decision(w, who, id, &decision, "denied")?;
            w.set_state(id, State::Denied, None, Some((now, &who.name)))?;
            Ok(())
        })?;
        let req = self.load(id)?;
        self.untrack(&req.head());
        Ok((
            req,
            vec![Event::Decided {
                id,
                state: State::Denied,
            }],
        ))
    }

    pub fn revoke(
        &mut self,
        who: &Person,
        id: RequestId,
        comment: &str,
    ) -> Result<(Request, Vec<Event>)> {
        let req = self.load(id)?;
        workflow::revoke(&req, &self.actor(who, &req))?;
        let now = self.clock.wall();
        let event = if req.state == State::Pending {
            "withdrawn"
        } else {
            "revoked"
        };
        let extensions = self.store.pending_extensions(id)?;
        self.store.write(|w| -> Result<()> {
            w.set_state(id, State::Revoked, req.expires_at, Some((now, &who.name)))?;
            w.audit(&AuditEvent {
                at: now,
                actor_uid: Some(who.uid),
                actor: &who.name,
                event,
                request: Some(id),
                detail: json!({"comment": comment}),
            })?;
            lapse_all(w, &extensions, now, "grant revoked")
        })?;
        Ok((
            self.load(id)?,
            self.after_end(&req, State::Revoked, &extensions),
        ))
    }

    fn after_activation(&mut self, req: &Request) -> Vec<Event> {
        self.track(&req.head());
        vec![
            Event::Decided {
                id: req.id,
                state: State::Active,
            },
            Event::Activated {
                id: req.id,
                uid: req.uid,
                resource: req.resource.clone(),
                expires_at: req.expires_at.unwrap_or_default(),
            },
        ]
    }

    fn after_extension(&mut self, ext: RequestId, grant: RequestId) -> Result<Vec<Event>> {
        let grant = self.load(grant)?;
        self.track(&grant.head());
        let expires_at = grant.expires_at.unwrap_or_default();
        Ok(vec![
            Event::Decided {
                id: ext,
                state: State::Applied,
            },
            Event::Extended {
                id: grant.id,
                expires_at,
            },
        ])
    }

    fn after_end(&mut self, req: &Request, state: State, lapsed: &[RequestId]) -> Vec<Event> {
        self.untrack(&req.head());
        let mut events = vec![Event::Decided { id: req.id, state }];
        if req.state == State::Active {
            events.push(Event::Ended {
                id: req.id,
                uid: req.uid,
                user: req.user.clone(),
                resource: req.resource.clone(),
                reason: state,
            });
        }
        for ext in lapsed {
            self.deadlines.cancel(*ext);
            events.push(Event::Decided {
                id: *ext,
                state: State::Lapsed,
            });
        }
        events
    }

    /// Ends everything whose deadline has passed, in one transaction.
    pub fn tick(&mut self) -> Result<Vec<Event>> {
        let owed: Vec<RequestId> = self
            .justifications
            .take_due(self.clock.boot())
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        if !owed.is_empty() {
            self.escalate_overdue(&owed)?;
        }
        let due = self.deadlines.take_due(self.clock.boot());
        if due.is_empty() {
            return Ok(Vec::new());
        }
        let now = self.clock.wall();
        let mut ended = Vec::new();
        let mut warned = Vec::new();
        let mut events = Vec::new();
        let mut reschedule = Vec::new();
        for (id, kind) in due {
            let Some(req) = self.store.request(id)? else {
                continue;
            };
            match (kind, req.state) {
                (Due::Expire, State::Active) => {
                    let extensions = self.store.pending_extensions(id)?;
                    ended.push((req, State::Expired, extensions));
                }
                (Due::Lapse, State::Pending) => ended.push((req, State::Lapsed, Vec::new())),
                (Due::Warn, State::Active) => {
                    let expires_at = req.expires_at.unwrap_or(now);
                    events.push(Event::Expiring { id, expires_at });
                    warned.push((id, expires_at));
                    let (precise, boot) = (self.clock.wall_precise(), self.clock.boot());
                    self.deadlines
                        .schedule(id, Due::Expire, expires_at, precise, boot);
                }
                _ => reschedule.push(req),
            }
        }
        for req in reschedule {
            self.track(&req.head());
        }
        if ended.is_empty() && warned.is_empty() {
            return Ok(events);
        }
        self.store.write(|w| -> Result<()> {
            for (id, expires_at) in &warned {
                w.audit(&AuditEvent {
                    at: now,
                    actor_uid: None,
                    actor: JITD,
                    event: "expiry_warning",
                    request: Some(*id),
                    detail: json!({"expires_at": expires_at}),
                })?;
            }
            for (req, state, extensions) in &ended {
                w.set_state(req.id, *state, req.expires_at, Some((now, JITD)))?;
                w.audit(&AuditEvent {
                    at: now,
                    actor_uid: None,
                    actor: JITD,
                    event: state.as_str(),
                    request: Some(req.id),
                    detail: json!({"expires_at": req.expires_at, "requested_at": req.requested_at}),
                })?;
                lapse_all(w, extensions, now, "grant expired")?;
            }
            Ok(())
        })?;
        for (req, state, extensions) in &ended {
            events.extend(self.after_end(req, *state, extensions));
        }
        Ok(events)
    }

    /// The wall clock was set: audit it and bring deadlines forward if needed.
    pub fn clock_changed(&mut self) -> Result<Vec<Event>> {
        let (precise, boot) = (self.clock.wall_precise(), self.clock.boot());
        let now = precise.as_secs() as UnixTime;
        self.store.write(|w| -> Result<()> {
            w.audit(&AuditEvent {
                at: now,
                actor_uid: None,
                actor: JITD,
                event: "clock_changed",
                request: None,
                detail: json!({"wall": now, "boot_secs": boot.as_secs()}),
            })?;
            Ok(())
        })?;
        self.deadlines.rebase(precise, boot);
        self.justifications.rebase(precise, boot);
        self.tick()
    }

    /// What admits sessions on pam_jit's path, without this engine's lock.
    pub fn admitter(&self) -> Admitter {
        Admitter {
            grants: Arc::clone(&self.grants),
            clock: Arc::clone(&self.clock),
            admissions: Arc::clone(&self.admissions),
        }
    }

    /// How many admitted sessions wait for their rows.
    #[cfg(test)]
    pub fn admitted_unwritten(&self) -> usize {
        self.admissions.unwritten()
    }

    /// Writes the rows and audit events of the admitted sessions, in one
    /// transaction.
    pub fn write_admitted(&mut self) -> Result<()> {
        let admitted = self.admissions.take_unwritten();
        if admitted.is_empty() {
            return Ok(());
        }
        let written = write_sessions(&mut self.store, &admitted, false);
        self.admissions.written(admitted, written.is_ok())?;
        written
    }

    /// Records that sessions `ids` ended (their process exited, seen by
    /// jitd, not told by a caller), in one transaction; returns how many were
    /// not recorded as ended already. An id without a row is skipped: it
    /// must not keep the others of its batch unrecorded.
    pub fn close_sessions(&mut self, ids: &[u64]) -> Result<usize> {
        self.write_admitted()?;
        let mut sessions = Vec::with_capacity(ids.len());
        for &id in ids {
            match self.store.session(id)? {
                Some(session) => sessions.push(session),
                None => tracing::warn!(session = id, "no such session to record the end of"),
            }
        }
        let now = self.clock.wall();
        self.store.write_usage(|w| -> Result<usize> {
            let mut closed = 0;
            for session in &sessions {
                if !w.close_session(session.id, now)? {
                    continue;
                }
                w.audit(&AuditEvent {
                    at: now,
                    actor_uid: Some(session.uid),
                    actor: JITD,
                    event: "session_closed",
                    request: Some(session.grant),
                    detail: json!({"session": session.id, "service": session.service, "pid": session.pid}),
                })?;
                closed += 1;
            }
            Ok(closed)
        })
    }

    /// The wall clock jitd uses (Unix seconds).
    pub fn now(&self) -> UnixTime {
        self.clock.wall()
    }

    /// Whether `grant` is an active grant (an unreadable store says yes:
    /// nothing is killed on a guess).
    pub fn is_active(&self, grant: RequestId) -> bool {
        self.store
            .request(grant)
            .map_or(true, |r| r.is_some_and(|r| r.state == State::Active))
    }

    /// Every session opened under `grant`, to be terminated when it ends.
    pub fn sessions_of(&mut self, grant: RequestId) -> Result<Vec<SessionRecord>> {
        self.write_admitted()?;
        Ok(self.store.sessions_of(grant)?)
    }

    /// Sessions whose end is not recorded yet (at start: those the previous
    /// jitd was watching).
    pub fn open_sessions(&mut self) -> Result<Vec<SessionRecord>> {
        self.write_admitted()?;
        Ok(self.store.open_sessions()?)
    }

    pub fn show(&self, who: &Person, id: RequestId) -> Result<Request> {
        let req = self.load(id)?;
        if !self.viewer(who).may_see(&req) {
            return Err(WorkflowError::NotYours(id).into());
        }
        Ok(req)
    }

    /// A request with the delivery state of its notifications, for whoever may see it.
    pub fn show_with_notifications(
        &self,
        who: &Person,
        id: RequestId,
    ) -> Result<(Request, Vec<NotificationRecord>)> {
        let req = self.show(who, id)?;
        Ok((req, self.store.notifications(id)?))
    }

    pub fn list(&self, who: &Person, filter: &str) -> Result<Vec<RequestView>> {
        let filter =
            ListFilter::parse(filter).ok_or_else(|| EngineError::BadFilter(filter.to_owned()))?;
        let viewer = self.viewer(who);
        // Plain requesters only ever see their own: let SQLite pick them.
        let only_uid = (!viewer.sees_all && viewer.roles.is_empty() && viewer.owns.is_empty())
            .then_some(who.uid);
        Ok(self
            .store
            .newest_requests(filter, only_uid, LIST_LIMIT)?
            .iter()
            .filter(|r| viewer.may_see(r))
            .map(RequestView::from)
            .collect())
    }

    pub fn audit(&mut self, who: &Person, since: UnixTime) -> Result<Vec<AuditRecord>> {
        self.write_admitted()?;
        let only = (!self.sees_all(who)).then_some(who.uid);
        Ok(self.store.audit_since(since, only)?)
    }

    pub fn verify_audit(&mut self, who: &Person) -> Result<VerifyView> {
        if !self.sees_all(who) {
            return Err(EngineError::NotAuditor);
        }
        self.write_admitted()?;
        let v = self.store.verify_audit()?;
        Ok(VerifyView {
            ok: v.ok,
            rows: v.rows,
            problem: v.problem,
        })
    }

    pub fn status(&self, who: &Person) -> Result<StatusView> {
        let boot = self.clock.boot();
        let viewer = self.viewer(who);
        let owner = (!viewer.owns.is_empty()).then_some(Role::Owner);
        let mut roles: Vec<String> = owner
            .iter()
            .chain(&viewer.roles)
            .map(|r| r.as_str().to_owned())
            .collect();
        if who.matches_any(&self.config.roles.auditor) {
            roles.push("auditor".into());
        }
        Ok(StatusView {
            version: crate::api::VERSION.into(),
            started_at: crate::api::rfc3339(self.started_at),
            you: who.name.clone(),
            roles,
            pending: self.store.count(State::Pending)?,
            active: self.store.count(State::Active)?,
            next_deadline_secs: self
                .deadlines
                .next()
                .map(|d| d.saturating_sub(boot).as_secs()),
            resources: self
                .config
                .resources
                .iter()
                .filter(|r| who.matches_any(&r.eligible))
                .map(|r| ResourceView {
                    name: r.name.clone(),
                    privileged: r.privileged,
                    sensitivity: r.sensitivity.as_str().into(),
                    environment: r.environment.clone(),
                    max_duration_secs: r.max_duration.as_secs(),
                })
                .collect(),
            // The bus edge adds them: they are facts of the host, not the store.
            warnings: Vec::new(),
        })
    }
}

fn empty_index(config: &Config) -> GrantIndex {
    GrantIndex::new(config.resources.iter().map(|r| r.name.clone()))
}

fn submitted(req: &Request) -> Event {
    Event::Submitted {
        id: req.id,
        uid: req.uid,
        resource: req.resource.clone(),
        route: req.route.as_str(),
    }
}

/// One approver's decision and its audit event.
fn record_decision(
    w: &mut Writer<'_>,
    who: &Person,
    id: RequestId,
    d: &Decision,
    event: &str,
) -> Result<()> {
    w.add_decision(id, d)?;
    w.audit(&AuditEvent {
        at: d.at,
        actor_uid: Some(who.uid),
        actor: &who.name,
        event,
        request: Some(id),
        detail: json!({"role": d.role.as_str(), "comment": d.comment}),
    })?;
    Ok(())
}

/// A session's row and its audit event ("use", W1.8).
fn write_sessions(store: &mut Store, sessions: &[SessionRecord], from_journal: bool) -> Result<()> {
    store.write_usage(|w| -> Result<()> {
        for session in sessions {
            write_session(w, session, from_journal)?;
        }
        Ok(())
    })
}

/// At open: writes the sessions a previous jitd admitted but did not write
/// (it was killed in between); returns the id the next session gets.
fn write_journaled(store: &mut Store, journaled: Vec<SessionRecord>) -> Result<u64> {
    let mut missing = Vec::new();
    for session in &journaled {
        if store.session(session.id)?.is_none() {
            tracing::warn!(
                session = session.id,
                grant = session.grant,
                "writing a session journaled by the previous jitd"
            );
            missing.push(session.clone());
        }
    }
    write_sessions(store, &missing, true)?;
    let last = journaled.iter().map(|s| s.id).max().unwrap_or(0);
    Ok(store.last_session_id()?.max(last) + 1)
}

fn write_session(w: &mut Writer<'_>, session: &SessionRecord, from_journal: bool) -> Result<()> {
    let user =
        w.requester(session.grant)?
            .ok_or(EngineError::Workflow(WorkflowError::NotFound(
                session.grant,
            )))?;
    w.insert_session(session)?;
    let mut detail = json!({
        "session": session.id,
        "service": session.service,
        "tty": session.tty,
        "rhost": session.rhost,
        "pid": session.pid,
        "cgroup": session.cgroup,
    });
    if from_journal {
        detail["from_journal"] = json!(true);
    }
    w.audit(&AuditEvent {
        at: session.opened_at,
        actor_uid: Some(session.uid),
        actor: &user,
        event: "session_opened",
        request: Some(session.grant),
        detail,
    })?;
    Ok(())
}

fn audit_submission(
    w: &mut Writer<'_>,
    who: &Person,
    id: RequestId,
    req: &Request,
    event: &str,
) -> Result<()> {
    let extends = match req.kind {
        Kind::Extension { of } => Some(of),
        Kind::Grant => None,
    };
    w.audit(&AuditEvent {
        at: req.requested_at,
        actor_uid: Some(who.uid),
        actor: &who.name,
        event,
        request: Some(id),
        detail: json!({
            "resource": req.resource,
            "duration_secs": req.duration.as_secs(),
            "reason": req.reason,
            "ticket": req.ticket,
            "extends": extends,
        }),
    })?;
    w.audit(&AuditEvent {
        at: req.requested_at,
        actor_uid: None,
        actor: JITD,
        event: "scored",
        request: Some(id),
        detail: json!({"score": req.risk.score, "factors": req.risk.factors, "route": req.route.as_str()}),
    })?;
    Ok(())
}

fn activate(
    w: &mut Writer<'_>,
    id: RequestId,
    req: &Request,
    now: UnixTime,
    by: &str,
) -> Result<()> {
    let expires_at = now + workflow::secs(req.duration);
    w.set_state(id, State::Active, Some(expires_at), None)?;
    w.audit(&AuditEvent {
        at: now,
        actor_uid: None,
        actor: JITD,
        event: "granted",
        request: Some(id),
        detail: json!({"expires_at": expires_at, "approved_by": by, "route": req.route.as_str()}),
    })?;
    Ok(())
}

fn apply_extension(
    w: &mut Writer<'_>,
    id: RequestId,
    req: &Request,
    grant: &Request,
    now: UnixTime,
    cap: Duration,
    by: &str,
) -> Result<()> {
    let current = grant.expires_at.unwrap_or(now);
    let expires_at = workflow::extended_expiry(current, req.duration, now, cap);
    w.set_state(grant.id, State::Active, Some(expires_at), None)?;
    w.set_state(id, State::Applied, Some(expires_at), Some((now, by)))?;
    w.audit(&AuditEvent {
        at: now,
        actor_uid: None,
        actor: JITD,
        event: "extended",
        request: Some(grant.id),
        detail: json!({"extension": id, "from": current, "expires_at": expires_at, "approved_by": by}),
    })?;
    Ok(())
}

fn lapse_all(w: &mut Writer<'_>, ids: &[RequestId], now: UnixTime, why: &str) -> Result<()> {
    for id in ids {
        w.set_state(*id, State::Lapsed, None, Some((now, JITD)))?;
        w.audit(&AuditEvent {
            at: now,
            actor_uid: None,
            actor: JITD,
            event: "lapsed",
            request: Some(*id),
            detail: json!({"why": why}),
        })?;
    }
    Ok(())
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
