use super::*;
use crate::core::break_glass::{Review, ReviewVerdict};
use crate::core::model::Role;

/// Values with their counts.
type Values = &'static [(u64, u64)];

fn dist(values: &[(u64, u64)]) -> Distribution {
    let mut d = Distribution::default();
    for (v, c) in values {
        d.add(*v, *c);
    }
    d
}

#[test]
fn percentiles_are_nearest_rank() {
    // (values with counts, permille, expected)
    let cases: &[(Values, u64, Option<u64>)] = &[
        (&[], 500, None),
        (&[(7, 1)], 500, Some(7)),
        (&[(7, 1)], 990, Some(7)),
        (&[(1, 1), (2, 1)], 500, Some(1)),
        (&[(1, 1), (2, 1)], 510, Some(2)),
        (&[(1, 1), (2, 1), (3, 1), (4, 1)], 500, Some(2)),
        (&[(1, 1), (2, 1), (3, 1), (4, 1)], 900, Some(4)),
        (&[(10, 9), (1000, 1)], 900, Some(10)),
        (&[(10, 9), (1000, 1)], 910, Some(1000)),
        (&[(10, 99), (1000, 1)], 990, Some(10)),
        (&[(10, 98), (1000, 2)], 990, Some(1000)),
        // Order of adding does not matter; equal values merge.
        (&[(5, 1), (1, 1), (5, 2)], 500, Some(5)),
        (&[(3, 4)], 0, Some(3)),
        (&[(3, 4), (9, 1)], 1000, Some(9)),
    ];
    for (values, permille, expected) in cases {
        assert_eq!(
            dist(values).percentile(*permille),
            *expected,
            "{values:?} p{permille}"
        );
    }
}

#[test]
fn mean_max_and_counts_at_most() {
    // (values, mean, max, limit, at most limit)
    type Case = (Values, Option<u64>, Option<u64>, u64, u64);
    let cases: &[Case] = &[
        (&[], None, None, 10, 0),
        (&[(1, 1), (2, 1)], Some(2), Some(2), 1, 1), // 1.5 rounds up
        (&[(1, 2), (2, 1)], Some(1), Some(2), 2, 3), // 1.33 rounds down
        (&[(60, 3), (3600, 1)], Some(945), Some(3600), 60, 3),
        (&[(60, 3), (3600, 1)], Some(945), Some(3600), 59, 0),
    ];
    for (values, mean, max, limit, at_most) in cases {
        let d = dist(values);
        assert_eq!(d.mean(), *mean, "{values:?}");
        assert_eq!(d.max(), *max, "{values:?}");
        assert_eq!(d.at_most(*limit), *at_most, "{values:?} <= {limit}");
    }
}

#[test]
fn buckets_split_at_their_bounds_and_keep_the_rest_last() {
    let d = dist(&[(0, 1), (5, 2), (6, 1), (15, 1), (100, 3)]);
    let got: Vec<(Option<u64>, u64)> = d
        .buckets(&[5, 15, 30])
        .iter()
        .map(|b| (b.up_to_secs, b.count))
        .collect();
    assert_eq!(got, [(Some(5), 3), (Some(15), 2), (Some(30), 0), (None, 3)]);
    assert_eq!(Distribution::default().buckets(&[5]).len(), 2);
}

#[test]
fn windows_never_start_after_now_or_before_the_epoch() {
    // (since, now, from)
    for (since, now, from) in [(10, 100, 10), (200, 100, 100), (-5, 100, 0), (0, 0, 0)] {
        assert_eq!(Window::since(since, now), Window { from, to: now });
    }
}

#[test]
fn report_kinds_round_trip_their_names() {
    for kind in ReportKind::ALL {
        assert_eq!(ReportKind::parse(kind.as_str()), Some(kind));
    }
    assert_eq!(ReportKind::parse("scan"), None);
}

fn case(justified_at: Option<i64>, overdue_at: Option<i64>) -> Case {
    Case {
        grant: 1,
        holder: 61001,
        due_at: 1000,
        justification: justified_at.map(|_| "fire".into()),
        justified_at,
        overdue_at,
        reviews: Vec::new(),
        incidents: Vec::new(),
        closed_at: None,
    }
}

