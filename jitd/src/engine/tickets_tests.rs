//! Ticket checks in the engine (W1.11): who makes jitd ask the validator,
//! and what its answer does to a request routed by risk or by a rule.

use std::time::Duration;

use super::tests::{person, Fixture};
use super::*;
use crate::core::model::Route;
use crate::core::tickets::{Stage, TicketCheck, Verdict};
use crate::core::workflow::Submission;
use crate::directory::Person;

/// "fix" routes owner (olivia), and alice's policy rule approves it.
fn config(when_down: &str) -> String {
    format!(
        r#"
[[resource]]
name = "fix"
owners = ["user:olivia"]
eligible = ["user:alice", "user:bob"]
max_duration = "4h"
require_ticket = true

[[policy]]
name = "alice-fixes"
users = ["alice"]
resources = ["fix"]
max_duration = "1h"
action = "approve"

[[resource]]
name = "prod"
privileged = true
owners = ["user:olivia"]
eligible = ["user:alice"]
max_duration = "4h"
require_ticket = true

[[policy]]
name = "lower-prod"
users = ["alice"]
resources = ["prod"]
max_duration = "1h"
ticket = "INC-[0-9]+"
action = "lower"

[tickets]
url = "https://itsm.example/validate"
when_down = "{when_down}"
"#
    )
}

fn alice() -> Person {
    person(61001, "alice")
}

fn check(verdict: Verdict, stage: Stage) -> TicketCheck {
    match verdict {
        Verdict::Unavailable => TicketCheck::unavailable("timed out", stage, 1),
        v => TicketCheck {
            verdict: v,
            title: "Patch".into(),
            message: String::new(),
            stage,
            at: 1,
        },
    }
}

fn submit(engine: &mut Engine, who: &Person, check: Option<TicketCheck>) -> Result<Request> {
    engine
        .submit_new(
            who,
            NewRequest {
                resource: "fix",
                duration: Duration::from_secs(1800),
                reason: "patch",
                ticket: Some("INC-1"),
                starts_at: None,
                ticket_check: check,
            },
        )
        .map(|(req, _)| req)
}

/// A 30-minute request with `ticket`.
fn sub(ticket: Option<&str>) -> Submission<'_> {
    Submission {
        duration: Duration::from_secs(1800),
        reason: "patch",
        ticket,
    }
}

#[test]
fn the_validator_is_asked_only_for_what_would_be_accepted() {
    let f = Fixture::with(&config("refuse"));
    let (mut engine, _) = f.open();
    let ask = engine
        .request_ticket_ask(&alice(), "fix", &sub(Some("INC-1")))
        .unwrap();
    assert_eq!(
        (ask.requester.as_str(), ask.stage),
        ("alice", Stage::Request)
    );
    let oscar = person(61007, "oscar");
    assert!(engine
        .request_ticket_ask(&oscar, "fix", &sub(Some("INC-1")))
        .is_none());
    assert!(engine
        .request_ticket_ask(&alice(), "fix", &sub(None))
        .is_none());
    let long = "I".repeat(4096);
    assert!(engine
        .request_ticket_ask(&alice(), "fix", &sub(Some(&long)))
        .is_none());
    assert!(engine
        .request_ticket_ask(&alice(), "logs", &sub(Some("INC-1")))
        .is_none());

    for refused in [
        Submission {
            duration: Duration::from_secs(5 * 3600),
            ..sub(Some("INC-1"))
        },
        Submission {
            reason: "",
            ..sub(Some("INC-1"))
        },
    ] {
        assert!(engine
            .request_ticket_ask(&alice(), "fix", &refused)
            .is_none());
    }

    // bob's request routes to olivia: only she makes jitd ask again.
    let req = submit(
        &mut engine,
        &person(61002, "bob"),
        Some(check(Verdict::Valid, Stage::Request)),
    )
    .unwrap();
    assert_eq!(req.state, State::Pending);
    let olivia = person(61003, "olivia");
    let ask = engine
        .approval_ticket_ask(&olivia, req.id, "ok")
        .unwrap()
        .unwrap();
    assert_eq!(
        (ask.requester.as_str(), ask.stage),
        ("bob", Stage::Approval)
    );
    assert!(engine
        .approval_ticket_ask(&alice(), req.id, "ok")
        .unwrap()
        .is_none());
    assert!(engine
        .approval_ticket_ask(&person(61002, "bob"), req.id, "ok")
        .unwrap()
        .is_none());
}

