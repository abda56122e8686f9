//! The public names and JSON documents of the D-Bus API, shared by jitd and jitctl.
//! `packaging/dbus/org.jit.Daemon1.xml` documents them; a test checks it against the daemon.

use serde::{Deserialize, Serialize};

use crate::core::break_glass::Case;
use crate::core::model::{Kind, Request, RequestId, Role, Route, Uid, UnixTime};
use crate::core::risk::RiskAssessment;
use crate::core::vendor::{Vendor, VendorAsk, VendorId};
use crate::store::Incident;

/// The system bus's fixed address, for programs whose environment is not
/// theirs to trust (`DBUS_SYSTEM_BUS_ADDRESS` is ignored).
pub const SYSTEM_BUS: &str = "unix:path=/run/dbus/system_bus_socket";
pub const BUS_NAME: &str = "org.jit.Daemon1";
pub const OBJECT_PATH: &str = "/org/jit/Daemon1";
pub const INTERFACE: &str = "org.jit.Daemon1";
pub const ERROR_PREFIX: &str = "org.jit.Daemon1.Error";
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub use crate::core::model::rfc3339;
/// The reports' documents (`Report`, `jitctl report --json`).
pub use crate::core::reports::{
    Bucket, DeniedAttempts, DeniedOverflow, DeniedReport, EmergencyGrant, EmergencyReport,
    EmergencyReview, FlaggedUser, MttaReport, ReportKind, ResourceUsage, RouteTimes, ScanPoint,
    StandingReport, UnusedReport, UnusedResource, UnusedUser, UsageReport,
};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ApprovalView {
    pub who: String,
    pub uid: Uid,
    pub role: String,
    pub verdict: String,
    pub comment: String,
    pub when: String,
}

impl ApprovalView {
    /// A decision on a request, or a review of a break-glass grant.
    fn new(who: &str, uid: Uid, role: Role, verdict: &str, comment: &str, at: UnixTime) -> Self {
        ApprovalView {
            who: who.into(),
            uid,
            role: role.as_str().into(),
            verdict: verdict.into(),
            comment: comment.into(),
            when: rfc3339(at),
        }
    }
}

/// A request as the API shows it (`request --json`, `show --json`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RequestView {
    pub id: RequestId,
    pub kind: String,
    pub extends: Option<RequestId>,
    pub user: String,
    pub uid: Uid,
    pub resource: String,
    pub state: String,
    pub reason: String,
    pub ticket: Option<String>,
    /// The latest check of the ticket by the `[tickets]` validator (W1.11).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket_check: Option<crate::core::tickets::TicketCheck>,
    pub duration_secs: u64,
    pub requested_at: String,
    /// A scheduled request's start: usable from then (once approved) for
    /// `duration_secs`, however late it is approved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<String>,
    pub expires_at: Option<String>,
    /// A grant that needs its holder's second factor (state `approved`)
    /// lapses unless activated by then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activate_by: Option<String>,
    pub ended_at: Option<String>,
    pub ended_by: Option<String>,
    pub route: String,
    /// The `[[policy]]` rule that approved it (route `policy`) or lowered
    /// its route (dual to owner).
    #[serde(default)]
    pub policy: Option<String>,
    pub risk: RiskAssessment,
    pub approvals: Vec<ApprovalView>,
    pub awaiting: Vec<String>,
    /// An emergency grant, taken without approval (W2).
    pub break_glass: bool,
    /// A break-glass grant's justification and reviews (in `show`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follow_up: Option<CaseView>,
    /// Delivery state of the request's notifications (`show` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notifications: Option<Vec<NotificationView>>,
    /// What changed on the host during a privileged grant, once it ended
    /// and was compared (`show` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<crate::core::changes::Changes>,
    /// The managed account the grant's resource checks out (`show` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<AccountView>,
}

/// `ExplainPolicy` (`jitctl policy explain`): the route a request would
/// take now, which rule would decide it, and why the rules before it (or
/// every rule naming the resource) would not.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PolicyExplanationView {
    pub user: String,
    pub resource: String,
    pub duration_secs: u64,
    pub ticket: Option<String>,
    pub at: String,
    pub risk: RiskAssessment,
    /// The score the rules' ceiling is compared with: off-hours left out.
    pub score_in_hours: u8,
    pub risk_ceiling: u8,
    /// The route risk alone gives.
    pub routed: String,
    /// The route the request would take.
    pub route: String,
    /// The rule that would decide it.
    pub policy: Option<String>,
    /// Why no rule is looked at (an extension, a vendor, risk routes it
    /// auto, the ceiling).
    pub skipped: Option<String>,
    /// The rules naming the resource, in order, up to the one that applies.
    pub rules: Vec<PolicyRuleView>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PolicyRuleView {
    pub name: String,
    /// `approve` or `lower`.
    pub action: String,
    pub applies: bool,
    /// The first condition it does not meet.
    pub unmet: Option<String>,
}

