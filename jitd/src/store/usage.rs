//! Grants and their use (docs/design.md "Unused grants"): which grants
//! were never used, and how long the others were, from `requests`,
//! `sessions` and the `granted` audit event (when each became active).

use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::{Result, Store};
use crate::core::model::{RequestId, Uid, UnixTime};

/// A grant that was active within a period, and its sessions: the rows of
/// `jitctl report unused` (those without a session) and of the granted
/// against used duration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GrantUsage {
    pub grant: RequestId,
    pub uid: Uid,
    pub user: String,
    pub resource: String,
    pub route: String,
    /// `active`, `expired` or `revoked`.
    pub state: String,
    /// When it became active (its `granted` event): after an approval, an
    /// activation with a second factor, or at once.
    pub activated_at: UnixTime,
    pub expires_at: Option<UnixTime>,
    /// When it ended; None while active.
    pub ended_at: Option<UnixTime>,
    /// From activation to its end, or to the query's `now` while active.
    pub granted_secs: i64,
    /// Sessions registered under it (sudo runs, logins).
    pub sessions: u64,
    pub first_session_at: Option<UnixTime>,
    /// When its last session ended; None without sessions or while one is open.
    pub last_session_end: Option<UnixTime>,
    /// From its first session to its end (or `now`): how long it was in use.
    pub used_secs: Option<i64>,
}

impl Store {
    /// Grants active at some time within [`since`, `now`] (became active by
    /// `now`, not ended before `since`), oldest activation first; with
    /// `unused_only`, those with no session. Extensions are part of their
    /// grant, not grants of their own.
    pub fn grant_usage(
        &self,
        since: UnixTime,
        now: UnixTime,
        unused_only: bool,
    ) -> Result<Vec<GrantUsage>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT r.id, r.uid, r.user, r.resource, r.route, r.state, r.expires_at, r.ended_at,
                    (SELECT MIN(a.at) FROM audit a WHERE a.request = r.id AND a.event = 'granted')
                        AS activated_at,
                    COUNT(s.id), MIN(s.opened_at), MAX(s.closed_at), TOTAL(s.closed_at IS NULL)
             FROM requests r LEFT JOIN sessions s ON s.grant_id = r.id
             WHERE r.extends IS NULL AND r.state IN ('active', 'expired', 'revoked')
               AND (r.ended_at IS NULL OR r.ended_at >= ?1)
             GROUP BY r.id
             HAVING activated_at IS NOT NULL AND activated_at <= ?2
                AND (?3 = 0 OR COUNT(s.id) = 0)
             ORDER BY activated_at, r.id",
        )?;
        let rows = stmt.query_map(params![since, now, unused_only], |r| {
            let activated_at: UnixTime = r.get(8)?;
            let ended_at: Option<UnixTime> = r.get(7)?;
            let end = ended_at.unwrap_or(now);
            let first_session_at: Option<UnixTime> = r.get(10)?;
            let still_open: f64 = r.get(12)?;
            Ok(GrantUsage {
                grant: r.get(0)?,
                uid: r.get(1)?,
                user: r.get(2)?,
                resource: r.get(3)?,
                route: r.get(4)?,
                state: r.get(5)?,
                activated_at,
                expires_at: r.get(6)?,
                ended_at,
                granted_secs: (end - activated_at).max(0),
                sessions: r.get(9)?,
                first_session_at,
                last_session_end: if still_open > 0.0 { None } else { r.get(11)? },
                used_secs: first_session_at.map(|first| (end - first).max(0)),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// When grant `id` became active (its `granted` event), if it did.
    pub fn activated_at(&self, id: RequestId) -> Result<Option<UnixTime>> {
        Ok(self
            .conn
            .prepare_cached("SELECT MIN(at) FROM audit WHERE request = ?1 AND event = 'granted'")?
            .query_row([id], |r| r.get(0))
            .optional()?
            .flatten())
    }

    /// Whether any session was registered under grant `id` (written rows
    /// only: the caller writes the admitted ones first).
    pub fn was_used(&self, id: RequestId) -> Result<bool> {
        Ok(self
            .conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM sessions WHERE grant_id = ?1)")?
            .query_row([id], |r| r.get(0))?)
    }
}
