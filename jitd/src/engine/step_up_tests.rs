//! MFA step-up against a real store and a hand-driven clock: approvers'
//! codes, the holder's activation, its deadline across a restart, and
//! break-glass and auto grants that wait for a code too.

use std::time::Duration;

use totp_rs::Totp;

use crate::core::model::Route;
use crate::directory::Person;

use super::tests::{events_named, person, state_of, Fixture};
use super::*;

pub(super) const VAULT: &str = r#"
[mfa]
activate_within = "10m"
[[resource]]
name = "vault"
environment = "staging"
owners = ["user:olivia"]
eligible = ["user:alice"]
break_glass = ["user:alice"]
max_duration = "2h"
require_mfa = true
[[resource]]
name = "notes"
sensitivity = "low"
environment = "staging"
eligible = ["user:alice"]
max_duration = "1h"
require_mfa = true
"#;

fn alice() -> Person {
    person(61001, "alice")
}
fn olivia() -> Person {
    person(61006, "olivia")
}

/// Enrolls `who` (confirmed with the code of now) and returns their app.
pub(super) fn enrolled(engine: &mut Engine, f: &Fixture, who: &Person) -> Totp {
    let uri = engine.mfa_enroll(who).unwrap();
    let app = Totp::from_url(uri.expose()).unwrap();
    engine.mfa_confirm(who, &code(&app, f)).unwrap();
    app
}

/// The code of the next 30-second step: a code is good once, so each use
/// by the same person moves the clock on a step.
pub(super) fn next_code(app: &Totp, f: &Fixture) -> String {
    f.clock.advance(30);
    code(app, f)
}

fn code(app: &Totp, f: &Fixture) -> String {
    app.generate(f.clock.wall_precise().as_secs()).to_string()
}

fn granted(engine: &Engine, id: RequestId) -> bool {
    let req = engine.load(id).unwrap();
    engine
        .checker()
        .check(0, req.uid, &req.resource)
        .unwrap()
        .is_some_and(|(grant, _)| grant == id)
}

#[test]
fn approvers_give_a_code_and_the_holder_activates_with_theirs() {
    let f = Fixture::with(VAULT);
    let (mut engine, _) = f.open();
    let alice_app = enrolled(&mut engine, &f, &alice());
    let olivia_app = enrolled(&mut engine, &f, &olivia());
    let (req, _) = engine
        .submit(&alice(), "vault", Duration::from_secs(3600), "audit", None)
        .unwrap();
    assert_eq!(req.state, State::Pending);

    let bare = engine.approve(&olivia(), req.id, "", None);
    assert!(matches!(bare, Err(EngineError::MfaRequired(_))), "{bare:?}");
    let wrong = engine.approve(&olivia(), req.id, "", Some("000000"));
    assert!(
        matches!(wrong, Err(EngineError::MfaWrongCode { .. })),
        "{wrong:?}"
    );
    assert_eq!(state_of(&engine, req.id), State::Pending);
    let olivia_code = next_code(&olivia_app, &f);
    let (approved, events) = engine
        .approve(&olivia(), req.id, "", Some(&olivia_code))
        .unwrap();
    assert_eq!(approved.state, State::Approved);
    let approved_at = f.clock.wall_precise().as_secs() as UnixTime;
    assert_eq!(approved.activate_by, Some(approved_at + 600));
    assert_eq!(approved.expires_at, None);
    assert!(!events.iter().any(|e| matches!(e, Event::Activated { .. })));
    assert!(!granted(&engine, req.id), "usable before the holder's code");

    // Only the holder, only with their own code, and only once per code.
    let alice_code = next_code(&alice_app, &f);
    let by_other = engine.activate(&olivia(), req.id, &alice_code);
    assert!(by_other.is_err(), "{by_other:?}");
    let wrong = engine.activate(&alice(), req.id, "123456");
    assert!(
        matches!(wrong, Err(EngineError::MfaWrongCode { .. })),
        "{wrong:?}"
    );
    f.clock.advance(120);
    let alice_code = code(&alice_app, &f);
    let (active, events) = engine.activate(&alice(), req.id, &alice_code).unwrap();
    let activated_at = f.clock.wall_precise().as_secs() as UnixTime;
    assert_eq!(active.state, State::Active);
    // The grant's clock starts at activation: nothing lost to the wait.
    assert_eq!(active.expires_at, Some(activated_at + 3600));
    assert!(events.iter().any(|e| matches!(e, Event::Activated { .. })));
    assert!(granted(&engine, req.id));
    let again = engine.activate(&alice(), req.id, &alice_code);
    assert!(again.is_err(), "{again:?}");
    assert_eq!(
        events_named(&mut engine, req.id),
        [
            "requested",
            "scored",
            "approved",
            "awaiting_activation",
            "activated",
            "granted"
        ]
    );
}

#[test]
fn an_approved_grant_nobody_activates_lapses_even_across_a_restart() {
    let f = Fixture::with(VAULT);
    let (mut engine, _) = f.open();
    let olivia_app = enrolled(&mut engine, &f, &olivia());
    let (req, _) = engine
        .submit(&alice(), "vault", Duration::from_secs(3600), "audit", None)
        .unwrap();
    assert_eq!(req.state, State::Pending);
    let olivia_code = next_code(&olivia_app, &f);
    engine
        .approve(&olivia(), req.id, "", Some(&olivia_code))
        .unwrap();
    drop(engine);
    let (mut engine, _) = f.open();
    f.clock.advance(599);
    engine.tick().unwrap();
    assert_eq!(state_of(&engine, req.id), State::Approved);
    f.clock.advance(1);
    let events = engine.tick().unwrap();
    assert!(events.contains(&Event::Decided {
        id: req.id,
        state: State::Lapsed
    }));
    assert_eq!(state_of(&engine, req.id), State::Lapsed);
    let lapsed = engine
        .audit(&person(0, "root"), 0)
        .unwrap()
        .into_iter()
        .find(|e| e.request == Some(req.id) && e.event == "lapsed")
        .unwrap();
    assert_eq!(lapsed.detail["why"], "not activated in time");
}

#[test]
fn break_glass_and_auto_grants_wait_for_the_holders_code_too() {
    let f = Fixture::with(VAULT);
    let (mut engine, _) = f.open();
    let (auto, _) = engine
        .submit(&alice(), "notes", Duration::from_secs(600), "read", None)
        .unwrap();
    assert_eq!(auto.route, Route::Auto);
    assert_eq!(auto.state, State::Approved);
    // Not enrolled: no code can start it.
    let unenrolled = engine.activate(&alice(), auto.id, "123456");
    assert!(
        matches!(unenrolled, Err(EngineError::MfaNotEnrolled(_))),
        "{unenrolled:?}"
    );
    let app = enrolled(&mut engine, &f, &alice());

    let (emergency, _) = engine
        .break_glass(&alice(), "vault", None, "vault sealed")
        .unwrap();
    assert_eq!(emergency.state, State::Approved);
    assert!(!granted(&engine, emergency.id));
    let (active, _) = engine
        .activate(&alice(), emergency.id, &next_code(&app, &f))
        .unwrap();
    assert_eq!(active.state, State::Active);
    assert!(granted(&engine, emergency.id));
    let (active, _) = engine
        .activate(&alice(), auto.id, &next_code(&app, &f))
        .unwrap();
    assert!(granted(&engine, active.id));
}
