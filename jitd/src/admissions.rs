//! Sessions admitted on pam_jit's path, before their rows are written.
//!
//! A registration must not wait for the engine's lock: every jitctl
//! request of every user takes it, for a SQLite commit, and a flood of them
//! pushed sudo's registration past pam_jit's timeout (threat T30). So the
//! session journal, the sessions whose rows are not written yet and the next
//! session id live here, behind a lock of their own that a registration and
//! the row writer each hold for one append or one swap, never across a
//! commit.

use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use crate::clock::Clock;
use crate::core::model::UnixTime;
use crate::engine::{EngineError, Result};
use crate::grants::GrantIndex;
use crate::store::{Journal, SessionRecord};

struct Pending {
    journal: Journal,
    /// Admitted sessions without a row yet, oldest first.
    unwritten: Vec<SessionRecord>,
    /// The id the next admitted session gets.
    next_id: u64,
}

pub struct Admissions {
    pending: Mutex<Pending>,
}

impl Admissions {
    pub fn new(journal: Journal, next_id: u64) -> Admissions {
        Admissions {
            pending: Mutex::new(Pending {
                journal,
                unwritten: Vec::new(),
                next_id,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Gives `session` its id and journals it: once this returns, a crash
    /// loses nothing (the journal is replayed at start).
    fn admit(&self, mut session: SessionRecord) -> Result<SessionRecord> {
        let mut pending = self.lock();
        session.id = pending.next_id;
        pending.journal.append(&session)?;
        pending.next_id += 1;
        pending.unwritten.push(session.clone());
        Ok(session)
    }

    /// The sessions to write now; hand them back with [`Admissions::written`].
    pub fn take_unwritten(&self) -> Vec<SessionRecord> {
        std::mem::take(&mut self.lock().unwritten)
    }

    /// After a write of `sessions`: on failure they wait for the next one
    /// (still journaled); on success the journal empties itself once no
    /// admitted session is left without a row.
    pub fn written(&self, sessions: Vec<SessionRecord>, ok: bool) -> Result<()> {
        let mut pending = self.lock();
        if !ok {
            let newer = std::mem::replace(&mut pending.unwritten, sessions);
            pending.unwritten.extend(newer);
            return Ok(());
        }
        if pending.unwritten.is_empty() {
            pending.journal.all_written()?;
        }
        Ok(())
    }

    /// How many admitted sessions wait for their rows.
    #[cfg(test)]
    pub fn unwritten(&self) -> usize {
        self.lock().unwritten.len()
    }
}

/// What admits a session: the grant index and the admissions, never the
/// engine's lock. Made by [`crate::engine::Engine::admitter`].
#[derive(Clone)]
pub struct Admitter {
    pub(crate) grants: Arc<RwLock<GrantIndex>>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) admissions: Arc<Admissions>,
}

impl Admitter {
    /// Admits a PAM session opened under `session.uid`'s active grant
    /// `session.grant` for `resource` (W1.8 "use"), on every sudo and login.
    /// The caller (the gate) has checked that pam_jit, as root, asks. The
    /// session is journaled; its row is written by
    /// [`crate::engine::Engine::write_admitted`], after pam_jit has its
    /// answer and, on a busy host, with the rows of other sudo runs.
    pub fn admit(
        &self,
        mut session: SessionRecord,
        resource: &str,
    ) -> Result<(SessionRecord, UnixTime)> {
        for (what, text) in [
            ("service", &session.service),
            ("tty", &session.tty),
            ("rhost", &session.rhost),
        ] {
            if text.len() > 256 {
                return Err(EngineError::TooLong(what));
            }
        }
        let now = self.clock.wall();
        let active =
            self.grants
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .check(session.uid, resource, now);
        let expires_at = match active {
            Some((grant, expires_at)) if grant == session.grant => expires_at,
            _ => {
                return Err(EngineError::NoGrant {
                    uid: session.uid,
                    resource: resource.to_owned(),
                })
            }
        };
        session.opened_at = now;
        Ok((self.admissions.admit(session)?, expires_at))
    }
}
