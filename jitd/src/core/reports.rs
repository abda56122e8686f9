//! Reports (X.3, X.7; docs/design.md "Reports"): the documents `jitctl
//! report` shows, shaped from what the store aggregated. The store sums and
//! counts in SQL; this module turns counts into percentiles, shares of an
//! SLA and statuses. No I/O, no clock: the window and "now" are given.
//!
//! Each report is one [`ReportKind`] variant, one shaping function here,
//! one query in `store/reports.rs` and one function in `engine/reports.rs`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

use super::break_glass::{Case, REVIEWERS};
use super::model::{rfc3339, RequestId, Route, Uid, UnixTime};

/// Which report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportKind {
    /// Break-glass grants with their justification, reviews and incidents.
    Emergency,
    /// Time from a request to access granted, per route, against the SLA.
    Mtta,
    /// Grants per resource, granted against used time.
    Usage,
    /// Grants never used (no session), per resource and per user.
    Unused,
    /// Access attempted without a grant (`access_denied` events).
    Denied,
    /// The standing-privilege scans: now against the first.
    Standing,
}

impl ReportKind {
    /// Every report, in the order the HTML page shows them.
    pub const ALL: [ReportKind; 6] = [
        ReportKind::Mtta,
        ReportKind::Usage,
        ReportKind::Emergency,
        ReportKind::Standing,
        ReportKind::Unused,
        ReportKind::Denied,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReportKind::Emergency => "emergency",
            ReportKind::Mtta => "mtta",
            ReportKind::Usage => "usage",
            ReportKind::Unused => "unused",
            ReportKind::Denied => "denied",
            ReportKind::Standing => "standing",
        }
    }

    pub fn parse(text: &str) -> Option<ReportKind> {
        ReportKind::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// The time a report covers: requests made from `from` to `to` (Unix
/// seconds, both included); `to` is when the report was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub from: UnixTime,
    pub to: UnixTime,
}

impl Window {
    /// From `since` (never after `now`, never before the epoch) to `now`.
    pub fn since(since: UnixTime, now: UnixTime) -> Window {
        Window {
            from: since.clamp(0, now.max(0)),
            to: now,
        }
    }
}

/// Whole-second (or per-mille) values and how often each occurs, as SQL's
/// `GROUP BY value` gives them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Distribution {
    counts: BTreeMap<u64, u64>,
    n: u64,
    sum: u128,
}

impl Distribution {
    pub fn add(&mut self, value: u64, count: u64) {
        if count == 0 {
            return;
        }
        *self.counts.entry(value).or_default() += count;
        self.n += count;
        self.sum += u128::from(value) * u128::from(count);
    }

    pub fn count(&self) -> u64 {
        self.n
    }

    /// The nearest-rank percentile: the smallest value with at least
    /// `permille`/1000 of the values at or below it (p50 = 500).
    pub fn percentile(&self, permille: u64) -> Option<u64> {
        if self.n == 0 {
            return None;
        }
        let rank = (u128::from(self.n) * u128::from(permille.min(1000))).div_ceil(1000);
        let rank = u64::try_from(rank).unwrap_or(self.n).max(1);
        let mut seen = 0;
        self.counts.iter().find_map(|(value, count)| {
            seen += count;
            (seen >= rank).then_some(*value)
        })
    }

    /// The mean, rounded to the nearest whole value.
    pub fn mean(&self) -> Option<u64> {
        (self.n > 0).then(|| {
            let n = u128::from(self.n);
            u64::try_from((self.sum + n / 2) / n).unwrap_or(u64::MAX)
        })
    }

    pub fn max(&self) -> Option<u64> {
        self.counts.keys().next_back().copied()
    }

    /// How many values are at most `limit`.
    pub fn at_most(&self, limit: u64) -> u64 {
        self.counts.range(..=limit).map(|(_, c)| c).sum()
    }

