//! `/etc/jit/jitd.toml`: parsing and validation.
//!
//! Every error carries the file, line and column it is about, because the
//! first reader of this message is an admin's config-management run.

use serde::{de, Deserialize, Deserializer};
use std::collections::HashSet;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;
use thiserror::Error;
use toml::Spanned;

use crate::core::model::{valid_account_name, Sensitivity};
use crate::core::risk::RiskWeights;
use crate::core::routing::Thresholds;

pub mod names;
mod notify;
pub use names::ConfigWarning;
pub use notify::{Hook, HookKind, NotifyConfig, Smtp, SmtpTls};
mod accounts;
pub use accounts::{Checkout, ManagedAccount};
mod siem;
pub use siem::{Facility, SiemConfig, SinkKind};
mod vendors;
pub use vendors::{Segment, UnknownManager, VendorsConfig};
pub(crate) mod polkit;
pub use polkit::PolkitConfig;
mod scan;
pub use scan::ScanConfig;
mod reports;
pub use reports::{ReportsConfig, DEFAULT_SLA};
mod oncall;
mod policy;
mod tickets;
pub use oncall::OnCallSchedule;
pub use tickets::{TicketsConfig, Validator};

pub const DEFAULT_PATH: &str = "/etc/jit/jitd.toml";

/// Who a rule names: one user or every member of a group.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Principal {
    User(String),
    Group(String),
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Principal::User(n) => write!(f, "user:{n}"),
            Principal::Group(n) => write!(f, "group:{n}"),
        }
    }
}

impl<'de> Deserialize<'de> for Principal {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let (kind, name) = text.split_once(':').ok_or_else(|| {
            de::Error::custom(format!("'{text}' must be 'user:NAME' or 'group:NAME'"))
        })?;
        if !valid_account_name(name) {
            return Err(de::Error::custom(format!(
                "'{name}' is not a valid account name"
            )));
        }
        match kind {
            "user" => Ok(Principal::User(name.to_owned())),
            "group" => Ok(Principal::Group(name.to_owned())),
            _ => Err(de::Error::custom(format!(
                "unknown principal kind '{kind}'; use 'user:NAME' or 'group:NAME'"
            ))),
        }
    }
}

/// A humantime duration such as `30m`, `4h` or `1s`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let value = humantime::parse_duration(&text).map_err(|e| {
            de::Error::custom(format!(
                "'{text}' is not a duration ({e}); use e.g. \"30m\" or \"4h\""
            ))
        })?;
        if value < Duration::from_secs(1) {
            return Err(de::Error::custom("durations must be at least 1s"));
        }
        Ok(HumanDuration(value))
    }
}

/// A humantime duration that may be under a second (`500ms`), at most 10s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShortDuration(pub Duration);

impl<'de> Deserialize<'de> for ShortDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let value = humantime::parse_duration(&text).map_err(|e| {
            de::Error::custom(format!(
                "'{text}' is not a duration ({e}); use e.g. \"500ms\""
            ))
        })?;
        if value > Duration::from_secs(10) {
            return Err(de::Error::custom("at most 10s"));
        }
        Ok(ShortDuration(value))
    }
}

/// Business hours, local time, Monday to Friday: `"08:00-18:00"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BusinessHours {
    pub start_minute: u16,
    pub end_minute: u16,
}

impl BusinessHours {
    /// `weekday` 0 = Sunday, as in `struct tm`.
    pub fn contains(&self, weekday: u8, minute_of_day: u16) -> bool {
        (1..=5).contains(&weekday)
            && minute_of_day >= self.start_minute
            && minute_of_day < self.end_minute
    }
}

impl Default for BusinessHours {
    fn default() -> Self {
        BusinessHours {
            start_minute: 8 * 60,
            end_minute: 18 * 60,
        }
    }
}

