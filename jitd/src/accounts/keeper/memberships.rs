//! Group memberships of grants (`core::membership`, written by
//! `engine/memberships`), each on its own.

use std::time::Duration;

use super::{lock, Keeper, Retry};
use crate::core::membership::Change;
use crate::engine::CustodyError;

/// The failure key of reading the group memberships (no account is named
/// so: `:` is in no account or group name).
const MEMBERSHIPS: &str = ":memberships";

/// The failure key of one membership's changes.
fn membership_key(change: &Change) -> String {
    let (Change::Add { membership, .. } | Change::Remove { membership }) = change;
    format!(":{}:{}", membership.user, membership.group)
}

impl Keeper {
    /// Makes the membership changes due, each on its own: one that keeps
    /// failing (a group gone, a user deleted) backs off alone and holds up
    /// no other, least of all a removal.
    pub(super) fn settle_memberships(&self) -> Result<(), Retry> {
        let groups = self.inner.groups.as_ref();
        let changes = lock(&self.inner.engine).membership_changes(groups);
        let changes = changes.map_err(|e| self.membership_failed(None, &e))?;
        lock(&self.inner.failures).remove(MEMBERSHIPS);
        let mut retry: Option<Duration> = None;
        for change in &changes {
            let key = membership_key(change);
            if let Some(after) = self.backing_off(&key) {
                retry = Some(retry.map_or(after, |d| d.min(after)));
                continue;
            }
            match self.make(change) {
                Ok(()) => {
                    lock(&self.inner.failures).remove(&key);
                    tracing::info!(change = ?change, "group membership changed");
                }
                Err(e) => {
                    let after = self.membership_failed(Some(change), &e).after;
                    retry = Some(retry.map_or(after, |d| d.min(after)));
                }
            }
        }
        match retry {
            Some(after) => Err(Retry {
                after,
                timed_out: false,
            }),
            None => Ok(()),
        }
    }

    /// One membership change: its intent written, `gpasswd`, its result.
    /// (One engine lock a statement: a guard lives to the statement's end.)
    fn make(&self, change: &Change) -> Result<(), CustodyError> {
        lock(&self.inner.engine).membership_begin(change)?;
        let groups = self.inner.groups.as_ref();
        let ended = match change {
            Change::Add { membership, .. } => {
                self.unblocked(&membership.user, || groups.add(membership))?;
                Vec::new()
            }
            Change::Remove { membership } => {
                self.unblocked(&membership.user, || groups.remove(membership))?
            }
        };
        lock(&self.inner.engine).membership_done(change, &ended)?;
        Ok(())
    }

    fn membership_failed(&self, change: Option<&Change>, error: &CustodyError) -> Retry {
        let key = change.map_or_else(|| MEMBERSHIPS.to_owned(), membership_key);
        let (attempts, after) = self.note_failure(&key);
        tracing::error!(change = ?change, %error, retry_in = ?after,
            "a group membership change failed");
        let audited =
            lock(&self.inner.engine).membership_failed(change, &error.to_string(), attempts == 1);
        if let Err(e) = audited {
            tracing::error!(error = %e, "cannot audit the failure");
        }
        Retry {
            after,
            timed_out: false,
        }
    }
}