/// A user's second factor as `MfaStatus` shows it (never the seed).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct MfaView {
    pub user: String,
    /// `none`, `pending` (a seed shown, not yet confirmed) or `enrolled`.
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirm_by: Option<String>,
    pub failures: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locked_until: Option<String>,
}

/// A managed account as a grant of its resource sees it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AccountView {
    pub name: String,
    /// This grant holds it now: its password set, its logins the grant's.
    /// False before jitd's keeper has checked it out, and after check-in.
    pub checked_out: bool,
}

/// The follow-up of a break-glass grant.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct CaseView {
    pub status: String,
    pub justify_by: String,
    pub overdue: bool,
    pub justification: Option<String>,
    pub justified_at: Option<String>,
    pub reviews: Vec<ApprovalView>,
    pub awaiting_reviews: Vec<String>,
    pub incidents: Vec<u64>,
    pub closed_at: Option<String>,
}

impl From<&Case> for CaseView {
    fn from(c: &Case) -> Self {
        CaseView {
            status: c.status().as_str().into(),
            justify_by: rfc3339(c.due_at),
            overdue: c.overdue_at.is_some(),
            justification: c.justification.clone(),
            justified_at: c.justified_at.map(rfc3339),
            reviews: c
                .reviews
                .iter()
                .map(|r| {
                    ApprovalView::new(&r.name, r.uid, r.role, r.verdict.as_str(), &r.comment, r.at)
                })
                .collect(),
            awaiting_reviews: c
                .awaiting_reviews()
                .iter()
                .map(|r| r.as_str().into())
                .collect(),
            incidents: c.incidents.clone(),
            closed_at: c.closed_at.map(rfc3339),
        }
    }
}

/// A security incident (`jitctl incidents`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct IncidentView {
    pub id: u64,
    pub grant: RequestId,
    pub user: String,
    pub resource: String,
    pub opened_at: String,
    pub opened_by: String,
    pub comment: String,
}

impl From<&Incident> for IncidentView {
    fn from(i: &Incident) -> Self {
        IncidentView {
            id: i.id,
            grant: i.grant,
            user: i.user.clone(),
            resource: i.resource.clone(),
            opened_at: rfc3339(i.opened_at),
            opened_by: i.opened_by.clone(),
            comment: i.comment.clone(),
        }
    }
}

/// One notification and how its delivery went.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct NotificationView {
    pub id: u64,
    pub event: String,
    /// `email` or `hook`.
    pub channel: String,
    /// The email address or the webhook's name.
    pub to: String,
    pub subject: String,
    /// `pending` (being retried), `delivered` or `failed` (given up).
    pub state: String,
    pub attempts: u32,
    pub queued_at: String,
    pub delivered_at: Option<String>,
    pub last_error: Option<String>,
}

impl From<&crate::store::NotificationRecord> for NotificationView {
    fn from(n: &crate::store::NotificationRecord) -> Self {
        NotificationView {
            id: n.id,
            event: n.event.clone(),
            channel: n.channel.clone(),
            to: n.target.clone(),
            subject: n.subject.clone(),
            state: n.state.clone(),
            attempts: n.attempts,
            queued_at: rfc3339(n.created_at),
            delivered_at: n.delivered_at.map(rfc3339),
            last_error: n.last_error.clone(),
        }
    }
}