impl<'de> Deserialize<'de> for BusinessHours {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let bad = || de::Error::custom(format!("'{text}' is not a range like \"08:00-18:00\""));
        let minute = |hm: &str| -> Option<u16> {
            let (h, m) = hm.trim().split_once(':')?;
            let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
            (h <= 24 && m < 60 && h * 60 + m <= 24 * 60).then_some(h * 60 + m)
        };
        let (start, end) = text.split_once('-').ok_or_else(bad)?;
        let (start_minute, end_minute) =
            (minute(start).ok_or_else(bad)?, minute(end).ok_or_else(bad)?);
        if start_minute >= end_minute {
            return Err(de::Error::custom(format!(
                "'{text}': the start must be before the end"
            )));
        }
        Ok(BusinessHours {
            start_minute,
            end_minute,
        })
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Roles {
    /// Managers approve high-risk requests together with security.
    pub manager: Vec<Principal>,
    /// Security approves high-risk requests, may revoke any grant and read the audit trail.
    pub security: Vec<Principal>,
    /// May read the whole audit trail and every request.
    #[serde(default = "default_auditors")]
    pub auditor: Vec<Principal>,
}

fn default_auditors() -> Vec<Principal> {
    vec![Principal::Group("jit-audit".into())]
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawRisk {
    auto_below: Spanned<u8>,
    dual_from: Spanned<u8>,
    business_hours: BusinessHours,
    weights: RiskWeights,
}

impl Default for RawRisk {
    fn default() -> Self {
        let t = Thresholds::default();
        RawRisk {
            auto_below: Spanned::new(0..0, t.auto_below),
            dual_from: Spanned::new(0..0, t.dual_from),
            business_hours: BusinessHours::default(),
            weights: RiskWeights::default(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RiskConfig {
    pub thresholds: Thresholds,
    pub business_hours: BusinessHours,
    pub weights: RiskWeights,
}

#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RequestsConfig {
    /// A pending request nobody decided on lapses after this long.
    pub pending_ttl: HumanDuration,
    /// Grant holders are warned (GrantExpiring signal) this long before expiry.
    pub expiry_warning: HumanDuration,
}

impl Default for RequestsConfig {
    fn default() -> Self {
        RequestsConfig {
            pending_ttl: HumanDuration(Duration::from_secs(24 * 3600)),
            expiry_warning: HumanDuration(Duration::from_secs(15 * 60)),
        }
    }
}

/// What one user may ask of jitd, so that nobody can flood it (threat T30).
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Pending requests (grants and extensions) one user may have at once;
    /// each one notifies approvers.
    pub pending_per_user: u32,
    /// D-Bus calls per second one user (not root) may make, on average...
    pub calls_per_second: u32,
    /// ... and in a burst.
    pub call_burst: u32,
    /// How far ahead a request may name its start (`--start`): a grant
    /// approved long before it is used is privilege in waiting (T44).
    pub start_within: HumanDuration,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            pending_per_user: 5,
            calls_per_second: 10,
            call_burst: 50,
            start_within: HumanDuration(Duration::from_secs(30 * 24 * 3600)),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionsConfig {
    /// The cgroup (v2) directory under which each session gets its own
    /// cgroup; default: `jit-sessions` under jitd's own cgroup.
    pub cgroup: Option<PathBuf>,
    /// Between SIGHUP and SIGKILL when a grant ends.
    pub kill_grace: ShortDuration,
    /// Where sudo keeps its timestamp (cached credential) files.
    pub sudo_timestamp_dirs: Vec<PathBuf>,
}

impl Default for SessionsConfig {
    fn default() -> Self {
        SessionsConfig {
            cgroup: None,
            kill_grace: ShortDuration(Duration::from_millis(500)),
            sudo_timestamp_dirs: vec![PathBuf::from("/run/sudo/ts")],
        }
    }
}

/// The follow-up of emergency grants (W2); who may use them is per resource.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BreakGlassConfig {
    /// The holder must justify an emergency grant within this long.
    pub justify_within: HumanDuration,
    /// At most this many emergency grants per user per `rate_window`.
    pub rate_limit: u32,
    pub rate_window: HumanDuration,
    /// Who to call when break-glass is refused (named in the refusal).
    pub contact: String,
}

impl Default for BreakGlassConfig {
    fn default() -> Self {
        BreakGlassConfig {
            justify_within: HumanDuration(Duration::from_secs(24 * 3600)),
            rate_limit: 3,
            rate_window: HumanDuration(Duration::from_secs(24 * 3600)),
            contact: "the security team".into(),
        }
    }
}

/// Access attempts without a grant in the audit trail (docs/design.md
/// "Denied access", T39).
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DenialsConfig {
    /// One user's denials for one resource and service within this long of
    /// the first are one more audit event, with their count.
    pub window: HumanDuration,
    /// This many denials of one user within `alert_window` tell security
    /// (`access_denied_repeatedly`), once per window; 0: never.
    pub alert_after: u32,
    pub alert_window: HumanDuration,
    /// (user, resource, service) kept apart; denials of any more share one
    /// count (`access_denied_overflow`).
    pub max_tracked: std::num::NonZeroUsize,
}

impl Default for DenialsConfig {
    fn default() -> Self {
        DenialsConfig {
            window: HumanDuration(Duration::from_secs(10 * 60)),
            alert_after: 10,
            alert_window: HumanDuration(Duration::from_secs(10 * 60)),
            max_tracked: std::num::NonZeroUsize::MIN.saturating_add(1023),
        }
    }
}

impl DenialsConfig {
    pub fn policy(&self) -> crate::core::denials::DenialPolicy {
        crate::core::denials::DenialPolicy {
            window: self.window.0.as_secs(),
            alert_after: self.alert_after,
            alert_window: self.alert_window.0.as_secs(),
            max_tracked: self.max_tracked.get(),
        }
    }
}

/// The TOTP second factor (docs/design.md "MFA").
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MfaConfig {
    /// A new seed must be confirmed with a code within this long.
    pub enroll_within: HumanDuration,
    /// This many wrong codes in a row lock the user out ...
    pub max_failures: std::num::NonZeroU32,
    /// ... for this long.
    pub lockout: HumanDuration,
    /// An approved grant of a resource with `require_mfa` lapses unless its
    /// holder activates it with a code within this long.
    pub activate_within: HumanDuration,
}

impl Default for MfaConfig {
    fn default() -> Self {
        MfaConfig {
            enroll_within: HumanDuration(Duration::from_secs(10 * 60)),
            max_failures: std::num::NonZeroU32::MIN.saturating_add(4),
            lockout: HumanDuration(Duration::from_secs(15 * 60)),
            activate_within: HumanDuration(Duration::from_secs(3600)),
        }
    }
}

impl MfaConfig {
    pub fn lockout(&self) -> crate::core::mfa::Lockout {
        crate::core::mfa::Lockout {
            after_failures: self.max_failures.get(),
            lasts: self.lockout.0,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnRecordFailure {
    /// End the session: nothing privileged happens unrecorded (threat T18).
    Terminate,
    /// Warn and keep the session going, unrecorded.
    Continue,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecordingsConfig {
    /// Where jit-session's asciicast recordings go.
    pub dir: PathBuf,
    /// Group that may read recordings (files 0640, directories 0750).
    pub group: String,
    /// Record keystrokes too ("i" events). Off by default: they can hold secrets.
    pub record_input: bool,
    pub on_record_failure: OnRecordFailure,
    /// The real shell jit-session runs when it is an account's login shell
    /// (`-bash`, or `bash -c COMMAND`). Spanned for the semantic checks.
    pub login_shell: Spanned<PathBuf>,
}

/// `[recordings] login_shell` when unset.
pub const DEFAULT_LOGIN_SHELL: &str = "/bin/bash";

impl Default for RecordingsConfig {
    fn default() -> Self {
        RecordingsConfig {
            dir: PathBuf::from("/var/log/jit/sessions"),
            group: "jit-audit".into(),
            record_input: false,
            on_record_failure: OnRecordFailure::Terminate,
            login_shell: Spanned::new(0..0, PathBuf::from(DEFAULT_LOGIN_SHELL)),
        }
    }
}

/// Why `login_shell` cannot be used, if it cannot.
fn check_login_shell(shell: &Path) -> Option<&'static str> {
    use std::os::unix::ffi::OsStrExt;
    if !shell.is_absolute() {
        return Some("login_shell must be an absolute path");
    }
    if shell.as_os_str().as_bytes().contains(&0) {
        return Some("login_shell must not contain a NUL character");
    }
    // jit-session runs this shell: itself would start recorders forever.
    if shell.file_name().is_some_and(|n| n == "jit-session") {
        return Some("login_shell is the real shell jit-session runs, not jit-session itself");
    }
    None
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawResource {
    name: Spanned<String>,
    #[serde(default)]
    privileged: bool,
    #[serde(default = "default_sensitivity")]
    sensitivity: Sensitivity,
    #[serde(default = "default_environment")]
    environment: String,
    #[serde(default)]
    owners: Vec<Principal>,
    eligible: Vec<Principal>,
    #[serde(default = "default_max_duration")]
    max_duration: HumanDuration,
    /// Extra notification targets, told what the owners are told.
    #[serde(default)]
    notify: Vec<Spanned<String>>,
    #[serde(default)]
    break_glass: Vec<Principal>,
    #[serde(default = "default_break_glass_max")]
    break_glass_max: HumanDuration,
    /// Local groups a grant makes its holder a member of while it lasts.
    #[serde(default)]
    groups: Vec<Spanned<GroupName>>,
    #[serde(default)]
    require_mfa: bool,
    vendors: Option<Spanned<bool>>,
    revoke_unused_after: Option<Spanned<HumanDuration>>,
    #[serde(default)]
    require_ticket: bool,
}

/// A local group's name, as `groups` takes it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct GroupName(String);

impl<'de> Deserialize<'de> for GroupName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        if !valid_account_name(&name) {
            return Err(de::Error::custom(format!(
                "'{name}' is not a valid group name"
            )));
        }
        Ok(GroupName(name))
    }
}

fn default_sensitivity() -> Sensitivity {
    Sensitivity::Medium
}
fn default_environment() -> String {
    "production".into()
}
fn default_max_duration() -> HumanDuration {
    HumanDuration(Duration::from_secs(3600))
}
fn default_break_glass_max() -> HumanDuration {
    HumanDuration(Duration::from_secs(2 * 3600))
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resource {
    pub name: String,
    pub privileged: bool,
    pub sensitivity: Sensitivity,
    pub environment: String,
    pub owners: Vec<Principal>,
    pub eligible: Vec<Principal>,
    pub max_duration: Duration,
    /// Who may take an emergency grant without approval (W2).
    pub break_glass: Vec<Principal>,
    pub break_glass_max: Duration,
    /// Local groups its grants' holders are members of while the grant
    /// lasts (M.1, docs/design.md "Group membership").
    pub groups: Vec<String>,
    /// Its holders and approvers prove a second factor (docs/design.md
    /// "MFA step-up").
    pub require_mfa: bool,
    /// Vendors may be granted it (never a privileged one).
    pub vendors: bool,
    /// A grant with no session this long after it became active is revoked
    /// (docs/design.md "Unused grants"); only where jit sees every use.
    pub revoke_unused_after: Option<Duration>,
    /// A request needs `--ticket`, checked by `[tickets]`' validator if
    /// there is one (W1.11).
    pub require_ticket: bool,
}

impl Resource {
    pub fn is_production(&self) -> bool {
        self.environment == "production"
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    roles: Roles,
    #[serde(default)]
    risk: RawRisk,
    #[serde(default)]
    requests: RequestsConfig,
    #[serde(default)]
    limits: LimitsConfig,
    #[serde(default)]
    sessions: SessionsConfig,
    #[serde(default)]
    recordings: RecordingsConfig,
    #[serde(default)]
    notify: notify::RawNotify,
    #[serde(default)]
    break_glass: BreakGlassConfig,
    #[serde(default)]
    mfa: MfaConfig,
    #[serde(default)]
    denials: DenialsConfig,
    #[serde(default)]
    polkit: polkit::RawPolkit,
    #[serde(default)]
    siem: siem::RawSiem,
    #[serde(default)]
    scan: ScanConfig,
    #[serde(default)]
    reports: reports::RawReports,
    #[serde(default)]
    tickets: tickets::RawTickets,
    #[serde(rename = "resource", default)]
    resources: Vec<RawResource>,
    #[serde(rename = "account", default)]
    accounts: Vec<accounts::RawAccount>,
    vendors: Option<vendors::RawVendors>,
    #[serde(default)]
    managers: std::collections::BTreeMap<String, Spanned<polkit::AccountName>>,
    #[serde(rename = "segment", default)]
    segments: Vec<vendors::RawSegment>,
    #[serde(default)]
    policy_limits: policy::RawPolicyLimits,
    #[serde(rename = "policy", default)]
    policies: Vec<policy::RawRule>,
    #[serde(default)]
    oncall: std::collections::BTreeMap<Spanned<String>, oncall::RawSchedule>,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub roles: Roles,
    pub risk: RiskConfig,
    pub requests: RequestsConfig,
    pub limits: LimitsConfig,
    pub sessions: SessionsConfig,
    pub recordings: RecordingsConfig,
    pub notify: NotifyConfig,
    pub break_glass: BreakGlassConfig,
    pub mfa: MfaConfig,
    pub denials: DenialsConfig,
    pub polkit: PolkitConfig,
    /// Where the audit trail is forwarded (X.2).
    pub siem: SiemConfig,
    /// The standing-privilege scan on jitd's own timer.
    pub scan: ScanConfig,
    /// What the reports measure against (X.3).
    pub reports: ReportsConfig,
    /// How required tickets are checked (W1.11).
    pub tickets: TicketsConfig,
    pub resources: Vec<Resource>,
    /// Managed accounts (W3), each checked out by its resource's grants.
    pub accounts: Vec<ManagedAccount>,
    /// Sponsored vendor accounts (W4); `None`: nobody may sponsor one.
    pub vendors: Option<VendorsConfig>,
    /// Each person's manager, by user name: who approves what they sponsor.
    pub managers: std::collections::BTreeMap<String, String>,
    pub segments: Vec<Segment>,
    /// Pre-authorized rules (`[[policy]]`, W1.10), in file order.
    pub policy: crate::core::policy::Policies,
    /// On-call schedules by name, which policy rules name.
    pub oncall: std::collections::BTreeMap<String, OnCallSchedule>,
}

impl Config {
    pub fn resource(&self, name: &str) -> Option<&Resource> {
        self.resources.iter().find(|r| r.name == name)
    }
}

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{col}: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        col: usize,
        message: String,
    },
}

pub fn load(path: &Path) -> Result<Config, ConfigError> {
    parse(&read(path)?, path)
}

/// [`load`], then the names the file gives looked up in `accounts`
/// ([`names::check`]): warnings, never a refusal.
pub fn load_and_check_names(
    path: &Path,
    accounts: &impl names::Accounts,
) -> Result<(Config, Vec<ConfigWarning>), ConfigError> {
    let text = read(path)?;
    let config = parse(&text, path)?;
    Ok((config, names::check(&text, path, accounts)))
}

/// A file of secrets (`what`, named in errors): it must belong to the user
/// running jitd and be closed to group and others.
fn read_private(path: &Path, what: &str) -> Result<String, String> {
    use std::os::unix::fs::MetadataExt;
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("{what} {shown}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("{what} {shown} is not a regular file"));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(format!(
            "{what} {shown} is accessible by group or others (mode {:04o}); run: chmod 600 {shown}",
            meta.mode() & 0o7777
        ));
    }
    let euid = nix::unistd::geteuid().as_raw();
    if meta.uid() != euid {
        return Err(format!(
            "{what} {shown} belongs to uid {}, not to uid {euid} which runs jitd",
            meta.uid()
        ));
    }
    std::fs::read_to_string(path).map_err(|e| format!("{what} {shown}: {e}"))
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })
}

/// An error about the byte range `span` of `text` (the start of the file
/// without one), as `file:line:col: message`.
/// A message quotes what the file says: its controls (a newline, an
/// escape) are shown escaped, so the error stays one line on a terminal.
fn invalid(text: &str, path: &Path, span: Option<Range<usize>>, message: String) -> ConfigError {
    let (line, col) = line_col(text, span.map_or(0, |s| s.start));
    ConfigError::Invalid {
        path: path.to_owned(),
        line,
        col,
        message: crate::core::sanitize::for_terminal(&message).into_owned(),
    }
}

pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let invalid = |span: Option<Range<usize>>, message: String| invalid(text, path, span, message);
    let raw: RawConfig =
        toml::from_str(text).map_err(|e| invalid(e.span(), e.message().trim().to_owned()))?;

    if raw.risk.auto_below.get_ref() >= raw.risk.dual_from.get_ref() {
        return Err(invalid(
            Some(raw.risk.dual_from.span()),
            format!(
                "dual_from ({}) must be greater than auto_below ({})",
                raw.risk.dual_from.get_ref(),
                raw.risk.auto_below.get_ref()
            ),
        ));
    }
    for threshold in [&raw.risk.auto_below, &raw.risk.dual_from] {
        if *threshold.get_ref() > 100 {
            return Err(invalid(
                Some(threshold.span()),
                "risk thresholds are between 0 and 100".into(),
            ));
        }
    }

    if let Some(problem) = check_login_shell(raw.recordings.login_shell.get_ref()) {
        return Err(invalid(
            Some(raw.recordings.login_shell.span()),
            problem.into(),
        ));
    }

    let resource_targets: Vec<(String, Vec<Spanned<String>>)> = raw
        .resources
        .iter()
        .map(|r| (r.name.get_ref().clone(), r.notify.clone()))
        .collect();
    let notify = raw
        .notify
        .resolve(&resource_targets)
        .map_err(|(span, message)| invalid(span, message))?;

    let resource_names: Vec<String> = raw
        .resources
        .iter()
        .map(|r| r.name.get_ref().clone())
        .collect();
    let polkit = raw
        .polkit
        .resolve(&resource_names)
        .map_err(|(span, message)| invalid(Some(span), message))?;

    let siem = raw
        .siem
        .resolve()
        .map_err(|(span, message)| invalid(Some(span), message))?;
    let reports = raw
        .reports
        .resolve()
        .map_err(|(span, message)| invalid(Some(span), message))?;
    let tickets = raw
        .tickets
        .resolve()
        .map_err(|(span, message)| invalid(Some(span), message))?;

    let mut seen = HashSet::new();
    let mut resources = Vec::with_capacity(raw.resources.len());
    // Where each resource sets revoke_unused_after: checked against the
    // managed accounts once they are read.
    let mut unused_spans = Vec::new();
    for r in raw.resources {
        let name = r.name.get_ref();
        if !valid_resource_name(name) {
            return Err(invalid(
                Some(r.name.span()),
                format!(
                    "resource name '{name}' must be 1-64 characters of a-z, 0-9, '-', '_' or '.'"
                ),
            ));
        }
        if !seen.insert(name.clone()) {
            return Err(invalid(
                Some(r.name.span()),
                format!("resource '{name}' is defined twice"),
            ));
        }
        if r.eligible.is_empty() {
            return Err(invalid(
                Some(r.name.span()),
                format!("resource '{name}' has an empty 'eligible' list: nobody could request it"),
            ));
        }
        let mut groups: Vec<String> = Vec::with_capacity(r.groups.len());
        for group in &r.groups {
            let GroupName(group_name) = group.get_ref();
            if groups.contains(group_name) {
                return Err(invalid(
                    Some(group.span()),
                    format!("resource '{name}': group '{group_name}' is listed twice"),
                ));
            }
            groups.push(group_name.clone());
        }
        let for_vendors = r.vendors.as_ref().is_some_and(|v| *v.get_ref());
        // Whatever can make its holder root is not for vendors: a
        // privileged resource, local groups (sudo, docker, disk, ...), the
        // polkit gate's resource, or a step-up their logins already make.
        let not_for_vendors = if r.privileged {
            Some("is privileged")
        } else if !r.groups.is_empty() {
            Some("makes its holders members of local groups")
        } else if polkit.gate && polkit.resource == *name {
            Some("is the polkit gate's resource")
        } else if r.require_mfa {
            Some("has require_mfa (vendors give a code at every login already)")
        } else if r.require_ticket {
            Some("has require_ticket (a vendor's access names its project, and its sponsor's manager and security approve it)")
        } else {
            None
        };
        if let (true, Some(why)) = (for_vendors, not_for_vendors) {
            return Err(invalid(
                r.vendors.as_ref().map(|v| v.span()),
                format!("resource '{name}' {why}: it cannot be granted to vendors"),
            ));
        }
        if let Some(after) = &r.revoke_unused_after {
            if let Some(why) = unused_unseen(&r, &polkit) {
                return Err(invalid(
                    Some(after.span()),
                    format!(
                        "resource '{name}' {why}: jit cannot see every use of its grants, \
                         so revoke_unused_after cannot tell an unused one"
                    ),
                ));
            }
            if after.get_ref().0 >= r.max_duration.0 {
                return Err(invalid(
                    Some(after.span()),
                    format!(
                        "resource '{name}': revoke_unused_after ({}) must be shorter than \
                         max_duration ({})",
                        humantime::format_duration(after.get_ref().0),
                        humantime::format_duration(r.max_duration.0)
                    ),
                ));
            }
            unused_spans.push((name.clone(), after.span()));
        }
        resources.push(Resource {
            vendors: for_vendors,
            groups,
            name: r.name.into_inner(),
            privileged: r.privileged,
            sensitivity: r.sensitivity,
            environment: r.environment,
            owners: r.owners,
            eligible: r.eligible,
            max_duration: r.max_duration.0,
            break_glass: r.break_glass,
            break_glass_max: r.break_glass_max.0,
            require_mfa: r.require_mfa,
            revoke_unused_after: r.revoke_unused_after.map(|d| d.get_ref().0),
            require_ticket: r.require_ticket,
        });
    }

    let accounts = accounts::resolve(raw.accounts, &resources)
        .map_err(|(span, message)| invalid(Some(span), message))?;
    if let Some((name, span, account)) = unused_spans.iter().find_map(|(name, span)| {
        let account = accounts.iter().find(|a| &a.resource == name && a.reveal)?;
        Some((name, span, account))
    }) {
        return Err(invalid(
            Some(span.clone()),
            format!(
                "resource '{name}' reveals managed account '{}''s password, which can be used \
                 where jit does not see it: revoke_unused_after cannot tell an unused grant",
                account.name
            ),
        ));
    }
    let vendors = raw
        .vendors
        .map(|v| vendors::resolve(v, &resources))
        .transpose()
        .map_err(|(span, message)| invalid(Some(span), message))?;
    let managers = vendors::resolve_managers(raw.managers)
        .map_err(|(span, message)| invalid(Some(span), message))?;
    let segments = vendors::resolve_segments(raw.segments)
        .map_err(|(span, message)| invalid(Some(span), message))?;
    let oncall =
        oncall::resolve(raw.oncall).map_err(|(span, message)| invalid(Some(span), message))?;
    // The on-call schedules rules may name: those `[oncall.NAME]` defines.
    let schedules = oncall.keys().cloned().collect();
    let checked = tickets.validator.is_some();
    let policy = policy::resolve(
        raw.policy_limits,
        raw.policies,
        &resources,
        &schedules,
        checked,
    )
    .map_err(|(span, message)| invalid(Some(span), message))?;

    Ok(Config {
        roles: raw.roles,
        risk: RiskConfig {
            thresholds: Thresholds {
                auto_below: raw.risk.auto_below.into_inner(),
                dual_from: raw.risk.dual_from.into_inner(),
            },
            business_hours: raw.risk.business_hours,
            weights: raw.risk.weights,
        },
        requests: raw.requests,
        limits: raw.limits,
        sessions: raw.sessions,
        recordings: raw.recordings,
        notify,
        break_glass: raw.break_glass,
        mfa: raw.mfa,
        denials: raw.denials,
        polkit,
        siem,
        tickets,
        scan: raw.scan,
        reports,
        resources,
        accounts,
        vendors,
        managers,
        segments,
        policy,
        oncall,
    })
}

/// Why jit cannot see every use of `r`'s grants, if it cannot: only
/// sessions pam_jit registers count as use (sudo, ssh logins, `jitctl
/// shell`), and these resources' grants are also used without one.
fn unused_unseen(r: &RawResource, polkit: &PolkitConfig) -> Option<&'static str> {
    if !r.groups.is_empty() {
        Some("makes its holders members of local groups (used without a session)")
    } else if polkit.gate && polkit.resource == *r.name.get_ref() {
        Some("is the polkit gate's resource (pkexec opens no session)")
    } else if r.vendors.as_ref().is_some_and(|v| *v.get_ref()) {
        Some("is for vendors (their access starts and ends as a whole)")
    } else {
        None
    }
}

pub(super) fn valid_resource_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
        })
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

#[cfg(test)]
mod tests;
