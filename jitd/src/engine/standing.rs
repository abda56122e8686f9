//! The standing-privilege scan's store side (docs/design.md,
//! "Standing-privilege scan"): who may scan, which managed accounts' passwords
//! jitd holds, and the snapshot with its audit event in one transaction.
//! The host is read by `crate::standing`, off the engine lock.

use std::collections::BTreeSet;

use serde_json::json;

use super::{Engine, EngineError, Result, JITD};
use crate::api::{change_percent, rfc3339, ScanHistoryView, ScanPointView, ScanView};
use crate::core::custody::Custody;
use crate::core::standing::Report;
use crate::directory::Person;
use crate::standing::Inputs;
use crate::store::{AuditEvent, ScanRecord};

/// The most scans `ScanHistory` returns.
const HISTORY_MAX: u32 = 10_000;

impl Engine {
    /// Root, security and auditors may scan and read the trend.
    pub fn may_scan(&self, who: &Person) -> Result<()> {
        match self.sees_all(who) {
            true => Ok(()),
            false => Err(EngineError::NotScanner),
        }
    }

    /// What the scan needs from the configuration.
    pub fn scan_inputs(&self) -> Inputs {
        Inputs {
            polkit: self.config.polkit.clone(),
            managed: self
                .config
                .accounts
                .iter()
                .map(|a| a.name.clone())
                .collect(),
        }
    }

    /// Stores a scan's report with its `standing_scanned` event, and
    /// answers it with the trend. `who`: `None` for jitd's own timer.
    pub fn record_scan(&mut self, who: Option<&Person>, report: Report) -> Result<ScanView> {
        let now = self.clock.wall();
        let actor = who.map_or(JITD, |p| p.name.as_str());
        let stored = self.store.write(|w| -> Result<ScanRecord> {
            let stored = w.put_scan(now, actor, &report)?;
            w.audit(&AuditEvent {
                at: now,
                actor_uid: who.map(|p| p.uid),
                actor,
                event: "standing_scanned",
                request: None,
                detail: json!({
                    "scan": stored.id,
                    "total": stored.total,
                    "counts": stored.counts,
                    "errors": stored.errors,
                }),
            })?;
            Ok(stored)
        })?;
        let first = self.store.first_scan()?.unwrap_or_else(|| stored.clone());
        Ok(ScanView {
            change_percent: change_percent(first.total, stored.total),
            first: point(&first),
            scan: point(&stored),
            findings: report.findings,
            errors: report.errors,
            notes: report.notes,
        })
    }

    /// The managed accounts whose `/etc/shadow` field is the one jitd
    /// wrote while it holds them (locked with an escrowed or unknown
    /// password, or checked out to a grant).
    pub fn in_custody(
        &self,
        fields: &[(String, crate::core::password::Secret)],
    ) -> Result<BTreeSet<String>> {
        let mut held = BTreeSet::new();
        for (name, field) in fields {
            let Some(row) = self.store.account(name)? else {
                continue;
            };
            let holds = matches!(row.custody, Custody::Held | Custody::CheckedOut { .. });
            let written = row.field_fingerprint.as_deref()
                == Some(self.store.fingerprint(field.expose().as_bytes()).as_str());
            if holds && written {
                held.insert(name.clone());
            }
        }
        Ok(held)
    }

    /// The trend: every scan since `since`, and the first.
    pub fn scan_history(&self, who: &Person, since: i64) -> Result<ScanHistoryView> {
        self.may_scan(who)?;
        let scans = self.store.scans(since, HISTORY_MAX)?;
        let first = self.store.first_scan()?;
        Ok(ScanHistoryView {
            change_percent: match (&first, scans.last()) {
                (Some(first), Some(last)) => change_percent(first.total, last.total),
                _ => None,
            },
            first: first.as_ref().map(point),
            scans: scans.iter().map(point).collect(),
        })
    }
}

fn point(scan: &ScanRecord) -> ScanPointView {
    ScanPointView {
        id: scan.id,
        at: rfc3339(scan.at),
        actor: scan.actor.clone(),
        total: scan.total,
        counts: scan
            .counts
            .iter()
            .map(|(k, n)| (k.as_str().to_owned(), *n))
            .collect(),
        unread: scan.errors,
    }
}
