//! jitctl: the command-line client of jitd.

pub mod args;
pub(crate) mod client;
pub mod commands;
mod mfa;
pub(crate) mod play;
pub(crate) mod recordings;
pub(crate) mod render;
mod report_html;
pub(crate) mod reports;
mod scan;
mod siem;
mod start;
mod step_up;
mod vendors;

/// jitctl's exit statuses (docs/design.md, "jitctl (contract)").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Ok = 0,
    Failed = 1,
    Usage = 2,
    Denied = 3,
    NotFound = 4,
    Unreachable = 5,
    Conflict = 6,
    /// `recordings verify`: the file matches a digest jitd did not compute
    /// from the session's bytes (see [`crate::api::RecordingView::vouched`]).
    Unverified = 7,
}

/// One line for the user and the status to exit with.
#[derive(Debug)]
pub struct CliError {
    pub exit: Exit,
    pub message: String,
}

impl CliError {
    pub fn new(exit: Exit, message: impl Into<String>) -> CliError {
        CliError {
            exit,
            message: message.into(),
        }
    }
}