    /// The counts in the buckets that end at `bounds` (ascending, each
    /// included), and a last one for what is above them all.
    pub fn buckets(&self, bounds: &[u64]) -> Vec<Bucket> {
        let mut below = 0;
        let mut out: Vec<Bucket> = bounds
            .iter()
            .map(|bound| {
                let upto = self.at_most(*bound);
                let bucket = Bucket {
                    up_to_secs: Some(*bound),
                    count: upto - below,
                };
                below = upto;
                bucket
            })
            .collect();
        out.push(Bucket {
            up_to_secs: None,
            count: self.n - below,
        });
        out
    }
}

/// Where the time-to-access histogram's buckets end, in seconds: 5 s to 2
/// days, about three a decade.
pub const ACCESS_BUCKETS: [u64; 16] = [
    5,
    15,
    30,
    60,
    2 * 60,
    5 * 60,
    15 * 60,
    30 * 60,
    3600,
    2 * 3600,
    4 * 3600,
    8 * 3600,
    12 * 3600,
    24 * 3600,
    36 * 3600,
    48 * 3600,
];

/// One bar of a histogram: the values above the previous bucket's bound
/// and at most `up_to_secs` (none: above every bound).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bucket {
    pub up_to_secs: Option<u64>,
    pub count: u64,
}

// ---------------------------------------------------------------- emergency

/// A break-glass grant as the store has it, with its follow-up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmergencyRow {
    pub id: RequestId,
    pub user: String,
    pub uid: Uid,
    pub resource: String,
    pub state: String,
    pub reason: String,
    pub requested_at: UnixTime,
    /// None while it awaits its holder's second factor (MFA step-up).
    pub granted_at: Option<UnixTime>,
    pub duration_secs: u64,
    /// None only for a grant whose case row is missing.
    pub case: Option<Case>,
}

/// `jitctl report emergency --json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EmergencyReport {
    pub report: String,
    pub from: String,
    pub to: String,
    pub grants: Vec<EmergencyGrant>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EmergencyGrant {
    pub id: RequestId,
    pub user: String,
    pub uid: Uid,
    pub resource: String,
    /// The grant's state now (active, expired, revoked, approved, lapsed).
    pub state: String,
    /// What the emergency was, as the holder said when taking it.
    pub reason: String,
    pub requested_at: String,
    /// When access started (none while awaiting the holder's second factor).
    pub granted_at: Option<String>,
    pub duration_secs: u64,
    /// `given`, `given_late`, `overdue` or `due` ([`justification_status`]).
    pub justification: String,
    pub justify_by: Option<String>,
    pub justified_at: Option<String>,
    pub justification_text: Option<String>,
    /// The post-facto reviews (manager, security), oldest first.
    pub reviews: Vec<EmergencyReview>,
    /// The reviewing roles still awaited.
    pub awaiting_reviews: Vec<String>,
    /// Incidents opened by "unjustified" verdicts.
    pub incidents: Vec<u64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EmergencyReview {
    pub role: String,
    pub who: String,
    pub verdict: String,
    pub at: String,
    pub comment: String,
}

/// Where a justification stands at `now`: given by its deadline, given
/// after it, owed past it, or owed before it.
pub fn justification_status(case: &Case, now: UnixTime) -> &'static str {
    match case.justified_at {
        Some(at) if at <= case.due_at => "given",
        Some(_) => "given_late",
        None if case.overdue_at.is_some() || now >= case.due_at => "overdue",
        None => "due",
    }
}

