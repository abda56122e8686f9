//! Vendors' accounts (`core::vendor::host_target`, written by
//! `engine/vendors`): made when approved, locked when their access ends,
//! deleted after the retention; accounts of the vendors' prefix or uid
//! range that no vendor of jitd's is are reported, never trusted. Their
//! egress rules (`core::segments`) are applied first, on every pass whose
//! rules differ from the last applied and on the first of a run (the
//! reconcile at start): an account is made only once its rules are in.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use super::{lock, Keeper};
use crate::accounts::vendors::AccountPlan;
use crate::core::segments::{self, VendorEgress};
use crate::core::vendor::{self, Host, Vendor};

/// The failure key of the egress rules (no account is named so).
const SEGMENTS_KEY: &str = ":segments";

/// The rules the firewall holds (their script without counters).
pub(super) struct Applied {
    script: String,
}

/// The failure key of vendor `id` (no account is named so).
fn vendor_key(id: u64) -> String {
    format!(":vendor:{id}")
}

/// The GECOS field: who the vendor is, without what passwd cannot hold.
fn comment(v: &Vendor) -> String {
    format!(
        "{} ({}), vendor {} sponsored by {}",
        v.ask.organization, v.ask.email, v.id, v.sponsor
    )
    .chars()
    .map(|c| match c {
        ':' | ',' | '=' => ' ',
        c if c.is_control() => ' ',
        c => c,
    })
    .take(200)
    .collect()
}

