//! Rules matched and not, by table; times from a hand-driven clock.

use std::collections::HashSet;
use std::time::Duration;

use jiff::tz::TimeZone;

use super::window::{Hours, Local, Window, ALL_DAYS};
use super::*;

const MIN: u64 = 60;

struct Groups(HashSet<&'static str>);

impl Membership for Groups {
    fn is_member(&self, group: &str) -> bool {
        self.0.contains(group)
    }
}

/// On call: `carol` in `primary`, from 1000 to 2000 (Unix seconds).
struct Pager;

impl OnCall for Pager {
    fn is_on_call(&self, schedule: &str, user: &str, at: UnixTime) -> bool {
        schedule == "primary" && user == "carol" && (1000..2000).contains(&at)
    }
}

fn t(rfc3339: &str) -> UnixTime {
    rfc3339.parse::<jiff::Timestamp>().unwrap().as_second()
}

fn rule(name: &str) -> Rule {
    Rule {
        name: name.into(),
        users: vec!["alice".into()],
        groups: vec!["sre".into()],
        oncall: Some("primary".into()),
        resources: vec!["sudo".into()],
        max_duration: Duration::from_secs(30 * MIN),
        window: None,
        ticket: None,
        action: Action::Approve,
        notify: vec![Told::Owners, Told::Security],
    }
}

fn ask(at: UnixTime) -> Ask<'static> {
    Ask {
        user: "alice",
        resource: "sudo",
        duration: Duration::from_secs(30 * MIN),
        ticket: None,
        at,
        route: Route::Dual,
        has_owners: true,
        score_in_hours: 50,
        extension: false,
        vendor: false,
        scheduled: false,
    }
}

/// Policies of `rules`, with zones by POSIX TZ strings (no tzdata read:
/// the DST rules of 2026 for Berlin and New York).
fn policies(rules: Vec<Rule>) -> Policies {
    let mut p = Policies::new(DEFAULT_RISK_CEILING);
    p.zone("UTC", TimeZone::UTC);
    p.zone(
        "Europe/Berlin",
        TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3").unwrap(),
    );
    p.zone(
        "America/New_York",
        TimeZone::posix("EST5EDT,M3.2.0,M11.1.0").unwrap(),
    );
    for r in rules {
        p.push(r);
    }
    p
}

const UTC: usize = 0;
const BERLIN: usize = 1;
const NEW_YORK: usize = 2;

fn window(days: u8, hours: Option<&str>, zone: usize) -> Option<Window> {
    Some(Window {
        days,
        hours: hours.map(|h| Hours::parse(h).unwrap()),
        zone,
    })
}

/// `decide` and `explain` agree; the outcome as a route or the unmet condition.
fn outcome(p: &Policies, a: &Ask<'_>, groups: &[&'static str]) -> Result<Route, Unmet> {
    let groups = Groups(groups.iter().copied().collect());
    let decided = p
        .decide(a, &groups, &Pager)
        .map(|d| (d.rule.name.clone(), d.route));
    let explained = p.explain(a, &groups, &Pager);
    assert_eq!(
        decided,
        explained.applied.map(|d| (d.rule.name.clone(), d.route)),
        "decide and explain disagree"
    );
    match (decided, explained.skipped, explained.rules.last()) {
        (Some((_, route)), _, _) => Ok(route),
        (None, Some(unmet), _) => Err(unmet),
        (None, None, Some((_, Some(unmet)))) => Err(*unmet),
        (None, None, _) => Err(Unmet::Who),
    }
}

fn one(r: Rule, a: Ask<'_>) -> Result<Route, Unmet> {
    outcome(&policies(vec![r]), &a, &[])
}

