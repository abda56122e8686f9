//! `jitctl scan`: the standing-privilege scan, and its trend (docs/design.md,
//! "Standing-privilege scan"). What the scan found is the host's text
//! (user names, key comments, file names): shown sanitized.

use std::fmt::Write;
use std::time::Duration;

use super::args::Output;
use super::client::{failure, Daemon1Proxy};
use super::commands::{parse, show};
use super::render::table;
use super::{CliError, Exit};
use crate::api::{ScanHistoryView, ScanPointView, ScanView};
use crate::core::sanitize::for_terminal as clean;

/// Scans now, or (`history`) lists the stored scans since `since` ago.
pub(super) async fn scan(
    jitd: &Daemon1Proxy<'_>,
    history: bool,
    since: Option<Duration>,
    out: Output,
) -> Result<Exit, CliError> {
    if history {
        let since = since.map_or(0, |d| {
            super::commands::unix_now().saturating_sub(d.as_secs())
        });
        let json = jitd.scan_history(since as i64).await.map_err(failure)?;
        let view: ScanHistoryView = parse(&json)?;
        show(out, &view, render_history);
        return Ok(Exit::Ok);
    }
    let view: ScanView = parse(&jitd.scan().await.map_err(failure)?)?;
    show(out, &view, render_scan);
    // A source it could not read makes the count a lower bound.
    Ok(if view.errors.is_empty() {
        Exit::Ok
    } else {
        Exit::Failed
    })
}

/// "standing privileges now N, first scan M (date), change -X%".
fn trend(now: &ScanPointView, first: &ScanPointView, change: Option<f64>) -> String {
    let change = match change {
        Some(c) if c > 0.0 => format!("+{c}%"),
        Some(c) => format!("{c}%"),
        None if now.total == 0 => "0%".into(),
        None => "none to compare (the first scan found nothing)".into(),
    };
    format!(
        "standing privileges now {}, first scan {} ({}), change {change}\n",
        now.total, first.total, first.at
    )
}

pub(super) fn render_scan(v: &ScanView) -> String {
    let mut out = trend(&v.scan, &v.first, v.change_percent);
    if v.findings.is_empty() {
        out.push_str("No standing privilege found.\n");
    } else {
        let rows = v
            .findings
            .iter()
            .map(|f| {
                vec![
                    f.kind.as_str().to_owned(),
                    clean(&f.principal).into_owned(),
                    clean(&f.target).into_owned(),
                    clean(&f.how).into_owned(),
                    clean(&f.why).into_owned(),
                ]
            })
            .collect();
        out.push_str(&table(
            &["KIND", "WHO", "BECOMES", "HOW", "WHY NOT GATED"],
            rows,
        ));
    }
    for error in &v.errors {
        let _ = writeln!(out, "ERROR: {} (the count is a lower bound)", clean(error));
    }
    for note in &v.notes {
        let _ = writeln!(out, "note: {}", clean(note));
    }
    out
}

pub(super) fn render_history(v: &ScanHistoryView) -> String {
    let (Some(first), Some(last)) = (&v.first, v.scans.last()) else {
        return "No scans yet: run 'jitctl scan'.\n".into();
    };
    let kinds = crate::core::standing::Kind::ALL;
    let mut header = vec!["ID", "AT", "BY", "TOTAL"];
    header.extend(kinds.iter().map(|k| k.as_str()));
    header.push("UNREAD");
    let rows = v
        .scans
        .iter()
        .map(|s| {
            let mut row = vec![
                s.id.to_string(),
                s.at.clone(),
                clean(&s.actor).into_owned(),
                s.total.to_string(),
            ];
            row.extend(
                kinds
                    .iter()
                    .map(|k| s.counts.get(k.as_str()).copied().unwrap_or(0).to_string()),
            );
            row.push(s.unread.to_string());
            row
        })
        .collect();
    let upper: Vec<String> = header.iter().map(|h| h.to_uppercase()).collect();
    let upper: Vec<&str> = upper.iter().map(String::as_str).collect();
    let mut out = table(&upper, rows);
    out.push_str(&trend(last, first, v.change_percent));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::standing::{Finding, Kind};

    fn point(id: i64, total: u64) -> ScanPointView {
        ScanPointView {
            id,
            at: "2030-01-01T00:00:00Z".into(),
            actor: "sam".into(),
            total,
            counts: [("sudoers".to_owned(), total)].into_iter().collect(),
            unread: 0,
        }
    }

    #[test]
    fn hostile_text_from_the_host_is_escaped_and_the_trend_is_a_number() {
        let view = ScanView {
            scan: point(2, 1),
            findings: vec![Finding {
                kind: Kind::RootKey,
                principal: "SHA256:abc".into(),
                target: "root".into(),
                how: "/root/.ssh/authorized_keys:1 ssh-ed25519 \"\u{1b}]52;c;cm0=\u{7}\u{202e}\""
                    .into(),
                why: "root is exempt".into(),
            }],
            errors: vec!["sudoers: \u{1b}[2J".into()],
            notes: vec![],
            first: point(1, 4),
            change_percent: crate::api::change_percent(4, 1),
        };
        let shown = render_scan(&view);
        assert!(
            !shown.contains('\u{1b}') && !shown.contains('\u{202e}'),
            "{shown}"
        );
        assert!(
            shown.starts_with(
                "standing privileges now 1, first scan 4 (2030-01-01T00:00:00Z), change -75%\n"
            ),
            "{shown}"
        );
        assert!(shown.contains("ERROR: sudoers: \\u{1b}[2J"), "{shown}");
        let history = render_history(&ScanHistoryView {
            first: Some(point(1, 4)),
            scans: vec![point(1, 4), point(2, 1)],
            change_percent: Some(-75.0),
        });
        assert!(history.contains("SUDOERS"), "{history}");
        assert!(history.ends_with("change -75%\n"), "{history}");
    }
}
