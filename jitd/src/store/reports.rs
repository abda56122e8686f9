//! The reports' side of the store (docs/design.md "Reports"): counts, sums
//! and joins in SQL over the requests made in a window; `core::reports`
//! shapes them. Read through a connection of its own ([`Reports`]), never
//! the engine's: a report over a million audit rows holds no lock a request
//! or a sudo waits for (WAL readers do not block the writer).
//!
//! A request is in the window when it was made in it (`requested_at`,
//! indexed since schema 19), whenever it was granted. Extensions are not
//! requests for access: they are left out. When a request was granted is
//! its first `granted` audit event (partial indexes, schema 19).
//! Denials and scans are events, not requests: those *written* in the
//! window count (`access_denied*` through a partial index of their own).

use rusqlite::{params, Connection, OpenFlags};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::cases::review_from_row;
use super::Result;
use crate::core::break_glass::Case;
use crate::core::model::{RequestId, UnixTime};
use crate::core::reports::{
    AccessCounts, DeniedEvent, EmergencyRow, GrantUse, GrantedCount, OpenCount, ScanCount,
    UnusedCount, Window,
};

/// A read-only connection to `jit.db` for the reports.
pub struct Reports {
    conn: Connection,
}

/// When request `r` was first granted.
const GRANTED_AT: &str =
    "(SELECT min(a.at) FROM audit a WHERE a.request = r.id AND a.event = 'granted')";

/// The `access_denied*` events written from ?1 to ?2, through the partial
/// index `audit_denied` (named: the query fails rather than scan every
/// audit row; its term `event LIKE 'access_denied%'` is the index's own).
const DENIED_EVENTS: &str = "SELECT event, at,
            coalesce(json_extract(detail, '$.user'), actor),
            coalesce(json_extract(detail, '$.uid'), actor_uid, -1),
            coalesce(json_extract(detail, '$.resource'), ''),
            coalesce(json_extract(detail, '$.service'), ''),
            coalesce(json_extract(detail, '$.count'), 1),
            coalesce(json_extract(detail, '$.first'), at),
            coalesce(json_extract(detail, '$.last'), at),
            coalesce(json_extract(detail, '$.attempts'), 0)
     FROM audit INDEXED BY audit_denied
     WHERE event LIKE 'access_denied%' AND at BETWEEN ?1 AND ?2
     ORDER BY at, id";

/// The union of a grant's sessions within its span, from sessions given
/// in the order they opened: each adds what it covers beyond the furthest
/// end before it (`reach`), all clipped to the span (clipping keeps the
/// order, so the reach clips too).
#[derive(Clone, Copy, Debug, Default)]
struct Covered {
    secs: u64,
    reach: Option<UnixTime>,
}

impl Covered {
    /// A session from `opened` to `closed` of a grant held from `start`
    /// to `stop`.
    fn add(&mut self, opened: UnixTime, closed: UnixTime, (start, stop): (UnixTime, UnixTime)) {
        let from = opened
            .max(start)
            .max(self.reach.unwrap_or(opened).min(stop));
        self.secs += u64::try_from(closed.min(stop) - from).unwrap_or(0);
        self.reach = Some(self.reach.map_or(closed, |r| r.max(closed)));
    }
}

impl Reports {
    /// Opens the database the engine has already created and migrated.
    pub fn open(state_dir: &Path) -> Result<Reports> {
        let conn = Connection::open_with_flags(
            state_dir.join("jit.db"),
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_secs(5))?;
        Ok(Reports { conn })
    }

