//! Brings the host's accounts where the grants say they should be, on a
//! thread of its own so that shadow-utils never holds up the bus: the
//! custody steps of managed accounts (`core::custody`, written by
//! `engine/custody`), the group memberships of grants (`core::membership`,
//! `engine/memberships`) and the persistence snapshots of privileged grants
//! (`persistence`, `engine/changes`). Once at start before jitd serves, after every
//! grant of a resource concerned that starts or ends, and again after a
//! failure, backing off. One thread: two changes to `/etc/shadow` or
//! `/etc/group` never race. This module is the thread and its retries;
//! `custody`, `memberships` and `snapshots` are the three jobs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::segments::Firewall;
use super::vendors::VendorHost;
use super::{Groups, Passwords};
use crate::config::{Config, ManagedAccount, VendorsConfig};
use crate::core::model::RequestId;
use crate::core::password::Secret;
use crate::engine::Engine;
use crate::sessions::SessionControl;

mod custody;
mod memberships;
mod snapshots;
mod vendors;

/// Retry delays after consecutive failed passes; the last repeats.
const BACKOFF: [Duration; 4] = [
    Duration::from_secs(5),
    Duration::from_secs(30),
    Duration::from_secs(120),
    Duration::from_secs(300),
];

#[derive(Clone)]
pub struct Keeper {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Arc<Mutex<Engine>>,
    accounts: Vec<ManagedAccount>,
    passwords: Box<dyn Passwords>,
    /// Resources whose grants make their holders members of groups.
    grouped: Vec<String>,
    groups: Box<dyn Groups>,
    /// Resources whose grants are snapshotted (the privileged ones).
    snapshotted: Vec<String>,
    /// Where root's recovery password is written (`root_custody`).
    recovery_file: PathBuf,
    /// Tells processes in jit's session cgroups (ended with their grants)
    /// from those a holder left running as an account.
    sessions: SessionControl,
    /// Checked-out passwords their holder may see, by account: in memory
    /// only, so a restarted jitd checks the account out again.
    revealable: Mutex<HashMap<String, (RequestId, Secret)>>,
    /// Vendors' accounts (`[vendors]`), their tools, and where their homes
    /// are archived before deletion.
    vendors: Option<VendorsConfig>,
    vendor_host: Box<dyn VendorHost>,
    vendor_archive: PathBuf,
    unknown_vendors: Mutex<vendors::Reported>,
    /// The vendors' egress rules (`core::segments`) and where they go.
    firewall: Box<dyn Firewall>,
    /// The script last applied and its uids; `None` until the first pass
    /// applies one (the reconcile at start) and after a failure.
    egress: Mutex<Option<vendors::Applied>>,
    /// Opened once the rules are in place: until then vendors hold no
    /// grant (CheckGrant).
    egress_gate: Arc<crate::engine::EgressGate>,
    /// Packets dropped from vendors whose rules were removed, for their
    /// lock's audit event.
    dropped_at_end: Mutex<HashMap<u32, u64>>,
    /// Consecutive failures by account, and when to try it again: the
    /// first alerts security, and a wake for another grant does not cut
    /// the back-off short.
    failures: Mutex<HashMap<String, Failing>>,
    woken: Mutex<bool>,
    bell: Condvar,
}

struct Failing {
    attempts: usize,
    not_before: Instant,
}

/// A pass that did not finish: when to try again.
struct Retry {
    after: Duration,
    /// `/etc/shadow` is locked by someone else: the other accounts would
    /// wait as long.
    timed_out: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// The host's tools the keeper changes accounts with (others in tests).
pub struct HostTools {
    pub passwords: Box<dyn Passwords>,
    pub groups: Box<dyn Groups>,
    pub vendors: Box<dyn VendorHost>,
    pub firewall: Box<dyn Firewall>,
}

/// Where vendors' homes are archived before their accounts are deleted.
pub const VENDOR_ARCHIVE_DIR: &str = "vendor-homes";

impl Keeper {
    pub fn new(
        engine: Arc<Mutex<Engine>>,
        config: &Config,
        tools: HostTools,
        state_dir: &Path,
        sessions: SessionControl,
    ) -> Keeper {
        let HostTools {
            passwords,
            groups,
            vendors: vendor_host,
            firewall,
        } = tools;
        let grouped = config
            .resources
            .iter()
            .filter(|r| !r.groups.is_empty())
            .map(|r| r.name.clone())
            .collect();
        let snapshotted = lock(&engine).snapshotted_resources();
        let egress_gate = lock(&engine).egress_gate();
        Keeper {
            inner: Arc::new(Inner {
                engine,
                accounts: config.accounts.clone(),
                passwords,
                grouped,
                groups,
                snapshotted,
                recovery_file: state_dir.join(super::RECOVERY_FILE),
                sessions,
                vendors: config.vendors.clone(),
                vendor_host,
                vendor_archive: state_dir.join(VENDOR_ARCHIVE_DIR),
                unknown_vendors: Mutex::default(),
                firewall,
                egress: Mutex::default(),
                egress_gate,
                dropped_at_end: Mutex::default(),
                revealable: Mutex::default(),
                failures: Mutex::default(),
                woken: Mutex::new(false),
                bell: Condvar::new(),
            }),
        }
    }

