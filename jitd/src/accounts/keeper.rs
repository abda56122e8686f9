//! Brings the host's accounts where the grants say they should be, on a
//! thread of its own so that shadow-utils never holds up the bus: the
//! custody steps of managed accounts (`core::custody`, written by
//! `engine/custody`) and the group memberships of grants (`core::membership`,
//! `engine/memberships`). Once at start before jitd serves, after every
//! grant of a resource concerned that starts or ends, and again after a
//! failure, backing off. One thread: two changes to `/etc/shadow` or
//! `/etc/group` never race.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::{AccountError, Groups, Passwords, Usable};
use crate::config::{Checkout, Config, ManagedAccount};
use crate::core::changes;
use crate::core::custody::{LockReason, Step};
use crate::core::membership::Change;
use crate::core::model::RequestId;
use crate::core::password::{PasswordPolicy, Secret};
use crate::engine::{CustodyError, Engine, Written};
use crate::persistence;

const ROOT: &str = "root";

/// How long after a grant's end its end snapshot is taken: its sessions
/// get their kill grace first, so what they did last is seen.
const SETTLE: Duration = Duration::from_secs(2);

/// The failure key of reading the group memberships (no account is named
/// so: `:` is in no account or group name).
const MEMBERSHIPS: &str = ":memberships";

/// The failure key of one membership's changes.
fn membership_key(change: &Change) -> String {
    let (Change::Add { membership, .. } | Change::Remove { membership }) = change;
    format!(":{}:{}", membership.user, membership.group)
}

/// At most this many steps an account a pass: an interrupted checkout
/// takes two (lock, check out again), and a grant that ended during a
/// checkout one more.
const STEPS_PER_PASS: usize = 4;

/// How long a killed lock holder gets to be gone before the step is tried
/// again (its fcntl lock goes with it; its lock file is then stale).
const LOCK_RELEASE: Duration = Duration::from_millis(100);

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
    /// Checked-out passwords their holder may see, by account: in memory
    /// only, so a restarted jitd checks the account out again.
    revealable: Mutex<HashMap<String, (RequestId, Secret)>>,
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

