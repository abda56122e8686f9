//! Golden tests of every report, text and JSON, on a database seeded
//! through the engine itself (its store, its audit events) with a
//! hand-driven clock. `JIT_UPDATE_GOLDEN=1 cargo test -p jitd reports`
//! rewrites the files in `golden/` after a deliberate change.

use std::path::PathBuf;
use std::time::Duration;

use super::super::step_up_tests::{enrolled, next_code, VAULT};
use super::super::tests::{person, Fixture};
use super::*;
use crate::cli::render::json;
use crate::cli::reports::{
    denied_text, emergency_text, mtta_text, standing_text, unused_text, usage_text,
};
use crate::core::model::{RequestId, State};
use crate::core::standing::{self as standing_core, Finding, Kind};
use crate::engine::EngineError;
use crate::store::{AuditEvent, SessionRecord};

/// `sudo` (privileged: the dual route, bob's break-glass), a tighter SLA
/// for owners than the default, and (in [`VAULT`]) `notes`: auto, but its
/// holder activates it with a second factor.
const MORE: &str = r#"
[[resource]]
name = "sudo"
privileged = true
eligible = ["user:alice", "user:bob"]
break_glass = ["user:bob"]
max_duration = "4h"
[[resource]]
name = "ops"
sensitivity = "low"
environment = "staging"
eligible = ["user:alice", "user:bob"]
max_duration = "4h"
revoke_unused_after = "30m"
[reports.sla]
owner = "20m"
[risk.weights]
recent_denial = 0
recent_break_glass = 0
"#;

const DAY: u64 = 86400;

fn alice() -> Person {
    person(61001, "alice")
}
fn bob() -> Person {
    person(61002, "bob")
}
fn olivia() -> Person {
    person(61006, "olivia")
}
fn mike() -> Person {
    person(61004, "mike")
}
fn sam() -> Person {
    person(61005, "sam")
}
fn root() -> Person {
    person(0, "root")
}

/// A session of `grant` (held by `uid`, for `resource`) opened now.
fn open_session(engine: &mut Engine, grant: RequestId, uid: u32, resource: &str) -> u64 {
    let session = SessionRecord {
        id: 0,
        grant,
        uid,
        service: "sudo".into(),
        tty: "/dev/pts/1".into(),
        rhost: String::new(),
        pid: 4242,
        started: None,
        cgroup: None,
        opened_at: 0,
        closed_at: None,
    };
    let (session, _) = engine.admitter().admit(session, resource).unwrap();
    engine.write_admitted().unwrap();
    session.id
}

/// What jitd's timer does on time: the expiry warning, then the expiry.
fn settle(engine: &mut Engine) {
    engine.tick().unwrap();
    engine.tick().unwrap();
}

fn submit(engine: &mut Engine, who: &Person, resource: &str, mins: u64, why: &str) -> RequestId {
    let (req, _) = engine
        .submit(who, resource, Duration::from_secs(mins * 60), why, None)
        .unwrap();
    req.id
}

/// A standing-privilege scan at `at` that found `kinds`.
fn put_scan(engine: &mut Engine, at: UnixTime, kinds: &[Kind]) {
    let report = standing_core::Report {
        findings: kinds
            .iter()
            .enumerate()
            .map(|(i, kind)| Finding {
                kind: *kind,
                principal: format!("user{i}"),
                target: "root".into(),
                how: "/etc/sudoers".into(),
                why: "no gate".into(),
            })
            .collect(),
        ..standing_core::Report::default()
    };
    engine
        .store
        .write(|w| w.put_scan(at, "sam", &report).map(|_| ()))
        .unwrap();
}

/// An audit event `event` with `detail`, written at `at` by `actor`.
fn put_event(
    engine: &mut Engine,
    at: UnixTime,
    actor: Option<&Person>,
    event: &str,
    detail: serde_json::Value,
) {
    engine
        .store
        .write(|w| {
            w.audit(&AuditEvent {
                at,
                actor_uid: actor.map(|p| p.uid),
                actor: actor.map_or("jitd", |p| p.name.as_str()),
                event,
                request: None,
                detail,
            })
            .map(|_| ())
        })
        .unwrap();
}

