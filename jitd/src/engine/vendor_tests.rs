//! Vendors' access against a real store and a hand-driven clock: the
//! grants the approval makes, their end ending the vendor, the retention
//! deadline, a request nobody decides lapsing (the host's side is
//! `tests/tests/vendors.rs`, with real shadow-utils).

use std::time::Duration;

use super::tests::{person, state_of, Fixture};
use super::*;
use crate::core::model::Verdict;
use crate::core::vendor::{Host, VendorAsk};

const VENDORS: &str = r#"
[vendors]
sponsors = ["user:alice"]
uid_min = 470000
uid_max = 470009
retention = "1h"
[managers]
alice = "mike"
[[resource]]
name = "vlogs"
environment = "staging"
eligible = ["user:alice"]
vendors = true
"#;

fn ask(name: &str) -> VendorAsk {
    VendorAsk {
        organization: "Acme".into(),
        name: name.into(),
        email: "jdoe@acme.example".into(),
        resources: vec!["vlogs".into()],
        segments: Vec::new(),
        duration: Duration::from_secs(86_400),
        project: "PRJ-7".into(),
        reason: "tune".into(),
        key: None,
    }
}

fn decide(engine: &mut Engine, who: (Uid, &str), id: u64) -> Vec<Event> {
    engine
        .vendor_decide(&person(who.0, who.1), id, Verdict::Approve, "")
        .unwrap()
        .1
}

#[test]
fn a_vendors_grants_end_its_access_and_its_account_is_due_after_the_retention() {
    let f = Fixture::with(VENDORS);
    let (mut engine, _) = f.open();
    let alice = person(61001, "alice");
    let vendor = engine.vendor_request(&alice, ask("jdoe")).unwrap();
    assert!(decide(&mut engine, (61003, "mike"), vendor.id).is_empty());
    let events = decide(&mut engine, (61004, "sam"), vendor.id);
    assert!(events.contains(&Event::VendorChanged { id: vendor.id }));
    let vendor = engine.load_vendor(vendor.id).unwrap();
    let uid = vendor.uid.unwrap();
    assert_eq!(uid, 470_000);
    let grant = engine.store.vendor_grants(vendor.id).unwrap()[0];
    assert_eq!(state_of(&engine, grant), State::Active);
    // Not before the keeper has put the vendors' egress rules in place.
    assert!(engine.checker().check(0, uid, "vlogs").unwrap().is_none());
    engine.egress_gate().set_ready(true);
    assert!(engine.checker().check(0, uid, "vlogs").unwrap().is_some());
    let work = engine.vendor_host_work().unwrap();
    assert_eq!(work[0].1, Host::Created);
    // The vendor's own grant is not theirs to extend.
    let extended = engine.extend(
        &person(uid, "v-jdoe"),
        grant,
        Duration::from_secs(60),
        "more",
    );
    assert!(extended.is_err(), "{extended:?}");

    f.clock.advance(86_400);
    // The expiry warning is due first, then the expiry.
    let mut events = engine.tick().unwrap();
    events.extend(engine.tick().unwrap());
    assert!(events.contains(&Event::VendorChanged { id: vendor.id }));
    assert_eq!(state_of(&engine, grant), State::Expired);
    assert_eq!(engine.load_vendor(vendor.id).unwrap().state, State::Expired);
    assert_eq!(engine.vendor_host_work().unwrap()[0].1, Host::Locked);
    engine
        .vendor_host_reached(vendor.id, Host::Locked, serde_json::json!({}))
        .unwrap();
    assert!(engine.vendor_host_work().unwrap().is_empty());

    // Across a restart, the retention's end still wakes the keeper.
    drop(engine);
    let (mut engine, _) = f.open();
    f.clock.advance(3599);
    assert!(engine.tick().unwrap().is_empty());
    f.clock.advance(1);
    let events = engine.tick().unwrap();
    assert!(events.contains(&Event::VendorChanged { id: vendor.id }));
    assert_eq!(engine.vendor_host_work().unwrap()[0].1, Host::Deleted);
}

#[test]
fn a_vendor_request_nobody_decides_lapses_and_its_uid_is_never_given() {
    let f = Fixture::with(VENDORS);
    let (mut engine, _) = f.open();
    let alice = person(61001, "alice");
    let first = engine.vendor_request(&alice, ask("jdoe")).unwrap();
    // The same account asked twice while the first is open: refused.
    assert!(engine.vendor_request(&alice, ask("jdoe")).is_err());
    f.clock.advance(3600);
    engine.tick().unwrap();
    assert_eq!(engine.load_vendor(first.id).unwrap().state, State::Lapsed);
    let second = engine.vendor_request(&alice, ask("kim")).unwrap();
    decide(&mut engine, (61003, "mike"), second.id);
    decide(&mut engine, (61004, "sam"), second.id);
    assert_eq!(engine.load_vendor(second.id).unwrap().uid, Some(470_000));
}

#[test]
fn jitd_refuses_to_start_without_vendors_while_their_accounts_exist() {
    let f = Fixture::with(VENDORS);
    let (mut engine, _) = f.open();
    let vendor = engine
        .vendor_request(&person(61001, "alice"), ask("jdoe"))
        .unwrap();
    decide(&mut engine, (61003, "mike"), vendor.id);
    decide(&mut engine, (61004, "sam"), vendor.id);
    drop(engine);
    let refused = f.reopen_with("");
    assert!(
        matches!(refused, Err(EngineError::VendorsUnconfigured(ref a)) if a == "v-jdoe"),
        "{:?}",
        refused.err()
    );
    // Nor with a range that leaves its uid out.
    let moved = VENDORS
        .replace("uid_min = 470000", "uid_min = 480000")
        .replace("uid_max = 470009", "uid_max = 480009");
    assert!(matches!(
        f.reopen_with(&moved),
        Err(EngineError::VendorsUnconfigured(_))
    ));
    assert!(f.reopen_with(VENDORS).is_ok());
}