pub fn emergency(rows: Vec<EmergencyRow>, window: Window) -> EmergencyReport {
    let grants = rows
        .into_iter()
        .map(|row| {
            let case = row.case.as_ref();
            EmergencyGrant {
                id: row.id,
                user: row.user,
                uid: row.uid,
                resource: row.resource,
                state: row.state,
                reason: row.reason,
                requested_at: rfc3339(row.requested_at),
                granted_at: row.granted_at.map(rfc3339),
                duration_secs: row.duration_secs,
                justification: case
                    .map_or("none", |c| justification_status(c, window.to))
                    .into(),
                justify_by: case.map(|c| rfc3339(c.due_at)),
                justified_at: case.and_then(|c| c.justified_at).map(rfc3339),
                justification_text: case.and_then(|c| c.justification.clone()),
                reviews: case.map_or_else(Vec::new, |c| {
                    c.reviews
                        .iter()
                        .map(|r| EmergencyReview {
                            role: r.role.as_str().into(),
                            who: r.name.clone(),
                            verdict: r.verdict.as_str().into(),
                            at: rfc3339(r.at),
                            comment: r.comment.clone(),
                        })
                        .collect()
                }),
                awaiting_reviews: case.map_or_else(
                    || REVIEWERS.iter().map(|r| r.as_str().into()).collect(),
                    |c| {
                        c.awaiting_reviews()
                            .iter()
                            .map(|r| r.as_str().into())
                            .collect()
                    },
                ),
                incidents: case.map_or_else(Vec::new, |c| c.incidents.clone()),
            }
        })
        .collect();
    EmergencyReport {
        report: ReportKind::Emergency.as_str().into(),
        from: rfc3339(window.from),
        to: rfc3339(window.to),
        grants,
    }
}

// --------------------------------------------------------------------- mtta

/// Requests of one route granted `secs` after they were made, as the store
/// counted them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantedCount {
    pub route: String,
    pub secs: u64,
    pub count: u64,
    /// Of them, grants that waited for their holder's second factor ...
    pub step_up: u64,
    /// ... and the seconds they waited in all (approval to `granted`).
    pub holder_wait_secs: u64,
}

/// Requests of one route not granted (yet).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenCount {
    pub route: String,
    /// Pending, or approved and awaiting the holder's second factor.
    pub waiting: u64,
    /// When the oldest of them was made.
    pub oldest: Option<UnixTime>,
    /// Denied, lapsed or withdrawn.
    pub not_granted: u64,
}

/// What the store counted for the time-to-access report.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccessCounts {
    pub granted: Vec<GrantedCount>,
    pub open: Vec<OpenCount>,
}

/// `jitctl report mtta --json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MttaReport {
    pub report: String,
    pub from: String,
    pub to: String,
    pub routes: Vec<RouteTimes>,
}

/// Time to access on one route: from the request to `granted`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RouteTimes {
    pub route: String,
    /// `[reports.sla]` for the route (none if it has no SLA).
    pub sla_secs: Option<u64>,
    /// Requests made in the window and granted.
    pub granted: u64,
    pub mean_secs: Option<u64>,
    pub p50_secs: Option<u64>,
    pub p90_secs: Option<u64>,
    pub p99_secs: Option<u64>,
    pub max_secs: Option<u64>,
    /// Granted within the SLA, and their share of `granted`.
    pub within_sla: Option<u64>,
    pub within_sla_share: Option<f64>,
    /// Granted after waiting for the holder's second factor (MFA step-up),
    /// and the mean of that wait (counted in the time to access).
    pub step_up: u64,
    pub holder_wait_mean_secs: Option<u64>,
    /// Not granted yet (pending, or awaiting activation), and the age of
    /// the oldest; neither counts in the times.
    pub waiting: u64,
    pub oldest_waiting_secs: Option<u64>,
    /// Denied, lapsed or withdrawn.
    pub not_granted: u64,
    /// The times as a histogram over [`ACCESS_BUCKETS`].
    pub distribution: Vec<Bucket>,
}

/// The routes a report lists: those with an SLA or with requests, in the
/// order of [`Route::ALL`], others (a route this jitd does not know, from
/// an older or newer one) after them by name.
fn route_order<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut names: Vec<&str> = names.collect();
    let rank = |name: &str| {
        Route::ALL
            .iter()
            .position(|r| r.as_str() == name)
            .unwrap_or(Route::ALL.len())
    };
    names.sort_by(|a, b| rank(a).cmp(&rank(b)).then(a.cmp(b)));
    names.dedup();
    names.into_iter().map(str::to_owned).collect()
}