/// mallory's denials as the flusher writes them (the first at once, the
/// repeats when the window closes), her alert, and an overflow window.
fn put_denials(engine: &mut Engine, now: UnixTime) {
    let mallory = person(61007, "mallory");
    let denial = |service: &str, count: u64, first: i64, last: i64, repeats: bool| {
        serde_json::json!({
            "user": "mallory", "uid": 61007, "resource": "sudo", "service": service,
            "tty": "/dev/pts/3", "rhost": "", "count": count, "first": first, "last": last,
            "repeats": repeats,
        })
    };
    put_event(
        engine,
        now,
        Some(&mallory),
        "access_denied",
        denial("sudo", 1, now, now, false),
    );
    put_event(
        engine,
        now + 540,
        Some(&mallory),
        "access_denied",
        denial("sudo", 14, now + 5, now + 540, true),
    );
    put_event(
        engine,
        now + 30,
        Some(&mallory),
        "access_denied",
        denial("sshd", 1, now + 30, now + 30, false),
    );
    put_event(
        engine,
        now + 40,
        Some(&mallory),
        "access_denied_repeatedly",
        serde_json::json!({
            "user": "mallory", "uid": 61007, "attempts": 10, "resources": ["sudo"],
            "first": now, "last": now + 40, "window_secs": 600,
        }),
    );
    put_event(
        engine,
        now + 600,
        None,
        "access_denied_overflow",
        serde_json::json!({
            "tty": "", "rhost": "", "count": 40, "first": now + 1, "last": now + 600,
            "repeats": true, "max_tracked": 1024,
        }),
    );
}

/// A month of use, compressed: every kind of request each report counts,
/// one made before the window, and what is still open at its end.
fn seeded() -> (Fixture, Engine, UnixTime) {
    let f = Fixture::with(&format!("{VAULT}{MORE}"));
    let (mut engine, _) = f.open();
    let app = enrolled(&mut engine, &f, &alice());
    // Before the window: left out of every report (but the first scan,
    // the baseline of the trend).
    submit(&mut engine, &alice(), "logs", 30, "last month");
    let before = engine.now();
    put_scan(
        &mut engine,
        before,
        &[
            Kind::Sudoers,
            Kind::Sudoers,
            Kind::Uid0,
            Kind::RootKey,
            Kind::SuPassword,
        ],
    );
    put_event(
        &mut engine,
        before,
        Some(&person(61007, "mallory")),
        "access_denied",
        serde_json::json!({"user": "mallory", "uid": 61007, "resource": "db", "service": "sudo",
                           "count": 3, "first": before, "last": before}),
    );
    f.clock.advance(2 * DAY);
    settle(&mut engine);
    let since = engine.now() - DAY as i64;

    // auto, granted at once; one 5-minute session.
    let logs = submit(&mut engine, &alice(), "logs", 30, "rotate logs");
    f.clock.advance(60);
    let s = open_session(&mut engine, logs, 61001, "logs");
    f.clock.advance(300);
    engine.close_sessions(&[s]).unwrap();
    f.clock.advance(1500);
    settle(&mut engine); // expired after its 30 minutes

    // owner, approved after 30 minutes (SLA 20m); two overlapping
    // sessions and one inside the first (900 s covered in all), then
    // revoked by its holder after an hour.
    let db = submit(&mut engine, &alice(), "db", 120, "migrate the schema");
    f.clock.advance(1800);
    engine.approve(&olivia(), db, "ok", None).unwrap();
    let first = open_session(&mut engine, db, 61001, "db");
    f.clock.advance(60);
    let inner = open_session(&mut engine, db, 61001, "db");
    f.clock.advance(60);
    engine.close_sessions(&[inner]).unwrap();
    f.clock.advance(180);
    let second = open_session(&mut engine, db, 61001, "db");
    f.clock.advance(300);
    engine.close_sessions(&[first]).unwrap();
    f.clock.advance(300);
    engine.close_sessions(&[second]).unwrap();
    f.clock.advance(2700);
    engine.revoke(&alice(), db, "done").unwrap();

    // owner, denied; owner, withdrawn before a decision.
    let denied = submit(&mut engine, &alice(), "db", 120, "again");
    f.clock.advance(600);
    engine.deny(&olivia(), denied, "use staging").unwrap();
    let withdrawn = submit(&mut engine, &alice(), "db", 120, "oops");
    engine.revoke(&alice(), withdrawn, "").unwrap();

    // dual: the manager after 2 hours, security after 5; never used.
    let sudo = submit(&mut engine, &alice(), "sudo", 60, "kernel update");
    f.clock.advance(2 * 3600);
    engine.approve(&mike(), sudo, "", None).unwrap();
    f.clock.advance(3 * 3600);
    engine.approve(&sam(), sudo, "", None).unwrap();
    f.clock.advance(3600);
    settle(&mut engine);

    // break-glass: bob's, justified late, one verdict each way: an incident.
    let (bg, _) = engine
        .break_glass(
            &bob(),
            "sudo",
            Some(Duration::from_secs(1800)),
            "prod is down\x1b[2J",
        )
        .unwrap();
    let s = open_session(&mut engine, bg.id, 61002, "sudo");
    f.clock.advance(600);
    engine.close_sessions(&[s]).unwrap();
    f.clock.advance(2 * 3600);
    settle(&mut engine); // expired, and its justification overdue
    engine.justify(&bob(), bg.id, "disk full on db1").unwrap();
    engine.review(&mike(), bg.id, "justified", "fine").unwrap();
    engine
        .review(&sam(), bg.id, "unjustified", "should have asked")
        .unwrap();
    // alice's, never justified: overdue, unreviewed.
    let (bg2, _) = engine
        .break_glass(&alice(), "logs", Some(Duration::from_secs(600)), "pager")
        .unwrap();
    f.clock.advance(3600 + 60);
    settle(&mut engine);
    let _ = bg2;

    // auto with MFA step-up: approved at once, activated 2 minutes later.
    let notes = submit(&mut engine, &alice(), "notes", 10, "read notes");
    f.clock.advance(90);
    let code = next_code(&app, &f);
    engine.activate(&alice(), notes, &code).unwrap();
    f.clock.advance(1200);
    settle(&mut engine);

    // auto, revoked by jitd unused after 30 minutes; denials meanwhile; a
    // scan before and after a clean-up.
    submit(&mut engine, &bob(), "ops", 50, "look around");
    let now = engine.now();
    put_scan(
        &mut engine,
        now,
        &[Kind::Sudoers, Kind::Uid0, Kind::RootKey, Kind::SuPassword],
    );
    put_denials(&mut engine, now);
    f.clock.advance(30 * 60);
    settle(&mut engine);
    let now = engine.now();
    put_scan(&mut engine, now, &[Kind::Sudoers, Kind::RootKey]);

    // Still open at the end: an active grant in use, a pending request.
    let active = submit(&mut engine, &alice(), "logs", 50, "still on it");
    f.clock.advance(120);
    open_session(&mut engine, active, 61001, "logs");
    f.clock.advance(240);
    submit(&mut engine, &alice(), "db", 60, "later");
    f.clock.advance(60);
    (f, engine, since)
}

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/engine/reports/golden")
}