#[test]
fn who_users_groups_and_on_call() {
    let now = 1500;
    assert_eq!(one(rule("r"), ask(now)), Ok(Route::Policy));
    let bob = Ask {
        user: "bob",
        ..ask(now)
    };
    assert_eq!(one(rule("r"), bob), Err(Unmet::Who));
    assert_eq!(
        outcome(&policies(vec![rule("r")]), &bob, &["sre"]),
        Ok(Route::Policy)
    );
    assert_eq!(
        outcome(&policies(vec![rule("r")]), &bob, &["dba"]),
        Err(Unmet::Who)
    );
    let carol = |at| Ask {
        user: "carol",
        ..ask(at)
    };
    assert_eq!(one(rule("r"), carol(1500)), Ok(Route::Policy));
    assert_eq!(one(rule("r"), carol(2000)), Err(Unmet::Who), "shift over");
    let no_schedule = Rule {
        oncall: None,
        ..rule("r")
    };
    assert_eq!(one(no_schedule, carol(1500)), Err(Unmet::Who));
    assert_eq!(
        outcome(&policies(vec![rule("r")]), &carol(1500), &[]),
        Ok(Route::Policy)
    );
    // A schedule the rule does not name puts nobody on call for it.
    let other = Rule {
        oncall: Some("secondary".into()),
        ..rule("r")
    };
    assert_eq!(one(other, carol(1500)), Err(Unmet::Who));
}

#[test]
fn resource_and_duration() {
    let other = Ask {
        resource: "db",
        ..ask(0)
    };
    assert!(policies(vec![rule("r")])
        .decide(&other, &Groups(HashSet::new()), &Pager)
        .is_none());
    let explained = policies(vec![rule("r")]);
    let e = explained.explain(&other, &Groups(HashSet::new()), &Pager);
    assert!(e.rules.is_empty() && e.skipped.is_none() && e.applied.is_none());
    let long = |secs| Ask {
        duration: Duration::from_secs(secs),
        ..ask(0)
    };
    assert_eq!(
        one(rule("r"), long(30 * MIN)),
        Ok(Route::Policy),
        "up to max_duration"
    );
    assert_eq!(
        one(rule("r"), long(30 * MIN + 1)),
        Err(Unmet::Duration {
            max: Duration::from_secs(30 * MIN)
        })
    );
}

#[test]
fn exclusions_come_before_any_rule() {
    let cases = [
        (
            Ask {
                extension: true,
                ..ask(0)
            },
            Unmet::Extension,
        ),
        (
            Ask {
                vendor: true,
                ..ask(0)
            },
            Unmet::Vendor,
        ),
        (
            Ask {
                scheduled: true,
                ..ask(0)
            },
            Unmet::Scheduled,
        ),
        (
            Ask {
                route: Route::Auto,
                ..ask(0)
            },
            Unmet::Auto,
        ),
        (
            Ask {
                score_in_hours: 70,
                ..ask(0)
            },
            Unmet::RiskCeiling {
                score: 70,
                ceiling: 70,
            },
        ),
    ];
    for (a, want) in cases {
        assert_eq!(one(rule("r"), a), Err(want));
        let p = policies(vec![rule("r")]);
        assert!(p
            .explain(&a, &Groups(HashSet::new()), &Pager)
            .rules
            .is_empty());
    }
    let below = Ask {
        score_in_hours: 69,
        ..ask(0)
    };
    assert_eq!(
        one(rule("r"), below),
        Ok(Route::Policy),
        "the ceiling is inclusive"
    );
}

#[test]
fn approve_and_lower() {
    let lower = Rule {
        action: Action::Lower,
        ..rule("r")
    };
    let routed = |route, has_owners| Ask {
        route,
        has_owners,
        ..ask(0)
    };
    assert_eq!(
        one(rule("r"), routed(Route::Owner, true)),
        Ok(Route::Policy)
    );
    assert_eq!(
        one(rule("r"), routed(Route::Dual, false)),
        Ok(Route::Policy)
    );
    assert_eq!(
        one(lower.clone(), routed(Route::Dual, true)),
        Ok(Route::Owner)
    );
    assert_eq!(
        one(lower.clone(), routed(Route::Dual, false)),
        Err(Unmet::CannotLower { route: Route::Dual })
    );
    assert_eq!(
        one(lower, routed(Route::Owner, true)),
        Err(Unmet::CannotLower {
            route: Route::Owner
        })
    );
}

