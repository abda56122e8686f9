//! Unused grants against a real store and a hand-driven clock: the
//! revocation at `revoke_unused_after`, a session that wins the race, the
//! deadline across a restart and while jitd was down, and the usage query.

use std::time::Duration;

use crate::directory::Person;
use crate::store::SessionRecord;

use super::tests::{events_named, person, state_of, Fixture};
use super::*;

/// `ops`: auto-approved (low, staging, under an hour), revoked unused
/// after 30 minutes; `logs` (CONFIG's) without the option.
const OPS: &str = r#"
[[resource]]
name = "ops"
sensitivity = "low"
environment = "staging"
eligible = ["user:alice", "user:bob"]
max_duration = "4h"
revoke_unused_after = "30m"
"#;

const MINUTE: u64 = 60;

fn alice() -> Person {
    person(61001, "alice")
}

fn grant(engine: &mut Engine, resource: &str) -> RequestId {
    let (req, _) = engine
        .submit(
            &alice(),
            resource,
            Duration::from_secs(50 * MINUTE),
            "look",
            None,
        )
        .unwrap();
    assert_eq!(req.state, State::Active);
    req.id
}

/// A sudo session of `uid`'s under `grant`, admitted as the gate admits
/// it (journaled; its row not written yet).
fn admit(engine: &Engine, grant: RequestId, resource: &str, uid: Uid) -> Result<SessionRecord> {
    let session = crate::test_support::sudo_session(grant, uid, std::process::id());
    engine.admitter().admit(session, resource).map(|(s, _)| s)
}

fn ended(events: &[Event], id: RequestId) -> bool {
    events.iter().any(
        |e| matches!(e, Event::Ended { id: ended, reason: State::Revoked, .. } if *ended == id),
    )
}

/// No session within 30 minutes of the start: revoked by jitd, with the
/// reason, and its processes end (Ended); a registration after it finds no
/// grant. A resource without the option keeps its unused grant.
#[test]
fn a_grant_nobody_used_is_revoked_when_its_time_is_up() {
    let f = Fixture::with(OPS);
    let (mut engine, _) = f.open();
    let ops = grant(&mut engine, "ops");
    let logs = grant(&mut engine, "logs");
    f.clock.advance(30 * MINUTE - 1);
    assert!(engine.tick().unwrap().is_empty());
    assert_eq!(state_of(&engine, ops), State::Active);
    f.clock.advance(1);
    let events = engine.tick().unwrap();
    assert!(ended(&events, ops), "{events:?}");
    assert_eq!(state_of(&engine, ops), State::Revoked);
    assert_eq!(state_of(&engine, logs), State::Active);
    let revoked = engine
        .audit(&person(0, "root"), 0)
        .unwrap()
        .into_iter()
        .find(|a| a.request == Some(ops) && a.event == "revoked")
        .unwrap();
    assert_eq!((revoked.actor.as_str(), revoked.actor_uid), ("jitd", None));
    assert_eq!(revoked.detail["reason"], "unused");
    assert_eq!(revoked.detail["unused_after_secs"], 1800);
    assert_eq!(
        revoked.detail["comment"],
        "no session within 30m of its start"
    );
    assert_eq!(engine.load(ops).unwrap().ended_by.as_deref(), Some("jitd"));
    assert!(matches!(
        admit(&engine, ops, "ops", 61001),
        Err(EngineError::NoGrant { .. })
    ));
}

/// A session admitted just before the deadline (journaled, its row not
/// written yet) wins: the grant stays; so does one used long before.
#[test]
fn a_session_admitted_before_the_deadline_wins() {
    let f = Fixture::with(OPS);
    let (mut engine, _) = f.open();
    let early = grant(&mut engine, "ops");
    admit(&engine, early, "ops", 61001).unwrap();
    engine.write_admitted().unwrap();
    f.clock.advance(30 * MINUTE - 1);
    let (late, _) = engine
        .submit(
            &person(61002, "bob"),
            "ops",
            Duration::from_secs(50 * MINUTE),
            "look",
            None,
        )
        .unwrap();
    f.clock.advance(1);
    assert!(engine.tick().unwrap().is_empty(), "used long before");
    f.clock.advance(30 * MINUTE - 2);
    admit(&engine, late.id, "ops", 61002).unwrap();
    assert_eq!(engine.admitted_unwritten(), 1);
    f.clock.advance(1);
    assert!(!ended(&engine.tick().unwrap(), late.id));
    assert_eq!(state_of(&engine, late.id), State::Active);
    assert_eq!(engine.sessions_of(late.id).unwrap().len(), 1);
}

