//! Sponsored vendor access (W4, docs/design.md "Vendor accounts"): what a
//! sponsor may ask for, who approves it (the sponsor's manager and
//! security, two distinct people, neither the sponsor), and what the
//! host should hold for it at any moment.

use std::time::Duration;

use thiserror::Error;

use super::model::{Decision, Role, State, Uid, UnixTime, Verdict};
use super::workflow::{self, WorkflowError};

pub type VendorId = u64;

/// Longest organization, project or e-mail text, in bytes.
pub const MAX_FIELD_BYTES: usize = 128;
/// useradd's longest account name.
const MAX_ACCOUNT_NAME: usize = 32;

#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum VendorError {
    #[error("vendor accounts are not configured on this host ([vendors])")]
    NotConfigured,
    #[error("you may not sponsor vendors (see [vendors] sponsors)")]
    NotSponsor,
    #[error(
        "'{0}' is not a vendor name: use a-z, 0-9, '-' or '_', starting with a letter, \
         at most {1} characters here"
    )]
    BadName(String, usize),
    #[error("'{0}' is not an e-mail address")]
    BadEmail(String),
    #[error("the {0} is empty or longer than {MAX_FIELD_BYTES} bytes")]
    BadField(&'static str),
    #[error("name at least one resource (--resources)")]
    NoResources,
    #[error("'{0}' cannot be granted to vendors (its [[resource]] has no vendors = true)")]
    NotForVendors(String),
    #[error("unknown network segment '{0}'")]
    UnknownSegment(String),
    #[error(
        "the vendor's duration {requested} exceeds the {cap} maximum ([vendors] max_duration)"
    )]
    OverCap { requested: String, cap: String },
    #[error("the SSH public key cannot be used: {0}")]
    BadKey(String),
    #[error("the account '{0}' exists already; choose another --name")]
    NameTaken(String),
    #[error(
        "your manager is not known ([managers] has no entry for you), and this host refuses \
         vendor requests without one"
    )]
    NoManager,
    #[error("vendor request {0} not found")]
    NotFound(VendorId),
    #[error("vendor request {id} is {state}, not pending")]
    NotPending { id: VendorId, state: State },
    #[error("vendor access {id} is {state}, not active")]
    NotActive { id: VendorId, state: State },
    #[error("you cannot approve or deny a vendor you sponsor")]
    SelfApproval,
    #[error("you have already decided on vendor request {0}")]
    AlreadyDecided(VendorId),
    #[error("you are not an approver of vendor request {0}: {1}")]
    NotApprover(VendorId, String),
    #[error("no uid is left in [vendors] uid_min..uid_max")]
    UidsExhausted,
    #[error(transparent)]
    Workflow(#[from] WorkflowError),
}

/// What a sponsor asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VendorAsk {
    pub organization: String,
    /// The vendor's login without the prefix (`jdoe`).
    pub name: String,
    pub email: String,
    pub resources: Vec<String>,
    pub segments: Vec<String>,
    pub duration: Duration,
    pub project: String,
    pub reason: String,
    /// One OpenSSH public key (`ssh-ed25519 AAAA... comment`), if given.
    pub key: Option<String>,
}

/// Where the vendor's account is on the host, as jitd last made it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Host {
    /// Nothing made yet.
    None,
    /// The account, its key and its rules exist.
    Created,
    /// Locked and expired, key and rules gone; kept for the retention.
    Locked,
    /// Deleted, its home archived.
    Deleted,
}

impl Host {
    pub fn as_str(self) -> &'static str {
        match self {
            Host::None => "none",
            Host::Created => "created",
            Host::Locked => "locked",
            Host::Deleted => "deleted",
        }
    }

    pub fn parse(text: &str) -> Option<Host> {
        [Host::None, Host::Created, Host::Locked, Host::Deleted]
            .into_iter()
            .find(|h| h.as_str() == text)
    }
}