/// An account taken out of the config, as the keeper locks it.
fn unmanaged_account(name: String) -> ManagedAccount {
    ManagedAccount {
        name,
        resource: String::new(),
        checkout: Checkout::Exclusive,
        reveal: false,
        password: PasswordPolicy::default(),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Keeper {
    pub fn new(
        engine: Arc<Mutex<Engine>>,
        config: &Config,
        passwords: Box<dyn Passwords>,
        groups: Box<dyn Groups>,
        state_dir: &Path,
    ) -> Keeper {
        let grouped = config
            .resources
            .iter()
            .filter(|r| !r.groups.is_empty())
            .map(|r| r.name.clone())
            .collect();
        let snapshotted = lock(&engine).snapshotted_resources();
        Keeper {
            inner: Arc::new(Inner {
                engine,
                accounts: config.accounts.clone(),
                passwords,
                grouped,
                groups,
                snapshotted,
                recovery_file: state_dir.join(super::RECOVERY_FILE),
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
            Ok(names) => names.into_iter().map(unmanaged_account).collect(),
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
        retry
    }

    /// Snapshots the persistence places for privileged grants that
    /// started, and compares for those that ended ([`SETTLE`] ago: their
    /// sessions have ended by then). One snapshot serves every grant due at
    /// once. Returns when to look again for a grant still settling.
    fn settle_snapshots(&self) -> Option<Duration> {
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
                if let Err(e) = lock(engine).record_snapshot(grant, &snapshot) {
                    tracing::error!(grant, error = %e, "cannot store a snapshot");
                }
            }
            for (grant, before) in &ready {
                let found = changes::diff(before, &snapshot);
                if let Err(e) = lock(engine).record_changes(*grant, &found) {
                    tracing::error!(grant, error = %e, "cannot store what changed");
                }
            }
        }
        if !ready.is_empty() {
            self.renew_exposed_recovery();
        }
        (waiting.len() > ready.len()).then_some(SETTLE)
    }

    /// Root's recovery file still on the host when a privileged grant
    /// ended: its holder could read it, so root gets a new recovery
    /// password (and file) once root is held again. The admin who deleted
    /// the file after storing it offline is never asked to fetch it again.
    fn renew_exposed_recovery(&self) {
        let Some(root) = self.inner.accounts.iter().find(|a| a.name == ROOT) else {
            return;
        };
        if !self.inner.recovery_file.exists() {
            return;
        }
        match lock(&self.inner.engine).is_held(ROOT) {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                tracing::error!(error = %e, "cannot read root's custody");
                return;
            }
        }
        let step = Step::Lock(LockReason::Exposed);
        if let Err(e) = self.take(root, step) {
            self.failed(ROOT, Some(step), &e);
        }
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

    /// Steps `account` until nothing is left to do, or a step fails. One
    /// taken out of the config gets one lock, with the default policy.
    fn settle(&self, account: &ManagedAccount) -> Result<(), Retry> {
        let name = account.name.as_str();
        if let Some(after) = self.backing_off(name) {
            return Err(Retry {
                after,
                timed_out: false,
            });
        }
        if !self.inner.accounts.iter().any(|a| a.name == name) {
            let step = Step::Lock(LockReason::Unmanaged);
            return self
                .take(account, step)
                .map_err(|e| self.failed(name, Some(step), &e));
        }
        for _ in 0..STEPS_PER_PASS {
            let in_memory = lock(&self.inner.revealable).contains_key(name);
            let step = lock(&self.inner.engine).custody_step(
                account,
                self.inner.passwords.as_ref(),
                in_memory,
            );
            let step = match step {
                Ok(Step::Nothing) => return Ok(()),
                Ok(step) => step,
                Err(e) => return Err(self.failed(name, None, &e)),
            };
            if let Err(e) = self.take(account, step) {
                return Err(self.failed(name, Some(step), &e));
            }
        }
        Ok(())
    }

    fn take(&self, account: &ManagedAccount, step: Step) -> Result<(), CustodyError> {
        let name = account.name.as_str();
        let usable = match step {
            Step::Nothing => return Ok(()),
            // Gone from memory before the lock: nobody is shown a password
            // on its way out.
            Step::Lock(_) => {
                lock(&self.inner.revealable).remove(name);
                Usable::Locked
            }
            Step::CheckOut { .. } => Usable::Unlocked,
        };
        lock(&self.inner.engine).custody_begin(name, step)?;
        let passwords = self.inner.passwords.as_ref();
        match step {
            Step::Lock(reason) if name == ROOT => self.lock_root(account, step, reason)?,
            _ => {
                let rotated = passwords.prepare(&account.password, usable)?;
                self.write_field(name, &rotated.field)?;
                lock(&self.inner.engine).custody_done(name, step, Written::New(&rotated))?;
                if let (Step::CheckOut { grant }, true) = (step, account.reveal) {
                    lock(&self.inner.revealable).insert(name.to_owned(), (grant, rotated.password));
                }
            }
        }
        lock(&self.inner.failures).remove(name);
        tracing::info!(account = name, step = ?step, "managed account changed");
        Ok(())
    }

    /// Root between grants holds its escrowed recovery password, not a
    /// locked one: `sulogin` refuses a locked root. The one escrowed is
    /// written back, but a new one is made (and written to the recovery
    /// file) when root is adopted or was changed behind jitd's back, the
    /// old one perhaps used.
    fn lock_root(
        &self,
        account: &ManagedAccount,
        step: Step,
        reason: LockReason,
    ) -> Result<(), CustodyError> {
        let name = account.name.as_str();
        let renew = matches!(
            reason,
            LockReason::Adopted | LockReason::Changed | LockReason::Exposed
        );
        let escrowed = match renew {
            true => None,
            false => lock(&self.inner.engine).escrow_of(name)?,
        };
        if let Some((field, fingerprint)) = escrowed {
            self.write_field(name, &field)?;
            let written = Written::Escrow {
                field: &field,
                fingerprint: &fingerprint,
            };
            lock(&self.inner.engine).custody_done(name, step, written)?;
            return Ok(());
        }
        let passwords = self.inner.passwords.as_ref();
        let escrow = passwords.prepare(&account.password, Usable::Unlocked)?;
        super::escrow::write_recovery_file(&self.inner.recovery_file, &escrow.password)
            .map_err(AccountError::Io)?;
        self.write_field(name, &escrow.field)?;
        lock(&self.inner.engine).custody_done(name, step, Written::NewEscrow(&escrow))?;
        tracing::warn!(file = %self.inner.recovery_file.display(),
            "a new recovery password for root: store it offline, then delete the file");
        Ok(())
    }

    /// Writes `field` as `name`'s ([`Keeper::unblocked`]).
    fn write_field(&self, name: &str, field: &Secret) -> Result<(), CustodyError> {
        let passwords = self.inner.passwords.as_ref();
        self.unblocked(name, || passwords.write(name, field))
    }

    /// Runs a shadow-utils change. A user's setuid program holding the
    /// account files (a stopped passwd or chsh) must not keep a password
    /// valid or a group held: when `op` fails, such holders are ended,
    /// audited (under `name`), and `op` tried once more.
    fn unblocked<T>(
        &self,
        name: &str,
        op: impl Fn() -> Result<T, AccountError>,
    ) -> Result<T, CustodyError> {
        let e = match op() {
            Ok(done) => return Ok(done),
            Err(e) => e,
        };
        let holders = self.inner.passwords.end_user_lock_holders();
        if holders.is_empty() {
            return Err(e.into());
        }
        tracing::warn!(account = name, ?holders, error = %e,
            "ended users' programs holding the account files locked");
        lock(&self.inner.engine).custody_lock_holders_ended(name, &holders, &e.to_string())?;
        std::thread::sleep(LOCK_RELEASE);
        Ok(op()?)
    }

    /// Logs and audits a failed step; the first failure in a row alerts
    /// security, whatever the step: a failed checkout after a restart
    /// leaves the account unlocked with a password its holder saw.
    fn failed(&self, name: &str, step: Option<Step>, error: &CustodyError) -> Retry {
        let (attempts, after) = self.note_failure(name);
        tracing::error!(account = name, step = ?step, %error, retry_in = ?after,
            "a managed account step failed");
        let audited =
            lock(&self.inner.engine).custody_failed(name, step, &error.to_string(), attempts == 1);
        if let Err(e) = audited {
            tracing::error!(account = name, error = %e, "cannot audit the failure");
        }
        Retry {
            after,
            timed_out: matches!(error, CustodyError::Account(AccountError::Timeout { .. })),
        }
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

    /// Makes the membership changes due, each on its own: one that keeps
    /// failing (a group gone, a user deleted) backs off alone and holds up
    /// no other, least of all a removal.
    fn settle_memberships(&self) -> Result<(), Retry> {
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
