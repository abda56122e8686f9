//! Scheduled grants against a real store and a hand-driven clock:
//! approved ahead they wait and start on the deadline path, approved late
//! they end with their window, a start survives a restart, and a window
//! missed while jitd was down lapses instead of starting late.

use std::time::Duration;

use crate::core::model::UnixTime;
use crate::core::workflow::WorkflowError;
use crate::directory::Person;

use super::tests::{events_named, person, state_of, Fixture};
use super::*;

const MINUTE: u64 = 60;

fn alice() -> Person {
    person(61001, "alice")
}

fn olivia() -> Person {
    person(61006, "olivia")
}

/// alice asks for `resource` from `ahead` seconds from now, for `minutes`.
fn ask(engine: &mut Engine, resource: &str, ahead: u64, minutes: u64) -> Request {
    let start = engine.now() + ahead as UnixTime;
    let duration = Duration::from_secs(minutes * MINUTE);
    let (req, _) = engine
        .submit_at(&alice(), resource, duration, "window", None, Some(start))
        .unwrap();
    req
}

fn holds(engine: &Engine, resource: &str) -> bool {
    engine
        .checker()
        .check(61001, 61001, resource)
        .unwrap()
        .is_some()
}

fn activated(events: &[Event], id: RequestId) -> bool {
    events
        .iter()
        .any(|e| matches!(e, Event::Activated { id: a, .. } if *a == id))
}

fn granted_detail(engine: &mut Engine, id: RequestId) -> serde_json::Value {
    engine
        .audit(&person(0, "root"), 0)
        .unwrap()
        .into_iter()
        .find(|e| e.request == Some(id) && e.event == "granted")
        .unwrap()
        .detail
}

/// Approved an hour ahead: `scheduled`, nothing to admit; at its start
/// (the tick) active for its duration, `granted` saying it was scheduled.
#[test]
fn a_grant_approved_ahead_waits_and_starts_at_its_start() {
    let f = Fixture::with("");
    let (mut engine, _) = f.open();
    let req = ask(&mut engine, "db", 60 * MINUTE, 120);
    assert_eq!(req.state, State::Pending);
    let start = req.starts_at.unwrap();
    let (approved, events) = engine.approve(&olivia(), req.id, "", None).unwrap();
    assert_eq!(approved.state, State::Scheduled);
    assert_eq!(approved.expires_at, None);
    assert!(!activated(&events, req.id), "{events:?}");
    assert!(!holds(&engine, "db"));

    f.clock.advance(60 * MINUTE - 1);
    assert!(engine.tick().unwrap().is_empty());
    assert!(!holds(&engine, "db"));
    f.clock.advance(1);
    let events = engine.tick().unwrap();
    assert!(activated(&events, req.id), "{events:?}");
    assert!(holds(&engine, "db"));
    let active = engine.load(req.id).unwrap();
    assert_eq!(active.state, State::Active);
    assert_eq!(active.expires_at, Some(start + 120 * 60));
    assert_eq!(
        events_named(&mut engine, req.id),
        ["requested", "scored", "approved", "scheduled", "granted"]
    );
    let detail = granted_detail(&mut engine, req.id);
    assert_eq!(detail["scheduled"], true, "{detail}");
    assert_eq!(detail["starts_at"], start, "{detail}");
}

/// Auto-approved: scheduled at once. Approved after its start: active at
/// once, until the window's end, not for a full duration from then.
#[test]
fn an_auto_grant_waits_too_and_a_late_approval_ends_with_the_window() {
    let f = Fixture::with("");
    let (mut engine, _) = f.open();
    let auto = ask(&mut engine, "logs", 10 * MINUTE, 30);
    assert_eq!(auto.state, State::Scheduled);
    assert!(!holds(&engine, "logs"));

    let late = ask(&mut engine, "db", 10 * MINUTE, 60);
    let start = late.starts_at.unwrap();
    f.clock.advance(30 * MINUTE);
    assert!(activated(&engine.tick().unwrap(), auto.id));
    let (approved, events) = engine.approve(&olivia(), late.id, "", None).unwrap();
    assert_eq!(approved.state, State::Active);
    assert!(activated(&events, late.id));
    assert_eq!(approved.expires_at, Some(start + 60 * 60));
    assert_eq!(
        granted_detail(&mut engine, late.id)["scheduled"],
        serde_json::Value::Null
    );
}

/// Revoked before its start (by its holder), it never starts.
#[test]
fn a_grant_revoked_before_its_start_never_starts() {
    let f = Fixture::with("");
    let (mut engine, _) = f.open();
    let req = ask(&mut engine, "logs", 10 * MINUTE, 30);
    let (revoked, events) = engine.revoke(&alice(), req.id, "not needed").unwrap();
    assert_eq!(revoked.state, State::Revoked);
    assert!(!events.iter().any(|e| matches!(e, Event::Ended { .. })));
    f.clock.advance(10 * MINUTE);
    assert!(engine.tick().unwrap().is_empty());
    assert_eq!(state_of(&engine, req.id), State::Revoked);
    assert!(!holds(&engine, "logs"));
}

