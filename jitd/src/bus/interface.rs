//! `org.jit.Daemon1` on `/org/jit/Daemon1`.
//!
//! Each method identifies the caller from the bus, then runs the engine on
//! the blocking pool (SQLite must not stall the executor) and returns JSON.

use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use zbus::message::Header;
use zbus::object_server::SignalEmitter;
use zbus::{interface, Connection};

use super::gate::{Gate, SessionOpening};
use super::{recording, BusError, Callers};
use crate::api::{
    rfc3339, AnchorView, AuditView, IncidentView, NotificationView, RecordingView, RequestView,
    VendorAskView, VendorView,
};
use crate::core::model::RequestId;
use crate::core::model::Verdict;
use crate::core::reports::ReportKind;
use crate::core::tickets::{TicketAsk, TicketCheck};
use crate::core::vendor::Vendor;
use crate::core::workflow::Submission;
use crate::directory::Person;
use crate::engine::{Engine, EngineError, Event, NewRequest};
use crate::sessions::Effects;
use crate::standing::scanner::{ScanError, Scanner};
use crate::store::{RecordingRecord, Reports};
use crate::tickets::Tickets;

pub struct Daemon {
    gate: Gate,
    callers: Callers,
    effects: Effects,
    /// Wakes the expiry timer after anything that may add an earlier deadline.
    rearm: Arc<Notify>,
    scanner: Scanner,
    /// Held while a report runs: one at a time, however many are asked for.
    reporting: Arc<tokio::sync::Mutex<()>>,
    /// Checks tickets where resources require them (W1.11).
    tickets: Tickets,
}

type Reply<T> = Result<T, BusError>;

/// Most rows `VerifyAnchors` checks in one call: an anchor every 1000
/// events covers 100 million of them.
const MAX_ANCHORS: usize = 100_000;

/// The user behind `uid`, from NSS (off the executor: NSS may block).
async fn person(uid: u32) -> Reply<Person> {
    tokio::task::spawn_blocking(move || Person::lookup(uid))
        .await
        .map_err(|e| BusError::Failed(e.to_string()))?
        .map_err(|e| BusError::from(EngineError::from(e)))
}

/// The caller's unique bus name (a bus never reuses one).
fn sender_name(header: &Header<'_>) -> String {
    header.sender().map(|s| s.to_string()).unwrap_or_default()
}

fn to_json<T: Serialize>(value: &T) -> Reply<String> {
    serde_json::to_string(value).map_err(|e| BusError::Failed(e.to_string()))
}

impl Daemon {
    pub fn new(
        gate: Gate,
        callers: Callers,
        effects: Effects,
        rearm: Arc<Notify>,
        scanner: Scanner,
        tickets: Tickets,
    ) -> Daemon {
        Daemon {
            gate,
            callers,
            effects,
            rearm,
            scanner,
            reporting: Arc::default(),
            tickets,
        }
    }

    /// The validator's check of what `ask_of` names (the engine decides
    /// whether there is anything to check), made before the engine is
    /// called with it: the requester or approver waits, nobody else.
    async fn check_ticket(
        &self,
        caller: u32,
        ask_of: impl FnOnce(&mut Engine) -> Result<Option<TicketAsk>, EngineError> + Send + 'static,
    ) -> Reply<Option<TicketCheck>> {
        if !self.tickets.configured() {
            return Ok(None);
        }
        let Some(ask) = self.run(ask_of).await? else {
            return Ok(None);
        };
        match self.tickets.check(caller, ask).await {
            Ok(check) => Ok(Some(check)),
            Err(busy) => Err(BusError::LimitExceeded(busy.to_string())),
        }
    }