fn share(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

pub fn mtta(counts: &AccessCounts, sla: &BTreeMap<String, Duration>, window: Window) -> MttaReport {
    let names = counts
        .granted
        .iter()
        .map(|g| g.route.as_str())
        .chain(counts.open.iter().map(|o| o.route.as_str()))
        .chain(sla.keys().map(String::as_str));
    let routes = route_order(names)
        .into_iter()
        .map(|route| {
            let mut times = Distribution::default();
            let (mut step_up, mut waited) = (0, 0);
            for g in counts.granted.iter().filter(|g| g.route == route) {
                times.add(g.secs, g.count);
                step_up += g.step_up;
                waited += g.holder_wait_secs;
            }
            let open = counts.open.iter().filter(|o| o.route == route);
            let (waiting, not_granted, oldest) = open.fold((0, 0, None), |(w, n, old), o| {
                let oldest = match (old, o.oldest) {
                    (Some(a), Some(b)) => Some(std::cmp::min(a, b)),
                    (a, b) => a.or(b),
                };
                (w + o.waiting, n + o.not_granted, oldest)
            });
            let sla_secs = sla.get(&route).map(Duration::as_secs);
            let within = sla_secs.map(|s| times.at_most(s));
            RouteTimes {
                sla_secs,
                granted: times.count(),
                mean_secs: times.mean(),
                p50_secs: times.percentile(500),
                p90_secs: times.percentile(900),
                p99_secs: times.percentile(990),
                max_secs: times.max(),
                within_sla: within,
                within_sla_share: within.and_then(|w| share(w, times.count())),
                step_up,
                holder_wait_mean_secs: (step_up > 0).then(|| (waited + step_up / 2) / step_up),
                waiting,
                oldest_waiting_secs: oldest
                    .filter(|_| waiting > 0)
                    .map(|at| u64::try_from(window.to.saturating_sub(at)).unwrap_or(0)),
                not_granted,
                distribution: times.buckets(&ACCESS_BUCKETS),
                route,
            }
        })
        .collect();
    MttaReport {
        report: ReportKind::Mtta.as_str().into(),
        from: rfc3339(window.from),
        to: rfc3339(window.to),
        routes,
    }
}

// -------------------------------------------------------------------- usage

/// One grant: how long it was held and how much of that its sessions
/// covered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantUse {
    pub resource: String,
    pub granted_secs: u64,
    pub used_secs: u64,
}

/// `jitctl report usage --json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UsageReport {
    pub report: String,
    pub from: String,
    pub to: String,
    pub resources: Vec<ResourceUsage>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResourceUsage {
    pub resource: String,
    /// Grants requested in the window that started.
    pub grants: u64,
    /// Time held in all (start to end, or to now while active) ...
    pub granted_secs: u64,
    /// ... and covered by the grants' sessions.
    pub used_secs: u64,
    /// `used_secs` / `granted_secs`.
    pub used_share: Option<f64>,
    /// Per grant, used / granted: the median and the 90th percentile.
    pub ratio_p50: Option<f64>,
    pub ratio_p90: Option<f64>,
    /// Per grant, the time used: the median and the 90th percentile (what
    /// a `max_duration` would have to allow).
    pub used_p50_secs: Option<u64>,
    pub used_p90_secs: Option<u64>,
    /// The resource's `max_duration` now (none: no longer configured).
    pub max_duration_secs: Option<u64>,
}

