//! The persistence snapshots of privileged grants (`persistence`,
//! compared by `core::changes`, stored by `engine/changes`).

use std::time::{Duration, Instant};

use super::{lock, Keeper, BACKOFF};
use crate::accounts::leftovers;
use crate::core::changes::{self, Change, Kind, What};
use crate::core::model::RequestId;
use crate::persistence;

/// How long after a grant's end its end snapshot is taken: its sessions
/// get their kill grace first, so what they did last is seen.
pub(super) const SETTLE: Duration = Duration::from_secs(2);

impl Keeper {
    /// Snapshots the persistence places for privileged grants that
    /// started, and compares for those that ended ([`SETTLE`] ago: their
    /// sessions have ended by then). One snapshot serves every grant due at
    /// once. Returns when to look again for a grant still settling.
    pub(super) fn settle_snapshots(&self) -> Option<Duration> {
        let engine = &self.inner.engine;
        let now = lock(engine).now();
        let due = lock(engine).snapshots_due();
        let ready = lock(engine).comparisons_due(now - SETTLE.as_secs() as i64);
        let waiting = lock(engine).comparisons_due(now);
        let (due, ready, waiting) = match (due, ready, waiting) {
            (Ok(d), Ok(r), Ok(w)) => (d, r, w),
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
                tracing::error!(error = %e, "cannot read the grants to snapshot");
                return Some(BACKOFF[0]);
            }
        };
        if !due.is_empty() || !ready.is_empty() {
            let fingerprint = |bytes: &[u8]| lock(engine).fingerprint(bytes);
            let started = Instant::now();
            let snapshot = persistence::take(&fingerprint);
            tracing::info!(entries = snapshot.entries.len(), truncated = snapshot.truncated,
                took = ?started.elapsed(), "host snapshot");
            for grant in due {
                self.note_recovery_exposure(grant);
                if let Err(e) = lock(engine).record_snapshot(grant, &snapshot) {
                    tracing::error!(grant, error = %e, "cannot store a snapshot");
                }
            }
            for (grant, before) in &ready {
                self.note_recovery_exposure(*grant);
                let mut found = changes::diff(before, &snapshot);
                found.changes.retain(|c| !self.rotated_by_jitd(c));
                found.changes.extend(self.processes_left(*grant));
                if let Err(e) = lock(engine).record_changes(*grant, &found) {
                    tracing::error!(grant, error = %e, "cannot store what changed");
                }
            }
        }
        let renewal = self.renew_exposed_recovery();
        let settling = (waiting.len() > ready.len()).then_some(SETTLE);
        match (renewal, settling) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// A managed account's password: jitd changes it itself at every
    /// checkout and check-in (one changed behind its back is custody's
    /// business: rotated, audited, security told).
    fn rotated_by_jitd(&self, change: &Change) -> bool {
        change.kind == Kind::Password
            && change
                .path
                .strip_prefix("password:")
                .is_some_and(|name| self.inner.accounts.iter().any(|a| a.name == name))
    }

    /// What ended grant `grant` left running as the managed account it
    /// checked out (`accounts::leftovers`), as changes.
    fn processes_left(&self, grant: RequestId) -> Vec<Change> {
        let checkout = lock(&self.inner.engine).checkout_of_ended(grant);
        let (account, since) = match checkout {
            Ok(Some(found)) => found,
            Ok(None) => return Vec::new(),
            Err(e) => {
                tracing::error!(grant, error = %e, "cannot read a grant's checkout");
                return Vec::new();
            }
        };
        let (Ok(Some(user)), Some(since)) = (nix::unistd::User::from_name(&account), ticks(since))
        else {
            return Vec::new();
        };
        let sessions = &self.inner.sessions;
        let running = leftovers::running();
        leftovers::left_running(&running, user.uid.as_raw(), since, |pid| {
            sessions.maybe_in_session(pid)
        })
        .into_iter()
        .map(|pid| Change {
            kind: Kind::Process,
            path: format!("process:{pid}:{} as {account}", leftovers::command_of(pid)),
            what: What::Added,
        })
        .collect()
    }
}

/// `after_boot` in clock ticks, as `/proc/PID/stat` counts a process's start.
fn ticks(after_boot: Duration) -> Option<u64> {
    let per_sec = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).ok()??;
    Some(
        after_boot
            .as_secs()
            .saturating_mul(u64::try_from(per_sec).ok()?),
    )
}
