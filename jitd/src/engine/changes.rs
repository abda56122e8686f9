//! What changed during a privileged grant (W3 item 6, docs/design.md "What
//! changed during a grant"): the store's side. `accounts::keeper` takes
//! the snapshots (`persistence`) and compares them (`core::changes`).

use serde_json::json;

use super::custody::audit;
use super::{Engine, Result};
use crate::core::changes::{Changes, Snapshot};
use crate::core::model::{RequestId, UnixTime};

impl Engine {
    /// The resources whose grants are snapshotted: the privileged ones
    /// (sudo, managed accounts).
    pub fn snapshotted_resources(&self) -> Vec<String> {
        self.config
            .resources
            .iter()
            .filter(|r| r.privileged)
            .map(|r| r.name.clone())
            .collect()
    }

    /// Active privileged grants with no snapshot yet.
    pub fn snapshots_due(&self) -> Result<Vec<RequestId>> {
        Ok(self
            .store
            .grants_to_snapshot(&self.snapshotted_resources())?)
    }

    /// Ended grants whose start snapshot waits for the end one, if they
    /// ended by `before` (their sessions had time to end).
    pub fn comparisons_due(&self, before: UnixTime) -> Result<Vec<(RequestId, Snapshot)>> {
        Ok(self.store.snapshots_to_compare(before)?)
    }

    pub fn record_snapshot(&mut self, grant: RequestId, snapshot: &Snapshot) -> Result<()> {
        let now = self.clock.wall();
        let detail = json!({"entries": snapshot.entries.len(), "truncated": snapshot.truncated});
        self.store.write(|w| -> Result<()> {
            w.put_snapshot(grant, now, snapshot)?;
            audit(w, now, "host_snapshot_taken", Some(grant), detail)
        })
    }

    /// Stores what changed during `grant`. `host_changed` (which tells
    /// security) when something did or the snapshots were capped;
    /// `host_unchanged` otherwise.
    pub fn record_changes(&mut self, grant: RequestId, changes: &Changes) -> Result<()> {
        let now = self.clock.wall();
        let mut kinds: Vec<String> = changes
            .changes
            .iter()
            .map(|c| {
                serde_json::to_value(c.kind).map(|v| v.as_str().unwrap_or_default().to_owned())
            })
            .collect::<std::result::Result<_, _>>()
            .unwrap_or_default();
        kinds.dedup();
        let event = if changes.worth_telling() {
            "host_changed"
        } else {
            "host_unchanged"
        };
        let held = self.load(grant)?;
        let detail = json!({
            "user": held.user,
            "resource": held.resource,
            "count": changes.changes.len(),
            "truncated": changes.truncated,
            "kinds": kinds,
        });
        self.store.write(|w| -> Result<()> {
            w.put_changes(grant, now, changes)?;
            audit(w, now, event, Some(grant), detail)
        })
    }

    /// jitd's keyed fingerprint of `bytes` (a password field in a
    /// snapshot is recorded by it).
    pub fn fingerprint(&self, bytes: &[u8]) -> String {
        self.store.fingerprint(bytes)
    }

    /// What changed during `grant`, if it was compared.
    pub fn changes_of(&self, grant: RequestId) -> Result<Option<Changes>> {
        Ok(self.store.changes(grant)?)
    }
}
