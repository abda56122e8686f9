//! Reports (X.3, X.7; docs/design.md "Reports"): the documents `jitctl
//! report` shows, shaped from what the store aggregated. The store sums and
//! counts in SQL; this module turns counts into percentiles, shares of an
//! SLA and statuses. No I/O, no clock: the window and "now" are given.
//!
//! A report that is still to come (`unused`, `denied`, `standing`) is one
//! [`ReportKind`] variant, one shaping function here if it needs one, and
//! one function in `engine/reports.rs`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

use super::break_glass::{Case, REVIEWERS};
use super::model::{rfc3339, RequestId, Route, Uid, UnixTime};

/// Which report. Coming, from other work: `Unused` (grants never used),
/// `Denied` (`access_denied` events), `Standing` (scan snapshots).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportKind {
    /// Break-glass grants with their justification, reviews and incidents.
    Emergency,
    /// Time from a request to access granted, per route, against the SLA.
    Mtta,
    /// Grants per resource, granted against used time.
    Usage,
}

impl ReportKind {
    /// Every report, in the order the HTML page shows them.
    pub const ALL: [ReportKind; 3] = [ReportKind::Mtta, ReportKind::Usage, ReportKind::Emergency];

    pub fn as_str(self) -> &'static str {
        match self {
            ReportKind::Emergency => "emergency",
            ReportKind::Mtta => "mtta",
            ReportKind::Usage => "usage",
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

#[cfg(test)]
mod tests;