#[test]
fn justification_status_by_case() {
    // (justified at, escalated at, now, status)
    let cases = [
        (Some(999), None, 2000, "given"),
        (Some(1000), None, 2000, "given"),
        (Some(1001), Some(1000), 2000, "given_late"),
        (None, Some(1000), 1000, "overdue"),
        (None, None, 1000, "overdue"), // not escalated yet, but due
        (None, None, 999, "due"),
    ];
    for (justified, overdue, now, status) in cases {
        assert_eq!(
            justification_status(&case(justified, overdue), now),
            status,
            "{justified:?} {overdue:?} {now}"
        );
    }
}

#[test]
fn emergency_grants_carry_their_reviews_and_the_roles_still_awaited() {
    let mut c = case(Some(500), None);
    c.reviews.push(Review {
        uid: 61004,
        name: "mike".into(),
        role: Role::Manager,
        verdict: ReviewVerdict::Unjustified,
        comment: "no".into(),
        at: 600,
    });
    c.incidents.push(4);
    let rows = vec![
        EmergencyRow {
            id: 1,
            user: "alice".into(),
            uid: 61001,
            resource: "logs".into(),
            state: "expired".into(),
            reason: "fire".into(),
            requested_at: 0,
            granted_at: Some(0),
            duration_secs: 7200,
            case: Some(c),
        },
        EmergencyRow {
            id: 2,
            user: "bob".into(),
            uid: 61002,
            resource: "logs".into(),
            state: "approved".into(),
            reason: "flood".into(),
            requested_at: 10,
            granted_at: None,
            duration_secs: 60,
            case: None,
        },
    ];
    let report = emergency(rows, Window { from: 0, to: 2000 });
    assert_eq!(report.report, "emergency");
    let (first, second) = (&report.grants[0], &report.grants[1]);
    assert_eq!(first.justification, "given");
    assert_eq!(first.reviews[0].verdict, "unjustified");
    assert_eq!(first.awaiting_reviews, ["security"]);
    assert_eq!(first.incidents, [4]);
    assert_eq!(second.justification, "none");
    assert_eq!(second.granted_at, None);
    assert_eq!(second.awaiting_reviews, ["manager", "security"]);
}

fn granted(route: &str, secs: u64, count: u64) -> GrantedCount {
    GrantedCount {
        route: route.into(),
        secs,
        count,
        step_up: 0,
        holder_wait_secs: 0,
    }
}

#[test]
fn time_to_access_per_route_against_its_sla() {
    let sla: BTreeMap<String, Duration> = [("auto", 60), ("owner", 4 * 3600)]
        .into_iter()
        .map(|(r, s)| (r.to_owned(), Duration::from_secs(s)))
        .collect();
    let counts = AccessCounts {
        granted: vec![
            granted("owner", 3600, 2),
            granted("auto", 0, 8),
            granted("auto", 61, 2),
            GrantedCount {
                step_up: 1,
                holder_wait_secs: 5 * 3600,
                ..granted("owner", 6 * 3600, 1)
            },
            // A route this jitd does not know (a newer one's) is listed last.
            granted("escrow", 1, 1),
        ],
        open: vec![OpenCount {
            route: "owner".into(),
            waiting: 2,
            oldest: Some(1000),
            not_granted: 3,
        }],
    };
    let report = mtta(&counts, &sla, Window { from: 0, to: 4600 });
    let names: Vec<&str> = report.routes.iter().map(|r| r.route.as_str()).collect();
    assert_eq!(names, ["auto", "owner", "escrow"]);
    // (route, granted, mean, p50, p90, p99, max, within, share, waiting, oldest, not granted)
    type Row = (
        &'static str,
        u64,
        Option<u64>,
        Option<u64>,
        Option<u64>,
        Option<u64>,
        Option<u64>,
        Option<u64>,
        Option<f64>,
        u64,
        Option<u64>,
        u64,
    );
    let expected: [Row; 3] = [
        (
            "auto",
            10,
            Some(12),
            Some(0),
            Some(61),
            Some(61),
            Some(61),
            Some(8),
            Some(0.8),
            0,
            None,
            0,
        ),
        (
            "owner",
            3,
            Some(9600),
            Some(3600),
            Some(21600),
            Some(21600),
            Some(21600),
            Some(2),
            Some(2.0 / 3.0),
            2,
            Some(3600),
            3,
        ),
        (
            "escrow",
            1,
            Some(1),
            Some(1),
            Some(1),
            Some(1),
            Some(1),
            None,
            None,
            0,
            None,
            0,
        ),
    ];
    for (r, e) in report.routes.iter().zip(expected) {
        let got: Row = (
            e.0,
            r.granted,
            r.mean_secs,
            r.p50_secs,
            r.p90_secs,
            r.p99_secs,
            r.max_secs,
            r.within_sla,
            r.within_sla_share,
            r.waiting,
            r.oldest_waiting_secs,
            r.not_granted,
        );
        assert_eq!(got, e, "{}", r.route);
    }
    let owner = &report.routes[1];
    assert_eq!(
        (owner.step_up, owner.holder_wait_mean_secs),
        (1, Some(5 * 3600))
    );
    assert_eq!(owner.distribution.iter().map(|b| b.count).sum::<u64>(), 3);
}

