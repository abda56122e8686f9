//! Rows of `recordings`: jit-session's asciicast files (W1.6, W3.4).

use rusqlite::{params, Row};

use super::{Result, Store, Writer};
use crate::core::model::{RequestId, Uid, UnixTime};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordingRecord {
    pub id: u64,
    pub grant: RequestId,
    pub uid: Uid,
    pub user: String,
    pub resource: String,
    pub path: String,
    pub started_at: UnixTime,
    pub ended_at: Option<UnixTime>,
    /// The digest as the audit trail has it (`recording_closed`).
    pub sha256: Option<String>,
    pub bytes: Option<u64>,
    pub end: Option<String>,
    /// A login shell's: jitd writes it from the recorder's pipe.
    pub login: bool,
}

const COLUMNS: &str =
    "r.id, r.grant_id, r.uid, r.user, r.resource, r.path, r.started_at, r.ended_at,
     (SELECT json_extract(a.detail, '$.sha256') FROM audit a
       WHERE a.event = 'recording_closed' AND a.request = r.grant_id
         AND json_extract(a.detail, '$.recording') = r.id),
     r.bytes, r.end_reason, r.login";

fn from_row(r: &Row<'_>) -> rusqlite::Result<RecordingRecord> {
    Ok(RecordingRecord {
        id: r.get(0)?,
        grant: r.get(1)?,
        uid: r.get(2)?,
        user: r.get(3)?,
        resource: r.get(4)?,
        path: r.get(5)?,
        started_at: r.get(6)?,
        ended_at: r.get(7)?,
        sha256: r.get(8)?,
        bytes: r.get(9)?,
        end: r.get(10)?,
        login: r.get(11)?,
    })
}

impl Writer<'_> {
    /// Inserts `rec` (its id is ignored) and returns the new id.
    pub fn insert_recording(&mut self, rec: &RecordingRecord) -> Result<u64> {
        self.tx.execute(
            "INSERT INTO recordings (grant_id, uid, user, resource, path, started_at, login)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                rec.grant,
                rec.uid,
                rec.user,
                rec.resource,
                rec.path,
                rec.started_at,
                rec.login
            ],
        )?;
        Ok(self.tx.last_insert_rowid() as u64)
    }

    pub fn set_recording_path(&mut self, id: u64, path: &str) -> Result<()> {
        self.tx.execute(
            "UPDATE recordings SET path = ?2 WHERE id = ?1",
            params![id, path],
        )?;
        Ok(())
    }

    /// Marks a recording closed; false if unknown or already closed.
    pub fn close_recording(
        &mut self,
        id: u64,
        at: UnixTime,
        sha256: &str,
        bytes: u64,
        end: &str,
    ) -> Result<bool> {
        let changed = self.tx.execute(
            "UPDATE recordings SET ended_at = ?2, sha256 = ?3, bytes = ?4, end_reason = ?5
             WHERE id = ?1 AND ended_at IS NULL",
            params![id, at, sha256, bytes, end],
        )?;
        Ok(changed == 1)
    }
}

impl Store {
    pub fn recording(&self, id: u64) -> Result<Option<RecordingRecord>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM recordings r WHERE r.id = ?1"
        ))?;
        let mut rows = stmt.query_map([id], from_row)?;
        Ok(rows.next().transpose()?)
    }

    /// Recordings not closed yet (of `grant` only, if given), oldest first.
    pub fn open_recordings(&self, grant: Option<RequestId>) -> Result<Vec<RecordingRecord>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM recordings r
             WHERE r.ended_at IS NULL AND (?1 IS NULL OR r.grant_id = ?1) ORDER BY r.id"
        ))?;
        let rows = stmt.query_map([grant], from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Recordings started since `since`, newest last; `only_uid` limits them
    /// to one user's.
    pub fn recordings(
        &self,
        since: UnixTime,
        only_uid: Option<Uid>,
    ) -> Result<Vec<RecordingRecord>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM recordings r
             WHERE r.started_at >= ?1 AND (?2 IS NULL OR r.uid = ?2) ORDER BY r.id"
        ))?;
        let rows = stmt.query_map(params![since, only_uid], from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