pub fn usage(
    grants: &[GrantUse],
    max_durations: &BTreeMap<String, Duration>,
    window: Window,
) -> UsageReport {
    let mut per: BTreeMap<&str, (u64, u64, u64, Distribution, Distribution)> = BTreeMap::new();
    for g in grants {
        let (n, granted, used, ratios, uses) = per.entry(&g.resource).or_default();
        *n += 1;
        *granted += g.granted_secs;
        *used += g.used_secs;
        uses.add(g.used_secs, 1);
        if g.granted_secs > 0 {
            let permille =
                u128::from(g.used_secs.min(g.granted_secs)) * 1000 / u128::from(g.granted_secs);
            ratios.add(u64::try_from(permille).unwrap_or(1000), 1);
        }
    }
    let ratio = |d: &Distribution, p| d.percentile(p).map(|v| v as f64 / 1000.0);
    let resources = per
        .into_iter()
        .map(
            |(resource, (n, granted, used, ratios, uses))| ResourceUsage {
                resource: resource.to_owned(),
                grants: n,
                granted_secs: granted,
                used_secs: used,
                used_share: share(used, granted),
                ratio_p50: ratio(&ratios, 500),
                ratio_p90: ratio(&ratios, 900),
                used_p50_secs: uses.percentile(500),
                used_p90_secs: uses.percentile(900),
                max_duration_secs: max_durations.get(resource).map(Duration::as_secs),
            },
        )
        .collect();
    UsageReport {
        report: ReportKind::Usage.as_str().into(),
        from: rfc3339(window.from),
        to: rfc3339(window.to),
        resources,
    }
}

// ------------------------------------------------------------------- unused

/// Grants of one user for one resource, as the store counted them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnusedCount {
    pub resource: String,
    pub user: String,
    pub uid: Uid,
    /// Grants requested in the window that started ...
    pub grants: u64,
    /// ... of them with no session (so far, for an active one) ...
    pub unused: u64,
    /// ... and of those, revoked by jitd for non-use (`reason: "unused"`).
    pub revoked_unused: u64,
}

/// `jitctl report unused --json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UnusedReport {
    pub report: String,
    pub from: String,
    pub to: String,
    /// Every resource with grants, by name.
    pub resources: Vec<UnusedResource>,
    /// Every user with an unused grant, the most unused first.
    pub users: Vec<UnusedUser>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UnusedResource {
    pub resource: String,
    pub grants: u64,
    /// Grants never used (revoked for non-use included) ...
    pub unused: u64,
    /// ... their share of `grants` ...
    pub unused_share: Option<f64>,
    /// ... and of them, revoked by jitd for non-use (`revoke_unused_after`).
    pub revoked_unused: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UnusedUser {
    pub user: String,
    pub uid: Uid,
    pub grants: u64,
    pub unused: u64,
    pub revoked_unused: u64,
    /// The resources of their unused grants, by name.
    pub resources: Vec<String>,
}

pub fn unused(counts: &[UnusedCount], window: Window) -> UnusedReport {
    let mut per_resource: BTreeMap<&str, (u64, u64, u64)> = BTreeMap::new();
    let mut per_user: BTreeMap<(&str, Uid), UnusedUser> = BTreeMap::new();
    for c in counts {
        let (grants, unused, revoked) = per_resource.entry(&c.resource).or_default();
        *grants += c.grants;
        *unused += c.unused;
        *revoked += c.revoked_unused;
        let user = per_user
            .entry((&c.user, c.uid))
            .or_insert_with(|| UnusedUser {
                user: c.user.clone(),
                uid: c.uid,
                grants: 0,
                unused: 0,
                revoked_unused: 0,
                resources: Vec::new(),
            });
        user.grants += c.grants;
        user.unused += c.unused;
        user.revoked_unused += c.revoked_unused;
        if c.unused > 0 && !user.resources.contains(&c.resource) {
            user.resources.push(c.resource.clone());
            user.resources.sort();
        }
    }
    let resources = per_resource
        .into_iter()
        .map(
            |(resource, (grants, unused, revoked_unused))| UnusedResource {
                resource: resource.to_owned(),
                grants,
                unused,
                unused_share: share(unused, grants),
                revoked_unused,
            },
        )
        .collect();
    let mut users: Vec<UnusedUser> = per_user.into_values().filter(|u| u.unused > 0).collect();
    users.sort_by(|a, b| b.unused.cmp(&a.unused).then(a.user.cmp(&b.user)));
    UnusedReport {
        report: ReportKind::Unused.as_str().into(),
        from: rfc3339(window.from),
        to: rfc3339(window.to),
        resources,
        users,
    }
}

// ------------------------------------------------------------------- denied

/// One `access_denied*` audit event in the window, its detail read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeniedEvent {
    /// `access_denied`: `count` denials of `user` for `resource` through
    /// `service`, from `first` to `last`.
    Denied {
        user: String,
        uid: Uid,
        resource: String,
        service: String,
        count: u64,
        first: UnixTime,
        last: UnixTime,
    },
    /// `access_denied_overflow`: denials of keys past `max_tracked`.
    Overflow {
        count: u64,
        first: UnixTime,
        last: UnixTime,
    },
    /// `access_denied_repeatedly`: the alert for a user.
    Repeatedly {
        user: String,
        uid: Uid,
        attempts: u64,
        at: UnixTime,
    },
}

