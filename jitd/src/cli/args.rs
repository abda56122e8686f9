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
pub enum MfaAction {
    /// Show a new seed (a QR code) for your authenticator app on your terminal, then read the
    /// code it shows from standard input to confirm it. Not from inside an elevated session.
    Enroll {
        /// Also print the otpauth:// URI (the seed in text), and allow output that is not a
        /// terminal: whatever captures it holds your second factor.
        #[arg(long)]
        show_uri: bool,
    },
    /// Confirm a pending enrollment: reads the code from standard input.
    Confirm,
    /// Your second factor's state, or USER's (root, security and auditors).
    Status {
        user: Option<String>,
        #[command(flatten)]
        out: Output,
    },
    /// Security: remove USER's second factor (a lost phone); they enroll again.
    Reset { user: String },
}

#[derive(Subcommand, Debug)]
pub enum VendorAction {
    /// Sponsor a vendor: a local account for them, for the resources and network segments
    /// named, once your manager and security approve.
    Request {
        /// The vendor's organization, e.g. "Acme DB Tuning".
        #[arg(long)]
        vendor: String,
        /// Their login without the prefix (the account is e.g. v-jdoe).
        #[arg(long)]
        name: String,
        #[arg(long)]
        email: String,
        /// Resources to grant, comma-separated (only those with vendors = true).
        #[arg(long, value_delimiter = ',', required = true)]
        resources: Vec<String>,
        /// Network segments ([[segment]]) they may reach, comma-separated.
        #[arg(long, value_delimiter = ',')]
        segments: Vec<String>,
        /// How long their access lasts from approval (e.g. 2d).
        #[arg(long = "for", value_name = "DUR", value_parser = duration)]
        duration: Duration,
        /// The project or contract reference.
        #[arg(long)]
        project: String,
        #[arg(long)]
        reason: String,
        /// A file with their SSH public key (one line).
        #[arg(long, value_name = "FILE")]
        key: Option<std::path::PathBuf>,
        #[command(flatten)]
        out: Output,
    },
    /// Vendors you sponsor or approve (all of them for security and auditors).
    List {
        /// Also those whose account is deleted.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        out: Output,
    },
    /// One vendor: who they are, what they may reach, their account and its approvals.
    Show {
        id: u64,
        #[command(flatten)]
        out: Output,
    },
    /// Approve a vendor request (the sponsor's manager, and security).
    Approve {
        id: u64,
        #[arg(long, default_value = "")]
        comment: String,
        #[command(flatten)]
        out: Output,
    },
    /// Deny a vendor request; the comment goes to the sponsor.
    Deny {
        id: u64,
        #[arg(long)]
        comment: String,
        #[command(flatten)]
        out: Output,
    },
    /// End a vendor's access now: sessions end, the account is locked (sponsor, security).
    Revoke {
        id: u64,
        #[arg(long, default_value = "")]
        comment: String,
        #[command(flatten)]
        out: Output,
    },
}

#[derive(Subcommand, Debug)]
pub enum PolicyAction {
    /// Which rule would decide a request for RESOURCE made now, and why; or why none would
    /// (for each rule naming the resource, the first condition it does not meet).
    Explain {
        resource: String,
        /// The duration to ask about.
        #[arg(long = "for", value_name = "DUR", value_parser = duration, default_value = "1h")]
        duration: Duration,
        /// Another user's request (root, security and auditors).
        #[arg(long, value_name = "USER")]
        user: Option<String>,
        /// The ticket reference the request would carry.
        #[arg(long, value_name = "REF")]
        ticket: Option<String>,
        #[command(flatten)]
        out: Output,
    },
}