impl From<&Request> for RequestView {
    fn from(r: &Request) -> Self {
        let (kind, extends) = match r.kind {
            Kind::Grant => ("grant", None),
            Kind::Extension { of } => ("extension", Some(of)),
        };
        RequestView {
            id: r.id,
            kind: kind.into(),
            extends,
            user: r.user.clone(),
            uid: r.uid,
            resource: r.resource.clone(),
            state: r.state.as_str().into(),
            reason: r.reason.clone(),
            ticket: r.ticket.clone(),
            duration_secs: r.duration.as_secs(),
            requested_at: rfc3339(r.requested_at),
            starts_at: r.starts_at.map(rfc3339),
            expires_at: r.expires_at.map(rfc3339),
            activate_by: r.activate_by.map(rfc3339),
            ended_at: r.ended_at.map(rfc3339),
            ended_by: r.ended_by.clone(),
            route: r.route.as_str().into(),
            policy: r.policy.clone(),
            ticket_check: r.ticket_check.clone(),
            risk: r.risk.clone(),
            approvals: r
                .decisions
                .iter()
                .map(|d| {
                    ApprovalView::new(&d.name, d.uid, d.role, d.verdict.as_str(), &d.comment, d.at)
                })
                .collect(),
            awaiting: r.awaiting().iter().map(|r| r.as_str().into()).collect(),
            notifications: None,
            changes: None,
            account: None,
            break_glass: r.route == Route::BreakGlass,
            follow_up: r.follow_up.as_ref().map(CaseView::from),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AuditView {
    pub id: i64,
    pub at: String,
    pub actor: String,
    pub actor_uid: Option<Uid>,
    pub event: String,
    pub request: Option<RequestId>,
    pub detail: serde_json::Value,
    /// The event concerns an emergency (break-glass) grant.
    #[serde(default)]
    pub break_glass: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ResourceView {
    pub name: String,
    pub privileged: bool,
    pub sensitivity: String,
    pub environment: String,
    pub max_duration_secs: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct StatusView {
    pub version: String,
    pub started_at: String,
    pub you: String,
    pub roles: Vec<String>,
    pub pending: u64,
    /// Approved grants waiting for their start.
    #[serde(default)]
    pub scheduled: u64,
    pub active: u64,
    pub next_deadline_secs: Option<u64>,
    /// Resources the caller may request.
    pub resources: Vec<ResourceView>,
    /// What weakens the gate on this host (sudoers options, no cgroup v2).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// The on-call schedules, by name.
    #[serde(default)]
    pub oncall: Vec<OnCallView>,
}

/// One on-call schedule in `status`: who is on call now, or why nobody is.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct OnCallView {
    pub name: String,
    pub file: String,
    /// The file's shifts; `None`: the file is broken.
    pub shifts: Option<usize>,
    /// Who holds a shift now.
    pub on_call: Vec<String>,
    /// Why nobody is on call (missing, unsafe, malformed).
    pub problem: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct VerifyView {
    pub ok: bool,
    pub rows: u64,
    pub problem: Option<String>,
    /// With `--anchors`: how many of the SIEM's anchors were checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anchors: Option<u64>,
}

/// One row as a SIEM received it (an anchor, or an event with its MAC):
/// what `audit verify --anchors` checks the database against.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct AnchorView {
    pub id: u64,
    /// The row's MAC, hex.
    pub mac: String,
}

/// One SIEM sink (`siem status --json`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SinkView {
    pub name: String,
    pub transport: String,
    pub destination: String,
    /// The newest audit id the sink took.
    pub through: u64,
    /// Audit rows it has not taken yet.
    pub behind: u64,
    /// How long the oldest of those has waited, in seconds.
    pub lag_secs: Option<u64>,
    pub delivered_at: Option<String>,
    pub failing_since: Option<String>,
    pub last_error: Option<String>,
}

/// A session recording (`recordings list --json`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RecordingView {
    pub id: u64,
    pub grant: RequestId,
    pub user: String,
    pub uid: Uid,
    pub resource: String,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub path: String,
    /// As recorded in the audit trail when the recording closed.
    pub sha256: Option<String>,
    pub bytes: Option<u64>,
    pub end: Option<String>,
    /// What the digest vouches for: "session" (the bytes jitd received
    /// from the recorder), "file" (the file as jitd found it, its writer
    /// gone: unverified) or "recorder" (a root recorder's own report, before
    /// jitd took the bytes itself: unverified).
    #[serde(default)]
    pub digest_of: Option<String>,
    /// The registered session recorded.
    #[serde(default)]
    pub session: Option<u64>,
}

impl RecordingView {
    /// Whether the digest is jitd's own of the session's bytes.
    pub fn vouched(&self) -> bool {
        self.digest_of.as_deref() == Some("session")
    }
}

impl From<&crate::store::RecordingRecord> for RecordingView {
    fn from(r: &crate::store::RecordingRecord) -> Self {
        RecordingView {
            id: r.id,
            grant: r.grant,
            user: r.user.clone(),
            uid: r.uid,
            resource: r.resource.clone(),
            started_at: rfc3339(r.started_at),
            ended_at: r.ended_at.map(rfc3339),
            path: r.path.clone(),
            sha256: r.sha256.clone(),
            bytes: r.bytes,
            end: r.end.clone(),
            digest_of: r.digest_of.map(|d| d.as_str().to_owned()),
            session: r.session,
        }
    }
}

/// What a sponsor sends to `VendorRequest` (one JSON object).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct VendorAskView {
    pub organization: String,
    pub name: String,
    pub email: String,
    pub resources: Vec<String>,
    #[serde(default)]
    pub segments: Vec<String>,
    pub duration_secs: u64,
    pub project: String,
    pub reason: String,
    /// One OpenSSH public key line.
    #[serde(default)]
    pub key: Option<String>,
}

impl From<VendorAskView> for VendorAsk {
    fn from(v: VendorAskView) -> VendorAsk {
        VendorAsk {
            organization: v.organization,
            name: v.name,
            email: v.email,
            resources: v.resources,
            segments: v.segments,
            duration: std::time::Duration::from_secs(v.duration_secs),
            project: v.project,
            reason: v.reason,
            key: v.key,
        }
    }
}

/// A vendor's access as the API shows it (`jitctl vendor show --json`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct VendorView {
    pub id: VendorId,
    pub organization: String,
    pub name: String,
    pub email: String,
    /// The local account (prefix and name), and its uid once approved.
    pub account: String,
    pub uid: Option<Uid>,
    pub resources: Vec<String>,
    pub segments: Vec<String>,
    pub duration_secs: u64,
    pub project: String,
    pub reason: String,
    /// The SSH key's SHA-256 fingerprint (the key itself stays in jitd).
    pub key: Option<String>,
    pub sponsor: String,
    /// The sponsor's manager, who approves; `None`: not known, so the
    /// manager role approves in their place (`manager_known` false).
    pub manager: Option<String>,
    pub manager_known: bool,
    pub state: String,
    /// Where the account is: none, created, locked or deleted.
    pub host: String,
    pub requested_at: String,
    pub expires_at: Option<String>,
    pub ended_at: Option<String>,
    pub ended_by: Option<String>,
    pub approvals: Vec<ApprovalView>,
    pub awaiting: Vec<String>,
}

