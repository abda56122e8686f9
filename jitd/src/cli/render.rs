//! Human output: short, aligned, and sanitized. Every string that another
//! person could have typed goes through `clean` (threat T20). JSON output
//! escapes the same characters, as `\uXXXX` (`json`).

use std::fmt::Write;

use serde::Serialize;

use crate::api::{
    AuditView, CaseView, IncidentView, PolicyExplanationView, RecordingView, RequestView, SinkView,
    StatusView, VerifyView,
};
use crate::core::sanitize::{for_json, for_terminal as clean};

/// `value` as pretty JSON whose strings show no control, bidi or invisible
/// character raw (serde_json escapes C0 controls only).
pub fn json<T: Serialize>(value: &T) -> String {
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    for_json(&text).into_owned()
}

const REASON_COLUMN: usize = 40;

fn humanize_secs(secs: u64) -> String {
    humantime::format_duration(std::time::Duration::from_secs(secs)).to_string()
}

/// The route, and the policy rule that chose it, if one did.
fn route_text(v: &RequestView) -> String {
    match &v.policy {
        Some(rule) => format!("{} (policy {})", v.route, clean(rule)),
        None => v.route.clone(),
    }
}

fn risk_line(v: &RequestView) -> String {
    match v.risk.factor_list() {
        f if f.is_empty() => v.risk.score.to_string(),
        f => format!("{}: {f}", v.risk.score),
    }
}

/// One line after a request changed: what state it is in and what happens next.
pub fn summary(v: &RequestView) -> String {
    let what = match v.kind.as_str() {
        "extension" => format!(
            "Extension {} of grant {}",
            v.id,
            v.extends.unwrap_or_default()
        ),
        _ => format!("Request {}", v.id),
    };
    let expires = v.expires_at.as_deref().unwrap_or("-");
    match v.state.as_str() {
        "active" => match (&v.policy, v.route.as_str()) {
            (Some(rule), "policy") => format!(
                "{what}: active until {expires}, approved by policy {} (risk {}).",
                clean(rule),
                v.risk.score
            ),
            _ => format!(
                "{what}: active until {expires} ({} route, risk {}).",
                v.route, v.risk.score
            ),
        },
        "applied" => format!("{what}: applied; the grant now ends at {expires}."),
        "approved" => format!(
            "{what}: approved; it starts when you give a code from your second factor, \
             by {}: jitctl activate {}",
            v.activate_by.as_deref().unwrap_or("-"),
            v.id
        ),
        "scheduled" => format!(
            "{what}: scheduled: active from {} for {} ({} route, risk {}).",
            v.starts_at.as_deref().unwrap_or("-"),
            humanize_secs(v.duration_secs),
            v.route,
            v.risk.score
        ),
        "pending" => format!(
            "{what}: pending, awaiting {} approval (risk {}){}. Approvers run: jitctl approve {}",
            v.awaiting.join(" + "),
            risk_line(v),
            v.starts_at
                .as_ref()
                .map_or(String::new(), |at| format!(", to start at {at}")),
            v.id
        ),
        state => format!("{what}: {state}."),
    }
}

/// After `jitctl break-glass`: the grant, and what is owed now.
pub fn break_glass(v: &RequestView) -> String {
    if v.state != "active" {
        return summary(v);
    }
    let justify_by = v.follow_up.as_ref().map_or("-", |c| c.justify_by.as_str());
    format!(
        "Break-glass grant {id} for {res}: active until {exp}. Security has been told.\n\
         Justify it by {justify_by}: jitctl justify {id} --reason \"...\"",
        id = v.id,
        res = clean(&v.resource),
        exp = v.expires_at.as_deref().unwrap_or("-"),
    )
}

