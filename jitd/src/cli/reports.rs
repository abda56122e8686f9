//! `jitctl report KIND [--since DUR] [--json]` and `jitctl report --html
//! FILE`: jitd computes each report (`Report`, for root, security and
//! auditors); this prints it as tables, or writes every one into a page
//! (`report_html.rs`). What people typed is shown through `clean` (T20).

use std::path::Path;
use std::time::Duration;

use super::args::{Output, ReportArg};
use super::client::{failure, Daemon1Proxy};
use super::commands::{parse, show};
use super::render::{table, truncate};
use super::{report_html, CliError, Exit};
use crate::api::{
    DeniedReport, EmergencyReport, MttaReport, ReportKind, ResourceUsage, RouteTimes,
    StandingReport, UnusedReport, UsageReport,
};
use crate::clock::{Clock, SystemClock};
use crate::core::sanitize::for_terminal as clean;

/// The window when `--since` is not given.
pub const DEFAULT_SINCE: Duration = Duration::from_secs(30 * 24 * 3600);

const REASON_COLUMN: usize = 32;

impl ReportArg {
    fn kind(self) -> ReportKind {
        match self {
            ReportArg::Emergency => ReportKind::Emergency,
            ReportArg::Mtta => ReportKind::Mtta,
            ReportArg::Usage => ReportKind::Usage,
            ReportArg::Unused => ReportKind::Unused,
            ReportArg::Denied => ReportKind::Denied,
            ReportArg::Standing => ReportKind::Standing,
        }
    }
}

pub async fn run(
    jitd: &Daemon1Proxy<'_>,
    kind: Option<ReportArg>,
    since: Option<Duration>,
    html: Option<&Path>,
    out: Output,
) -> Result<Exit, CliError> {
    let now = SystemClock.wall_precise().as_secs();
    let since = now.saturating_sub(since.unwrap_or(DEFAULT_SINCE).as_secs());
    let since = i64::try_from(since).unwrap_or(0);
    let fetch =
        |kind: ReportKind| async move { jitd.report(kind.as_str(), since).await.map_err(failure) };
    if let Some(file) = html {
        let mtta: MttaReport = parse(&fetch(ReportKind::Mtta).await?)?;
        let usage: UsageReport = parse(&fetch(ReportKind::Usage).await?)?;
        let emergency: EmergencyReport = parse(&fetch(ReportKind::Emergency).await?)?;
        let standing: StandingReport = parse(&fetch(ReportKind::Standing).await?)?;
        let unused: UnusedReport = parse(&fetch(ReportKind::Unused).await?)?;
        let denied: DeniedReport = parse(&fetch(ReportKind::Denied).await?)?;
        let page = report_html::page(&report_html::Pages {
            mtta: &mtta,
            usage: &usage,
            emergency: &emergency,
            standing: &standing,
            unused: &unused,
            denied: &denied,
        })?;
        report_html::write_private(file, &page)?;
        if !out.json {
            println!("Wrote {} ({} bytes).", file.display(), page.len());
        }
        return Ok(Exit::Ok);
    }
    let Some(kind) = kind else {
        return Err(CliError::new(
            Exit::Usage,
            "name a report (emergency, mtta, usage, unused, denied, standing) or give --html FILE",
        ));
    };
    let json = fetch(kind.kind()).await?;
    match kind.kind() {
        ReportKind::Emergency => show(out, &parse::<EmergencyReport>(&json)?, emergency_text),
        ReportKind::Mtta => show(out, &parse::<MttaReport>(&json)?, mtta_text),
        ReportKind::Usage => show(out, &parse::<UsageReport>(&json)?, usage_text),
        ReportKind::Unused => show(out, &parse::<UnusedReport>(&json)?, unused_text),
        ReportKind::Denied => show(out, &parse::<DeniedReport>(&json)?, denied_text),
        ReportKind::Standing => show(out, &parse::<StandingReport>(&json)?, standing_text),
    }
    Ok(Exit::Ok)
}

