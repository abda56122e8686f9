//! The nouns of the workflow: requests, their states, routes and approvals.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

use super::risk::RiskAssessment;

pub type Uid = u32;
pub type RequestId = u64;
/// Seconds since the Unix epoch (wall clock).
pub type UnixTime = i64;

/// Account names as useradd/groupadd accept them (Debian's relaxed rules minus
/// the dangerous parts): no '/', ':', whitespace or control characters.
pub fn valid_account_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 256
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '$'))
}

/// `t` as RFC 3339 UTC, to the second (times before the epoch show as the
/// epoch, times after 9999 as its last second: humantime fails past it, and
/// `to_string` would panic on a start a caller gave).
pub fn rfc3339(t: UnixTime) -> String {
    const LAST: u64 = 253_402_300_799;
    let secs = u64::try_from(t).unwrap_or(0).min(LAST);
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_secs(secs)).to_string()
}

/// Longest accepted justification, in bytes.
pub const MAX_REASON_BYTES: usize = 2048;
/// Longest accepted ticket reference or comment, in bytes.
pub const MAX_TICKET_BYTES: usize = 128;
pub const MAX_COMMENT_BYTES: usize = 2048;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Waiting for approvals.
    Pending,
    /// Approved, waiting for its holder to prove a second factor before
    /// `activate_by` (a resource with `require_mfa`); not yet usable.
    Approved,
    /// Approved ahead of its start (`starts_at`, a maintenance window);
    /// not usable until then.
    Scheduled,
    /// Approved; the grant is usable until `expires_at`.
    Active,
    Denied,
    Expired,
    Revoked,
    /// Nobody decided before the pending TTL ran out.
    Lapsed,
    /// An approved extension, merged into the grant it extends.
    Applied,
}

impl State {
    pub const ALL: [State; 9] = [
        State::Pending,
        State::Approved,
        State::Scheduled,
        State::Active,
        State::Denied,
        State::Expired,
        State::Revoked,
        State::Lapsed,
        State::Applied,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Approved => "approved",
            State::Scheduled => "scheduled",
            State::Active => "active",
            State::Denied => "denied",
            State::Expired => "expired",
            State::Revoked => "revoked",
            State::Lapsed => "lapsed",
            State::Applied => "applied",
        }
    }

    pub fn parse(text: &str) -> Option<State> {
        State::ALL.into_iter().find(|s| s.as_str() == text)
    }

    pub fn is_final(self) -> bool {
        !matches!(
            self,
            State::Pending | State::Approved | State::Scheduled | State::Active
        )
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a request gets decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Route {
    Auto,
    Owner,
    Dual,
    /// An emergency grant: active at once, reviewed afterwards (W2).
    BreakGlass,
    /// A vendor account's grant, made when the sponsor's manager and
    /// security approved the vendor (W4).
    Vendor,
    /// Approved at once by a pre-authorized rule (W1.10), named in the
    /// request's `policy`.
    Policy,
}

impl Route {
    /// Every route, in the order reports list them.
    pub const ALL: [Route; 6] = [
        Route::Auto,
        Route::Policy,
        Route::Owner,
        Route::Dual,
        Route::BreakGlass,
        Route::Vendor,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Route::Auto => "auto",
            Route::Owner => "owner",
            Route::Dual => "dual",
            Route::BreakGlass => "break_glass",
            Route::Vendor => "vendor",
            Route::Policy => "policy",
        }
    }

    pub fn parse(text: &str) -> Option<Route> {
        Route::ALL.into_iter().find(|r| r.as_str() == text)
    }

    /// The roles whose approval (one each, by distinct people) completes the request.
    pub fn required_roles(self) -> &'static [Role] {
        match self {
            Route::Auto | Route::BreakGlass | Route::Vendor | Route::Policy => &[],
            Route::Owner => &[Role::Owner],
            Route::Dual => &[Role::Manager, Role::Security],
        }
    }

    /// The roles that have a say on the request, before or after the fact.
    pub fn deciding_roles(self) -> &'static [Role] {
        match self {
            Route::BreakGlass => &super::break_glass::REVIEWERS,
            other => other.required_roles(),
        }
    }
}