impl Keeper {
    /// Brings each vendor's account where its state says; returns when to
    /// try again if a step failed.
    pub(super) fn settle_vendors(&self) -> Option<Duration> {
        let config = self.inner.vendors.as_ref()?;
        let engine = &self.inner.engine;
        let work = match lock(engine).vendor_host_work() {
            Ok(work) => work,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the vendors");
                return Some(super::BACKOFF[0]);
            }
        };
        let mut retry: Option<Duration> = None;
        let rules_in = match self.settle_segments() {
            Ok(()) => true,
            Err(after) => {
                retry = Some(after);
                false
            }
        };
        for (v, target) in work {
            let key = vendor_key(v.id);
            if let Some(after) = self.backing_off(&key) {
                retry = Some(retry.map_or(after, |d| d.min(after)));
                continue;
            }
            if target == Host::Created && v.host == Host::None && !rules_in {
                // Fail closed: no account whose egress is not limited yet.
                tracing::warn!(
                    vendor = v.id,
                    account = v.account,
                    "the account waits for its egress rules"
                );
                continue;
            }
            // Never approved (host_target leaves those alone).
            let Some(uid) = v.uid else {
                continue;
            };
            let host = self.inner.vendor_host.as_ref();
            let done = match target {
                Host::Created => host.create(&AccountPlan {
                    account: v.account.clone(),
                    uid,
                    group: config.group.clone(),
                    comment: comment(&v),
                    expire_day: vendor::expire_day(v.expires_at.unwrap_or_default()),
                    key_line: v.ask.key.as_deref().and_then(|k| vendor::key_line(k).ok()),
                }),
                Host::Locked => host.lock(&v.account, uid),
                Host::Deleted => {
                    let archive = self
                        .inner
                        .vendor_archive
                        .join(format!("{}-{}.tar.gz", v.account, v.id));
                    host.delete(&v.account, uid, &archive)
                }
                Host::None => continue,
            };
            match done {
                Ok(mut detail) => {
                    lock(&self.inner.failures).remove(&key);
                    detail["vendor"] = serde_json::json!(v.id);
                    if target == Host::Locked {
                        if let Some(n) = lock(&self.inner.dropped_at_end).remove(&uid) {
                            detail["egress_dropped"] = serde_json::json!(n);
                        }
                    }
                    self.reached(&v, target, detail);
                }
                Err(e) => {
                    let (attempts, after) = self.note_failure(&key);
                    tracing::error!(vendor = v.id, account = v.account, target = target.as_str(),
                        error = %e, retry_in = ?after, "a vendor account step failed");
                    if attempts == 1 {
                        let reported =
                            lock(engine).report_vendor_host_failure(v.id, &e.to_string());
                        if let Err(e) = reported {
                            tracing::error!(error = %e, "cannot audit the failure");
                        }
                    }
                    retry = Some(retry.map_or(after, |d| d.min(after)));
                }
            }
        }
        self.report_unknown_vendor_accounts(config);
        retry
    }

    /// Makes jit's nftables table hold the rules of every active vendor
    /// (their segments, everything else dropped); `Err`: not done, try
    /// again after that long.
    fn settle_segments(&self) -> Result<(), Duration> {
        if let Some(after) = self.backing_off(SEGMENTS_KEY) {
            return Err(after);
        }
        let engine = &self.inner.engine;
        let egress = match lock(engine).vendor_egress() {
            Ok(egress) => egress,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the vendors' segments");
                return Err(super::BACKOFF[0]);
            }
        };
        let rules: Vec<VendorEgress<'_>> = egress
            .iter()
            .map(|(uid, granted)| VendorEgress {
                uid: *uid,
                segments: granted.iter().collect(),
            })
            .collect();
        // Compared without the counters: they change with every packet.
        let range = self.inner.vendors.as_ref().map(|c| &c.uids);
        let rules_only = segments::script(&rules, range, &BTreeMap::new());
        let uids: Vec<u32> = rules.iter().map(|r| r.uid).collect();
        if matches!(&*lock(&self.inner.egress), Some(a) if a.script == rules_only) {
            return Ok(());
        }
        // Read before the table is made anew: the vendors who stay keep
        // their counts, those who leave have theirs audited with the lock.
        let counted = self.inner.firewall.counters();
        for (uid, c) in &counted {
            if !uids.contains(uid) {
                tracing::info!(
                    uid,
                    dropped = c.packets,
                    "a vendor's egress rules are removed"
                );
                lock(&self.inner.dropped_at_end).insert(*uid, c.packets);
            }
        }
        let script = segments::script(&rules, range, &counted);
        match self.inner.firewall.apply(&script) {
            Ok(()) => {
                self.inner.egress_gate.set_ready(true);
                lock(&self.inner.failures).remove(SEGMENTS_KEY);
                tracing::info!(vendors = uids.len(), "vendors' egress rules applied");
                *lock(&self.inner.egress) = Some(Applied { script: rules_only });
                Ok(())
            }
            Err(e) => {
                // Unknown what the table holds now: applied again next
                // time, and until then no vendor holds a grant.
                *lock(&self.inner.egress) = None;
                self.inner.egress_gate.set_ready(false);
                let (attempts, after) = self.note_failure(SEGMENTS_KEY);
                tracing::error!(error = %e, retry_in = ?after,
                    "cannot apply the vendors' egress rules");
                if attempts == 1 {
                    if let Err(e) = lock(engine).report_segments_failure(&e.to_string()) {
                        tracing::error!(error = %e, "cannot audit the failure");
                    }
                }
                Err(after)
            }
        }
    }

    fn reached(&self, v: &Vendor, target: Host, detail: serde_json::Value) {
        let recorded = lock(&self.inner.engine).vendor_host_reached(v.id, target, detail);
        if let Err(e) = recorded {
            tracing::error!(vendor = v.id, error = %e, "cannot record a vendor account step");
        }
    }

    /// Accounts of the prefix or the uid range that are no vendor's of
    /// jitd's (or not with that uid): audited once per jitd run, security
    /// told. pam_jit finds no grant for them; they are still worth a look.
    fn report_unknown_vendor_accounts(&self, config: &crate::config::VendorsConfig) {
        let known = match lock(&self.inner.engine).vendor_accounts() {
            Ok(known) => known,
            Err(e) => {
                tracing::error!(error = %e, "cannot list the vendors' accounts");
                return;
            }
        };
        let present = self.inner.vendor_host.present(&config.prefix, &config.uids);
        let mut reported = lock(&self.inner.unknown_vendors);
        for (name, uid) in present {
            if known.contains(&(name.clone(), uid)) || !reported.insert((name.clone(), uid)) {
                continue;
            }
            tracing::warn!(
                account = name,
                uid,
                "an account of the vendors' prefix or uids that jitd did not make"
            );
            if let Err(e) = lock(&self.inner.engine).report_unknown_vendor_account(&name, uid) {
                tracing::error!(error = %e, "cannot audit an unknown vendor account");
            }
        }
    }
}

/// Accounts reported as unknown in this run of jitd.
pub(super) type Reported = HashSet<(String, u32)>;