/// A duration as people read it (`1h 30m`), `-` for none.
pub(super) fn secs(value: Option<u64>) -> String {
    value.map_or("-".into(), |s| {
        humantime::format_duration(Duration::from_secs(s)).to_string()
    })
}

/// A share as a percentage with one decimal, `-` for none.
pub(super) fn percent(share: Option<f64>) -> String {
    share.map_or("-".into(), |s| format!("{:.1}%", s * 100.0))
}

/// A report's first line: what it shows, and what the window counted
/// (`requests made`, `denials`, `scans`) from when to when.
fn heading(what: &str, counted: &str, from: &str, to: &str) -> String {
    format!("{what}, {counted} from {from} to {to}\n\n")
}

pub fn emergency_text(r: &EmergencyReport) -> String {
    let mut out = heading("Break-glass grants", "requests made", &r.from, &r.to);
    if r.grants.is_empty() {
        out.push_str("No break-glass grants.\n");
        return out;
    }
    let verdict = |g: &crate::api::EmergencyGrant, role: &str| {
        g.reviews
            .iter()
            .find(|v| v.role == role)
            .map_or("awaited".into(), |v| {
                format!("{} ({})", v.verdict, clean(&v.who))
            })
    };
    let rows = r
        .grants
        .iter()
        .map(|g| {
            vec![
                g.id.to_string(),
                clean(&g.user).into_owned(),
                clean(&g.resource).into_owned(),
                g.granted_at
                    .clone()
                    .unwrap_or_else(|| "(not started)".into()),
                secs(Some(g.duration_secs)),
                g.state.clone(),
                g.justification.replace('_', " "),
                verdict(g, "manager"),
                verdict(g, "security"),
                if g.incidents.is_empty() {
                    "-".into()
                } else {
                    let ids: Vec<String> = g.incidents.iter().map(u64::to_string).collect();
                    ids.join(", ")
                },
                truncate(&clean(&g.reason), REASON_COLUMN),
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            "ID",
            "USER",
            "RESOURCE",
            "STARTED",
            "FOR",
            "STATE",
            "JUSTIFICATION",
            "MANAGER",
            "SECURITY",
            "INCIDENTS",
            "REASON",
        ],
        rows,
    ));
    let overdue = r
        .grants
        .iter()
        .filter(|g| g.justification == "overdue")
        .count();
    let unreviewed = r
        .grants
        .iter()
        .filter(|g| !g.awaiting_reviews.is_empty())
        .count();
    out.push_str(&format!(
        "\n{}: {overdue} justification overdue, {unreviewed} awaiting a review.\n",
        count_of(r.grants.len() as u64, "grant", "grants")
    ));
    out
}

/// The columns of `mtta`, one row a route ([`route_cells`]).
pub(super) const ROUTE_COLUMNS: [&str; 12] = [
    "ROUTE",
    "SLA",
    "GRANTED",
    "MEAN",
    "P50",
    "P90",
    "P99",
    "MAX",
    "WITHIN SLA",
    "STEP-UP",
    "WAITING",
    "NOT GRANTED",
];

/// One route's row of `mtta`, its stored text through `text` (the
/// terminal's escaping, or HTML's).
pub(super) fn route_cells(t: &RouteTimes, text: impl Fn(&str) -> String) -> Vec<String> {
    vec![
        text(&t.route),
        secs(t.sla_secs),
        t.granted.to_string(),
        secs(t.mean_secs),
        secs(t.p50_secs),
        secs(t.p90_secs),
        secs(t.p99_secs),
        secs(t.max_secs),
        match t.within_sla {
            Some(n) if t.granted > 0 => format!("{n} ({})", percent(t.within_sla_share)),
            _ => "-".into(),
        },
        t.step_up.to_string(),
        match t.oldest_waiting_secs {
            Some(age) => format!("{} (oldest {})", t.waiting, secs(Some(age))),
            None => t.waiting.to_string(),
        },
        t.not_granted.to_string(),
    ]
}

/// Terminal-safe text.
fn terminal(text: &str) -> String {
    clean(text).into_owned()
}