    /// Break-glass grants requested in `w`, oldest first, each with its
    /// case, reviews and incidents (three queries, joined here by grant).
    pub fn emergency(&self, w: Window) -> Result<Vec<EmergencyRow>> {
        const IN_WINDOW: &str = "r.route = 'break_glass' AND r.requested_at BETWEEN ?1 AND ?2";
        let mut stmt = self.conn.prepare(&format!(
            "SELECT r.id, r.user, r.uid, r.resource, r.state, r.reason, r.requested_at,
                    r.duration_secs, {GRANTED_AT}, c.holder, c.due_at, c.justification,
                    c.justified_at, c.overdue_at, c.closed_at
             FROM requests r LEFT JOIN break_glass_cases c ON c.grant_id = r.id
             WHERE {IN_WINDOW} ORDER BY r.id"
        ))?;
        let rows = stmt.query_map(params![w.from, w.to], |r| {
            let id: RequestId = r.get(0)?;
            let due_at: Option<UnixTime> = r.get(10)?;
            Ok(EmergencyRow {
                id,
                user: r.get(1)?,
                uid: r.get(2)?,
                resource: r.get(3)?,
                state: r.get(4)?,
                reason: r.get(5)?,
                requested_at: r.get(6)?,
                duration_secs: r.get(7)?,
                granted_at: r.get(8)?,
                case: match due_at {
                    None => None,
                    Some(due_at) => Some(Case {
                        grant: id,
                        holder: r.get(9)?,
                        due_at,
                        justification: r.get(11)?,
                        justified_at: r.get(12)?,
                        overdue_at: r.get(13)?,
                        reviews: Vec::new(),
                        incidents: Vec::new(),
                        closed_at: r.get(14)?,
                    }),
                },
            })
        })?;
        let mut grants: Vec<EmergencyRow> = rows.collect::<rusqlite::Result<_>>()?;
        let mut cases: BTreeMap<RequestId, &mut Case> = grants
            .iter_mut()
            .filter_map(|g| g.case.as_mut().map(|c| (g.id, c)))
            .collect();
        let mut stmt = self.conn.prepare(&format!(
            "SELECT v.grant_id, v.role, v.uid, v.name, v.verdict, v.comment, v.at
             FROM break_glass_reviews v JOIN requests r ON r.id = v.grant_id
             WHERE {IN_WINDOW} ORDER BY v.grant_id, v.at, v.rowid"
        ))?;
        let reviews = stmt.query_map(params![w.from, w.to], |r| {
            Ok((r.get::<_, RequestId>(0)?, review_from_row(r, 1)?))
        })?;
        for review in reviews {
            let (grant, review) = review?;
            if let Some(case) = cases.get_mut(&grant) {
                case.reviews.push(review);
            }
        }
        let mut stmt = self.conn.prepare(&format!(
            "SELECT i.grant_id, i.id FROM incidents i JOIN requests r ON r.id = i.grant_id
             WHERE {IN_WINDOW} ORDER BY i.id"
        ))?;
        let incidents = stmt.query_map(params![w.from, w.to], |r| {
            Ok((r.get::<_, RequestId>(0)?, r.get::<_, u64>(1)?))
        })?;
        for incident in incidents {
            let (grant, id) = incident?;
            if let Some(case) = cases.get_mut(&grant) {
                case.incidents.push(id);
            }
        }
        Ok(grants)
    }