/// `jitctl report denied --json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeniedReport {
    pub report: String,
    pub from: String,
    pub to: String,
    /// Per user and resource, the most denied first.
    pub attempts: Vec<DeniedAttempts>,
    /// Users security was alerted about (`access_denied_repeatedly`).
    pub flagged: Vec<FlaggedUser>,
    /// Denials counted together past `max_tracked` keys.
    pub overflow: DeniedOverflow,
    /// Every denial in the window (the sum of `attempts` and `overflow`).
    pub total: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeniedAttempts {
    pub user: String,
    pub uid: Uid,
    pub resource: String,
    /// Denials (the sum of the coalesced counts).
    pub count: u64,
    /// The PAM services asked (`sudo`, `sshd`, ...), by name.
    pub services: Vec<String>,
    pub first: String,
    pub last: String,
    /// Whether the user was alerted about (`access_denied_repeatedly`).
    pub flagged: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlaggedUser {
    pub user: String,
    pub uid: Uid,
    /// Alerts written, and the attempts they counted.
    pub alerts: u64,
    pub attempts: u64,
    pub last: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DeniedOverflow {
    /// `access_denied_overflow` events, and the denials they counted.
    pub events: u64,
    pub count: u64,
    pub first: Option<String>,
    pub last: Option<String>,
}

pub fn denied(events: &[DeniedEvent], window: Window) -> DeniedReport {
    type Key<'a> = (&'a str, Uid, &'a str);
    let mut per: BTreeMap<Key<'_>, (u64, Vec<String>, UnixTime, UnixTime)> = BTreeMap::new();
    let mut flagged: BTreeMap<(&str, Uid), (u64, u64, UnixTime)> = BTreeMap::new();
    let mut overflow = (0u64, 0u64, None::<UnixTime>, None::<UnixTime>);
    for e in events {
        match e {
            DeniedEvent::Denied {
                user,
                uid,
                resource,
                service,
                count,
                first,
                last,
            } => {
                let entry =
                    per.entry((user, *uid, resource))
                        .or_insert((0, Vec::new(), *first, *last));
                entry.0 += count;
                if !entry.1.contains(service) {
                    entry.1.push(service.clone());
                    entry.1.sort();
                }
                entry.2 = entry.2.min(*first);
                entry.3 = entry.3.max(*last);
            }
            DeniedEvent::Overflow { count, first, last } => {
                overflow.0 += 1;
                overflow.1 += count;
                overflow.2 = Some(overflow.2.map_or(*first, |f| f.min(*first)));
                overflow.3 = Some(overflow.3.map_or(*last, |l| l.max(*last)));
            }
            DeniedEvent::Repeatedly {
                user,
                uid,
                attempts,
                at,
            } => {
                let entry = flagged.entry((user, *uid)).or_insert((0, 0, *at));
                entry.0 += 1;
                entry.1 += attempts;
                entry.2 = entry.2.max(*at);
            }
        }
    }
    let is_flagged = |user: &str, uid: Uid| flagged.contains_key(&(user, uid));
    let mut attempts: Vec<DeniedAttempts> = per
        .iter()
        .map(
            |((user, uid, resource), (count, services, first, last))| DeniedAttempts {
                user: (*user).to_owned(),
                uid: *uid,
                resource: (*resource).to_owned(),
                count: *count,
                services: services.clone(),
                first: rfc3339(*first),
                last: rfc3339(*last),
                flagged: is_flagged(user, *uid),
            },
        )
        .collect();
    attempts.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then(a.user.cmp(&b.user))
            .then(a.resource.cmp(&b.resource))
    });
    let total = attempts.iter().map(|a| a.count).sum::<u64>() + overflow.1;
    DeniedReport {
        report: ReportKind::Denied.as_str().into(),
        from: rfc3339(window.from),
        to: rfc3339(window.to),
        attempts,
        flagged: flagged
            .into_iter()
            .map(|((user, uid), (alerts, attempts, last))| FlaggedUser {
                user: user.to_owned(),
                uid,
                alerts,
                attempts,
                last: rfc3339(last),
            })
            .collect(),
        overflow: DeniedOverflow {
            events: overflow.0,
            count: overflow.1,
            first: overflow.2.map(rfc3339),
            last: overflow.3.map(rfc3339),
        },
        total,
    }
}

