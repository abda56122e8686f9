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

    /// Gives `session` its id and journals it if `check` (its grant still
    /// holds) passes under this lock: once this returns, a crash loses
    /// nothing (the journal is replayed at start), and no unused grant's
    /// revocation ([`Admissions::unused_then`]) can come between the check
    /// and the append.
    fn admit<T>(
        &self,
        mut session: SessionRecord,
        check: impl FnOnce(&SessionRecord) -> Result<T>,
    ) -> Result<(SessionRecord, T)> {
        let mut pending = self.lock();
        let checked = check(&session)?;
        session.id = pending.next_id;
        pending.journal.append(&session)?;
        pending.next_id += 1;
        pending.unwritten.push(session.clone());
        Ok((session, checked))
    }

    /// For the revocation of an unused grant (docs/design.md "Unused
    /// grants"): false if a session of `grant` waits for its row; else
    /// `close` (which takes the grant out of the index) runs before any
    /// other admission can check it, and true. A session admitted before
    /// wins; one after finds no grant. The caller has written the rows of
    /// the sessions admitted before (the engine's lock keeps others from
    /// writing them meanwhile) and found none of `grant`'s.
    pub fn unused_then(&self, grant: u64, close: impl FnOnce()) -> bool {
        let pending = self.lock();
        if pending.unwritten.iter().any(|s| s.grant == grant) {
            return false;
        }
        close();
        true
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
        session.opened_at = now;
        self.admissions.admit(session, |session| {
            let active = self.grants.read().unwrap_or_else(|e| e.into_inner()).check(
                session.uid,
                resource,
                now,
            );
            match active {
                Some((grant, expires_at)) if grant == session.grant => Ok(expires_at),
                _ => Err(EngineError::NoGrant {
                    uid: session.uid,
                    resource: resource.to_owned(),
                }),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(grant: u64) -> SessionRecord {
        crate::test_support::sudo_session(grant, 61001, std::process::id())
    }

    /// An unused grant is closed (taken out of the index) only if no
    /// session of it waits for its row; a failed check admits nothing.
    #[test]
    fn an_unused_grant_closes_only_without_a_session_waiting_for_its_row() {
        let dir = tempfile::tempdir().unwrap();
        let (journal, _) = Journal::open(dir.path()).unwrap();
        let admissions = Admissions::new(journal, 1);
        let refused = admissions.admit(session(8), |_| -> Result<()> {
            Err(EngineError::NoGrant {
                uid: 61001,
                resource: "ops".into(),
            })
        });
        assert!(refused.is_err());
        let (admitted, ()) = admissions.admit(session(7), |_| Ok(())).unwrap();
        assert_eq!((admitted.id, admissions.unwritten()), (1, 1));
        let mut closed = Vec::new();
        assert!(!admissions.unused_then(7, || closed.push(7)));
        assert!(admissions.unused_then(8, || closed.push(8)));
        assert_eq!(closed, [8]);
    }
}