#[test]
fn the_first_rule_in_file_order_that_applies_decides() {
    let lower = Rule {
        action: Action::Lower,
        ..rule("lower-first")
    };
    let narrow = Rule {
        max_duration: Duration::from_secs(MIN),
        ..rule("narrow")
    };
    let p = policies(vec![narrow, lower, rule("approve-later")]);
    let groups = Groups(HashSet::new());
    let d = p.decide(&ask(0), &groups, &Pager).unwrap();
    assert_eq!(
        (d.rule.name.as_str(), d.route),
        ("lower-first", Route::Owner)
    );
    let e = p.explain(&ask(0), &groups, &Pager);
    let names: Vec<(&str, bool)> = e
        .rules
        .iter()
        .map(|(r, unmet)| (r.name.as_str(), unmet.is_none()))
        .collect();
    assert_eq!(
        names,
        [("narrow", false), ("lower-first", true)],
        "later rules are not reached"
    );
    // A lowering rule with nothing to lower does not stop the walk.
    let owner = Ask {
        route: Route::Owner,
        ..ask(0)
    };
    let d = p.decide(&owner, &groups, &Pager).unwrap();
    assert_eq!(
        (d.rule.name.as_str(), d.route),
        ("approve-later", Route::Policy)
    );
}

#[test]
fn ticket_patterns_are_anchored() {
    let with = |pattern: &str| Rule {
        ticket: Some(TicketPattern::new(pattern).unwrap()),
        ..rule("r")
    };
    let ticket = |t: Option<&'static str>| Ask {
        ticket: t,
        ..ask(0)
    };
    assert_eq!(
        one(with("INC-[0-9]+"), ticket(Some("INC-42"))),
        Ok(Route::Policy)
    );
    assert_eq!(
        one(with("INC-[0-9]+"), ticket(Some("xINC-42"))),
        Err(Unmet::Ticket)
    );
    assert_eq!(
        one(with("INC-[0-9]+"), ticket(Some("INC-42x"))),
        Err(Unmet::Ticket)
    );
    assert_eq!(
        one(with("INC-[0-9]+|CHG-[0-9]+"), ticket(Some("CHG-7"))),
        Ok(Route::Policy)
    );
    assert_eq!(
        one(with("INC-[0-9]+|CHG-[0-9]+"), ticket(Some("CHG-7 INC-1"))),
        Err(Unmet::Ticket)
    );
    assert_eq!(one(with("INC-[0-9]+"), ticket(None)), Err(Unmet::NoTicket));
    assert!(TicketPattern::new("(").is_err());
}

/// Rules sharing a pattern or a group ask it once; each still decides by
/// its own: with every pattern in one set, and each matched alone (the
/// set too large to build).
#[test]
fn shared_and_own_patterns_and_groups_decide_each_rule() {
    let r = |name: &str, group: &str, pattern: &str| Rule {
        users: vec![],
        groups: vec![group.into()],
        oncall: None,
        ticket: Some(TicketPattern::new(pattern).unwrap()),
        ..rule(name)
    };
    let rules = vec![
        r("inc-db", "db", "INC-[0-9]+"),
        r("chg-web", "web", "CHG-[0-9]+"),
        r("inc-web", "web", "INC-[0-9]+"),
        r("any-db", "db", "[A-Z]+-1"),
    ];
    let each_alone = policies(rules.clone());
    each_alone.pattern_set.set(None).unwrap();
    for p in [&policies(rules), &each_alone] {
        let applied = |ticket: &'static str, groups: &[&'static str]| {
            let a = Ask {
                ticket: Some(ticket),
                ..ask(0)
            };
            let groups = Groups(groups.iter().copied().collect());
            p.decide(&a, &groups, &Pager).map(|d| d.rule.name.clone())
        };
        assert_eq!(applied("INC-7", &["web"]).as_deref(), Some("inc-web"));
        assert_eq!(applied("CHG-7", &["web"]).as_deref(), Some("chg-web"));
        assert_eq!(applied("CHG-1", &["db"]).as_deref(), Some("any-db"));
        assert_eq!(applied("INC-7", &["db", "web"]).as_deref(), Some("inc-db"));
        assert_eq!(applied("OPS-7", &["db", "web"]), None);
        assert_eq!(applied("INC-7", &[]), None);
    }
}