fn follow_up_rows(c: &CaseView, rows: &mut Vec<(&'static str, String)>) {
    let status = if c.awaiting_reviews.is_empty() || c.closed_at.is_some() {
        c.status.clone()
    } else {
        format!(
            "{} (reviews awaited: {})",
            c.status,
            c.awaiting_reviews.join(" + ")
        )
    };
    rows.push(("case", status));
    rows.push(("justify by", c.justify_by.clone()));
    if let Some(text) = &c.justification {
        let at = c.justified_at.as_deref().unwrap_or("-");
        rows.push(("justified", format!("at {at}: {}", clean(text))));
    }
    for r in &c.reviews {
        rows.push((
            "review",
            format!(
                "{} as {}: {} at {}: {}",
                clean(&r.who),
                r.role,
                r.verdict,
                r.when,
                clean(&r.comment)
            ),
        ));
    }
    for id in &c.incidents {
        rows.push(("incident", format!("{id} (jitctl incidents show {id})")));
    }
}

/// What an approver is told when their approval went through with a
/// ticket the validator could not check again (`when_down = "approvers"`).
pub fn unchecked_approval(v: &RequestView) -> Option<String> {
    use crate::core::tickets::{Stage, Verdict};
    let check = v.ticket_check.as_ref()?;
    (check.verdict == Verdict::Unavailable && check.stage == Stage::Approval).then(|| {
        format!(
            "jitctl: warning: ticket {} could not be checked again ({}): you approved it unchecked",
            clean(v.ticket.as_deref().unwrap_or_default()),
            clean(&check.message)
        )
    })
}

pub fn detail(v: &RequestView) -> String {
    let mut rows: Vec<(&str, String)> = vec![
        ("id", v.id.to_string()),
        (
            "kind",
            match v.extends {
                Some(of) => format!("extension of {of}"),
                None => v.kind.clone(),
            },
        ),
        ("user", format!("{} (uid {})", clean(&v.user), v.uid)),
        ("resource", clean(&v.resource).into_owned()),
        ("state", v.state.clone()),
        ("duration", humanize_secs(v.duration_secs)),
        ("reason", clean(&v.reason).into_owned()),
        (
            "ticket",
            v.ticket
                .as_deref()
                .map_or("-".into(), |t| clean(t).into_owned()),
        ),
        ("requested", v.requested_at.clone()),
    ];
    if let Some(check) = &v.ticket_check {
        // From jitd over the bus: escaped again here, as everything shown.
        rows.insert(
            rows.len() - 1,
            ("ticket check", clean(&check.summary()).into_owned()),
        );
    }
    if let Some(at) = &v.starts_at {
        rows.push(("starts", at.clone()));
    }
    rows.extend([
        (
            "expires",
            v.expires_at.clone().unwrap_or_else(|| "-".into()),
        ),
        ("route", route_text(v)),
        ("risk", risk_line(v)),
    ]);
    if !v.awaiting.is_empty() {
        rows.push(("awaiting", v.awaiting.join(" + ")));
    }
    if let Some(by) = v.activate_by.as_ref().filter(|_| v.state == "approved") {
        rows.push(("activate by", by.clone()));
    }
    if let (Some(at), Some(by)) = (&v.ended_at, &v.ended_by) {
        rows.push(("ended", format!("{at} by {}", clean(by))));
    }
    if v.break_glass {
        rows.push(("flag", "BREAK-GLASS (emergency grant, no approval)".into()));
    }
    if let Some(case) = &v.follow_up {
        follow_up_rows(case, &mut rows);
    }
    for a in &v.approvals {
        let comment = if a.comment.is_empty() {
            String::new()
        } else {
            format!(": {}", clean(&a.comment))
        };
        rows.push((
            "decision",
            format!(
                "{} {} as {} at {}{comment}",
                clean(&a.who),
                a.verdict,
                a.role,
                a.when
            ),
        ));
    }
    for n in v.notifications.iter().flatten() {
        let when = match (&n.delivered_at, &n.last_error) {
            (Some(at), _) => format!(" at {at}"),
            (None, Some(error)) => format!(": {}", clean(error)),
            (None, None) => String::new(),
        };
        rows.push((
            "notified",
            format!(
                "{} {} {} ({}): {}, {} attempt{}{when}",
                n.id,
                n.channel,
                clean(&n.to),
                n.event,
                n.state,
                n.attempts,
                if n.attempts == 1 { "" } else { "s" }
            ),
        ));
    }
    if let Some(account) = &v.account {
        let held = if account.checked_out {
            "checked out"
        } else {
            "not checked out yet"
        };
        rows.push(("account", format!("{} ({held})", clean(&account.name))));
    }
    if let Some(changes) = &v.changes {
        rows.extend(changes_rows(changes));
    }
    fields(rows)
}

/// `jitctl policy explain`: the request's facts, the decision, then each
/// rule looked at with the first condition it does not meet.
pub fn explanation(v: &PolicyExplanationView) -> String {
    let mut rows: Vec<(&str, String)> = vec![
        ("user", clean(&v.user).into_owned()),
        (
            "resource",
            format!(
                "{} for {}",
                clean(&v.resource),
                humanize_secs(v.duration_secs)
            ),
        ),
        (
            "ticket",
            v.ticket
                .as_deref()
                .map_or("-".into(), |t| clean(t).into_owned()),
        ),
        ("at", v.at.clone()),
        (
            "risk",
            format!(
                "{} ({} without off-hours; rules apply below {})",
                match v.risk.factor_list() {
                    f if f.is_empty() => v.risk.score.to_string(),
                    f => format!("{}: {f}", v.risk.score),
                },
                v.score_in_hours,
                v.risk_ceiling
            ),
        ),
        ("routed", format!("{} (by risk)", v.routed)),
    ];
    let decision = match (&v.policy, &v.skipped) {
        (Some(rule), _) if v.route == "policy" => {
            format!("policy {} approves it at once (route policy)", clean(rule))
        }
        (Some(rule), _) => format!("policy {} lowers it to {}", clean(rule), v.route),
        (None, Some(why)) => format!("no rule: {why}"),
        (None, None) if v.rules.is_empty() => "no rule names this resource".into(),
        (None, None) => format!("no rule applies: route {}", v.route),
    };
    rows.push(("decision", decision));
    for r in &v.rules {
        let verdict = match &r.unmet {
            None => "applies".to_owned(),
            Some(why) => format!("not: {why}"),
        };
        rows.push((
            "rule",
            format!("{} ({}): {verdict}", clean(&r.name), r.action),
        ));
    }
    fields(rows)
}

/// One `key value` line a row, the values aligned.
pub(super) fn fields(rows: Vec<(&str, String)>) -> String {
    let mut out = String::new();
    for (key, value) in rows {
        let _ = writeln!(out, "{key:<11} {value}");
    }
    out
}

/// What changed on the host during the grant, one row a change.
fn changes_rows(changes: &crate::core::changes::Changes) -> Vec<(&'static str, String)> {
    let mut rows: Vec<(&'static str, String)> = changes
        .changes
        .iter()
        .map(|c| {
            let kind = serde_json::to_value(c.kind).unwrap_or_default();
            let what = serde_json::to_value(c.what).unwrap_or_default();
            (
                "changed",
                format!(
                    "{} {} {}",
                    what.as_str().unwrap_or_default(),
                    kind.as_str().unwrap_or_default(),
                    clean(&c.path)
                ),
            )
        })
        .collect();
    if changes.truncated {
        rows.push(("changed", truncated_row(&changes.truncated_places)));
    } else if rows.is_empty() {
        rows.push(("changed", "nothing in the watched places".into()));
    }
    rows
}

/// That not every place was read, and which were cut short (none named in
/// changes stored before they were).
fn truncated_row(places: &std::collections::BTreeSet<String>) -> String {
    let row = "truncated: not every place was read".to_owned();
    if places.is_empty() {
        return row;
    }
    let places: Vec<_> = places.iter().map(|p| clean(p)).collect();
    format!("{row}: {}", places.join(", "))
}

pub(super) fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let cut: String = text.chars().take(max - 1).collect();
        format!("{cut}…")
    }
}