/// A vendor request and, once approved, the vendor's access.
#[derive(Clone, Debug, PartialEq)]
pub struct Vendor {
    pub id: VendorId,
    pub ask: VendorAsk,
    /// The local account: the prefix and the name.
    pub account: String,
    /// Given at approval, from the vendors' range, never used again.
    pub uid: Option<Uid>,
    pub sponsor_uid: Uid,
    pub sponsor: String,
    /// The sponsor's manager by `[managers]`; `None`: not known, so
    /// anyone with the manager role approves in their place.
    pub manager: Option<String>,
    pub requested_at: UnixTime,
    pub state: State,
    pub decisions: Vec<Decision>,
    pub expires_at: Option<UnixTime>,
    pub ended_at: Option<UnixTime>,
    pub ended_by: Option<String>,
    pub host: Host,
}

/// The person deciding, as the bus and the configuration establish them.
pub struct Approver<'a> {
    pub uid: Uid,
    pub name: &'a str,
    /// Holds the manager role (for a sponsor without a known manager).
    pub manager_role: bool,
    pub security: bool,
}

/// Checks a request against the configuration's facts: the prefix, which
/// resources vendors may have, which segments exist and the longest
/// duration. The key is parsed; what the host gets is [`key_line`]'s.
pub fn validate(
    ask: &VendorAsk,
    prefix: &str,
    vendor_resources: &[&str],
    segments: &[&str],
    max_duration: Duration,
) -> Result<(), VendorError> {
    let room = MAX_ACCOUNT_NAME.saturating_sub(prefix.len());
    let name_ok = (1..=room).contains(&ask.name.len())
        && ask.name.starts_with(|c: char| c.is_ascii_lowercase())
        && ask
            .name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_'));
    if !name_ok {
        return Err(VendorError::BadName(ask.name.clone(), room));
    }
    for (what, text) in [
        ("organization", &ask.organization),
        ("project", &ask.project),
    ] {
        if text.trim().is_empty() || text.len() > MAX_FIELD_BYTES {
            return Err(VendorError::BadField(what));
        }
    }
    if ask.email.len() > MAX_FIELD_BYTES || ask.email.parse::<lettre::Address>().is_err() {
        return Err(VendorError::BadEmail(ask.email.clone()));
    }
    workflow::validate_reason(&ask.reason)?;
    if ask.duration < Duration::from_secs(1) {
        return Err(WorkflowError::ZeroDuration.into());
    }
    if ask.duration > max_duration {
        return Err(VendorError::OverCap {
            requested: humantime::format_duration(ask.duration).to_string(),
            cap: humantime::format_duration(max_duration).to_string(),
        });
    }
    if ask.resources.is_empty() {
        return Err(VendorError::NoResources);
    }
    if let Some(r) = ask
        .resources
        .iter()
        .find(|r| !vendor_resources.contains(&r.as_str()))
    {
        return Err(VendorError::NotForVendors(r.clone()));
    }
    if let Some(s) = ask
        .segments
        .iter()
        .find(|s| !segments.contains(&s.as_str()))
    {
        return Err(VendorError::UnknownSegment(s.clone()));
    }
    if let Some(key) = &ask.key {
        key_line(key)?;
    }
    Ok(())
}

/// The `authorized_keys` line for `key`: `restrict` (no forwarding, no
/// pty allocation beyond the login's, no `~/.ssh/rc`) and the key alone,
/// its comment and any options of the sponsor's file dropped.
pub fn key_line(key: &str) -> Result<String, VendorError> {
    let key = key.trim();
    if key.lines().count() != 1 {
        return Err(VendorError::BadKey(
            "give exactly one key, on one line".into(),
        ));
    }
    let parsed =
        ssh_key::PublicKey::from_openssh(key).map_err(|e| VendorError::BadKey(e.to_string()))?;
    let bare = parsed
        .to_openssh()
        .map_err(|e| VendorError::BadKey(e.to_string()))?;
    // to_openssh writes the comment back; the host gets the key alone.
    let mut fields = bare.split_whitespace();
    let (Some(algorithm), Some(data)) = (fields.next(), fields.next()) else {
        return Err(VendorError::BadKey("no key data".into()));
    };
    Ok(format!("restrict {algorithm} {data}"))
}