impl From<&Vendor> for VendorView {
    fn from(v: &Vendor) -> VendorView {
        VendorView {
            id: v.id,
            organization: v.ask.organization.clone(),
            name: v.ask.name.clone(),
            email: v.ask.email.clone(),
            account: v.account.clone(),
            uid: v.uid,
            resources: v.ask.resources.clone(),
            segments: v.ask.segments.clone(),
            duration_secs: v.ask.duration.as_secs(),
            project: v.ask.project.clone(),
            reason: v.ask.reason.clone(),
            key: crate::core::vendor::fingerprint(v),
            sponsor: v.sponsor.clone(),
            manager: v.manager.clone(),
            manager_known: v.manager.is_some(),
            state: v.state.as_str().into(),
            host: v.host.as_str().into(),
            requested_at: rfc3339(v.requested_at),
            expires_at: v.expires_at.map(rfc3339),
            ended_at: v.ended_at.map(rfc3339),
            ended_by: v.ended_by.clone(),
            approvals: v
                .decisions
                .iter()
                .map(|d| {
                    ApprovalView::new(&d.name, d.uid, d.role, d.verdict.as_str(), &d.comment, d.at)
                })
                .collect(),
            awaiting: crate::core::vendor::awaiting(v)
                .iter()
                .map(|r| r.as_str().into())
                .collect(),
        }
    }
}

/// One scan in the trend of standing privileges (`scan --history`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ScanPointView {
    pub id: i64,
    pub at: String,
    /// Who asked (`jitd` for the timer).
    pub actor: String,
    /// Standing privileges found.
    pub total: u64,
    /// By kind (`sudoers`, `admin_group`, `uid0`, `root_key`,
    /// `su_password`, `polkit_admin`, `polkit_rule`).
    pub counts: std::collections::BTreeMap<String, u64>,
    /// Sources it could not read (its total is then a lower bound).
    pub unread: u64,
}

/// A standing-privilege scan (`Scan`, `jitctl scan --json`): its findings
/// and the trend against the first scan.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ScanView {
    #[serde(flatten)]
    pub scan: ScanPointView,
    pub findings: Vec<crate::core::standing::Finding>,
    pub errors: Vec<String>,
    pub notes: Vec<String>,
    /// The first scan stored (this one, on a new host).
    pub first: ScanPointView,
    /// From the first scan's total to this one's, in percent; `None` when
    /// the first found nothing.
    pub change_percent: Option<f64>,
}

/// The trend (`ScanHistory`, `jitctl scan --history --json`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ScanHistoryView {
    pub first: Option<ScanPointView>,
    /// Oldest first.
    pub scans: Vec<ScanPointView>,
    /// From the first scan's total to the newest's, in percent.
    pub change_percent: Option<f64>,
}

pub use crate::core::reports::change_percent;