#[test]
fn hours_parse() {
    assert_eq!(
        Hours::parse("22:00-06:00"),
        Some(Hours {
            start: 1320,
            end: 360
        })
    );
    assert_eq!(
        Hours::parse("00:00-24:00"),
        Some(Hours {
            start: 0,
            end: 1440
        })
    );
    for bad in [
        "",
        "8:00-18:00",
        "08:00",
        "08:00-08:00",
        "24:00-06:00",
        "08:60-09:00",
        "25:00-01:00",
        "08:00-24:01",
    ] {
        assert_eq!(Hours::parse(bad), None, "{bad}");
    }
}

/// (window, UTC time, inside?)
type WindowCase = (&'static str, Option<Window>, &'static str, bool);

#[test]
fn windows_by_day_and_hour_across_midnight_and_dst() {
    const FRI: u8 = 1 << 4;
    const SAT: u8 = 1 << 5;
    const MON: u8 = 1;
    #[rustfmt::skip]
    let cases: [WindowCase; 26] = [
        // Plain hours in UTC: the start is in, the end is out.
        ("utc start", window(ALL_DAYS, Some("08:00-18:00"), UTC), "2026-06-03T08:00:00Z", true),
        ("utc end", window(ALL_DAYS, Some("08:00-18:00"), UTC), "2026-06-03T18:00:00Z", false),
        ("utc before", window(ALL_DAYS, Some("08:00-18:00"), UTC), "2026-06-03T07:59:59Z", false),
        // Days only: Monday from its midnight to the next.
        ("monday starts", window(MON, None, UTC), "2026-06-01T00:00:00Z", true),
        ("sunday night", window(MON, None, UTC), "2026-05-31T23:59:59Z", false),
        ("monday ends", window(MON, None, UTC), "2026-06-02T00:00:00Z", false),
        // Friday night, across midnight: Friday's from 22:00 to Saturday 06:00.
        ("fri 21:59", window(FRI, Some("22:00-06:00"), UTC), "2026-06-05T21:59:00Z", false),
        ("fri 22:00", window(FRI, Some("22:00-06:00"), UTC), "2026-06-05T22:00:00Z", true),
        ("sat 05:59", window(FRI, Some("22:00-06:00"), UTC), "2026-06-06T05:59:00Z", true),
        ("sat 06:00", window(FRI, Some("22:00-06:00"), UTC), "2026-06-06T06:00:00Z", false),
        ("sat 22:00", window(FRI, Some("22:00-06:00"), UTC), "2026-06-06T22:00:00Z", false),
        ("fri 03:00 is thursday's night", window(FRI, Some("22:00-06:00"), UTC), "2026-06-05T03:00:00Z", false),
        // Berlin, 07:00-08:00 local: one hour earlier in UTC once summer time starts (29 March 2026).
        ("berlin winter 07:30", window(ALL_DAYS, Some("07:00-08:00"), BERLIN), "2026-03-28T06:30:00Z", true),
        ("berlin summer 08:30", window(ALL_DAYS, Some("07:00-08:00"), BERLIN), "2026-03-29T06:30:00Z", false),
        ("berlin summer 07:30", window(ALL_DAYS, Some("07:00-08:00"), BERLIN), "2026-03-29T05:30:00Z", true),
        // The skipped hour (02:00-03:00 does not exist that night) is never inside.
        ("berlin 01:59 CET", window(ALL_DAYS, Some("02:00-03:00"), BERLIN), "2026-03-29T00:59:59Z", false),
        ("berlin 03:00 CEST", window(ALL_DAYS, Some("02:00-03:00"), BERLIN), "2026-03-29T01:00:00Z", false),
        ("berlin a day later", window(ALL_DAYS, Some("02:00-03:00"), BERLIN), "2026-03-30T00:30:00Z", true),
        // The repeated hour (25 October 2026) is inside both times.
        ("berlin 02:30 CEST", window(ALL_DAYS, Some("02:00-03:00"), BERLIN), "2026-10-25T00:30:00Z", true),
        ("berlin 02:30 CET", window(ALL_DAYS, Some("02:00-03:00"), BERLIN), "2026-10-25T01:30:00Z", true),
        ("berlin 03:00 CET", window(ALL_DAYS, Some("02:00-03:00"), BERLIN), "2026-10-25T02:00:00Z", false),
        // New York, Saturday night 22:00-06:00, the night clocks spring forward (8 March 2026).
        ("ny sat 22:00 EST", window(SAT, Some("22:00-06:00"), NEW_YORK), "2026-03-08T03:00:00Z", true),
        ("ny sun 05:59 EDT", window(SAT, Some("22:00-06:00"), NEW_YORK), "2026-03-08T09:59:00Z", true),
        ("ny sun 06:30 EDT", window(SAT, Some("22:00-06:00"), NEW_YORK), "2026-03-08T10:30:00Z", false),
        ("ny sun 05:30 EST a week before", window(SAT, Some("22:00-06:00"), NEW_YORK), "2026-03-01T10:30:00Z", true),
        ("ny sat 21:30 EST", window(SAT, Some("22:00-06:00"), NEW_YORK), "2026-03-08T02:30:00Z", false),
    ];
    for (what, w, at, inside) in cases {
        let r = Rule {
            window: w,
            ..rule("r")
        };
        let got = one(r, ask(t(at)));
        assert_eq!(got.is_ok(), inside, "{what}: {got:?}");
        if !inside {
            assert!(matches!(got, Err(Unmet::Window { .. })), "{what}: {got:?}");
        }
    }
}