    /// `submit_new` of a request for `resource`, its ticket checked first.
    #[allow(clippy::too_many_arguments)] // one per field of the request
    async fn submit(
        &self,
        conn: &Connection,
        who: Person,
        resource: String,
        duration: u64,
        reason: String,
        ticket: String,
        starts_at: Option<i64>,
    ) -> Reply<String> {
        let ticket = (!ticket.is_empty()).then_some(ticket);
        let (asker, res, t, said) = (
            who.clone(),
            resource.clone(),
            ticket.clone(),
            reason.clone(),
        );
        let ticket_check = self
            .check_ticket(who.uid, move |e| {
                let sub = Submission {
                    duration: Duration::from_secs(duration),
                    reason: &said,
                    ticket: t.as_deref(),
                };
                Ok(e.request_ticket_ask(&asker, &res, &sub))
            })
            .await?;
        self.change(conn, move |e| {
            e.submit_new(
                &who,
                NewRequest {
                    resource: &resource,
                    duration: Duration::from_secs(duration),
                    reason: &reason,
                    ticket: ticket.as_deref(),
                    starts_at,
                    ticket_check,
                },
            )
        })
        .await
    }

    /// `approve_checked`, the request's ticket checked again first.
    async fn approve_as(
        &self,
        conn: &Connection,
        who: Person,
        id: RequestId,
        comment: String,
        code: Option<String>,
    ) -> Reply<String> {
        let (approver, said) = (who.clone(), comment.clone());
        let ticket_check = self
            .check_ticket(who.uid, move |e| {
                e.approval_ticket_ask(&approver, id, &said)
            })
            .await?;
        self.change(conn, move |e| {
            e.approve_checked(&who, id, &comment, code.as_deref(), ticket_check)
        })
        .await
    }

    async fn caller(&self, conn: &Connection, header: &Header<'_>) -> Reply<Person> {
        person(self.callers.uid(conn, header.sender()).await?).await
    }

    /// The caller, for what must never be shown inside an elevated session
    /// (its terminal is recorded, T31): refused when its process may be in
    /// one, or is gone or no longer the caller's (a reused pid, as the
    /// bus's pid is from when it connected), failing closed.
    async fn caller_outside_sessions(
        &self,
        conn: &Connection,
        header: &Header<'_>,
    ) -> Reply<Person> {
        let (uid, pid) = self.callers.uid_and_pid(conn, header.sender()).await?;
        let who = person(uid).await?;
        let control = self.gate.control();
        if control.maybe_in_session(pid) || control.uid_of_process(pid) != Some(uid) {
            return Err(EngineError::RevealInSession.into());
        }
        Ok(who)
    }

    /// The recording `find` admits, as a read-only descriptor and its
    /// listing as JSON.
    async fn recording_file(
        &self,
        find: impl FnOnce(&mut Engine) -> Result<RecordingRecord, EngineError> + Send + 'static,
    ) -> Reply<(zbus::OwnedFd, String)> {
        let (file, record) = self
            .run(move |e| {
                let record = find(e)?;
                let file = crate::recordings::open_recorded(&record)?;
                Ok((file, record))
            })
            .await?;
        let fd: std::os::fd::OwnedFd = file.into();
        Ok((fd.into(), to_json(&RecordingView::from(&record))?))
    }

    /// A recorder's `OpenRecording` or `OpenLoginRecording`: who calls, on
    /// which connection (only that one may close the recording).
    async fn open_recorder(
        &self,
        conn: &Connection,
        header: &Header<'_>,
        kind: recording::Recorder,
        terminal: recording::Terminal,
    ) -> Reply<(zbus::OwnedFd, String)> {
        let caller = self.callers.uid_and_pid(conn, header.sender()).await?;
        let recorders = self.effects.recorders();
        recording::open(
            &self.gate,
            recorders,
            caller,
            sender_name(header),
            kind,
            terminal,
        )
        .await
    }