#[test]
fn a_ticket_nobody_could_check_goes_to_people_or_is_refused() {
    let f = Fixture::with(&config("approvers"));
    let (mut engine, _) = f.open();
    let valid = submit(
        &mut engine,
        &alice(),
        Some(check(Verdict::Valid, Stage::Request)),
    )
    .unwrap();
    assert_eq!((valid.route, valid.state), (Route::Policy, State::Active));
    engine.revoke(&alice(), valid.id, "done").unwrap();
    let down = submit(
        &mut engine,
        &alice(),
        Some(check(Verdict::Unavailable, Stage::Request)),
    )
    .unwrap();
    assert_eq!((down.route, down.state), (Route::Owner, State::Pending));
    assert_eq!(down.policy, None, "no rule decides an unchecked ticket");
    assert_eq!(down.ticket_check.unwrap().verdict, Verdict::Unavailable);
    let invalid = submit(
        &mut engine,
        &alice(),
        Some(check(Verdict::Invalid, Stage::Request)),
    );
    assert!(
        matches!(invalid, Err(EngineError::TicketRefused { .. })),
        "{invalid:?}"
    );

    // A caller that did not check (or checked for another stage) is a
    // validator that is down: refused where so configured.
    let f = Fixture::with(&config("refuse"));
    let (mut engine, _) = f.open();
    for unchecked in [None, Some(check(Verdict::Valid, Stage::Approval))] {
        let refused = submit(&mut engine, &alice(), unchecked);
        assert!(
            matches!(
                refused,
                Err(EngineError::TicketRefused {
                    verdict: Verdict::Unavailable,
                    ..
                })
            ),
            "{refused:?}"
        );
    }
}

#[test]
fn no_rule_lowers_on_a_ticket_nobody_could_check() {
    let f = Fixture::with(&config("approvers"));
    let (mut engine, _) = f.open();
    let new = |check| NewRequest {
        resource: "prod",
        duration: Duration::from_secs(1800),
        reason: "patch",
        ticket: Some("INC-1"),
        starts_at: None,
        ticket_check: Some(check),
    };
    let (lowered, _) = engine
        .submit_new(&alice(), new(check(Verdict::Valid, Stage::Request)))
        .unwrap();
    assert_eq!(
        (lowered.route, lowered.policy.as_deref()),
        (Route::Owner, Some("lower-prod"))
    );
    engine.revoke(&alice(), lowered.id, "done").unwrap();
    let (unchecked, _) = engine
        .submit_new(&alice(), new(check(Verdict::Unavailable, Stage::Request)))
        .unwrap();
    assert_eq!((unchecked.route, unchecked.policy), (Route::Dual, None));
}

#[test]
fn an_extension_of_a_checked_ticket_goes_to_people() {
    let f = Fixture::with(&config("refuse"));
    let (mut engine, _) = f.open();
    let grant = submit(
        &mut engine,
        &alice(),
        Some(check(Verdict::Valid, Stage::Request)),
    )
    .unwrap();
    assert_eq!(grant.state, State::Active, "approved by alice's rule");
    let (extension, _) = engine
        .extend(&alice(), grant.id, Duration::from_secs(600), "longer")
        .unwrap();
    assert_eq!(
        (extension.route, extension.state),
        (Route::Owner, State::Pending),
        "checked again at its approval, never by risk alone"
    );
    let olivia = person(61003, "olivia");
    let ask = engine
        .approval_ticket_ask(&olivia, extension.id, "ok")
        .unwrap()
        .unwrap();
    assert_eq!((ask.ticket.as_str(), ask.stage), ("INC-1", Stage::Approval));
}