/// Aligns columns; the last column is left ragged.
pub(super) fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<String>, out: &mut String| {
        let last = cells.len() - 1;
        for (i, cell) in cells.into_iter().enumerate() {
            if i == last {
                let _ = write!(out, "{cell}");
            } else {
                let pad = widths[i] - cell.chars().count();
                let _ = write!(out, "{cell}{}  ", " ".repeat(pad));
            }
        }
        out.push('\n');
    };
    line(header.iter().map(|h| h.to_string()).collect(), &mut out);
    for row in rows {
        line(row, &mut out);
    }
    out
}

/// When a grant ends, or for one not started yet, when it starts.
fn expiry_cell(v: &RequestView) -> String {
    match (&v.expires_at, &v.starts_at) {
        (Some(at), _) => at.clone(),
        (None, Some(start)) => format!("from {start}"),
        (None, None) => "-".into(),
    }
}

pub fn list(views: &[RequestView]) -> String {
    if views.is_empty() {
        return "No requests.\n".into();
    }
    let rows = views
        .iter()
        .map(|v| {
            vec![
                v.id.to_string(),
                v.state.clone(),
                clean(&v.resource).into_owned(),
                clean(&v.user).into_owned(),
                expiry_cell(v),
                route_text(v),
                v.risk.score.to_string(),
                truncate(&clean(&v.reason), REASON_COLUMN),
            ]
        })
        .collect();
    table(
        &[
            "ID", "STATE", "RESOURCE", "USER", "EXPIRES", "ROUTE", "RISK", "REASON",
        ],
        rows,
    )
}