/// `actual` is what `golden/NAME` holds (or becomes it, when updating).
#[track_caller]
fn golden(name: &str, actual: &str) {
    let path = golden_dir().join(name);
    if std::env::var_os("JIT_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(golden_dir()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (JIT_UPDATE_GOLDEN=1 writes it)", path.display()));
    assert!(
        expected == actual,
        "{name} differs from {} (JIT_UPDATE_GOLDEN=1 rewrites it):\n{actual}",
        path.display()
    );
}

fn run(engine: &mut Engine, since: UnixTime, kind: ReportKind) -> Report {
    let basis = engine.report_basis(&root(), since).unwrap();
    let db = Reports::open(&basis.state_dir).unwrap();
    report(&db, &basis, kind).unwrap()
}

#[test]
fn every_report_matches_its_golden_text_and_json() {
    let (_f, mut engine, since) = seeded();
    for kind in ReportKind::ALL {
        let report = run(&mut engine, since, kind);
        let text = match &report {
            Report::Emergency(r) => emergency_text(r),
            Report::Mtta(r) => mtta_text(r),
            Report::Usage(r) => usage_text(r),
            Report::Unused(r) => unused_text(r),
            Report::Denied(r) => denied_text(r),
            Report::Standing(r) => standing_text(r),
        };
        golden(&format!("{}.txt", kind.as_str()), &text);
        golden(&format!("{}.json", kind.as_str()), &(json(&report) + "\n"));
    }
}

#[test]
fn the_json_is_the_documented_document() {
    let (_f, mut engine, since) = seeded();
    let Report::Mtta(mtta) = run(&mut engine, since, ReportKind::Mtta) else {
        panic!("not the mtta report");
    };
    let text = json(&mtta);
    let back: crate::api::MttaReport = serde_json::from_str(&text).unwrap();
    assert_eq!(back, mtta);
    let owner = mtta.routes.iter().find(|r| r.route == "owner").unwrap();
    // Granted after 30 minutes, against 20: outside; one denied, one
    // withdrawn; the pending one waits.
    assert_eq!(
        (
            owner.granted,
            owner.p50_secs,
            owner.within_sla,
            owner.not_granted,
            owner.waiting
        ),
        (1, Some(1800), Some(0), 2, 1)
    );
    let auto = mtta.routes.iter().find(|r| r.route == "auto").unwrap();
    assert_eq!((auto.granted, auto.step_up), (4, 1));
    let Report::Usage(usage) = run(&mut engine, since, ReportKind::Usage) else {
        panic!("not the usage report");
    };
    let db = usage.resources.iter().find(|r| r.resource == "db").unwrap();
    // Three sessions, one inside another, two overlapping: 15 minutes.
    assert_eq!((db.granted_secs, db.used_secs), (3600, 900));
}

