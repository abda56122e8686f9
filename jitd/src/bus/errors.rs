//! Named D-Bus errors (`org.jit.Daemon1.Error.*`).

use crate::core::break_glass::BreakGlassError;
use crate::core::workflow::WorkflowError;
use crate::engine::EngineError;

#[derive(Debug, zbus::DBusError)]
#[zbus(prefix = "org.jit.Daemon1.Error")]
pub enum BusError {
    #[zbus(error)]
    ZBus(zbus::Error),
    InvalidArgument(String),
    NotAuthorized(String),
    NotFound(String),
    Conflict(String),
    /// The resource requires a code from the caller's second factor: call
    /// the method's `WithCode` form (or `Activate`) with one.
    MfaRequired(String),
    /// The caller made more calls than `[limits]` allows; try again later.
    LimitExceeded(String),
    Failed(String),
}

impl From<EngineError> for BusError {
    fn from(e: EngineError) -> Self {
        use WorkflowError as W;
        let text = e.to_string();
        match &e {
            EngineError::Workflow(w) => match w {
                W::UnknownResource(_) | W::NotFound(_) => BusError::NotFound(text),
                W::NotEligible(_)
                | W::SelfApproval
                | W::NotApprover(_)
                | W::NotYours(_)
                | W::VendorGrant(_) => BusError::NotAuthorized(text),
                W::OverCap { .. }
                | W::ZeroDuration
                | W::EmptyReason
                | W::ReasonTooLong
                | W::TicketTooLong
                | W::CommentTooLong
                | W::EmptyComment
                | W::StartPassed(_)
                | W::StartTooFar { .. } => BusError::InvalidArgument(text),
                W::AlreadyDecided(_)
                | W::RoleFilled { .. }
                | W::NotPending { .. }
                | W::NotActive { .. }
                | W::NotAwaitingActivation { .. }
                | W::ActivationLapsed(_)
                | W::ExtensionPending { .. }
                | W::WindowOver(_) => BusError::Conflict(text),
            },
            EngineError::BreakGlass(b) => {
                use BreakGlassError as B;
                match b {
                    B::NotAllowed(_)
                    | B::RateLimited { .. }
                    | B::NotHolder(_)
                    | B::SelfReview
                    | B::NotReviewer(_) => BusError::NotAuthorized(text),
                    B::NoIncident(_) => BusError::NotFound(text),
                    B::AlreadyJustified(_) | B::RoleReviewed { .. } | B::AlreadyReviewed(_) => {
                        BusError::Conflict(text)
                    }
                    B::NotBreakGlass(_) | B::BadVerdict => BusError::InvalidArgument(text),
                    B::Invalid(w) => BusError::from(EngineError::Workflow(w.clone())),
                }
            }
            EngineError::Vendor(v) => {
                use crate::core::vendor::VendorError as V;
                match v {
                    V::NotConfigured | V::NotFound(_) => BusError::NotFound(text),
                    V::NotSponsor | V::SelfApproval | V::NotApprover(..) => {
                        BusError::NotAuthorized(text)
                    }
                    V::BadName(..)
                    | V::BadEmail(_)
                    | V::BadField(_)
                    | V::NoResources
                    | V::NotForVendors(_)
                    | V::UnknownSegment(_)
                    | V::OverCap { .. }
                    | V::BadKey(_) => BusError::InvalidArgument(text),
                    V::NameTaken(_)
                    | V::NoManager
                    | V::NotPending { .. }
                    | V::NotActive { .. }
                    | V::AlreadyDecided(_)
                    | V::UidsExhausted => BusError::Conflict(text),
                    V::Workflow(w) => BusError::from(EngineError::Workflow(w.clone())),
                }
            }
            EngineError::TicketRequired(_) => BusError::InvalidArgument(text),
            EngineError::TicketRefused { .. } => BusError::NotAuthorized(text),
            EngineError::AlreadyActive { .. }
            | EngineError::TooManyPending { .. }
            | EngineError::CheckedOut { .. }
            | EngineError::CheckingIn(_)
            | EngineError::PasswordNotReady(_) => BusError::Conflict(text),
            EngineError::NoAccount(_)
            | EngineError::NoRecoveryFile
            | EngineError::NoUser(_)
            | EngineError::MfaNotEnrolled(_) => BusError::NotFound(text),
            EngineError::MfaEnrolled
            | EngineError::MfaExpired
            | EngineError::MfaPending(_)
            | EngineError::MfaOfAnother(_)
            | EngineError::MfaClockBehind => BusError::Conflict(text),
            EngineError::MfaRequired(_) => BusError::MfaRequired(text),
            EngineError::MfaWrongCode { .. } | EngineError::MfaLockedOut(_) => {
                BusError::NotAuthorized(text)
            }
            EngineError::NoReveal(_) | EngineError::RevealInSession | EngineError::NotSecurity => {
                BusError::NotAuthorized(text)
            }
            EngineError::BadFilter(_) => BusError::InvalidArgument(text),
            EngineError::CheckOthers
            | EngineError::NotAuditor
            | EngineError::NotScanner
            | EngineError::NotRoot
            | EngineError::NotInSession
            | EngineError::NoGrant { .. } => BusError::NotAuthorized(text),
            EngineError::NoRecording(_) => BusError::NotFound(text),
            EngineError::RecordingClosed(_)
            | EngineError::SessionRecorded { .. }
            | EngineError::TooManyRecordings { .. } => BusError::Conflict(text),
            EngineError::NotRecorder(_) => BusError::NotAuthorized(text),
            EngineError::NotYourRecording(_) | EngineError::NotWatcher(_) => {
                BusError::NotAuthorized(text)
            }
            EngineError::BadRecordingEnd => BusError::InvalidArgument(text),
            // The reader needs to know: a recording gone is evidence gone.
            EngineError::RecordingUnreadable { .. } => {
                tracing::warn!(error = %e, "a recording cannot be read");
                BusError::Failed(text)
            }
            EngineError::TooLong(_) => BusError::InvalidArgument(text),
            EngineError::Directory(_) => BusError::NotAuthorized(text),
            EngineError::Store(_) | EngineError::Io(_) | EngineError::VendorsUnconfigured(_) => {
                tracing::error!(error = %e, "request failed");
                BusError::Failed("internal error; see jitd's log".into())
            }
        }
    }
}