pub fn mtta_text(r: &MttaReport) -> String {
    let mut out = heading("Time to access", "requests made", &r.from, &r.to);
    let rows = r.routes.iter().map(|t| route_cells(t, terminal)).collect();
    out.push_str(&table(&ROUTE_COLUMNS, rows));
    out.push_str(
        "\nFrom the request to access granted; a grant that waited for its holder's second \
         factor (STEP-UP) counts until it was activated.\n",
    );
    out
}

/// The columns of `usage`, one row a resource ([`usage_cells`]).
pub(super) const USAGE_COLUMNS: [&str; 9] = [
    "RESOURCE",
    "GRANTS",
    "GRANTED",
    "USED",
    "USED %",
    "RATIO P50",
    "RATIO P90",
    "USED P90",
    "MAX DURATION",
];

/// One resource's row of `usage`, its name through `text`.
pub(super) fn usage_cells(u: &ResourceUsage, text: impl Fn(&str) -> String) -> Vec<String> {
    let ratio = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.2}"));
    vec![
        text(&u.resource),
        u.grants.to_string(),
        secs(Some(u.granted_secs)),
        secs(Some(u.used_secs)),
        percent(u.used_share),
        ratio(u.ratio_p50),
        ratio(u.ratio_p90),
        secs(u.used_p90_secs),
        secs(u.max_duration_secs),
    ]
}

pub fn usage_text(r: &UsageReport) -> String {
    let mut out = heading("Granted against used time", "requests made", &r.from, &r.to);
    if r.resources.is_empty() {
        out.push_str("No grants.\n");
        return out;
    }
    let rows = r
        .resources
        .iter()
        .map(|u| usage_cells(u, terminal))
        .collect();
    out.push_str(&table(&USAGE_COLUMNS, rows));
    out.push_str(
        "\nUsed: time covered by the grant's sessions; RATIO: used / granted per grant. \
         A USED P90 far below MAX DURATION suggests a shorter max_duration.\n",
    );
    out
}

/// The columns of `unused` per resource ([`unused_resource_cells`]).
pub(super) const UNUSED_RESOURCE_COLUMNS: [&str; 5] =
    ["RESOURCE", "GRANTS", "UNUSED", "UNUSED %", "REVOKED UNUSED"];

pub(super) fn unused_resource_cells(
    u: &crate::api::UnusedResource,
    text: impl Fn(&str) -> String,
) -> Vec<String> {
    vec![
        text(&u.resource),
        u.grants.to_string(),
        u.unused.to_string(),
        percent(u.unused_share),
        u.revoked_unused.to_string(),
    ]
}

/// The columns of `unused` per user ([`unused_user_cells`]).
pub(super) const UNUSED_USER_COLUMNS: [&str; 5] =
    ["USER", "GRANTS", "UNUSED", "REVOKED UNUSED", "RESOURCES"];

pub(super) fn unused_user_cells(
    u: &crate::api::UnusedUser,
    text: impl Fn(&str) -> String,
) -> Vec<String> {
    let resources: Vec<String> = u.resources.iter().map(|r| text(r)).collect();
    vec![
        text(&u.user),
        u.grants.to_string(),
        u.unused.to_string(),
        u.revoked_unused.to_string(),
        resources.join(", "),
    ]
}

pub fn unused_text(r: &UnusedReport) -> String {
    let mut out = heading("Unused grants", "requests made", &r.from, &r.to);
    if r.resources.is_empty() {
        out.push_str("No grants.\n");
        return out;
    }
    let rows = r
        .resources
        .iter()
        .map(|u| unused_resource_cells(u, terminal))
        .collect();
    out.push_str(&table(&UNUSED_RESOURCE_COLUMNS, rows));
    if !r.users.is_empty() {
        out.push('\n');
        let rows = r
            .users
            .iter()
            .map(|u| unused_user_cells(u, terminal))
            .collect();
        out.push_str(&table(&UNUSED_USER_COLUMNS, rows));
    }
    let (grants, unused): (u64, u64) = r
        .resources
        .iter()
        .fold((0, 0), |(g, u), x| (g + x.grants, u + x.unused));
    out.push_str(&format!(
        "\n{unused} of {} never used (no session); REVOKED UNUSED: of them, \
         revoked by jitd for non-use (revoke_unused_after).\n",
        count_of(grants, "grant", "grants")
    ));
    out
}

