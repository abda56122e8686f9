//! The persistence snapshots of privileged grants (`persistence`,
//! compared by `core::changes`, stored by `engine/changes`).

use std::time::{Duration, Instant};

use super::{lock, Keeper, BACKOFF};
use crate::core::changes;
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
                let found = changes::diff(before, &snapshot);
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
}
