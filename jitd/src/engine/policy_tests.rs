//! Policy rules in the engine (W1.10): a rule approves at once or lowers
//! the route, `explain_policy` agrees with what `submit` then does, and
//! break-glass and extensions are never decided by a rule.

use std::time::Duration;

use super::tests::{events_named, person, Fixture};
use super::*;
use crate::core::model::{Role, Route};
use crate::directory::Person;

/// "prod" routes dual (privileged, production; risk 60 at first).
const RULES: &str = r#"
[[resource]]
name = "prod"
privileged = true
owners = ["user:olivia"]
eligible = ["user:alice", "user:bob"]
max_duration = "4h"
break_glass = ["user:alice"]

[[policy]]
name = "oncall"
users = ["alice"]
resources = ["prod"]
max_duration = "30m"
action = "approve"

[[policy]]
name = "lower-bob"
users = ["bob"]
resources = ["prod"]
max_duration = "2h"
action = "lower"
"#;

const MIN: u64 = 60;

fn alice() -> Person {
    person(61001, "alice")
}

fn bob() -> Person {
    person(61002, "bob")
}

fn submit(engine: &mut Engine, who: &Person, mins: u64) -> Request {
    engine
        .submit(who, "prod", Duration::from_secs(mins * MIN), "debug", None)
        .unwrap()
        .0
}

/// The route and rule `explain_policy` predicts for `who`, `mins` long.
fn predicted(engine: &Engine, who: &Person, mins: u64) -> (String, Option<String>) {
    let v = engine
        .explain_policy(who, None, "prod", Duration::from_secs(mins * MIN), None)
        .unwrap();
    (v.route, v.policy)
}

fn detail_of(engine: &mut Engine, id: RequestId, event: &str) -> serde_json::Value {
    engine
        .audit(&person(0, "root"), 0)
        .unwrap()
        .into_iter()
        .find(|e| e.request == Some(id) && e.event == event)
        .unwrap()
        .detail
}

#[test]
fn a_rule_approves_at_once_and_says_so_in_the_audit_trail() {
    let f = Fixture::with(RULES);
    let (mut engine, _) = f.open();
    assert_eq!(
        predicted(&engine, &alice(), 30),
        ("policy".into(), Some("oncall".into()))
    );
    let req = submit(&mut engine, &alice(), 30);
    assert_eq!((req.state, req.route), (State::Active, Route::Policy));
    assert_eq!(req.policy.as_deref(), Some("oncall"));
    assert_eq!(req.risk.score, 60, "risk is still computed");
    assert!(engine
        .checker()
        .check(61001, 61001, "prod")
        .unwrap()
        .is_some());
    assert_eq!(
        events_named(&mut engine, req.id),
        ["requested", "scored", "policy_applied", "granted"]
    );
    let granted = detail_of(&mut engine, req.id, "granted");
    assert_eq!(granted["approved_by"], "policy oncall");
    assert_eq!(granted["policy"], "oncall");
    let applied = detail_of(&mut engine, req.id, "policy_applied");
    assert_eq!(applied["action"], "approve");
    assert_eq!(applied["notify"], serde_json::json!(["owners", "security"]));
    assert_eq!(detail_of(&mut engine, req.id, "scored")["policy"], "oncall");
    // Stored: the same after a restart.
    drop(engine);
    let (engine, _) = f.open();
    assert_eq!(
        engine.load(req.id).unwrap().policy.as_deref(),
        Some("oncall")
    );
}

#[test]
fn a_request_no_rule_covers_routes_as_before() {
    let f = Fixture::with(RULES);
    let (mut engine, _) = f.open();
    assert_eq!(predicted(&engine, &alice(), 31), ("dual".into(), None));
    let req = submit(&mut engine, &alice(), 31);
    assert_eq!(
        (req.state, req.route, req.policy),
        (State::Pending, Route::Dual, None)
    );
    let v = engine
        .explain_policy(&alice(), None, "prod", Duration::from_secs(31 * MIN), None)
        .unwrap();
    assert_eq!(v.rules.len(), 2);
    assert!(v.rules[0]
        .unmet
        .as_deref()
        .unwrap()
        .contains("max_duration 30m"));
    assert!(v.rules[1]
        .unmet
        .as_deref()
        .unwrap()
        .contains("alice is not among"));
}

#[test]
fn a_lowering_rule_sends_dual_to_the_owner_and_is_named() {
    let f = Fixture::with(RULES);
    let (mut engine, _) = f.open();
    assert_eq!(
        predicted(&engine, &bob(), 60),
        ("owner".into(), Some("lower-bob".into()))
    );
    let req = submit(&mut engine, &bob(), 60);
    assert_eq!((req.state, req.route), (State::Pending, Route::Owner));
    assert_eq!(req.policy.as_deref(), Some("lower-bob"));
    assert_eq!(req.awaiting(), [Role::Owner]);
    assert_eq!(
        detail_of(&mut engine, req.id, "policy_applied")["action"],
        "lower"
    );
}