/// A restart before the start keeps it; a start passed while jitd was
/// down starts when jitd does; a window that passed while it was down
/// lapses, never starting late.
#[test]
fn a_start_survives_a_restart_and_a_window_missed_while_down_lapses() {
    let f = Fixture::with("");
    let (mut engine, _) = f.open();
    let kept = ask(&mut engine, "logs", 10 * MINUTE, 30);
    drop(engine);
    f.clock.advance(5 * MINUTE);
    let (mut engine, events) = f.open();
    assert!(events.is_empty(), "{events:?}");
    f.clock.advance(5 * MINUTE);
    assert!(activated(&engine.tick().unwrap(), kept.id));
    engine.revoke(&alice(), kept.id, "done").unwrap();

    let missed_start = ask(&mut engine, "logs", 10 * MINUTE, 30);
    drop(engine);
    f.clock.advance(20 * MINUTE);
    let (mut engine, events) = f.open();
    assert!(activated(&events, missed_start.id), "{events:?}");
    assert_eq!(
        engine.load(missed_start.id).unwrap().expires_at,
        Some(missed_start.starts_at.unwrap() + 30 * 60)
    );
    engine.revoke(&alice(), missed_start.id, "done").unwrap();

    let missed_window = ask(&mut engine, "logs", 10 * MINUTE, 30);
    drop(engine);
    f.clock.advance(45 * MINUTE);
    let (mut engine, events) = f.open();
    assert!(!activated(&events, missed_window.id), "{events:?}");
    assert_eq!(state_of(&engine, missed_window.id), State::Lapsed);
    assert!(!holds(&engine, "logs"));
    let lapsed = engine
        .audit(&person(0, "root"), 0)
        .unwrap()
        .into_iter()
        .find(|e| e.request == Some(missed_window.id) && e.event == "lapsed")
        .unwrap();
    assert_eq!(lapsed.detail["why"], crate::core::schedule::WINDOW_OVER);
}

/// Pending, a scheduled request outlives `pending_ttl` (1h) until its
/// start, then lapses `pending_ttl` into its window (or at its end, if
/// sooner).
#[test]
fn a_scheduled_request_pends_until_its_window_is_under_way() {
    let f = Fixture::with("");
    let (mut engine, _) = f.open();
    let req = ask(&mut engine, "db", 3 * 60 * MINUTE, 120);
    f.clock.advance(3 * 60 * MINUTE + 59 * MINUTE);
    assert!(engine.tick().unwrap().is_empty());
    assert_eq!(state_of(&engine, req.id), State::Pending);
    f.clock.advance(MINUTE);
    engine.tick().unwrap();
    assert_eq!(state_of(&engine, req.id), State::Lapsed);
}

/// A start held up by the holder's own grant of the resource starts when
/// that grant ends, for what is left of its window.
#[test]
fn a_start_waits_for_the_holders_other_grant() {
    let f = Fixture::with("");
    let (mut engine, _) = f.open();
    let scheduled = ask(&mut engine, "logs", 10 * MINUTE, 30);
    let (now, _) = engine
        .submit(
            &alice(),
            "logs",
            Duration::from_secs(20 * MINUTE),
            "now",
            None,
        )
        .unwrap();
    assert_eq!(now.state, State::Active);
    f.clock.advance(10 * MINUTE);
    assert!(!activated(&engine.tick().unwrap(), scheduled.id));
    assert_eq!(state_of(&engine, scheduled.id), State::Scheduled);
    f.clock.advance(10 * MINUTE);
    let events = engine.tick().unwrap();
    assert!(activated(&events, scheduled.id), "{events:?}");
    assert_eq!(state_of(&engine, now.id), State::Expired);
    let started = engine.load(scheduled.id).unwrap();
    assert_eq!(
        started.expires_at,
        Some(scheduled.starts_at.unwrap() + 30 * 60)
    );
}

/// The start must be ahead (a minute's grace is now), and no further
/// than `[limits] start_within` (30 days by default).
#[test]
fn a_start_in_the_past_or_too_far_ahead_is_refused() {
    let f = Fixture::with("");
    let (mut engine, _) = f.open();
    let now = engine.now();
    let hour = Duration::from_secs(3600);
    let refused = |engine: &mut Engine, at: UnixTime| {
        engine
            .submit_at(&alice(), "logs", hour / 2, "w", None, Some(at))
            .map(|(r, _)| r.state)
    };
    assert!(matches!(
        refused(&mut engine, now - 120),
        Err(EngineError::Workflow(WorkflowError::StartPassed(_)))
    ));
    assert!(matches!(
        refused(&mut engine, now + 30 * 24 * 3600 + 1),
        Err(EngineError::Workflow(WorkflowError::StartTooFar { .. }))
    ));
    // A start typed a moment ago is now: active at once.
    assert_eq!(refused(&mut engine, now - 30).unwrap(), State::Active);
}

/// Approved within its window while its holder still holds another grant
/// of the resource: scheduled (its start passed), it starts when that one
/// ends, never as a second grant beside it.
#[test]
fn a_late_approval_beside_the_holders_other_grant_waits_for_it() {
    let f = Fixture::with("");
    let (mut engine, _) = f.open();
    let (held, _) = engine
        .submit(&alice(), "db", Duration::from_secs(2 * 3600), "now", None)
        .unwrap();
    engine.approve(&olivia(), held.id, "", None).unwrap();
    let window = ask(&mut engine, "db", 10 * MINUTE, 180);
    f.clock.advance(20 * MINUTE);
    engine.tick().unwrap();
    let (late, events) = engine.approve(&olivia(), window.id, "", None).unwrap();
    assert_eq!(late.state, State::Scheduled);
    assert!(!activated(&events, window.id), "{events:?}");
    engine.revoke(&alice(), held.id, "done early").unwrap();
    let events = engine.tick().unwrap();
    assert!(activated(&events, window.id), "{events:?}");
    assert_eq!(
        engine.load(window.id).unwrap().expires_at,
        Some(window.starts_at.unwrap() + 180 * 60)
    );
}