    /// Runs `op` against the engine off the executor.
    async fn run<T: Send + 'static>(
        &self,
        op: impl FnOnce(&mut Engine) -> Result<T, EngineError> + Send + 'static,
    ) -> Reply<T> {
        self.gate.run(op).await
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
        self.effects.apply(conn, &events).await;
        to_json(&RequestView::from(&req))
    }

    /// [`Daemon::change`] for a vendor's access: returns the vendor.
    async fn vendor_change(
        &self,
        conn: &Connection,
        op: impl FnOnce(&mut Engine) -> Result<(Vendor, Vec<Event>), EngineError> + Send + 'static,
    ) -> Reply<String> {
        let (vendor, events) = self.run(op).await?;
        self.rearm.notify_one();
        self.effects.apply(conn, &events).await;
        to_json(&VendorView::from(&vendor))
    }
}

#[interface(name = "org.jit.Daemon1", introspection_docs = false)]
impl Daemon {
    #[zbus(out_args("request"))]
    async fn request(
        &self,
        resource: String,
        duration: u64,
        reason: String,
        ticket: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, BusError> {
        let who = self.caller(conn, &header).await?;
        self.submit(conn, who, resource, duration, reason, ticket, None)
            .await
    }

    /// `Request` for a grant usable from `starts_at` (seconds since the
    /// Unix epoch: a maintenance window) for `duration`.
    #[allow(clippy::too_many_arguments)] // the documented D-Bus signature decides the arity
    #[zbus(out_args("request"))]
    async fn request_scheduled(
        &self,
        resource: String,
        duration: u64,
        reason: String,
        ticket: String,
        starts_at: i64,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, BusError> {
        let who = self.caller(conn, &header).await?;
        self.submit(
            conn,
            who,
            resource,
            duration,
            reason,
            ticket,
            Some(starts_at),
        )
        .await
    }

    #[zbus(out_args("request"))]
    async fn extend(
        &self,
        grant: RequestId,
        duration: u64,
        reason: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, BusError> {
        let (uid, pid) = self.callers.uid_and_pid(conn, header.sender()).await?;
        let who = person(uid).await?;
        // From inside the grant's own cgroup (a recorded root shell, a
        // session as the managed account): asked for the holder. The pid is
        // the bus's, from when the caller connected: it must still run as
        // the caller (threat T5), or a pid reused by a process in the
        // cgroup would speak for it.
        let control = self.gate.control();
        let in_session = control.grant_of_process(pid) == Some(grant)
            && control.uid_of_process(pid) == Some(uid);
        self.change(conn, move |e| {
            let duration = Duration::from_secs(duration);
            match in_session {
                true => e.extend_from_session(&who, grant, duration, &reason),
                false => e.extend(&who, grant, duration, &reason),
            }
        })
        .await
    }

    #[zbus(out_args("request"))]
    async fn approve(
        &self,
        id: RequestId,
        comment: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, BusError> {
        let who = self.caller(conn, &header).await?;
        self.approve_as(conn, who, id, comment, None).await
    }

    /// `Approve`, with a code from the approver's second factor: for a
    /// resource with `require_mfa`.
    #[zbus(out_args("request"))]
    async fn approve_with_code(
        &self,
        id: RequestId,
        comment: String,
        code: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, BusError> {
        let who = self.caller(conn, &header).await?;
        self.approve_as(conn, who, id, comment, Some(code)).await
    }

    /// The holder's approved grant, awaiting a second factor, made active
    /// with a code from it.
    #[zbus(out_args("request"))]
    async fn activate(
        &self,
        id: RequestId,
        code: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, BusError> {
        let who = self.caller(conn, &header).await?;
        self.change(conn, move |e| e.activate(&who, id, &code))
            .await
    }

    #[zbus(out_args("request"))]
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

    #[zbus(out_args("request"))]
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

    /// The password grant `id` checked its managed account out with, to
    /// its holder, when the account reveals it (W3); never to a caller in
    /// an elevated session, whose terminal is recorded. Audited.
    #[zbus(out_args("password"))]
    async fn reveal_password(
        &self,
        id: RequestId,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, BusError> {
        let who = self.caller_outside_sessions(conn, &header).await?;
        let keeper = self.effects.keeper().clone();
        self.run(move |e| {
            let account = e.revealable(&who, id)?;
            let password = keeper
                .revealable(&account.name, id)
                .ok_or_else(|| EngineError::PasswordNotReady(account.name.clone()))?;
            e.audit_reveal(&who, id, &account.name, password.expose().as_bytes())?;
            Ok(password.expose().to_owned())
        })
        .await
    }

    /// Root's recovery password (`root_custody`), for security to store
    /// offline: read and deleted from the host, audited; never to a caller
    /// inside an elevated session, whose terminal is recorded.
    #[zbus(out_args("password"))]
    async fn take_recovery_password(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, BusError> {
        let who = self.caller_outside_sessions(conn, &header).await?;
        self.run(move |e| Ok(e.take_recovery(&who)?.expose().to_owned()))
            .await
    }

    /// A new TOTP seed for the caller, pending until `MfaConfirm`: its
    /// `otpauth://` URI. Never to a caller inside an elevated session (the
    /// seed would be recorded).
    #[zbus(out_args("uri"))]
    async fn mfa_enroll(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, BusError> {
        let who = self.caller_outside_sessions(conn, &header).await?;
        self.run(move |e| Ok(e.mfa_enroll(&who)?.expose().to_owned()))
            .await
    }

    /// The caller's code confirming their pending enrollment.
    async fn mfa_confirm(
        &self,
        code: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(), BusError> {
        let who = self.caller(conn, &header).await?;
        self.run(move |e| e.mfa_confirm(&who, &code)).await
    }

    /// Security removes a user's second factor (they enroll again).
    async fn mfa_reset(
        &self,
        user: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(), BusError> {
        let who = self.caller(conn, &header).await?;
        self.run(move |e| e.mfa_reset(&who, &user)).await
    }

    /// A user's second factor (`""`: the caller's), never its seed.
    #[zbus(out_args("status"))]
    async fn mfa_status(
        &self,
        user: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, BusError> {
        let who = self.caller(conn, &header).await?;
        let view = self
            .run(move |e| e.mfa_status(&who, Some(user.as_str()).filter(|u| !u.is_empty())))
            .await?;
        to_json(&view)
    }

    /// Which policy rule would decide a request for `resource` now, and
    /// why not the others (`user` `""`: the caller; others' for root,
    /// security and auditors; `ticket` `""`: none).
    #[zbus(out_args("explanation"))]
    async fn explain_policy(
        &self,
        resource: String,
        duration: u64,
        user: String,
        ticket: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, BusError> {
        let who = self.caller(conn, &header).await?;
        let view = self
            .run(move |e| {
                e.explain_policy(
                    &who,
                    Some(user.as_str()).filter(|u| !u.is_empty()),
                    &resource,
                    Duration::from_secs(duration),
                    Some(ticket.as_str()).filter(|t| !t.is_empty()),
                )
            })
            .await?;
        to_json(&view)
    }

    /// An emergency grant, active at once (W2). `duration` 0: the
    /// resource's `break_glass_max`.
    #[zbus(out_args("request"))]
    async fn break_glass(
        &self,
        resource: String,
        duration: u64,
        reason: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, BusError> {
        let who = self.caller(conn, &header).await?;
        let duration = (duration > 0).then(|| Duration::from_secs(duration));
        self.change(conn, move |e| {
            e.break_glass(&who, &resource, duration, &reason)
        })
        .await
    }

    /// A sponsor asks for a vendor account (W4): `ask` is one JSON object
    /// (`VendorAskView`); pending until the sponsor's manager and security
    /// approve.
    #[zbus(out_args("vendor"))]
    async fn vendor_request(
        &self,
        ask: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, BusError> {
        let who = self.caller(conn, &header).await?;
        let ask: VendorAskView = serde_json::from_str(&ask).map_err(|e| {
            BusError::InvalidArgument(format!("the vendor request is not valid: {e}"))
        })?;
        let vendor = self
            .run(move |e| e.vendor_request(&who, ask.into()))
            .await?;
        // Its lapse may be the next deadline.
        self.rearm.notify_one();
        to_json(&VendorView::from(&vendor))
    }

    /// Approves or denies (`verdict`: approve | deny; a denial needs a
    /// comment) vendor request `id`.
    #[zbus(out_args("vendor"))]
    async fn vendor_decide(
        &self,
        id: u64,
        verdict: String,
        comment: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, BusError> {
        let who = self.caller(conn, &header).await?;
        let verdict = match verdict.as_str() {
            "approve" => Verdict::Approve,
            "deny" => Verdict::Deny,
            _ => {
                return Err(BusError::InvalidArgument(
                    "the verdict is approve or deny".into(),
                ))
            }
        };
        self.vendor_change(conn, move |e| e.vendor_decide(&who, id, verdict, &comment))
            .await
    }

    /// Ends a vendor's access now (its sponsor, security, root).
    #[zbus(out_args("vendor"))]
    async fn vendor_revoke(
        &self,
        id: u64,
        comment: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, BusError> {
        let who = self.caller(conn, &header).await?;
        self.vendor_change(conn, move |e| e.vendor_revoke(&who, id, &comment))
            .await
    }

    /// The vendors the caller may see ("open": not deleted yet; "all").
    #[zbus(out_args("vendors"))]
    async fn vendor_list(
        &self,
        filter: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, BusError> {
        let who = self.caller(conn, &header).await?;
        let all = match filter.as_str() {
            "" | "open" => false,
            "all" => true,
            other => return Err(EngineError::BadFilter(other.into()).into()),
        };
        let vendors = self.run(move |e| e.vendors_for(&who, all)).await?;
        to_json(&vendors.iter().map(VendorView::from).collect::<Vec<_>>())
    }

    #[zbus(out_args("vendor"))]
    async fn vendor_show(
        &self,
        id: u64,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, BusError> {
        let who = self.caller(conn, &header).await?;
        let vendor = self.run(move |e| e.vendor_for(&who, id)).await?;
        to_json(&VendorView::from(&vendor))
    }

    #[zbus(out_args("request"))]
    async fn justify(
        &self,
        grant: RequestId,
        justification: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, BusError> {
        let who = self.caller(conn, &header).await?;
        self.change(conn, move |e| e.justify(&who, grant, &justification))
            .await
    }

    #[zbus(out_args("request"))]
    async fn review(
        &self,
        grant: RequestId,
        verdict: String,
        comment: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, BusError> {
        let who = self.caller(conn, &header).await?;
        self.change(conn, move |e| e.review(&who, grant, &verdict, &comment))
            .await
    }

    #[zbus(out_args("incidents"))]
    async fn incidents(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, BusError> {
        let who = self.caller(conn, &header).await?;
        let incidents = self.run(move |e| e.incidents(&who)).await?;
        to_json(&incidents.iter().map(IncidentView::from).collect::<Vec<_>>())
    }

    /// Grants active since `since` (Unix seconds) and their use; with
    /// `unused_only`, those no session used (root, security, auditors).
    #[zbus(out_args("grants"))]
    async fn grant_usage(
        &self,
        since: i64,
        unused_only: bool,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, BusError> {
        let who = self.caller(conn, &header).await?;
        to_json(
            &self
                .run(move |e| e.grant_usage(&who, since, unused_only))
                .await?,
        )
    }

    #[zbus(out_args("incident"))]
    async fn incident(
        &self,
        id: u64,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, BusError> {
        let who = self.caller(conn, &header).await?;
        to_json(&IncidentView::from(
            &self.run(move |e| e.incident(&who, id)).await?,
        ))
    }

    #[zbus(out_args("request"))]
    async fn show(
        &self,
        id: RequestId,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, BusError> {
        let who = self.caller(conn, &header).await?;
        let (req, notes, changes, account) = self
            .run(move |e| {
                let (req, notes) = e.show_with_notifications(&who, id)?;
                let account = e.account_of_resource(&req.resource);
                Ok((req, notes, e.changes_of(id)?, account))
            })
            .await?;
        to_json(&RequestView {
            notifications: Some(notes.iter().map(NotificationView::from).collect()),
            changes,
            account,
            ..RequestView::from(&req)
        })
    }

    #[zbus(out_args("requests"))]
    async fn list(
        &self,
        filter: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, BusError> {
        let who = self.caller(conn, &header).await?;
        to_json(&self.run(move |e| e.list(&who, &filter)).await?)
    }

    /// pam_jit's `auth` hook (root only): see [`Gate::mfa_login`].
    #[zbus(out_args("state", "text"))]
    async fn mfa_login(
        &self,
        uid: u32,
        code: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(String, String), BusError> {
        let caller = self.callers.uid(conn, header.sender()).await?;
        self.gate.mfa_login(caller, uid, code).await
    }

    /// The hot path of every sudo and login: no SQLite, no engine lock.
    #[zbus(out_args("active", "grant", "expires_at", "pending"))]
    async fn check_grant(
        &self,
        uid: u32,
        resource: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(bool, u64, i64, u64), BusError> {
        let caller = self.callers.uid(conn, header.sender()).await?;
        self.gate.check(caller, uid, &resource)
    }

    /// pam_jit's account check (root only): `CheckGrant`, and a denial is
    /// recorded with the PAM service, tty and remote host (see
    /// [`Gate::check_access`]).
    #[zbus(out_args("active", "grant", "expires_at", "pending"))]
    #[allow(clippy::too_many_arguments)] // the documented D-Bus signature decides the arity
    async fn check_access(
        &self,
        uid: u32,
        resource: String,
        service: String,
        tty: String,
        rhost: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(bool, u64, i64, u64), BusError> {
        let caller = self.callers.uid(conn, header.sender()).await?;
        self.gate
            .check_access(caller, uid, &resource, &service, &tty, &rhost)
    }

    /// pam_jit's session hook: the caller's process (from its bus
    /// credentials) is the session; it is moved into the grant's cgroup so
    /// that everything it starts can be ended with the grant, and the
    /// session ends when it exits.
    #[zbus(out_args("session", "grant", "expires_at"))]
    #[allow(clippy::too_many_arguments)] // the documented D-Bus signature decides the arity
    async fn register_session(
        &self,
        uid: u32,
        resource: String,
        service: String,
        tty: String,
        rhost: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(u64, u64, i64), BusError> {
        let (caller, pid) = self.callers.uid_and_pid(conn, header.sender()).await?;
        let opening = SessionOpening {
            uid,
            resource,
            service,
            tty,
            rhost,
        };
        self.gate.register(caller, pid, None, None, opening).await
    }

    #[zbus(out_args("events"))]
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
                break_glass: r.break_glass,
            })
            .collect();
        to_json(&views)
    }

    #[zbus(out_args("result"))]
    async fn verify_audit(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, BusError> {
        let who = self.caller(conn, &header).await?;
        to_json(&self.run(move |e| e.verify_audit(&who)).await?)
    }

    /// [`Self::verify_audit`], then the rows a SIEM received (`anchors`: a
    /// JSON array of {id, mac}) checked against the database.
    #[zbus(out_args("result"))]
    async fn verify_anchors(
        &self,
        anchors: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, BusError> {
        let who = self.caller(conn, &header).await?;
        // Whoever may not verify gets nothing parsed on their behalf.
        let asking = who.clone();
        self.run(move |e| e.require_sees_all(&asking)).await?;
        let anchors: Vec<AnchorView> = serde_json::from_str(&anchors)
            .map_err(|e| BusError::InvalidArgument(format!("the anchors are not valid: {e}")))?;
        if anchors.len() > MAX_ANCHORS {
            return Err(BusError::InvalidArgument(format!(
                "{} anchors; give at most {MAX_ANCHORS} (the newest)",
                anchors.len()
            )));
        }
        to_json(&self.run(move |e| e.verify_anchors(&who, &anchors)).await?)
    }

    /// Report `kind` (emergency, mtta, usage, unused, denied, standing)
    /// over the window from `since` (Unix seconds) to now, as JSON: for
    /// root, security and auditors.
    /// It runs on a read-only connection of its own, one report at a time,
    /// off the engine's lock.
    #[zbus(out_args("report"))]
    async fn report(
        &self,
        kind: String,
        since: i64,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, BusError> {
        let who = self.caller(conn, &header).await?;
        let kind = ReportKind::parse(&kind).ok_or_else(|| {
            let kinds: Vec<&str> = ReportKind::ALL.iter().map(|k| k.as_str()).collect();
            BusError::InvalidArgument(format!(
                "no report '{kind}'; the reports are {}",
                kinds.join(", ")
            ))
        })?;
        let basis = self.run(move |e| e.report_basis(&who, since)).await?;
        // Reports wait their turn here, not each on a blocking thread; the
        // report holds the turn until it is done, even if its caller goes.
        let turn = Arc::clone(&self.reporting).lock_owned().await;
        let report = tokio::task::spawn_blocking(move || {
            let _one_at_a_time = turn;
            let db = Reports::open(&basis.state_dir).map_err(EngineError::from)?;
            crate::engine::report(&db, &basis, kind)
        })
        .await
        .map_err(|e| BusError::Failed(e.to_string()))??;
        to_json(&report)
    }

    /// Each SIEM sink and how far behind it is, as JSON.
    #[zbus(out_args("sinks"))]
    async fn siem_status(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, BusError> {
        let who = self.caller(conn, &header).await?;
        to_json(&self.run(move |e| e.siem_status(&who)).await?)
    }

    /// A standing-privilege scan now (root, security, auditors): who can
    /// become root or another account without a grant, stored with the
    /// trend against the first scan (`ScanView`).
    #[zbus(out_args("scan"))]
    async fn scan(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, BusError> {
        let who = self.caller(conn, &header).await?;
        let view = self.scanner.scan(Some(who)).await.map_err(|e| match e {
            ScanError::Engine(e) => BusError::from(e),
            ScanError::Thread(e) => BusError::Failed(e),
        })?;
        to_json(&view)
    }

    /// The stored scans since `since` (Unix time), oldest first, with the
    /// first (`ScanHistoryView`).
    #[zbus(out_args("history"))]
    async fn scan_history(
        &self,
        since: i64,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, BusError> {
        let who = self.caller(conn, &header).await?;
        to_json(&self.run(move |e| e.scan_history(&who, since)).await?)
    }

    #[zbus(out_args("status"))]
    async fn status(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, BusError> {
        let who = self.caller(conn, &header).await?;
        let mut status = self.run(move |e| e.status(&who)).await?;
        // Reads sudoers and every PAM stack: off the bus's executor.
        let gate = self.gate.clone();
        status.warnings = tokio::task::spawn_blocking(move || gate.warnings())
            .await
            .map_err(|e| BusError::Failed(e.to_string()))?;
        to_json(&status)
    }

    /// jit-session, run as root through sudo, asks to record the session it
    /// runs in (see `bus/recording.rs`): the pipe for its events, and a JSON
    /// object {recording, grant, expires_at, record_input, on_failure}.
    #[zbus(out_args("pipe", "recording"))]
    #[allow(clippy::too_many_arguments)] // the documented D-Bus signature decides the arity
    async fn open_recording(
        &self,
        cols: u32,
        rows: u32,
        command: String,
        term: String,
        shell: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(zbus::OwnedFd, String), BusError> {
        let terminal = recording::Terminal {
            cols,
            rows,
            command,
            term,
        };
        self.open_recorder(conn, &header, recording::Recorder::Root { shell }, terminal)
            .await
    }

    /// jit-session as the login shell of a non-root account asks to record
    /// its session (see `bus/recording.rs`); the reply names the real shell too.
    #[zbus(out_args("pipe", "recording"))]
    #[allow(clippy::too_many_arguments)] // the documented D-Bus signature decides the arity
    async fn open_login_recording(
        &self,
        cols: u32,
        rows: u32,
        command: String,
        term: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(zbus::OwnedFd, String), BusError> {
        let terminal = recording::Terminal {
            cols,
            rows,
            command,
            term,
        };
        self.open_recorder(conn, &header, recording::Recorder::Login, terminal)
            .await
    }

    /// The recorder that opened `recording`, and only it, closes it once its
    /// events are in the pipe; jitd seals it with its own digest. `end`:
    /// exit, expired, revoked, write_failed, terminated.
    async fn close_recording(
        &self,
        recording: u64,
        end: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(), BusError> {
        let caller = self.callers.uid_and_pid(conn, header.sender()).await?;
        recording::close(
            &self.gate,
            self.effects.recorders(),
            caller,
            &sender_name(&header),
            recording,
            &end,
        )
        .await
    }

    /// Recordings the caller may see, as a JSON array. `filter` is a JSON
    /// object with optional `user`, `resource` and `since` (Unix time).
    #[zbus(out_args("recordings"))]
    async fn list_recordings(
        &self,
        filter: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, BusError> {
        let who = self.caller(conn, &header).await?;
        let filter: serde_json::Value =
            serde_json::from_str(if filter.is_empty() { "{}" } else { &filter }).map_err(|e| {
                BusError::InvalidArgument(format!("filter is not a JSON object: {e}"))
            })?;
        let since = filter["since"].as_i64().unwrap_or(0);
        let live = filter["live"] == true;
        let records = self
            .run(move |e| match live {
                true => e.live_recordings(&who),
                false => e.recordings(&who, since),
            })
            .await?;
        let views: Vec<RecordingView> = records
            .iter()
            .filter(|r| filter["user"].as_str().is_none_or(|u| u == r.user))
            .filter(|r| filter["resource"].as_str().is_none_or(|x| x == r.resource))
            .map(RecordingView::from)
            .collect();
        to_json(&views)
    }

    /// A read-only descriptor of a recording the caller may read (their own,
    /// or any for root and auditors), and its listing as JSON.
    #[zbus(out_args("file", "recording"))]
    async fn open_recording_file(
        &self,
        id: u64,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(zbus::OwnedFd, String), BusError> {
        let who = self.caller(conn, &header).await?;
        self.recording_file(move |e| e.recording(&who, id)).await
    }

    /// A read-only descriptor of a recording the caller may watch as it is
    /// made (`recording_to_watch`), and its listing as JSON (`ended_at`
    /// tells the watcher when to stop). Not from inside an elevated
    /// session: its output would land in that session's recording.
    #[zbus(out_args("file", "recording"))]
    async fn watch_recording(
        &self,
        id: u64,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(zbus::OwnedFd, String), BusError> {
        let who = self.caller_outside_sessions(conn, &header).await?;
        self.recording_file(move |e| e.recording_to_watch(&who, id))
            .await
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
    #[zbus(signal)]
    async fn vendor_changed(e: &SignalEmitter<'_>, id: u64) -> zbus::Result<()>;
}

/// Broadcasts engine events as signals. A failed send is logged, not fatal:
/// the state change is already committed and audited.
pub async fn emit(conn: &Connection, events: &[Event]) {
    let Ok(e) = SignalEmitter::new(conn, crate::api::OBJECT_PATH) else {
        return;
    };
    for event in events {
        tracing::info!(?event, "state change");
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
                ..
            } => Daemon::grant_ended(&e, *id, *uid, resource, reason.as_str()).await,
            Event::VendorChanged { id } => Daemon::vendor_changed(&e, *id).await,
        };
        if let Err(err) = sent {
            tracing::warn!(%err, ?event, "could not send signal");
        }
    }
}