    /// Brings every account where its grants say it should be; returns
    /// when to try again if something failed.
    pub fn pass(&self) -> Option<Duration> {
        let mut retry: Option<Duration> = None;
        let mut timed_out = false;
        let unmanaged = lock(&self.inner.engine).unmanaged_left_unlocked();
        let unmanaged: Vec<ManagedAccount> = match unmanaged {
            Ok(names) => names.into_iter().map(custody::unmanaged_account).collect(),
            Err(e) => {
                tracing::error!(error = %e, "cannot list the accounts taken out of the config");
                Vec::new()
            }
        };
        for account in unmanaged.iter().chain(&self.inner.accounts) {
            if let Err(r) = self.settle(account) {
                retry = Some(retry.map_or(r.after, |d| d.min(r.after)));
                if r.timed_out {
                    tracing::warn!("the other managed accounts wait for the next pass");
                    timed_out = true;
                    break;
                }
            }
        }
        // Also with no resource granting groups any more: what jitd added
        // before is removed.
        if !timed_out {
            if let Err(r) = self.settle_memberships() {
                retry = Some(retry.map_or(r.after, |d| d.min(r.after)));
            }
        }
        if let Some(after) = self.settle_snapshots() {
            retry = Some(retry.map_or(after, |d| d.min(after)));
        }
        if let Some(after) = self.settle_vendors() {
            retry = Some(retry.map_or(after, |d| d.min(after)));
        }
        retry
    }

    /// Runs passes on a thread of its own from now on, when woken or due.
    pub fn spawn(&self, first_retry: Option<Duration>) -> std::io::Result<()> {
        if self.idle() {
            return Ok(());
        }
        let keeper = self.clone();
        std::thread::Builder::new()
            .name("jitd-custody".into())
            .spawn(move || {
                let mut retry = first_retry;
                loop {
                    keeper.wait(retry);
                    retry = keeper.pass();
                }
            })?;
        Ok(())
    }

    /// Whether a grant of `resource` checks an account out or makes its
    /// holder a member of groups.
    pub fn manages(&self, resource: &str) -> bool {
        self.inner.accounts.iter().any(|a| a.resource == resource)
            || self.inner.grouped.iter().any(|r| r == resource)
            || self.inner.snapshotted.iter().any(|r| r == resource)
    }

    /// Nothing configured to keep.
    fn idle(&self) -> bool {
        self.inner.accounts.is_empty()
            && self.inner.grouped.is_empty()
            && self.inner.snapshotted.is_empty()
            && self.inner.vendors.is_none()
    }

    /// Asks for a pass (a grant started or ended).
    pub fn wake(&self) {
        if self.idle() {
            return;
        }
        *lock(&self.inner.woken) = true;
        self.inner.bell.notify_one();
    }

    /// The password `grant` checked `account` out with, if the keeper has
    /// it (a holder who may see it asks; the engine decides whether they
    /// may).
    pub fn revealable(&self, account: &str, grant: RequestId) -> Option<Secret> {
        lock(&self.inner.revealable)
            .get(account)
            .filter(|(holder, _)| *holder == grant)
            .map(|(_, password)| password.clone())
    }

    fn wait(&self, timeout: Option<Duration>) {
        let mut woken = lock(&self.inner.woken);
        while !*woken {
            match timeout {
                Some(timeout) => {
                    let (guard, result) = self
                        .inner
                        .bell
                        .wait_timeout(woken, timeout)
                        .unwrap_or_else(|e| e.into_inner());
                    woken = guard;
                    if result.timed_out() {
                        break;
                    }
                }
                None => {
                    woken = self
                        .inner
                        .bell
                        .wait(woken)
                        .unwrap_or_else(|e| e.into_inner())
                }
            }
        }
        *woken = false;
    }

    /// One more failure in a row for `key`: how many, and the back-off.
    fn note_failure(&self, key: &str) -> (usize, Duration) {
        let mut failures = lock(&self.inner.failures);
        let failing = failures.entry(key.to_owned()).or_insert(Failing {
            attempts: 0,
            not_before: Instant::now(),
        });
        failing.attempts += 1;
        let after = BACKOFF[(failing.attempts - 1).min(BACKOFF.len() - 1)];
        failing.not_before = Instant::now() + after;
        (failing.attempts, after)
    }

    /// When `key`, failing, may be tried again, if not yet.
    fn backing_off(&self, key: &str) -> Option<Duration> {
        let failures = lock(&self.inner.failures);
        let now = Instant::now();
        failures
            .get(key)
            .filter(|f| f.not_before > now)
            .map(|f| f.not_before - now)
    }
}