#[derive(Subcommand, Debug, Clone, Copy)]
pub enum RecoveryAction {
    /// Print root's recovery password and delete it from the host.
    Take,
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
        /// Start the grant later (a maintenance window): approved ahead of time, it is usable
        /// from TIME for its duration, and ends then however late it was approved. TIME is
        /// RFC 3339 (2026-12-07T02:00:00+01:00), a local time (2026-12-07 02:00, or 02:00 for
        /// the next one) or +DUR (+2h); at most [limits] start_within (30d) ahead.
        #[arg(long, value_name = "TIME")]
        start: Option<String>,
        /// Wait until the request is decided (at most DUR, default 24h).
        #[arg(long, value_name = "DUR", value_parser = duration, num_args = 0..=1, require_equals = true, default_missing_value = "24h")]
        wait: Option<Duration>,
        #[command(flatten)]
        out: Output,
    },
    /// List requests and grants you may see (default: pending, scheduled and active).
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
    /// Approve a request you are an approver for (where the resource requires a second
    /// factor, a code from it is read from standard input).
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
    /// Start your approved grant of a resource that requires a second factor: reads a code
    /// from your authenticator app on standard input.
    Activate {
        id: u64,
        #[command(flatten)]
        out: Output,
    },
    /// End your grant of a managed account now: its sessions end and its password is rotated.
    Checkin {
        id: u64,
        #[command(flatten)]
        out: Output,
    },
    /// Show the password your grant checked a managed account out with (reveal = true only;
    /// audited; refused inside an elevated session, which is recorded).
    Reveal { id: u64 },
    /// Security: take root's recovery password (root_custody) off this host to store it offline
    /// (printed once; the file is deleted; audited).
    Recovery {
        #[command(subcommand)]
        action: RecoveryAction,
    },
    /// Your second factor (TOTP): enroll, confirm, see its state; security resets others'.
    Mfa {
        #[command(subcommand)]
        action: MfaAction,
    },
    /// Pre-authorized policy rules ([[policy]] in jitd.toml).
    Policy {
        #[command(subcommand)]
        action: PolicyAction,
    },
    /// Sponsored vendor accounts (W4).
    Vendor {
        #[command(subcommand)]
        action: VendorAction,
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
    /// Emergency access now, without approval; security is told and you owe a justification.
    BreakGlass {
        resource: String,
        /// What the emergency is.
        #[arg(long)]
        reason: String,
        /// How long (default and maximum: the resource's break_glass_max).
        #[arg(long = "for", value_name = "DUR", value_parser = duration)]
        duration: Option<Duration>,
        #[command(flatten)]
        out: Output,
    },
    /// Justify one of your break-glass grants (due within 24h by default).
    Justify {
        id: u64,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        out: Output,
    },
    /// Review a break-glass grant after the fact (managers and security).
    Review {
        id: u64,
        #[arg(long, value_enum)]
        verdict: ReviewVerdictArg,
        #[arg(long)]
        comment: String,
        #[command(flatten)]
        out: Output,
    },
    /// Security incidents opened by "unjustified" reviews.
    Incidents {
        #[command(subcommand)]
        action: IncidentsAction,
    },
    /// The SIEM feed: where the audit trail is forwarded, and how far behind each sink is.
    Siem {
        #[command(subcommand)]
        action: SiemAction,
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
    /// Open a recorded root shell under your active grant (through sudo).
    Shell {
        /// The grant to use (checked to be yours and active).
        id: Option<u64>,
        /// A recorded shell as this account instead of root (a managed account's grant).
        #[arg(long = "as", value_name = "ACCOUNT", value_parser = account_name)]
        account: Option<String>,
    },
    /// Run one recorded command under your active grant (through sudo).
    Run {
        id: u64,
        /// Run it as this account instead of root (a managed account's grant).
        #[arg(long = "as", value_name = "ACCOUNT", value_parser = account_name)]
        account: Option<String>,
        #[arg(last = true, required = true, value_name = "CMD")]
        command: Vec<String>,
    },
    /// Review recorded sessions.
    Recordings {
        #[command(subcommand)]
        action: RecordingsAction,
    },
    /// Scan this host for standing privilege (root, security and auditors).
    ///
    /// Lists who can become root or another account without a grant, under
    /// the PAM stacks installed: sudoers rules, members of sudo, wheel and
    /// admin, uid-0 accounts, keys in root's authorized_keys, passwords su
    /// takes for root, polkit admins, wherever the gate does not stop them.
    /// jitd stores each scan: the first line compares the count with the
    /// first scan's. Exit 1 if a source could not be read.
    Scan {
        /// List the stored scans instead (the trend), oldest first.
        #[arg(long)]
        history: bool,
        /// With --history: only scans within this long (e.g. 30days).
        #[arg(long, value_name = "DUR", value_parser = duration, requires = "history")]
        since: Option<Duration>,
        #[command(flatten)]
        out: Output,
    },
    /// Reports: break-glass grants, time to access against the SLA, granted against used time,
    /// unused grants, access denied, standing privileges.
    ///
    /// For root, security and auditors (the jit-audit group); as tables, JSON, or one HTML
    /// page with charts. Each covers the requests made (denials, scans written) within --since.
    Report {
        /// Which report (none with --html: the page holds every one).
        #[arg(value_enum, required_unless_present = "html")]
        kind: Option<ReportArg>,
        /// Over the requests made (denials, scans written) within this long (e.g. 7days;
        /// default 30days).
        #[arg(long, value_name = "DUR", value_parser = duration)]
        since: Option<Duration>,
        /// Write every report into FILE: one self-contained HTML page (inline charts, no
        /// scripts, nothing fetched), mode 0640; a symbolic link there is refused.
        #[arg(long, value_name = "FILE", conflicts_with_all = ["kind", "json"])]
        html: Option<std::path::PathBuf>,
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
pub enum RecordingsAction {
    /// Recordings you may see (yours; everyone's for root and auditors, the jit-audit group).
    List {
        /// Only this user's recordings.
        #[arg(long)]
        user: Option<String>,
        /// Only recordings of grants for this resource.
        #[arg(long)]
        resource: Option<String>,
        /// Only recordings started within this long (e.g. 1h, 7days).
        #[arg(long, value_name = "DUR", value_parser = duration)]
        since: Option<Duration>,
        /// Only sessions being recorded now that you may watch (yours; anyone's for root,
        /// auditors and security; those of grants you approved).
        #[arg(long, conflicts_with = "since")]
        live: bool,
        #[command(flatten)]
        out: Output,
    },
    /// Follow a recording as it is made (filtered as by play) until its session ends.
    Watch { id: u64 },
    /// Replay a recording in this terminal (what draws the screen only).
    ///
    /// Text, colours, cursor movement, erasing and the alternate screen are
    /// replayed; sequences that would act on your terminal (clipboard,
    /// titles, reports, links) are left out.
    Play {
        id: u64,
        /// Playback speed factor.
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
        /// Longest pause kept, in seconds (longer idle gaps are compressed).
        #[arg(long, value_name = "SECS", default_value_t = 2.0)]
        max_idle: f64,
        /// Write the recorded bytes unfiltered. The recorded user chose
        /// them: they can set your clipboard or type into your shell.
        #[arg(long)]
        raw: bool,
    },
    /// Check a recording against the digest in the audit trail: exit 0 intact, 1 edited,
    /// 7 unverified (the digest is of the file as jitd found it, not of the session's bytes).
    Verify { id: u64 },
    /// Write the recording (.cast) and its grant's audit events (.json) to a directory.
    Export {
        id: u64,
        #[arg(long, value_name = "DIR", default_value = ".")]
        out: std::path::PathBuf,
    },
}

/// The reports of `jitctl report`.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum ReportArg {
    /// Break-glass grants: who, what, when, for how long, the justification (given or
    /// overdue), the two reviews and their verdicts, incidents.
    Emergency,
    /// Time to access per route, from the request to access granted: count, mean, p50, p90,
    /// p99, max, and the share within the route's SLA ([reports.sla]).
    Mtta,
    /// Grants per resource, and the time they were held against the time their sessions
    /// used (median and p90 of the ratio): what max_duration could be.
    Usage,
    /// Grants never used (no session), per resource and per user, those jitd revoked for
    /// non-use (revoke_unused_after) counted apart, and the share of each resource's grants
    /// left unused.
    Unused,
    /// Access attempted without a grant (access_denied events): per user and resource the
    /// number of denials, the services, first and last; the users security was alerted
    /// about (access_denied_repeatedly) and the denials counted past max_tracked.
    Denied,
    /// The standing-privilege scans (jitctl scan): standing privileges now against the first
    /// scan (count, change %), and the counts by kind, scan after scan.
    Standing,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum ReviewVerdictArg {
    Justified,
    Unjustified,
}

impl ReviewVerdictArg {
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewVerdictArg::Justified => "justified",
            ReviewVerdictArg::Unjustified => "unjustified",
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum IncidentsAction {
    /// Every incident, newest first.
    List {
        #[command(flatten)]
        out: Output,
    },
    /// One incident.
    Show {
        id: u64,
        #[command(flatten)]
        out: Output,
    },
}

#[derive(Subcommand, Debug)]
pub enum AuditAction {
    /// Recompute the HMAC chain; exit 1 if any row was edited or deleted.
    Verify {
        /// Also check the rows a SIEM received from jitd (its anchors and
        /// newest event: JSON lines, syslog lines or journalctl -o json):
        /// exit 1 if the database was rolled back, cut short or rewritten.
        #[arg(long, value_name = "FILE")]
        anchors: Option<std::path::PathBuf>,
        #[command(flatten)]
        out: Output,
    },
}

#[derive(Subcommand, Debug)]
pub enum SiemAction {
    /// Each sink: its transport, the newest event it took, how many it
    /// has not and for how long, and its last error.
    Status {
        #[command(flatten)]
        out: Output,
    },
}

/// An account name for `--as`: what sudo's `-u` takes, never an option.
fn account_name(text: &str) -> Result<String, String> {
    let valid = !text.is_empty()
        && !text.starts_with('-')
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if valid {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "'{text}' is not an account name; use the account's login name, e.g. --as postgres"
        ))
    }
}