    /// Requests made in `w` (not extensions), per route: the granted ones
    /// counted by their whole seconds from the request to `granted` (a
    /// scheduled one to its approval, `scheduled`: waiting for its window
    /// is not waiting for access), with
    /// those that waited for their holder's second factor (approved first,
    /// `awaiting_activation`) and how long; the others, waiting or not
    /// granted. `t` is materialized: inlined, its two subqueries ran again
    /// for each use of their columns (a quarter more CPU over a month).
    pub fn access_counts(&self, w: Window) -> Result<AccessCounts> {
        let mut stmt = self.conn.prepare(&format!(
            "WITH t AS MATERIALIZED (
                SELECT r.route, r.state, r.requested_at, {GRANTED_AT} AS granted_at,
                       (SELECT min(a.at) FROM audit a
                        WHERE a.request = r.id AND a.event = 'awaiting_activation') AS approved_at,
                       (SELECT min(a.at) FROM audit a
                        WHERE a.request = r.id AND a.event = 'scheduled') AS scheduled_at
                FROM requests r
                WHERE r.extends IS NULL AND r.requested_at BETWEEN ?1 AND ?2
             ), u AS (
                SELECT *, coalesce(scheduled_at, granted_at) AS access_at FROM t
             )
             SELECT route,
                    CASE WHEN access_at IS NOT NULL THEN 0
                         WHEN state IN ('pending', 'approved') THEN 1
                         ELSE 2 END AS outcome,
                    max(0, access_at - requested_at) AS secs,
                    count(*), count(approved_at),
                    coalesce(sum(max(0, granted_at - approved_at)), 0),
                    min(requested_at)
             FROM u GROUP BY route, outcome, secs ORDER BY route, outcome, secs"
        ))?;
        let rows = stmt.query_map(params![w.from, w.to], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, u8>(1)?,
                r.get::<_, Option<u64>>(2)?,
                r.get::<_, u64>(3)?,
                r.get::<_, u64>(4)?,
                r.get::<_, u64>(5)?,
                r.get::<_, Option<UnixTime>>(6)?,
            ))
        })?;
        let mut counts = AccessCounts::default();
        for row in rows {
            let (route, outcome, secs, count, step_up, holder_wait_secs, oldest) = row?;
            match (outcome, secs) {
                (0, Some(secs)) => counts.granted.push(GrantedCount {
                    route,
                    secs,
                    count,
                    step_up,
                    holder_wait_secs,
                }),
                (1, _) => counts.open.push(OpenCount {
                    route,
                    waiting: count,
                    oldest,
                    not_granted: 0,
                }),
                _ => counts.open.push(OpenCount {
                    route,
                    waiting: 0,
                    oldest: None,
                    not_granted: count,
                }),
            }
        }
        Ok(counts)
    }

    /// Grants requested in `w` that started, oldest first: how long each was
    /// held (from `granted` to its end: its revocation, or its expiry even
    /// when jitd, down then, recorded it later; to `now` while active) and how
    /// much of that its sessions covered (overlapping sessions counted once;
    /// a session counts for at least a second, as times are whole seconds;
    /// one still open, until `now`).
    ///
    /// Two reads and a merge: the grants, then their sessions in the order
    /// of `sessions_grant` (grant, opening time), so each grant's union is
    /// one pass without a sort ([`Covered`]). The same union as a window
    /// function in SQL took 3x the CPU over a month of 1,000,000 audit
    /// rows (BENCHMARKS.md, 14).
    pub fn grant_use(&self, w: Window, now: UnixTime) -> Result<Vec<GrantUse>> {
        struct Held {
            id: RequestId,
            resource: String,
            start: UnixTime,
            stop: UnixTime,
        }
        let mut stmt = self.conn.prepare(&format!(
            "SELECT r.id, r.resource, {GRANTED_AT},
                    CASE WHEN r.state = 'active' THEN min(coalesce(r.expires_at, ?3), ?3)
                         ELSE min(coalesce(r.ended_at, r.expires_at),
                                  coalesce(r.expires_at, r.ended_at)) END
             FROM requests r
             WHERE r.extends IS NULL AND r.requested_at BETWEEN ?1 AND ?2
               AND r.state IN ('active', 'expired', 'revoked')"
        ))?;
        let rows = stmt.query_map(params![w.from, w.to, now], |r| {
            Ok((
                r.get::<_, RequestId>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<UnixTime>>(2)?,
                r.get::<_, Option<UnixTime>>(3)?,
            ))
        })?;
        let mut grants = Vec::new();
        for row in rows {
            if let (id, resource, Some(start), Some(stop)) = row? {
                grants.push(Held {
                    id,
                    resource,
                    start,
                    stop,
                });
            }
        }
        grants.sort_unstable_by_key(|g| g.id);
        let mut used = vec![Covered::default(); grants.len()];
        if let (Some(first), Some(last)) = (grants.first(), grants.last()) {
            let mut stmt = self.conn.prepare(
                "SELECT grant_id, opened_at, max(coalesce(closed_at, ?3), opened_at + 1)
                 FROM sessions WHERE grant_id BETWEEN ?1 AND ?2 ORDER BY grant_id, opened_at",
            )?;
            let mut rows = stmt.query(params![first.id, last.id, now])?;
            let mut at = 0;
            while let Some(r) = rows.next()? {
                let grant: RequestId = r.get(0)?;
                while at < grants.len() && grants[at].id < grant {
                    at += 1;
                }
                match grants.get(at) {
                    Some(g) if g.id == grant => {
                        used[at].add(r.get(1)?, r.get(2)?, (g.start, g.stop));
                    }
                    Some(_) => {}
                    None => break,
                }
            }
        }
        Ok(grants
            .into_iter()
            .zip(used)
            .map(|(g, used)| GrantUse {
                resource: g.resource,
                granted_secs: u64::try_from(g.stop - g.start).unwrap_or(0),
                used_secs: used.secs,
            })
            .collect())
    }

    /// Grants requested in `w` that started (not extensions), counted per
    /// resource and user: all, those with no session, and of them those
    /// jitd revoked for non-use (`revoked` with `reason: "unused"`).
    ///
    /// Whether a grant had a session is looked up once (`g`
    /// materialized), and its audit rows read only for a grant revoked
    /// without one: inlined, the query ran the sessions' subquery for each
    /// use of `used` and read the events of every revoked grant, twice the
    /// time over a month of 1,000,000 audit rows (BENCHMARKS.md, 14).
    pub fn unused_counts(&self, w: Window) -> Result<Vec<UnusedCount>> {
        let mut stmt = self.conn.prepare(&format!(
            "WITH g AS MATERIALIZED (
                SELECT r.id, r.resource, r.user, r.uid, r.state,
                       EXISTS (SELECT 1 FROM sessions s WHERE s.grant_id = r.id) AS used
                FROM requests r
                WHERE r.extends IS NULL AND r.requested_at BETWEEN ?1 AND ?2
                  AND r.state IN ('active', 'expired', 'revoked')
                  AND {GRANTED_AT} IS NOT NULL
             )
             SELECT resource, user, uid, count(*), total(NOT used),
                    total(CASE WHEN NOT used AND state = 'revoked' THEN EXISTS (
                        SELECT 1 FROM audit a WHERE a.request = g.id AND a.event = 'revoked'
                          AND json_extract(a.detail, '$.reason') = 'unused') END)
             FROM g GROUP BY resource, user, uid ORDER BY resource, user, uid"
        ))?;
        let rows = stmt.query_map(params![w.from, w.to], |r| {
            Ok(UnusedCount {
                resource: r.get(0)?,
                user: r.get(1)?,
                uid: r.get(2)?,
                grants: r.get(3)?,
                unused: r.get::<_, f64>(4)? as u64,
                revoked_unused: r.get::<_, f64>(5)? as u64,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The `access_denied`, `access_denied_overflow` and
    /// `access_denied_repeatedly` events written in `w`, oldest first,
    /// through the partial index `audit_denied` (every other event is
    /// never read).
    pub fn denied_events(&self, w: Window) -> Result<Vec<DeniedEvent>> {
        let mut stmt = self.conn.prepare(DENIED_EVENTS)?;
        let rows = stmt.query_map(params![w.from, w.to], |r| {
            let event: String = r.get(0)?;
            let at: UnixTime = r.get(1)?;
            let uid = u32::try_from(r.get::<_, i64>(3)?).unwrap_or(u32::MAX);
            let count = u64::try_from(r.get::<_, i64>(6)?).unwrap_or(0);
            let (first, last): (UnixTime, UnixTime) = (r.get(7)?, r.get(8)?);
            Ok(match event.as_str() {
                "access_denied" => Some(DeniedEvent::Denied {
                    user: r.get(2)?,
                    uid,
                    resource: r.get(4)?,
                    service: r.get(5)?,
                    count,
                    first,
                    last,
                }),
                "access_denied_overflow" => Some(DeniedEvent::Overflow { count, first, last }),
                "access_denied_repeatedly" => Some(DeniedEvent::Repeatedly {
                    user: r.get(2)?,
                    uid,
                    attempts: u64::try_from(r.get::<_, i64>(9)?).unwrap_or(0),
                    at,
                }),
                _ => None,
            })
        })?;
        let mut events = Vec::new();
        for row in rows {
            events.extend(row?);
        }
        Ok(events)
    }

    /// The first scan ever stored (the baseline), and the scans stored in
    /// `w`, oldest first.
    pub fn scan_counts(&self, w: Window) -> Result<(Option<ScanCount>, Vec<ScanCount>)> {
        fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(ScanCount, String)> {
            Ok((
                ScanCount {
                    id: r.get(0)?,
                    at: r.get(1)?,
                    total: r.get(2)?,
                    counts: BTreeMap::new(),
                    errors: r.get(4)?,
                },
                r.get(3)?,
            ))
        }
        fn parsed((mut scan, counts): (ScanCount, String)) -> Result<ScanCount> {
            scan.counts = serde_json::from_str(&counts)
                .map_err(|e| super::StoreError::Corrupt(format!("standing scan: {e}")))?;
            Ok(scan)
        }
        const COLUMNS: &str = "id, at, total, counts, errors";
        let first = self
            .conn
            .prepare(&format!(
                "SELECT {COLUMNS} FROM standing_scans ORDER BY id LIMIT 1"
            ))?
            .query_map([], row)?
            .next()
            .transpose()?
            .map(parsed)
            .transpose()?;
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {COLUMNS} FROM standing_scans WHERE at BETWEEN ?1 AND ?2 ORDER BY id"
        ))?;
        let scans = stmt
            .query_map(params![w.from, w.to], row)?
            .map(|r| parsed(r?))
            .collect::<Result<Vec<_>>>()?;
        Ok((first, scans))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Overlapping and nested sessions count once, only within the span.
    #[test]
    fn a_grants_sessions_count_once_within_its_span() {
        let mut covered = Covered::default();
        let span = (100, 1000);
        for (opened, closed) in [(50, 200), (150, 180), (190, 300), (500, 600), (900, 1200)] {
            covered.add(opened, closed, span);
        }
        covered.add(1100, 1200, span);
        assert_eq!(covered.secs, 200 + 100 + 100);
    }

    /// A million other audit rows are never read: the denied report's
    /// query goes through `audit_denied`.
    #[test]
    fn denials_are_read_through_their_partial_index() {
        let dir = tempfile::tempdir().unwrap();
        drop(super::super::Store::open(dir.path()).unwrap());
        let db = Reports::open(dir.path()).unwrap();
        let plan: Vec<String> = db
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {DENIED_EVENTS}"))
            .unwrap()
            .query_map(params![0, 1], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert!(
            plan.iter().any(|step| step.contains("audit_denied")),
            "{plan:?}"
        );
    }
}