#[test]
fn the_risk_ceiling_stops_every_rule() {
    let f = Fixture::with(&format!("{RULES}\n[policy_limits]\nrisk_ceiling = 60\n"));
    let (mut engine, _) = f.open();
    let v = engine
        .explain_policy(&alice(), None, "prod", Duration::from_secs(30 * MIN), None)
        .unwrap();
    assert_eq!((v.route.as_str(), v.policy.as_deref()), ("dual", None));
    assert!(v.skipped.unwrap().contains("reaches the rules' ceiling 60"));
    let req = submit(&mut engine, &alice(), 30);
    assert_eq!((req.route, req.policy), (Route::Dual, None));
}

#[test]
fn break_glass_and_extensions_are_never_decided_by_a_rule() {
    let f = Fixture::with(RULES);
    let (mut engine, _) = f.open();
    let (bg, _) = engine
        .break_glass(
            &alice(),
            "prod",
            Some(Duration::from_secs(20 * MIN)),
            "down",
        )
        .unwrap();
    assert_eq!((bg.route, bg.policy), (Route::BreakGlass, None));
    engine.revoke(&alice(), bg.id, "done").unwrap();
    let grant = submit(&mut engine, &alice(), 10);
    assert_eq!(grant.route, Route::Policy);
    let (ext, _) = engine
        .extend(&alice(), grant.id, Duration::from_secs(5 * MIN), "more")
        .unwrap();
    assert_eq!(
        (ext.state, ext.route, ext.policy),
        (State::Pending, Route::Dual, None)
    );
}

#[test]
fn explaining_for_others_is_for_root_security_and_auditors() {
    let f = Fixture::with(RULES);
    let (engine, _) = f.open();
    let ask = |who: &Person| {
        engine.explain_policy(
            who,
            Some("alice"),
            "prod",
            Duration::from_secs(30 * MIN),
            None,
        )
    };
    assert!(matches!(ask(&bob()), Err(EngineError::NotAuditor)));
    // Root may (NSS knows no alice here: the lookup itself fails after the check).
    assert!(!matches!(
        ask(&person(0, "root")),
        Err(EngineError::NotAuditor)
    ));
    assert!(ask(&alice()).is_ok(), "oneself, by name");
}

/// A rule naming an on-call schedule covers whoever holds a shift in it
/// when they ask, as jitd's `Rosters` read the schedule's file, and nobody
/// else: not one whose shift is over, nor the same person after theirs.
#[test]
fn a_rule_naming_a_schedule_approves_who_is_on_call_in_it() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("primary.shifts");
    // The fixture's clock starts at 2027-01-15T08:00:00Z: alice's shift
    // holds then, bob's ended at 07:00.
    std::fs::write(
        &file,
        "alice 2027-01-15T07:00:00Z 2027-01-15T09:00:00Z\n\
         bob 2027-01-15T05:00:00Z 2027-01-15T07:00:00Z\n",
    )
    .unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let f = Fixture::with(&format!(
        r#"
[[resource]]
name = "prod"
privileged = true
owners = ["user:olivia"]
eligible = ["user:alice", "user:bob"]
max_duration = "4h"

[[policy]]
name = "pager"
oncall = "primary"
resources = ["prod"]
max_duration = "30m"
action = "approve"

[oncall.primary]
file = "{}"
"#,
        file.display()
    ));
    let (mut engine, _) = f.open();
    assert_eq!(
        predicted(&engine, &alice(), 30),
        ("policy".into(), Some("pager".into()))
    );
    let req = submit(&mut engine, &alice(), 30);
    assert_eq!((req.state, req.route), (State::Active, Route::Policy));
    assert_eq!(req.policy.as_deref(), Some("pager"));

    assert_eq!(predicted(&engine, &bob(), 30), ("dual".into(), None));
    let req = submit(&mut engine, &bob(), 30);
    assert_eq!((req.state, req.route), (State::Pending, Route::Dual));
    assert_eq!(req.policy, None);

    // 09:00: alice's shift is over too.
    f.clock.advance(3600);
    assert_eq!(predicted(&engine, &alice(), 30), ("dual".into(), None));
}

/// A request with a later start is not decided by a rule: the rule's
/// window and on-call shift hold when it is asked, not when the grant
/// would start. It goes to approvers as risk routed it.
#[test]
fn a_scheduled_request_is_never_decided_by_a_rule() {
    let f = Fixture::with(RULES);
    let (mut engine, _) = f.open();
    let start = engine.clock.wall() + 3600;
    let (req, _) = engine
        .submit_at(
            &alice(),
            "prod",
            Duration::from_secs(10 * MIN),
            "maintenance",
            None,
            Some(start),
        )
        .unwrap();
    assert_eq!(
        (req.state, req.route, req.policy, req.starts_at),
        (State::Pending, Route::Dual, None, Some(start))
    );
    // The same request without a start is the rule's.
    assert_eq!(submit(&mut engine, &alice(), 10).route, Route::Policy);
}
