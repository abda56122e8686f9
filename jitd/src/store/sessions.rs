//! Rows of `sessions`: PAM sessions opened under a grant (W1.7, W1.8 "use").

use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};

use super::{Result, Store, Writer};
use crate::core::model::{RequestId, Uid, UnixTime};

/// A PAM session registered by pam_jit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub id: u64,
    pub grant: RequestId,
    pub uid: Uid,
    pub service: String,
    pub tty: String,
    pub rhost: String,
    pub pid: u32,
    /// The process's start time (clock ticks after boot): with `pid`, it
    /// names the process across jitd restarts. None in rows from earlier versions.
    pub started: Option<u64>,
    /// The cgroup holding the session's processes, when jitd made one.
    pub cgroup: Option<String>,
    pub opened_at: UnixTime,
    pub closed_at: Option<UnixTime>,
}

impl Writer<'_> {
    /// Inserts `s` under its own id (given out by the engine when the
    /// session was registered).
    pub fn insert_session(&mut self, s: &SessionRecord) -> Result<()> {
        // Cached: this and close_session run on every sudo and login.
        self.tx
            .prepare_cached(
                "INSERT INTO sessions (id, grant_id, uid, service, tty, rhost, pid, started, cgroup, opened_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?
            .execute(params![
                s.id,
                s.grant,
                s.uid,
                s.service,
                s.tty,
                s.rhost,
                s.pid,
                s.started,
                s.cgroup,
                s.opened_at
            ])?;
        Ok(())
    }

    /// Marks a session closed; returns what its end's audit event names
    /// (None if it was unknown or already closed). One statement: a batch
    /// of ends reads nothing else.
    pub fn close_session(&mut self, id: u64, at: UnixTime) -> Result<Option<ClosedSession>> {
        let closed = self
            .tx
            .prepare_cached(
                "UPDATE sessions SET closed_at = ?2 WHERE id = ?1 AND closed_at IS NULL
                 RETURNING grant_id, uid, service, pid",
            )?
            .query_row(params![id, at], |r| {
                Ok(ClosedSession {
                    id,
                    grant: r.get(0)?,
                    uid: r.get(1)?,
                    service: r.get(2)?,
                    pid: r.get(3)?,
                })
            })
            .optional()?;
        Ok(closed)
    }
}

/// A session whose end was just recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClosedSession {
    pub id: u64,
    pub grant: RequestId,
    pub uid: Uid,
    pub service: String,
    pub pid: u32,
}

impl Store {
    /// The highest session id given out so far (0 for none).
    pub fn last_session_id(&self) -> Result<u64> {
        Ok(self
            .conn
            .prepare_cached("SELECT COALESCE(MAX(id), 0) FROM sessions")?
            .query_row([], |r| r.get(0))?)
    }

    pub fn session(&self, id: u64) -> Result<Option<SessionRecord>> {
        Ok(self.sessions_where("id = ?1", [id])?.pop())
    }

    /// Every session ever opened under `grant`, open or closed: a closed
    /// session may have left processes behind (setsid, nohup).
    pub fn sessions_of(&self, grant: RequestId) -> Result<Vec<SessionRecord>> {
        self.sessions_where("grant_id = ?1", [grant])
    }

    /// Sessions whose end jitd has not recorded yet.
    pub fn open_sessions(&self) -> Result<Vec<SessionRecord>> {
        self.sessions_where("closed_at IS NULL", [])
    }

    fn sessions_where(
        &self,
        condition: &str,
        key: impl rusqlite::Params,
    ) -> Result<Vec<SessionRecord>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT id, grant_id, uid, service, tty, rhost, pid, started, cgroup, opened_at, closed_at
             FROM sessions WHERE {condition} ORDER BY id"
        ))?;
        let rows = stmt.query_map(key, |r| {
            Ok(SessionRecord {
                id: r.get(0)?,
                grant: r.get(1)?,
                uid: r.get(2)?,
                service: r.get(3)?,
                tty: r.get(4)?,
                rhost: r.get(5)?,
                pid: r.get(6)?,
                started: r.get(7)?,
                cgroup: r.get(8)?,
                opened_at: r.get(9)?,
                closed_at: r.get(10)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