#[test]
fn routes_with_an_sla_are_listed_without_requests() {
    let sla: BTreeMap<String, Duration> = [("break_glass".to_owned(), Duration::from_secs(300))]
        .into_iter()
        .collect();
    let report = mtta(&AccessCounts::default(), &sla, Window { from: 0, to: 1 });
    let r = &report.routes[0];
    assert_eq!(
        (
            r.route.as_str(),
            r.granted,
            r.mean_secs,
            r.within_sla,
            r.within_sla_share
        ),
        ("break_glass", 0, None, Some(0), None)
    );
}

fn used(resource: &str, granted_secs: u64, used_secs: u64) -> GrantUse {
    GrantUse {
        resource: resource.into(),
        granted_secs,
        used_secs,
    }
}

#[test]
fn usage_per_resource_with_the_ratio_of_used_to_granted() {
    let max: BTreeMap<String, Duration> = [("db".to_owned(), Duration::from_secs(8 * 3600))]
        .into_iter()
        .collect();
    let grants = [
        used("db", 3600, 900),
        used("db", 3600, 0),
        used("db", 7200, 7200),
        used("db", 1000, 250),
        used("logs", 600, 60),
        // Ended in the second it started: counted, no ratio.
        used("logs", 0, 0),
    ];
    let report = usage(&grants, &max, Window { from: 0, to: 1 });
    // (resource, grants, granted, used, share, ratio p50, p90, used p50, p90, max)
    type Row = (
        String,
        u64,
        u64,
        u64,
        Option<f64>,
        Option<f64>,
        Option<f64>,
        Option<u64>,
        Option<u64>,
        Option<u64>,
    );
    let got: Vec<Row> = report
        .resources
        .iter()
        .map(|r| {
            (
                r.resource.clone(),
                r.grants,
                r.granted_secs,
                r.used_secs,
                r.used_share,
                r.ratio_p50,
                r.ratio_p90,
                r.used_p50_secs,
                r.used_p90_secs,
                r.max_duration_secs,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "db".to_owned(),
                4,
                15400,
                8350,
                Some(8350.0 / 15400.0),
                Some(0.25),
                Some(1.0),
                Some(250),
                Some(7200),
                Some(8 * 3600)
            ),
            (
                "logs".to_owned(),
                2,
                600,
                60,
                Some(0.1),
                Some(0.1),
                Some(0.1),
                Some(0),
                Some(60),
                None
            ),
        ]
    );
}

const W: Window = Window { from: 0, to: 86400 };

fn uc(resource: &str, user: &str, grants: u64, unused: u64, revoked: u64) -> UnusedCount {
    UnusedCount {
        resource: resource.into(),
        user: user.into(),
        uid: if user == "alice" { 61001 } else { 61002 },
        grants,
        unused,
        revoked_unused: revoked,
    }
}

