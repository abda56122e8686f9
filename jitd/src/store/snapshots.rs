//! Rows of `snapshots` and `grant_changes`: what the places attackers use
//! for persistence looked like when a privileged grant started, and what
//! changed by its end (W3 item 6).

use rusqlite::{params, OptionalExtension};

use super::{Result, Store, StoreError, Writer};
use crate::core::changes::{Changes, Snapshot};
use crate::core::model::{RequestId, UnixTime};

fn corrupt(what: &str, e: serde_json::Error) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

impl Writer<'_> {
    pub fn put_snapshot(
        &mut self,
        grant: RequestId,
        at: UnixTime,
        snapshot: &Snapshot,
    ) -> Result<()> {
        let json = serde_json::to_string(snapshot).map_err(|e| corrupt("snapshot", e))?;
        self.tx
            .prepare_cached(
                "INSERT OR IGNORE INTO snapshots (grant_id, taken_at, snapshot) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![grant, at, json])?;
        Ok(())
    }

    /// The grant's changes; its snapshot is dropped (it served).
    pub fn put_changes(&mut self, grant: RequestId, at: UnixTime, changes: &Changes) -> Result<()> {
        let json = serde_json::to_string(changes).map_err(|e| corrupt("changes", e))?;
        self.tx
            .prepare_cached(
                "INSERT OR REPLACE INTO grant_changes (grant_id, at, changes) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![grant, at, json])?;
        self.tx
            .prepare_cached("DELETE FROM snapshots WHERE grant_id = ?1")?
            .execute([grant])?;
        Ok(())
    }
}

impl Store {
    /// Active grants of `resources` with no snapshot yet.
    pub fn grants_to_snapshot(&self, resources: &[String]) -> Result<Vec<RequestId>> {
        let mut out = Vec::new();
        let mut stmt = self.conn.prepare_cached(
            "SELECT r.id FROM requests r
             WHERE r.state = 'active' AND r.extends IS NULL AND r.resource = ?1
               AND NOT EXISTS (SELECT 1 FROM snapshots s WHERE s.grant_id = r.id)
               AND NOT EXISTS (SELECT 1 FROM grant_changes c WHERE c.grant_id = r.id)
             ORDER BY r.id",
        )?;
        for resource in resources {
            let ids = stmt.query_map([resource], |r| r.get(0))?;
            out.extend(ids.collect::<rusqlite::Result<Vec<RequestId>>>()?);
        }
        Ok(out)
    }

    /// Grants that ended by `before` whose start snapshot still waits for
    /// the end one: (grant, snapshot).
    pub fn snapshots_to_compare(&self, before: UnixTime) -> Result<Vec<(RequestId, Snapshot)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT s.grant_id, s.snapshot FROM snapshots s JOIN requests r ON r.id = s.grant_id
             WHERE r.state NOT IN ('pending', 'approved', 'scheduled', 'active') AND COALESCE(r.ended_at, 0) <= ?1
             ORDER BY s.grant_id",
        )?;
        let rows = stmt.query_map([before], |r| Ok((r.get(0)?, r.get::<_, String>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (grant, json) = row?;
            let snapshot = serde_json::from_str(&json).map_err(|e| corrupt("snapshot", e))?;
            out.push((grant, snapshot));
        }
        Ok(out)
    }

    /// What changed during `grant`, once it ended and was compared.
    pub fn changes(&self, grant: RequestId) -> Result<Option<Changes>> {
        let json: Option<String> = self
            .conn
            .prepare_cached("SELECT changes FROM grant_changes WHERE grant_id = ?1")?
            .query_row([grant], |r| r.get(0))
            .optional()?;
        json.map(|j| serde_json::from_str(&j).map_err(|e| corrupt("changes", e)))
            .transpose()
    }
}