/// The columns of `denied` ([`denied_cells`]).
pub(super) const DENIED_COLUMNS: [&str; 7] = [
    "USER", "RESOURCE", "DENIALS", "SERVICES", "FIRST", "LAST", "ALERTED",
];

pub(super) fn denied_cells(
    d: &crate::api::DeniedAttempts,
    text: impl Fn(&str) -> String,
) -> Vec<String> {
    let services: Vec<String> = d.services.iter().map(|s| text(s)).collect();
    vec![
        text(&d.user),
        text(&d.resource),
        d.count.to_string(),
        services.join(", "),
        d.first.clone(),
        d.last.clone(),
        if d.flagged { "yes".into() } else { "-".into() },
    ]
}

/// The columns of `denied`'s alerted users ([`flagged_cells`]).
pub(super) const FLAGGED_COLUMNS: [&str; 4] = ["USER", "ALERTS", "ATTEMPTS", "LAST"];

pub(super) fn flagged_cells(
    f: &crate::api::FlaggedUser,
    text: impl Fn(&str) -> String,
) -> Vec<String> {
    vec![
        text(&f.user),
        f.alerts.to_string(),
        f.attempts.to_string(),
        text(&f.last),
    ]
}

/// `n` and what it counts, plural unless `n` is 1.
pub(super) fn count_of(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The line on denials counted past `max_tracked`, if any.
pub(super) fn overflow_line(r: &DeniedReport) -> Option<String> {
    let o = &r.overflow;
    (o.events > 0).then(|| {
        format!(
            "{} counted together past max_tracked ({}, {} to {}).",
            count_of(o.count, "more denial", "more denials"),
            count_of(
                o.events,
                "access_denied_overflow event",
                "access_denied_overflow events"
            ),
            o.first.as_deref().unwrap_or("-"),
            o.last.as_deref().unwrap_or("-"),
        )
    })
}

pub fn denied_text(r: &DeniedReport) -> String {
    let mut out = heading(
        "Access attempted without a grant",
        "denials",
        &r.from,
        &r.to,
    );
    if r.attempts.is_empty() && r.overflow.events == 0 {
        out.push_str("No denials.\n");
        return out;
    }
    let rows = r
        .attempts
        .iter()
        .map(|d| denied_cells(d, terminal))
        .collect();
    out.push_str(&table(&DENIED_COLUMNS, rows));
    if !r.flagged.is_empty() {
        out.push_str("\nAlerted (access_denied_repeatedly):\n");
        let rows = r
            .flagged
            .iter()
            .map(|f| flagged_cells(f, terminal))
            .collect();
        out.push_str(&table(&FLAGGED_COLUMNS, rows));
    }
    if let Some(line) = overflow_line(r) {
        out.push_str(&format!("\n{line}\n"));
    }
    out.push_str(&format!(
        "\n{} in all.\n",
        count_of(r.total, "denial", "denials")
    ));
    out
}

/// A change in percent, signed, `-` for none.
pub(super) fn change(value: Option<f64>) -> String {
    value.map_or("-".into(), |c| format!("{c:+.1}%"))
}

/// The line comparing the newest scan with the first.
pub(super) fn standing_summary(r: &StandingReport) -> String {
    match (&r.first, &r.now) {
        (Some(first), Some(now)) => format!(
            "Standing privileges now {} ({}), first scan {} ({}), change {}.",
            now.total,
            now.at,
            first.total,
            first.at,
            change(r.change_percent)
        ),
        (Some(first), None) => format!(
            "No scan in this window; first scan {} ({}).",
            first.total, first.at
        ),
        _ => "No scan stored yet (jitctl scan).".into(),
    }
}

/// Every kind the scans counted, by name.
pub(super) fn scan_kinds(r: &StandingReport) -> Vec<String> {
    let mut kinds: Vec<String> = r
        .scans
        .iter()
        .flat_map(|s| s.counts.keys().cloned())
        .collect();
    kinds.sort();
    kinds.dedup();
    kinds
}

/// The columns of `standing`, one row a scan ([`scan_cells`]), one
/// column a kind of `kinds` ([`scan_kinds`]).
pub(super) fn scan_columns(kinds: &[String]) -> Vec<String> {
    let mut columns: Vec<String> = vec!["scan".into(), "at".into(), "total".into()];
    columns.extend(kinds.iter().cloned());
    columns.push("unread".into());
    columns
}

/// One scan's row of `standing`: its count of each of `kinds`.
pub(super) fn scan_cells(
    s: &crate::api::ScanPoint,
    kinds: &[String],
    text: impl Fn(&str) -> String,
) -> Vec<String> {
    let mut row = vec![s.id.to_string(), text(&s.at), s.total.to_string()];
    row.extend(
        kinds
            .iter()
            .map(|k| s.counts.get(k).copied().unwrap_or(0).to_string()),
    );
    row.push(s.errors.to_string());
    row
}

pub fn standing_text(r: &StandingReport) -> String {
    let mut out = heading("Standing privileges", "scans", &r.from, &r.to);
    out.push_str(&standing_summary(r));
    out.push('\n');
    if !r.scans.is_empty() {
        let kinds = scan_kinds(r);
        let header: Vec<String> = scan_columns(&kinds)
            .iter()
            .map(|c| terminal(c).to_uppercase())
            .collect();
        let rows = r
            .scans
            .iter()
            .map(|s| scan_cells(s, &kinds, terminal))
            .collect();
        let header: Vec<&str> = header.iter().map(String::as_str).collect();
        out.push('\n');
        out.push_str(&table(&header, rows));
        out.push_str(
            "\nUNREAD: sources a scan could not read (its total is then a lower bound).\n",
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::reports::{
        denied, emergency, unused, DeniedEvent, EmergencyRow, UnusedCount, Window,
    };

    fn overflow(counts: &[u64]) -> DeniedReport {
        let events: Vec<DeniedEvent> = counts
            .iter()
            .map(|&count| DeniedEvent::Overflow {
                count,
                first: 10,
                last: 20,
            })
            .collect();
        denied(&events, Window { from: 0, to: 86400 })
    }

    #[test]
    fn the_denied_report_counts_in_the_singular_for_one() {
        let one = denied_text(&overflow(&[1]));
        assert!(
            one.contains(
                "1 more denial counted together past max_tracked (1 access_denied_overflow event, "
            ),
            "{one}"
        );
        assert!(one.contains("\n1 denial in all.\n"), "{one}");
        let two = denied_text(&overflow(&[3, 4]));
        assert!(
            two.contains("7 more denials counted together past max_tracked (2 access_denied_overflow events, "),
            "{two}"
        );
        assert!(two.contains("\n7 denials in all.\n"), "{two}");
    }

    #[test]
    fn the_emergency_and_unused_reports_count_in_the_singular_for_one() {
        let window = Window { from: 0, to: 86400 };
        let grant = EmergencyRow {
            id: 1,
            user: "alice".into(),
            uid: 61001,
            resource: "logs".into(),
            state: "expired".into(),
            reason: "fire".into(),
            requested_at: 0,
            granted_at: Some(0),
            duration_secs: 600,
            case: None,
        };
        let one = emergency_text(&emergency(vec![grant], window));
        assert!(
            one.contains("\n1 grant: 0 justification overdue, 1 awaiting a review.\n"),
            "{one}"
        );
        let count = UnusedCount {
            resource: "logs".into(),
            user: "alice".into(),
            uid: 61001,
            grants: 1,
            unused: 1,
            revoked_unused: 0,
        };
        let one = unused_text(&unused(&[count], window));
        assert!(
            one.contains("\n1 of 1 grant never used (no session); "),
            "{one}"
        );
    }
}