pub fn audit(events: &[AuditView]) -> String {
    if events.is_empty() {
        return "No audit events.\n".into();
    }
    let rows = events
        .iter()
        .map(|e| {
            vec![
                e.id.to_string(),
                e.at.clone(),
                clean(&e.actor).into_owned(),
                e.event.clone(),
                e.request.map_or("-".into(), |r| r.to_string()),
                if e.break_glass { "BREAK-GLASS" } else { "" }.into(),
                clean(&e.detail.to_string()).into_owned(),
            ]
        })
        .collect();
    table(
        &["ID", "AT", "ACTOR", "EVENT", "REQUEST", "FLAG", "DETAIL"],
        rows,
    )
}

pub fn incidents(views: &[IncidentView]) -> String {
    if views.is_empty() {
        return "No incidents.\n".into();
    }
    let rows = views
        .iter()
        .map(|i| {
            vec![
                i.id.to_string(),
                i.opened_at.clone(),
                i.grant.to_string(),
                clean(&i.user).into_owned(),
                clean(&i.resource).into_owned(),
                clean(&i.opened_by).into_owned(),
                truncate(&clean(&i.comment), REASON_COLUMN),
            ]
        })
        .collect();
    table(
        &["ID", "OPENED", "GRANT", "USER", "RESOURCE", "BY", "COMMENT"],
        rows,
    )
}

pub fn incident(i: &IncidentView) -> String {
    format!(
        "incident   {}\ngrant      {} (jitctl show {})\nuser       {}\nresource   {}\n\
         opened     {} by {}\ncomment    {}\n",
        i.id,
        i.grant,
        i.grant,
        clean(&i.user),
        clean(&i.resource),
        i.opened_at,
        clean(&i.opened_by),
        clean(&i.comment)
    )
}

pub fn recordings(views: &[RecordingView]) -> String {
    if views.is_empty() {
        return "No recordings.\n".into();
    }
    let rows = views
        .iter()
        .map(|r| {
            vec![
                r.id.to_string(),
                r.grant.to_string(),
                clean(&r.user).into_owned(),
                clean(&r.resource).into_owned(),
                r.started_at.clone(),
                r.ended_at.clone().unwrap_or_else(|| "(recording)".into()),
                r.end.clone().unwrap_or_else(|| "-".into()),
                r.sha256
                    .as_deref()
                    .map_or("-".into(), |d| d.chars().take(12).collect()),
                match (&r.sha256, r.vouched()) {
                    (None, _) => "-".into(),
                    (Some(_), true) => "session".into(),
                    (Some(_), false) => "UNVERIFIED".into(),
                },
            ]
        })
        .collect();
    table(
        &[
            "ID", "GRANT", "USER", "RESOURCE", "STARTED", "ENDED", "END", "SHA256", "DIGEST",
        ],
        rows,
    )
}

pub fn verification(v: &VerifyView) -> String {
    let anchors = v.anchors.map_or(String::new(), |n| {
        format!(", {n} rows the SIEM received match")
    });
    match &v.problem {
        None => format!("Audit trail intact: {} rows verified{anchors}.\n", v.rows),
        Some(problem) => format!(
            "AUDIT TRAIL TAMPERED: {problem} ({} rows verified before it).\n",
            v.rows
        ),
    }
}

pub fn sinks(sinks: &[SinkView]) -> String {
    if sinks.is_empty() {
        return "No SIEM sinks are configured ([siem.sinks] in jitd.toml).\n".into();
    }
    let rows = sinks
        .iter()
        .map(|s| {
            vec![
                clean(&s.name).into_owned(),
                s.transport.clone(),
                clean(&s.destination).into_owned(),
                s.through.to_string(),
                s.behind.to_string(),
                s.lag_secs.map_or("-".into(), |secs| format!("{secs}s")),
                s.delivered_at.clone().unwrap_or_else(|| "never".into()),
                s.last_error
                    .as_deref()
                    .map_or("-".into(), |e| clean(e).into_owned()),
            ]
        })
        .collect();
    table(
        &[
            "SINK",
            "TRANSPORT",
            "TO",
            "THROUGH",
            "BEHIND",
            "LAG",
            "LAST DELIVERY",
            "ERROR",
        ],
        rows,
    )
}