/// The deadline is recomputed from the store at start (from the grant's
/// `granted` event, not the restart); one that passed while jitd was down
/// is handled before jitd serves.
#[test]
fn the_deadline_survives_a_restart_and_one_missed_while_down_ends_at_start() {
    let f = Fixture::with(OPS);
    let (mut engine, _) = f.open();
    let kept = grant(&mut engine, "ops");
    drop(engine);
    f.clock.advance(10 * MINUTE);
    let (mut engine, events) = f.open();
    assert!(events.is_empty(), "{events:?}");
    f.clock.advance(20 * MINUTE - 1);
    assert!(engine.tick().unwrap().is_empty());
    f.clock.advance(1);
    assert!(ended(&engine.tick().unwrap(), kept));

    let missed = grant(&mut engine, "ops");
    drop(engine);
    f.clock.advance(45 * MINUTE);
    let (engine, events) = f.open();
    assert!(ended(&events, missed), "{events:?}");
    assert_eq!(state_of(&engine, missed), State::Revoked);
}

/// An extension does not move the deadline: it counts from the start.
#[test]
fn an_extension_keeps_the_deadline_from_the_start() {
    let f = Fixture::with(OPS);
    let (mut engine, _) = f.open();
    let id = grant(&mut engine, "ops");
    f.clock.advance(20 * MINUTE);
    engine
        .extend(&alice(), id, Duration::from_secs(20 * MINUTE), "more")
        .unwrap();
    f.clock.advance(10 * MINUTE);
    assert!(ended(&engine.tick().unwrap(), id));
    let mut events = events_named(&mut engine, id);
    events.retain(|e| e != "scored");
    assert_eq!(events.last().map(String::as_str), Some("revoked"));
}

/// What `jitctl report unused` reads: grants active within the period,
/// with their sessions and how long they were used; unused ones alone.
#[test]
fn grant_usage_lists_unused_grants_and_how_long_others_were_used() {
    let f = Fixture::with(OPS);
    let (mut engine, _) = f.open();
    let root = person(0, "root");
    let since = engine.now();
    let used = grant(&mut engine, "logs");
    f.clock.advance(5 * MINUTE);
    admit(&engine, used, "logs", 61001).unwrap();
    f.clock.advance(5 * MINUTE);
    let unused = grant(&mut engine, "ops");
    f.clock.advance(10 * MINUTE);
    let all = engine.grant_usage(&root, since, false).unwrap();
    let rows: Vec<_> = all
        .iter()
        .map(|g| (g.grant, g.sessions, g.granted_secs, g.used_secs))
        .collect();
    assert_eq!(
        rows,
        [
            (used, 1, 20 * 60, Some(15 * 60)),
            (unused, 0, 10 * 60, None)
        ]
    );
    assert_eq!(all[0].first_session_at, Some(since + 5 * 60));
    assert_eq!(all[0].last_session_end, None, "its session is still open");
    assert_eq!(all[1].resource, "ops");
    let only: Vec<_> = engine
        .grant_usage(&root, since, true)
        .unwrap()
        .iter()
        .map(|g| g.grant)
        .collect();
    assert_eq!(only, [unused]);
    // Ended before the period: not listed.
    engine.revoke(&alice(), used, "done").unwrap();
    f.clock.advance(MINUTE);
    let later: Vec<_> = engine
        .grant_usage(&root, engine.now(), false)
        .unwrap()
        .iter()
        .map(|g| g.grant)
        .collect();
    assert_eq!(later, [unused]);
    assert!(matches!(
        engine.grant_usage(&alice(), since, true),
        Err(EngineError::NotAuditor)
    ));
}