#[test]
fn unused_counts_per_resource_and_user() {
    // (counts, per resource (name, grants, unused, share, revoked), users (name, unused, resources))
    type Res = &'static [(&'static str, u64, u64, Option<f64>, u64)];
    type Users = &'static [(&'static str, u64, &'static [&'static str])];
    let cases: Vec<(Vec<UnusedCount>, Res, Users)> = vec![
        (vec![], &[], &[]),
        (
            vec![uc("db", "alice", 4, 0, 0)],
            &[("db", 4, 0, Some(0.0), 0)],
            &[],
        ),
        (
            vec![
                uc("db", "alice", 3, 1, 0),
                uc("db", "bob", 1, 1, 1),
                uc("ops", "bob", 2, 2, 1),
            ],
            &[("db", 4, 2, Some(0.5), 1), ("ops", 2, 2, Some(1.0), 1)],
            &[("bob", 3, &["db", "ops"]), ("alice", 1, &["db"])],
        ),
    ];
    for (counts, resources, users) in cases {
        let r = unused(&counts, W);
        let got: Vec<_> = r
            .resources
            .iter()
            .map(|u| {
                (
                    u.resource.as_str(),
                    u.grants,
                    u.unused,
                    u.unused_share,
                    u.revoked_unused,
                )
            })
            .collect();
        assert_eq!(got, resources.to_vec(), "{counts:?}");
        let got: Vec<(&str, u64, Vec<&str>)> = r
            .users
            .iter()
            .map(|u| {
                (
                    u.user.as_str(),
                    u.unused,
                    u.resources.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        let want: Vec<(&str, u64, Vec<&str>)> =
            users.iter().map(|(u, n, r)| (*u, *n, r.to_vec())).collect();
        assert_eq!(got, want, "{counts:?}");
    }
}

fn denial(
    user: &str,
    resource: &str,
    service: &str,
    count: u64,
    first: i64,
    last: i64,
) -> DeniedEvent {
    DeniedEvent::Denied {
        user: user.into(),
        uid: 61009,
        resource: resource.into(),
        service: service.into(),
        count,
        first,
        last,
    }
}

#[test]
fn denials_sum_their_coalesced_counts() {
    let events = vec![
        denial("eve", "db", "sudo", 1, 100, 100),
        denial("eve", "db", "sudo", 9, 101, 700),
        denial("eve", "db", "sshd", 2, 50, 60),
        denial("dan", "logs", "sudo", 1, 300, 300),
        DeniedEvent::Repeatedly {
            user: "eve".into(),
            uid: 61009,
            attempts: 10,
            at: 200,
        },
        DeniedEvent::Overflow {
            count: 5,
            first: 400,
            last: 500,
        },
        DeniedEvent::Overflow {
            count: 1,
            first: 600,
            last: 600,
        },
    ];
    let r = denied(&events, W);
    let got: Vec<_> = r
        .attempts
        .iter()
        .map(|a| {
            (
                a.user.as_str(),
                a.resource.as_str(),
                a.count,
                a.services.join(","),
                a.first.clone(),
                a.last.clone(),
                a.flagged,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "eve",
                "db",
                12,
                "sshd,sudo".into(),
                rfc3339(50),
                rfc3339(700),
                true
            ),
            (
                "dan",
                "logs",
                1,
                "sudo".into(),
                rfc3339(300),
                rfc3339(300),
                false
            ),
        ]
    );
    assert_eq!(r.flagged.len(), 1);
    assert_eq!((r.flagged[0].alerts, r.flagged[0].attempts), (1, 10));
    assert_eq!(
        r.overflow,
        DeniedOverflow {
            events: 2,
            count: 6,
            first: Some(rfc3339(400)),
            last: Some(rfc3339(600)),
        }
    );
    assert_eq!(r.total, 19);
    let empty = denied(&[], W);
    assert_eq!((empty.total, empty.attempts.len()), (0, 0));
    assert_eq!(empty.overflow, DeniedOverflow::default());
}

fn scan(id: i64, total: u64) -> ScanCount {
    ScanCount {
        id,
        at: id * 3600,
        total,
        counts: [("sudoers".to_owned(), total)].into_iter().collect(),
        errors: 0,
    }
}

#[test]
fn standing_compares_the_newest_scan_with_the_first() {
    // (first ever, scans in the window, now, change)
    type Case = (Option<ScanCount>, Vec<ScanCount>, Option<u64>, Option<f64>);
    let cases: Vec<Case> = vec![
        (None, vec![], None, None),
        (Some(scan(1, 8)), vec![], None, None),
        (Some(scan(1, 8)), vec![scan(1, 8)], Some(8), Some(0.0)),
        (
            Some(scan(1, 8)),
            vec![scan(1, 8), scan(2, 6), scan(3, 2)],
            Some(2),
            Some(-75.0),
        ),
        // The first before the window: still the baseline.
        (Some(scan(1, 3)), vec![scan(5, 4)], Some(4), Some(33.3)),
        (Some(scan(1, 0)), vec![scan(2, 1)], Some(1), None),
    ];
    for (first, scans, now, change) in cases {
        let r = standing(first.as_ref(), &scans, W);
        assert_eq!(r.now.as_ref().map(|n| n.total), now, "{scans:?}");
        assert_eq!(r.change_percent, change, "{scans:?}");
        assert_eq!(r.scans.len(), scans.len());
        assert_eq!(r.first.map(|f| f.id), first.map(|f| f.id));
    }
}