#[test]
fn unused_denied_and_standing_count_what_was_seeded() {
    let (_f, mut engine, since) = seeded();
    let Report::Unused(unused) = run(&mut engine, since, ReportKind::Unused) else {
        panic!("not the unused report");
    };
    let ops = unused
        .resources
        .iter()
        .find(|r| r.resource == "ops")
        .unwrap();
    assert_eq!((ops.grants, ops.unused, ops.revoked_unused), (1, 1, 1));
    let sudo = unused
        .resources
        .iter()
        .find(|r| r.resource == "sudo")
        .unwrap();
    // The dual grant never used; bob's break-glass used.
    assert_eq!(
        (sudo.grants, sudo.unused, sudo.unused_share),
        (2, 1, Some(0.5))
    );
    let Report::Denied(denied) = run(&mut engine, since, ReportKind::Denied) else {
        panic!("not the denied report");
    };
    // The denial before the window is left out; 1 + 14 + 1, and 40 past max_tracked.
    assert_eq!(denied.attempts.len(), 1);
    let a = &denied.attempts[0];
    assert_eq!(
        (a.count, a.services.clone(), a.flagged),
        (16, vec!["sshd".into(), "sudo".into()], true)
    );
    assert_eq!((denied.overflow.count, denied.total), (40, 56));
    let Report::Standing(standing) = run(&mut engine, since, ReportKind::Standing) else {
        panic!("not the standing report");
    };
    assert_eq!(standing.scans.len(), 2);
    assert_eq!(standing.first.as_ref().map(|f| f.total), Some(5));
    assert_eq!(standing.now.as_ref().map(|n| n.total), Some(2));
    assert_eq!(standing.change_percent, Some(-60.0));
}

/// Auditors too, end to end (`reports::only_root_security_and_auditors_may_run_reports`):
/// this fixture has none.
#[test]
fn root_and_security_run_reports_requesters_and_approvers_are_refused() {
    let (_f, mut engine, since) = seeded();
    for who in [alice(), olivia(), mike()] {
        let refused = engine.report_basis(&who, since);
        assert!(
            matches!(refused, Err(EngineError::NotAuditor)),
            "{}: {refused:?}",
            who.name
        );
    }
    for who in [root(), sam()] {
        assert!(engine.report_basis(&who, since).is_ok(), "{}", who.name);
    }
}

#[test]
fn an_empty_window_reports_nothing_but_the_routes_slas() {
    let (_f, mut engine, _) = seeded();
    let later = engine.now() + 1;
    let Report::Usage(usage) = run(&mut engine, later, ReportKind::Usage) else {
        panic!("not the usage report");
    };
    assert!(usage.resources.is_empty());
    let Report::Mtta(mtta) = run(&mut engine, later, ReportKind::Mtta) else {
        panic!("not the mtta report");
    };
    assert!(mtta
        .routes
        .iter()
        .all(|r| r.granted == 0 && r.sla_secs.is_some()));
}

/// A scheduled request's time to access runs to its approval: waiting for
/// its window (two days) is not waiting for access.
#[test]
fn a_scheduled_grant_counts_to_its_approval_not_its_start() {
    let f = Fixture::with(MORE);
    let (mut engine, _) = f.open();
    let since = engine.now();
    let start = since + 2 * DAY as UnixTime;
    let (req, _) = engine
        .submit_at(
            &alice(),
            "db",
            Duration::from_secs(7200),
            "maintenance window",
            None,
            Some(start),
        )
        .unwrap();
    f.clock.advance(600);
    engine.approve(&olivia(), req.id, "", None).unwrap();
    f.clock.advance(2 * DAY);
    engine.tick().unwrap();
    assert_eq!(engine.load(req.id).unwrap().state, State::Active);
    let Report::Mtta(mtta) = run(&mut engine, since, ReportKind::Mtta) else {
        panic!("not the mtta report");
    };
    let owner = mtta.routes.iter().find(|r| r.route == "owner").unwrap();
    assert_eq!(
        (owner.granted, owner.p50_secs, owner.within_sla),
        (1, Some(600), Some(1))
    );
}
