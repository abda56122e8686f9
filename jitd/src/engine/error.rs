//! What the engine refuses, and why; `bus/errors.rs` names each kind of
//! refusal on the bus.

use thiserror::Error;

use crate::core::break_glass::BreakGlassError;
use crate::core::model::{RequestId, Uid};
use crate::core::workflow::WorkflowError;
use crate::directory::DirectoryError;
use crate::store::StoreError;

#[derive(Debug, Error)]
pub enum EngineError {
    #[error(transparent)]
    Workflow(#[from] WorkflowError),
    #[error(transparent)]
    BreakGlass(#[from] BreakGlassError),
    #[error(transparent)]
    Vendor(#[from] crate::core::vendor::VendorError),
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
    #[error("the standing-privilege scan needs the security or auditor role")]
    NotScanner,
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
    #[error(
        "recording {0} belongs to another user; it may be watched by root, auditors, security \
         and those who approved its grant"
    )]
    NotWatcher(u64),
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
    #[error(
        "account '{account}' is checked out by {holder} (grant {grant}) until {until}: \
         one holder at a time; ask again once it is checked in"
    )]
    CheckedOut {
        account: String,
        holder: String,
        grant: RequestId,
        until: String,
    },
    #[error(
        "account '{0}' is being checked in (its password replaced and locked); \
         ask again in a moment"
    )]
    CheckingIn(String),
    #[error("resource '{0}' checks out no managed account")]
    NoAccount(String),
    #[error("account '{0}' does not reveal its password (reveal = false)")]
    NoReveal(String),
    #[error(
        "a password is never shown inside an elevated session (it would be recorded); \
         run 'jitctl reveal' from a plain shell"
    )]
    RevealInSession,
    #[error("the password of '{0}' is being set; try again in a moment")]
    PasswordNotReady(String),
    #[error("{0}")]
    Io(String),
    #[error("only security may do this")]
    NotSecurity,
    #[error("no account named '{0}'")]
    NoUser(String),
    #[error(
        "you have a second factor already; if you lost it, ask security to reset it \
         (jitctl mfa reset USER)"
    )]
    MfaEnrolled,
    #[error("'{0}' requires a code from your second factor")]
    MfaRequired(String),
    #[error("{0} has no second factor; enroll with 'jitctl mfa enroll'")]
    MfaNotEnrolled(String),
    #[error("wrong code; {left} more before a lockout")]
    MfaWrongCode { left: u32 },
    #[error("too many wrong codes: locked out until {0}")]
    MfaLockedOut(String),
    #[error("the enrollment was not confirmed in time; run 'jitctl mfa enroll' again")]
    MfaExpired,
    #[error(
        "an enrollment is pending until {0}: confirm it with the code of the app you scanned \
         ('jitctl mfa confirm'), or enroll again after that"
    )]
    MfaPending(String),
    #[error(
        "this uid's second factor was enrolled by '{0}', an account since gone; ask security \
         to reset it (jitctl mfa reset USER)"
    )]
    MfaOfAnother(String),
    #[error(
        "the code is older than the last one accepted: this host's clock is behind; \
         tell the administrator (the code was not counted as wrong)"
    )]
    MfaClockBehind,
    #[error(
        "[vendors] is gone from the config, or its uids leave out vendor accounts jitd made \
         that are not deleted yet ({0}): keep [vendors] and their uids until they are, or revoke \
         them and wait for their retention"
    )]
    VendorsUnconfigured(String),
    #[error(
        "root's recovery password is not on this host: taken already, or root is not in \
         custody (root_custody)"
    )]
    NoRecoveryFile,
    #[error("'{0}' requires a ticket: give one with --ticket REF")]
    TicketRequired(String),
    #[error("{}", ticket_refusal(ticket, *verdict, message))]
    TicketRefused {
        ticket: String,
        verdict: crate::core::tickets::Verdict,
        message: String,
    },
    #[error("recording {id}: cannot read {path}: {reason}")]
    RecordingUnreadable {
        id: u64,
        path: String,
        reason: String,
    },
}

/// Why a ticket stopped a request or an approval, in the validator's words.
fn ticket_refusal(ticket: &str, verdict: crate::core::tickets::Verdict, message: &str) -> String {
    use crate::core::tickets::Verdict;
    let ticket = crate::core::sanitize::for_terminal(ticket);
    let said = if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    };
    match verdict {
        Verdict::Invalid => format!("ticket {ticket} is not valid{said}"),
        _ => format!(
            "ticket {ticket} could not be checked{said}; try again later, or ask an \
             administrator (jitd's [tickets] when_down decides whether approvers may take it)"
        ),
    }
}
