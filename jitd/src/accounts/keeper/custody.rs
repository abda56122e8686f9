//! The custody steps of managed accounts (`core::custody`, written by
//! `engine/custody`): checkout, check-in, root's recovery password, and
//! the users' programs that hold the account files locked.

use std::time::Duration;

use super::{lock, Keeper, Retry};
use crate::accounts::{escrow, AccountError, Usable};
use crate::config::{Checkout, ManagedAccount};
use crate::core::custody::{LockReason, Step};
use crate::core::password::{PasswordPolicy, Secret};
use crate::engine::{CustodyError, Written};

const ROOT: &str = "root";

/// At most this many steps an account a pass: an interrupted checkout
/// takes two (lock, check out again), and a grant that ended during a
/// checkout one more.
const STEPS_PER_PASS: usize = 4;

/// How long a killed lock holder gets to be gone before the step is tried
/// again (its fcntl lock goes with it; its lock file is then stale).
const LOCK_RELEASE: Duration = Duration::from_millis(100);

/// An account taken out of the config, as the keeper locks it.
pub(super) fn unmanaged_account(name: String) -> ManagedAccount {
    ManagedAccount {
        name,
        resource: String::new(),
        checkout: Checkout::Exclusive,
        reveal: false,
        password: PasswordPolicy::default(),
    }
}

impl Keeper {
    /// Steps `account` until nothing is left to do, or a step fails. One
    /// taken out of the config gets one lock, with the default policy.
    pub(super) fn settle(&self, account: &ManagedAccount) -> Result<(), Retry> {
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
        let engine = &self.inner.engine;
        let renew = matches!(
            reason,
            LockReason::Adopted | LockReason::Changed | LockReason::Exposed
        ) || lock(engine).escrow_exposed(name)?;
        let escrowed = match renew {
            true => None,
            false => lock(engine).escrow_of(name)?,
        };
        if let Some((field, fingerprint)) = escrowed {
            self.write_field(name, &field)?;
            let written = Written::Escrow {
                field: &field,
                fingerprint: &fingerprint,
            };
            lock(engine).custody_done(name, step, written)?;
            return Ok(());
        }
        let passwords = self.inner.passwords.as_ref();
        let recent = self.recent();
        if lock(engine).privileged_grant_lasts(recent)? {
            // Not now: a holder could read a new recovery file. Locked
            // meanwhile (for seconds, or while such grants last), and the
            // renewal recorded as owed.
            lock(engine).escrow_exposed_by(name, None)?;
            let rotated = passwords.prepare(&account.password, Usable::Locked)?;
            self.write_field(name, &rotated.field)?;
            lock(engine).custody_done(name, step, Written::New(&rotated))?;
            return Ok(());
        }
        // The file after /etc/shadow holds the password: a file never
        // names a password root does not have. A failure in between leaves
        // the row as its intent wrote it and the renewal owed: the next
        // pass renews again.
        let escrow = passwords.prepare(&account.password, Usable::Unlocked)?;
        self.write_field(name, &escrow.field)?;
        escrow::write_recovery_file(&self.inner.recovery_file, &escrow.password)
            .map_err(AccountError::Io)?;
        lock(engine).custody_done(name, step, Written::NewEscrow(&escrow))?;
        tracing::warn!(file = %self.inner.recovery_file.display(),
            "a new recovery password for root: store it offline, then delete the file");
        Ok(())
    }

    /// Grants that ended since this moment may still have sessions ending.
    fn recent(&self) -> crate::core::model::UnixTime {
        lock(&self.inner.engine).now() - super::snapshots::SETTLE.as_secs() as i64
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
    pub(super) fn unblocked<T>(
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

    /// Root's recovery password may have been read (its file was on the
    /// host while a privileged grant lasted, as recorded when that grant's
    /// snapshots were taken): once no privileged grant is active or ending,
    /// so that no holder can read the new file, and root is held, root gets
    /// a new one. The record stays until the renewal succeeds. Returns when
    /// to look again while a grant's sessions may still be ending (an
    /// active grant's end wakes the keeper).
    pub(super) fn renew_exposed_recovery(&self) -> Option<Duration> {
        let root = self.inner.accounts.iter().find(|a| a.name == ROOT)?;
        let engine = &self.inner.engine;
        let now = lock(engine).now();
        let recent = self.recent();
        let state = (|| -> crate::engine::Result<(bool, bool, bool)> {
            let engine = lock(engine);
            let owed = engine.escrow_exposed(ROOT)? && engine.is_held(ROOT)?;
            Ok((
                owed,
                engine.privileged_grant_lasts(now)?,
                engine.privileged_grant_lasts(recent)?,
            ))
        })();
        match state {
            Ok((false, _, _)) | Ok((true, true, _)) => return None,
            Ok((true, false, true)) => return Some(super::snapshots::SETTLE),
            Ok((true, false, false)) => {}
            Err(e) => {
                tracing::error!(error = %e, "cannot read root's custody");
                return None;
            }
        }
        let step = Step::Lock(LockReason::Exposed);
        self.take(root, step)
            .err()
            .map(|e| self.failed(ROOT, Some(step), &e).after)
    }

    /// Records that the recovery file is on the host while `grant` (a
    /// privileged grant) lasts: its holder may read it.
    pub(super) fn note_recovery_exposure(&self, grant: crate::core::model::RequestId) {
        if !self.inner.accounts.iter().any(|a| a.name == ROOT) {
            return;
        }
        if fs_exists(&self.inner.recovery_file) {
            if let Err(e) = lock(&self.inner.engine).escrow_exposed_by(ROOT, Some(grant)) {
                tracing::error!(error = %e, "cannot record the recovery file's exposure");
            }
        }
    }
}

/// Whether `path` is there at all (a link or a directory in its place
/// counts: someone put it there).
fn fs_exists(path: &std::path::Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}
