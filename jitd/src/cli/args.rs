//! Command-line syntax.

use clap::{Args, Parser, Subcommand};
use std::time::Duration;

fn duration(text: &str) -> Result<Duration, String> {
    let d =
        humantime::parse_duration(text).map_err(|e| format!("{e}; use e.g. 30m, 2h or 1h30m"))?;
    if d < Duration::from_secs(1) {
        return Err("durations must be at least 1s".into());
    }
    Ok(d)
}

#[derive(Parser, Debug)]
#[command(
    name = "jitctl",
    version,
    about = "Request, approve and audit just-in-time privileged access"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone, Copy)]
pub struct Output {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Ask for time-bound access to a resource.
    Request {
        resource: String,
        /// How long the grant should last (e.g. 30m, 2h).
        #[arg(long = "for", value_name = "DUR", value_parser = duration)]
        duration: Duration,
        /// Business justification, shown to approvers.
        #[arg(long)]
        reason: String,
        /// Ticket reference (ITSM).
        #[arg(long, value_name = "REF")]
        ticket: Option<String>,
        /// Wait until the request is decided (at most DUR, default 24h).
        #[arg(long, value_name = "DUR", value_parser = duration, num_args = 0..=1, require_equals = true, default_missing_value = "24h")]
        wait: Option<Duration>,
        #[command(flatten)]
        out: Output,
    },
    /// List requests and grants you may see (default: pending and active).
    List {
        #[arg(long, group = "which")]
        pending: bool,
        #[arg(long, group = "which")]
        active: bool,
        #[arg(long, group = "which")]
        all: bool,
        #[command(flatten)]
        out: Output,
    },
    /// Show one request.
    Show {
        id: u64,
        #[command(flatten)]
        out: Output,
    },
    /// Approve a request you are an approver for.
    Approve {
        id: u64,
        #[arg(long, default_value = "")]
        comment: String,
        #[command(flatten)]
        out: Output,
    },
    /// Deny a request; the comment is sent to the requester.
    Deny {
        id: u64,
        #[arg(long)]
        comment: String,
        #[command(flatten)]
        out: Output,
    },
    /// Withdraw a pending request or end a grant early.
    Revoke {
        id: u64,
        #[arg(long, default_value = "")]
        comment: String,
        #[command(flatten)]
        out: Output,
    },
    /// Ask for more time on an active grant (routed like a new request).
    Extend {
        id: u64,
        #[arg(long = "for", value_name = "DUR", value_parser = duration)]
        duration: Duration,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        out: Output,
    },
    /// Show the audit trail, or verify its integrity.
    Audit {
        #[command(subcommand)]
        action: Option<AuditAction>,
        /// Only events newer than this (e.g. 1h, 7days).
        #[arg(long, value_name = "DUR", value_parser = duration)]
        since: Option<Duration>,
        #[command(flatten)]
        out: Output,
    },
    /// Show jitd's status and what you may request.
    Status {
        #[command(flatten)]
        out: Output,
    },
    /// Print a shell completion script.
    Completions { shell: clap_complete::Shell },
}

#[derive(Subcommand, Debug)]
pub enum AuditAction {
    /// Recompute the HMAC chain; exit 1 if any row was edited or deleted.
    Verify {
        #[command(flatten)]
        out: Output,
    },
}