/// The SHA-256 fingerprint of the vendor's key, as `ssh-keygen -l`
/// prints it: what the audit trail and the API show of the key.
pub fn fingerprint(vendor: &Vendor) -> Option<String> {
    let key = ssh_key::PublicKey::from_openssh(vendor.ask.key.as_deref()?).ok()?;
    Some(key.fingerprint(Default::default()).to_string())
}

/// The role in which `who` decides on `vendor`, or why they may not: the
/// sponsor's manager (the named one; anyone with the role when none is
/// known) and security, one role each, by two distinct people, neither
/// the sponsor.
pub fn approver_role(vendor: &Vendor, who: &Approver<'_>) -> Result<Role, VendorError> {
    if vendor.state != State::Pending {
        return Err(VendorError::NotPending {
            id: vendor.id,
            state: vendor.state,
        });
    }
    if who.uid == vendor.sponsor_uid {
        return Err(VendorError::SelfApproval);
    }
    if vendor.decisions.iter().any(|d| d.uid == who.uid) {
        return Err(VendorError::AlreadyDecided(vendor.id));
    }
    let is_manager = match &vendor.manager {
        Some(manager) => manager == who.name,
        None => who.manager_role,
    };
    let awaiting = awaiting(vendor);
    let may = [(Role::Manager, is_manager), (Role::Security, who.security)];
    if let Some((role, _)) = may
        .iter()
        .find(|(role, holds)| *holds && awaiting.contains(role))
    {
        return Ok(*role);
    }
    let why = if may.iter().any(|(_, holds)| *holds) {
        "that role has approved already; it needs another role".to_owned()
    } else {
        match &vendor.manager {
            Some(m) => format!("it needs {m} (the sponsor's manager) and security"),
            None => "it needs a manager and security".to_owned(),
        }
    };
    Err(VendorError::NotApprover(vendor.id, why))
}

/// Roles still needed before the vendor is approved.
pub fn awaiting(vendor: &Vendor) -> Vec<Role> {
    if vendor.state != State::Pending {
        return Vec::new();
    }
    [Role::Manager, Role::Security]
        .into_iter()
        .filter(|role| {
            !vendor
                .decisions
                .iter()
                .any(|d| d.verdict == Verdict::Approve && d.role == *role)
        })
        .collect()
}

/// The first uid of `range` above every uid given before (`highest`) that
/// `taken` does not know: uids are never reused, even after deletion.
pub fn next_uid(
    range: &std::ops::RangeInclusive<Uid>,
    highest: Option<Uid>,
    taken: impl Fn(Uid) -> bool,
) -> Result<Uid, VendorError> {
    let from = highest.map_or(*range.start(), |h| h.saturating_add(1).max(*range.start()));
    (from..=*range.end())
        .find(|uid| !taken(*uid))
        .ok_or(VendorError::UidsExhausted)
}

/// The day `chage -E` takes: the day after the access ends, in days since
/// the epoch (it counts whole days): a backstop while jitd is down.
pub fn expire_day(expires_at: UnixTime) -> i64 {
    expires_at.div_euclid(86_400) + 1
}

/// What the host should hold for `vendor` at `now`, given `retention`.
pub fn host_target(vendor: &Vendor, now: UnixTime, retention: Duration) -> Host {
    if vendor.uid.is_none() {
        // Never approved: nothing was made, nothing to undo.
        return vendor.host;
    }
    match vendor.state {
        State::Active => Host::Created,
        State::Expired | State::Revoked => {
            let ended = vendor.ended_at.unwrap_or(now);
            if now >= ended + workflow::secs(retention) {
                Host::Deleted
            } else {
                Host::Locked
            }
        }
        _ => vendor.host,
    }
}

#[cfg(test)]
mod tests;