/// The capacity in which someone decided on a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Owner,
    Manager,
    Security,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Manager => "manager",
            Role::Security => "security",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        [Role::Owner, Role::Manager, Role::Security]
            .into_iter()
            .find(|r| r.as_str() == text)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sensitivity {
    Low,
    Medium,
    High,
    Critical,
}

impl Sensitivity {
    pub const ALL: [Sensitivity; 4] = [
        Sensitivity::Low,
        Sensitivity::Medium,
        Sensitivity::High,
        Sensitivity::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Sensitivity::Low => "low",
            Sensitivity::Medium => "medium",
            Sensitivity::High => "high",
            Sensitivity::Critical => "critical",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Approve,
    Deny,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Approve => "approve",
            Verdict::Deny => "deny",
        }
    }
}

/// One person's decision on a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub uid: Uid,
    pub name: String,
    pub role: Role,
    pub verdict: Verdict,
    pub comment: String,
    pub at: UnixTime,
}

/// A new grant, or an extension of an existing one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Grant,
    Extension { of: RequestId },
}

/// When a scheduled grant may be used: from its start for its duration,
/// however late it was approved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub start: UnixTime,
    pub end: UnixTime,
}

/// A request and, once approved, the grant it became.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    pub id: RequestId,
    pub kind: Kind,
    pub uid: Uid,
    pub user: String,
    pub resource: String,
    pub duration: Duration,
    pub reason: String,
    pub ticket: Option<String>,
    pub requested_at: UnixTime,
    /// A scheduled request's start (`--start`): its window is from then for
    /// `duration`.
    pub starts_at: Option<UnixTime>,
    pub route: Route,
    /// The `[[policy]]` rule that approved it (route `policy`) or lowered
    /// its route (dual to owner).
    pub policy: Option<String>,
    /// The latest check of its ticket (W1.11), where the resource requires
    /// one and a validator is configured.
    pub ticket_check: Option<super::tickets::TicketCheck>,
    pub risk: RiskAssessment,
    pub state: State,
    pub decisions: Vec<Decision>,
    pub expires_at: Option<UnixTime>,
    /// An approved grant awaiting its holder's second factor lapses then.
    pub activate_by: Option<UnixTime>,
    /// When the request reached a final state, and who or what put it there.
    pub ended_at: Option<UnixTime>,
    pub ended_by: Option<String>,
    /// A break-glass grant's justification and reviews.
    pub follow_up: Option<super::break_glass::Case>,
}

/// The window of a request starting at `starts_at` for `duration`.
pub fn window(starts_at: Option<UnixTime>, duration: Duration) -> Option<Window> {
    let length = i64::try_from(duration.as_secs()).unwrap_or(i64::MAX);
    starts_at.map(|start| Window {
        start,
        end: start.saturating_add(length),
    })
}

/// The fields of a request that decide its deadline and index entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHead {
    pub id: RequestId,
    pub kind: Kind,
    pub uid: Uid,
    pub resource: String,
    pub state: State,
    pub requested_at: UnixTime,
    pub expires_at: Option<UnixTime>,
    pub activate_by: Option<UnixTime>,
    pub window: Option<Window>,
}

impl Request {
    pub fn head(&self) -> RequestHead {
        RequestHead {
            id: self.id,
            kind: self.kind,
            uid: self.uid,
            resource: self.resource.clone(),
            state: self.state,
            requested_at: self.requested_at,
            expires_at: self.expires_at,
            activate_by: self.activate_by,
            window: self.window(),
        }
    }

    /// A scheduled request's window.
    pub fn window(&self) -> Option<Window> {
        window(self.starts_at, self.duration)
    }

    pub fn approvals(&self) -> impl Iterator<Item = &Decision> {
        self.decisions
            .iter()
            .filter(|d| d.verdict == Verdict::Approve)
    }

    /// Roles still needed before the request is approved.
    pub fn awaiting(&self) -> Vec<Role> {
        if self.state != State::Pending {
            return Vec::new();
        }
        self.route
            .required_roles()
            .iter()
            .copied()
            .filter(|role| !self.approvals().any(|a| a.role == *role))
            .collect()
    }
}