#[test]
fn the_local_time_is_named_in_the_explanation() {
    let r = Rule {
        window: window(1 << 4, Some("22:00-06:00"), BERLIN),
        ..rule("night")
    };
    let p = policies(vec![r]);
    let a = ask(t("2026-06-05T08:15:00Z"));
    let e = p.explain(&a, &Groups(HashSet::new()), &Pager);
    let (rule, unmet) = e.rules[0];
    assert_eq!(
        unmet,
        Some(Unmet::Window {
            now: Local {
                weekday: 4,
                minute: 10 * 60 + 15
            }
        })
    );
    assert_eq!(
        p.describe(unmet.unwrap(), Some(rule), &a),
        "outside its window (fri 22:00-06:00 Europe/Berlin): it is fri 10:15 there"
    );
}

#[test]
fn rules_are_found_by_resource_among_many() {
    let mut rules: Vec<Rule> = (0..1000)
        .map(|i| Rule {
            resources: vec![format!("res-{}", i % 100)],
            users: vec![format!("user-{i}")],
            ..rule(&format!("r{i}"))
        })
        .collect();
    rules.push(rule("last"));
    let p = policies(rules);
    let d = p.decide(&ask(0), &Groups(HashSet::new()), &Pager).unwrap();
    assert_eq!(d.rule.name, "last");
    let e = p.explain(
        &Ask {
            resource: "res-7",
            ..ask(0)
        },
        &Groups(HashSet::new()),
        &Pager,
    );
    assert_eq!(e.rules.len(), 10);
    assert!(e.applied.is_none());
}
