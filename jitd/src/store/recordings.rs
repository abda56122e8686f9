//! Rows of `recordings`: recorded sessions' asciicast files (W1.6, W3.4).

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
    /// A login shell's (else a root session's, through sudo).
    pub login: bool,
    /// The session recorded (one recording per session); None before
    /// recordings were tied to their session.
    pub session: Option<u64>,
    /// What the digest vouches for, once closed.
    pub digest_of: Option<DigestOf>,
}

/// What a recording's digest vouches for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DigestOf {
    /// The session's bytes as jitd received them from the recorder: any
    /// later change to the file shows.
    Session,
    /// The file as jitd found it when its writer was gone (a jitd that
    /// restarted): what happened to it before is unknown.
    File,
    /// The recorder's own report (root sessions before jitd took their
    /// bytes itself): unverified.
    Recorder,
}

impl DigestOf {
    pub fn as_str(self) -> &'static str {
        match self {
            DigestOf::Session => "session",
            DigestOf::File => "file",
            DigestOf::Recorder => "recorder",
        }
    }

    fn parse(text: &str) -> Option<DigestOf> {
        [DigestOf::Session, DigestOf::File, DigestOf::Recorder]
            .into_iter()
            .find(|d| d.as_str() == text)
    }
}

const COLUMNS: &str =
    "r.id, r.grant_id, r.uid, r.user, r.resource, r.path, r.started_at, r.ended_at,
     (SELECT json_extract(a.detail, '$.sha256') FROM audit a
       WHERE a.event = 'recording_closed' AND a.request = r.grant_id
         AND json_extract(a.detail, '$.recording') = r.id),
     r.bytes, r.end_reason, r.login, r.session, r.digest_of";

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
        session: r.get(12)?,
        digest_of: r
            .get::<_, Option<String>>(13)?
            .as_deref()
            .and_then(DigestOf::parse),
    })
}

impl Writer<'_> {
    /// Inserts `rec` (its id is ignored) and returns the new id.
    pub fn insert_recording(&mut self, rec: &RecordingRecord) -> Result<u64> {
        self.tx.execute(
            "INSERT INTO recordings (grant_id, uid, user, resource, path, started_at, login, session)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                rec.grant,
                rec.uid,
                rec.user,
                rec.resource,
                rec.path,
                rec.started_at,
                rec.login,
                rec.session
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
    pub fn close_recording(&mut self, id: u64, at: UnixTime, closed: &Closed<'_>) -> Result<bool> {
        let changed = self.tx.execute(
            "UPDATE recordings SET ended_at = ?2, sha256 = ?3, bytes = ?4, end_reason = ?5,
                 digest_of = ?6
             WHERE id = ?1 AND ended_at IS NULL",
            params![
                id,
                at,
                closed.sha256,
                closed.bytes,
                closed.end,
                closed.digest_of.as_str()
            ],
        )?;
        Ok(changed == 1)
    }
}

/// How a recording closed.
#[derive(Clone, Copy, Debug)]
pub struct Closed<'a> {
    pub sha256: &'a str,
    pub bytes: u64,
    pub end: &'a str,
    pub digest_of: DigestOf,
}

impl Store {
    pub fn recording(&self, id: u64) -> Result<Option<RecordingRecord>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM recordings r WHERE r.id = ?1"
        ))?;
        let mut rows = stmt.query_map([id], from_row)?;
        Ok(rows.next().transpose()?)
    }

    /// The recording of `session`, if it has one.
    pub fn recording_of_session(&self, session: u64) -> Result<Option<u64>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id FROM recordings WHERE session = ?1")?;
        let mut rows = stmt.query_map([session], |r| r.get(0))?;
        Ok(rows.next().transpose()?)
    }

    /// Recordings not closed yet, oldest first.
    pub fn open_recordings(&self) -> Result<Vec<RecordingRecord>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM recordings r WHERE r.ended_at IS NULL ORDER BY r.id"
        ))?;
        let rows = stmt.query_map([], from_row)?;
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