pub fn status(s: &StatusView) -> String {
    let mut out = String::new();
    let roles = if s.roles.is_empty() {
        "requester".into()
    } else {
        s.roles.join(", ")
    };
    let _ = writeln!(out, "jitd {} running since {}", s.version, s.started_at);
    let _ = writeln!(out, "you: {} ({roles})", clean(&s.you));
    let _ = writeln!(
        out,
        "requests: {} pending, {} scheduled, {} active",
        s.pending, s.scheduled, s.active
    );
    for warning in &s.warnings {
        let _ = writeln!(out, "WARNING: {}", clean(warning));
    }
    for schedule in &s.oncall {
        let name = clean(&schedule.name);
        let _ = match (schedule.shifts, &schedule.problem) {
            (Some(shifts), _) if schedule.on_call.is_empty() => {
                writeln!(out, "on call ({name}): nobody now ({shifts} shifts)")
            }
            (Some(shifts), _) => writeln!(
                out,
                "on call ({name}): {} ({shifts} shifts)",
                clean(&schedule.on_call.join(", "))
            ),
            (None, problem) => writeln!(
                out,
                "on call ({name}): BROKEN, nobody is on call: {}",
                clean(problem.as_deref().unwrap_or("unknown"))
            ),
        };
    }
    if s.resources.is_empty() {
        let _ = writeln!(out, "You may not request any resource.");
        return out;
    }
    let rows = s
        .resources
        .iter()
        .map(|r| {
            vec![
                r.name.clone(),
                r.sensitivity.clone(),
                if r.privileged {
                    "yes".into()
                } else {
                    "no".into()
                },
                r.environment.clone(),
                humanize_secs(r.max_duration_secs),
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            "RESOURCE",
            "SENSITIVITY",
            "PRIVILEGED",
            "ENVIRONMENT",
            "MAX",
        ],
        rows,
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ApprovalView;
    use crate::core::risk::RiskAssessment;

    fn hostile() -> RequestView {
        let evil = "\x1b[2J\x1b]52;c;cm0gLXJmIH4=\x07ok\rFAKE\u{202e}txt";
        RequestView {
            id: 7,
            kind: "grant".into(),
            extends: None,
            user: format!("al{evil}ice"),
            uid: 1000,
            resource: "sudo".into(),
            state: "pending".into(),
            reason: evil.into(),
            ticket: Some(evil.into()),
            duration_secs: 1800,
            requested_at: "2026-11-24T10:00:00Z".into(),
            starts_at: None,
            expires_at: None,
            activate_by: None,
            ended_at: None,
            ended_by: None,
            route: "dual".into(),
            policy: None,
            ticket_check: None,
            risk: RiskAssessment {
                score: 85,
                factors: vec![],
            },
            approvals: vec![ApprovalView {
                who: evil.into(),
                uid: 1001,
                role: "manager".into(),
                verdict: "approve".into(),
                comment: evil.into(),
                when: "2026-11-24T10:01:00Z".into(),
            }],
            awaiting: vec!["security".into()],
            changes: Some(crate::core::changes::Changes {
                changes: vec![crate::core::changes::Change {
                    kind: crate::core::changes::Kind::Cron,
                    path: format!("/etc/cron.d/{evil}"),
                    what: crate::core::changes::What::Added,
                }],
                truncated: true,
                truncated_places: [format!("/home/{evil}")].into(),
            }),
            account: Some(crate::api::AccountView {
                name: format!("db{evil}a"),
                checked_out: true,
            }),
            notifications: Some(vec![crate::api::NotificationView {
                id: 3,
                event: "scored".into(),
                channel: "hook".into(),
                to: "sec-slack".into(),
                subject: "jit: request".into(),
                state: "pending".into(),
                attempts: 2,
                queued_at: "2026-11-24T10:00:00Z".into(),
                delivered_at: None,
                last_error: Some(evil.into()),
            }]),
            break_glass: true,
            follow_up: Some(CaseView {
                status: "awaiting review".into(),
                justify_by: "2026-11-25T10:00:00Z".into(),
                overdue: false,
                justification: Some(evil.into()),
                justified_at: Some("2026-11-24T11:00:00Z".into()),
                reviews: vec![ApprovalView {
                    who: evil.into(),
                    uid: 1002,
                    role: "security".into(),
                    verdict: "unjustified".into(),
                    comment: evil.into(),
                    when: "2026-11-24T12:00:00Z".into(),
                }],
                awaiting_reviews: vec!["manager".into()],
                incidents: vec![3],
                closed_at: None,
            }),
        }
    }

    fn hostile_incident() -> IncidentView {
        let evil = "\x1b[2J\x07\u{202e}";
        IncidentView {
            id: 3,
            grant: 7,
            user: evil.into(),
            resource: "sudo".into(),
            opened_at: "2026-11-24T12:00:00Z".into(),
            opened_by: evil.into(),
            comment: evil.into(),
        }
    }

    fn assert_inert(text: &str) {
        assert!(
            !text
                .chars()
                .any(|c| (c.is_control() && c != '\n') || c == '\u{202e}'),
            "control characters reached the terminal: {text:?}"
        );
    }

    #[test]
    fn hostile_text_is_escaped_in_every_view() {
        let v = hostile();
        assert_inert(&detail(&v));
        assert_inert(&list(std::slice::from_ref(&v)));
        assert_inert(&summary(&v));
        assert_inert(&break_glass(&v));
        let incident = hostile_incident();
        assert_inert(&incidents(std::slice::from_ref(&incident)));
        assert_inert(&self::incident(&incident));
        let shown = detail(&v);
        assert!(shown.contains("incident    3"), "{shown}");
        assert!(shown.contains("reviews awaited: manager"), "{shown}");
        assert!(
            shown.contains("changed     truncated: not every place was read: /home/\\u{1b}"),
            "{shown}"
        );
        assert!(
            shown.contains(
                "reason      \\u{1b}[2J\\u{1b}]52;c;cm0gLXJmIH4=\\u{7}ok\\rFAKE\\u{202e}txt"
            ),
            "{shown}"
        );
    }

    #[test]
    fn list_columns_are_aligned() {
        let mut a = hostile();
        a.user = "alice".into();
        a.reason = "short".into();
        let mut b = a.clone();
        b.id = 1234;
        b.user = "bartholomew".into();
        let out = list(&[a, b]);
        let starts: Vec<usize> = out
            .lines()
            .map(|l| l.find("pending").or(l.find("STATE")).unwrap())
            .collect();
        assert!(starts.windows(2).all(|w| w[0] == w[1]), "{out}");
    }

    #[test]
    fn a_scheduled_request_shows_its_start_everywhere() {
        let mut v = hostile();
        v.starts_at = Some("2026-12-07T01:00:00Z".into());
        assert!(
            summary(&v).contains(", to start at 2026-12-07T01:00:00Z. Approvers run"),
            "{}",
            summary(&v)
        );
        v.state = "scheduled".into();
        assert_eq!(
            summary(&v),
            "Request 7: scheduled: active from 2026-12-07T01:00:00Z for 30m (dual route, risk 85)."
        );
        assert!(detail(&v).contains("\nstarts      2026-12-07T01:00:00Z\n"));
        assert!(list(&[v.clone()]).contains("from 2026-12-07T01:00:00Z"));
        v.expires_at = Some("2026-12-07T01:30:00Z".into());
        assert!(!list(&[v]).contains("from "));
    }

    #[test]
    fn status_says_who_is_on_call_or_why_nobody_is() {
        let schedule =
            |name: &str, shifts, on_call: &[&str], problem: Option<&str>| crate::api::OnCallView {
                name: name.into(),
                file: format!("/etc/jit/oncall/{name}.shifts"),
                shifts,
                on_call: on_call.iter().map(|s| s.to_string()).collect(),
                problem: problem.map(str::to_owned),
            };
        let s = StatusView {
            version: "0.1.0".into(),
            started_at: "2026-12-06T22:00:00Z".into(),
            you: "root".into(),
            roles: vec![],
            pending: 0,
            scheduled: 0,
            active: 0,
            next_deadline_secs: None,
            resources: vec![],
            warnings: vec![],
            oncall: vec![
                schedule("primary", Some(12), &["alice", "bob"], None),
                schedule("backup", Some(3), &[], None),
                schedule(
                    "db",
                    None,
                    &[],
                    Some("/etc/jit/oncall/db.shifts:2:7: 'x\x1b[2J'"),
                ),
            ],
        };
        let out = status(&s);
        assert!(
            out.contains("on call (primary): alice, bob (12 shifts)\n"),
            "{out}"
        );
        assert!(
            out.contains("on call (backup): nobody now (3 shifts)\n"),
            "{out}"
        );
        assert!(
            out.contains(
                "on call (db): BROKEN, nobody is on call: /etc/jit/oncall/db.shifts:2:7: 'x\\u{1b}[2J'\n"
            ),
            "{out}"
        );
    }
}
