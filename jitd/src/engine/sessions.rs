//! Records of use (W1.8): the rows and audit events of the sessions admitted
//! on pam_jit's path (written in batches, and from the journal after a
//! crash) and of their ends.

use serde_json::json;
use std::sync::Arc;

use super::{Engine, EngineError, Result, JITD};
use crate::admissions::Admitter;
use crate::core::model::{RequestId, State};
use crate::core::workflow::WorkflowError;
use crate::store::{AuditEvent, SessionRecord, Store, Writer};

impl Engine {
    /// What admits sessions on pam_jit's path, without this engine's lock.
    pub fn admitter(&self) -> Admitter {
        Admitter {
            grants: Arc::clone(&self.grants),
            clock: Arc::clone(&self.clock),
            admissions: Arc::clone(&self.admissions),
        }
    }

    /// How many admitted sessions wait for their rows.
    #[cfg(test)]
    pub fn admitted_unwritten(&self) -> usize {
        self.admissions.unwritten()
    }

    /// Writes the rows and audit events of the admitted sessions, in one
    /// transaction.
    pub fn write_admitted(&mut self) -> Result<()> {
        let admitted = self.admissions.take_unwritten();
        if admitted.is_empty() {
            return Ok(());
        }
        let written = write_sessions(&mut self.store, &admitted, false);
        if written.is_ok() {
            // Used: no longer revoked as unused.
            for session in &admitted {
                self.unused.cancel(session.grant);
            }
        }
        self.admissions.written(admitted, written.is_ok())?;
        written
    }

    /// Records that sessions `ids` ended (their process exited, seen by
    /// jitd, not told by a caller), in one transaction; returns how many were
    /// not recorded as ended already. An id without a row is skipped: it
    /// must not keep the others of its batch unrecorded.
    pub fn close_sessions(&mut self, ids: &[u64]) -> Result<usize> {
        self.write_admitted()?;
        let now = self.clock.wall();
        self.store.write_usage(|w| -> Result<usize> {
            let mut closed = 0;
            for &id in ids {
                let Some(session) = w.close_session(id, now)? else {
                    tracing::debug!(session = id, "no open session to record the end of");
                    continue;
                };
                w.audit(&AuditEvent {
                    at: now,
                    actor_uid: Some(session.uid),
                    actor: JITD,
                    event: "session_closed",
                    request: Some(session.grant),
                    detail: json!({"session": session.id, "service": session.service, "pid": session.pid}),
                })?;
                closed += 1;
            }
            Ok(closed)
        })
    }

    /// Whether `grant` is an active grant (an unreadable store says yes:
    /// nothing is killed on a guess).
    pub fn is_active(&self, grant: RequestId) -> bool {
        self.store
            .request(grant)
            .map_or(true, |r| r.is_some_and(|r| r.state == State::Active))
    }

    /// Every session opened under `grant`, to be terminated when it ends.
    pub fn sessions_of(&mut self, grant: RequestId) -> Result<Vec<SessionRecord>> {
        self.write_admitted()?;
        Ok(self.store.sessions_of(grant)?)
    }

    /// Sessions whose end is not recorded yet (at start: those the previous
    /// jitd was watching).
    pub fn open_sessions(&mut self) -> Result<Vec<SessionRecord>> {
        self.write_admitted()?;
        Ok(self.store.open_sessions()?)
    }
}

/// A session's row and its audit event ("use", W1.8).
fn write_sessions(store: &mut Store, sessions: &[SessionRecord], from_journal: bool) -> Result<()> {
    store.write_usage(|w| -> Result<()> {
        for session in sessions {
            write_session(w, session, from_journal)?;
        }
        Ok(())
    })
}

/// At open: writes the sessions a previous jitd admitted but did not write
/// (it was killed in between); returns the id the next session gets.
pub(super) fn write_journaled(store: &mut Store, journaled: Vec<SessionRecord>) -> Result<u64> {
    let mut missing = Vec::new();
    for session in &journaled {
        if store.session(session.id)?.is_none() {
            tracing::warn!(
                session = session.id,
                grant = session.grant,
                "writing a session journaled by the previous jitd"
            );
            missing.push(session.clone());
        }
    }
    write_sessions(store, &missing, true)?;
    let last = journaled.iter().map(|s| s.id).max().unwrap_or(0);
    Ok(store.last_session_id()?.max(last) + 1)
}

fn write_session(w: &mut Writer<'_>, session: &SessionRecord, from_journal: bool) -> Result<()> {
    let user =
        w.requester(session.grant)?
            .ok_or(EngineError::Workflow(WorkflowError::NotFound(
                session.grant,
            )))?;
    w.insert_session(session)?;
    let mut detail = json!({
        "session": session.id,
        "service": session.service,
        "tty": session.tty,
        "rhost": session.rhost,
        "pid": session.pid,
        "cgroup": session.cgroup,
    });
    if from_journal {
        detail["from_journal"] = json!(true);
    }
    w.audit(&AuditEvent {
        at: session.opened_at,
        actor_uid: Some(session.uid),
        actor: &user,
        event: "session_opened",
        request: Some(session.grant),
        detail,
    })?;
    Ok(())
}