// ----------------------------------------------------------------- standing

/// One stored scan: its total and its counts by kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanCount {
    pub id: i64,
    pub at: UnixTime,
    pub total: u64,
    pub counts: BTreeMap<String, u64>,
    /// Sources it could not read: its total is a lower bound.
    pub errors: u64,
}

/// `jitctl report standing --json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StandingReport {
    pub report: String,
    pub from: String,
    pub to: String,
    /// The first scan ever stored: the baseline (none: never scanned).
    pub first: Option<ScanPoint>,
    /// The newest scan in the window.
    pub now: Option<ScanPoint>,
    /// `now` against `first`, in percent (one decimal; none without both,
    /// or when the first found nothing).
    pub change_percent: Option<f64>,
    /// Every scan in the window, oldest first.
    pub scans: Vec<ScanPoint>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScanPoint {
    pub id: i64,
    pub at: String,
    pub total: u64,
    /// By kind (`sudoers`, `admin_group`, `uid0`, `root_key`,
    /// `su_password`, `polkit_admin`, `polkit_rule`).
    pub counts: BTreeMap<String, u64>,
    /// Sources the scan could not read (its total is a lower bound).
    pub errors: u64,
}

/// `now` against `first`, in percent (one decimal).
pub fn change_percent(first: u64, now: u64) -> Option<f64> {
    (first > 0).then(|| ((now as f64 - first as f64) * 1000.0 / first as f64).round() / 10.0)
}

pub fn standing(first: Option<&ScanCount>, scans: &[ScanCount], window: Window) -> StandingReport {
    let point = |s: &ScanCount| ScanPoint {
        id: s.id,
        at: rfc3339(s.at),
        total: s.total,
        counts: s.counts.clone(),
        errors: s.errors,
    };
    let now = scans.last();
    StandingReport {
        report: ReportKind::Standing.as_str().into(),
        from: rfc3339(window.from),
        to: rfc3339(window.to),
        change_percent: match (first, now) {
            (Some(f), Some(n)) => change_percent(f.total, n.total),
            _ => None,
        },
        first: first.map(point),
        now: now.map(point),
        scans: scans.iter().map(point).collect(),
    }
}

#[cfg(test)]
mod tests;
