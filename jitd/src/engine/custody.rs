//! Managed accounts in jitd's custody (W3, docs/design.md "Managed
//! accounts"): the store's side of each step `core::custody` decides.
//! What jitd is about to do is written (and audited) before the account
//! is touched, what it did after; `accounts::keeper` runs the steps.

use std::time::Duration;

use serde_json::{json, Value};

use super::{Engine, EngineError, Result, JITD};
use crate::accounts::{AccountError, LockHolder, Passwords, Rotated};
use crate::api::AccountView;
use crate::config::ManagedAccount;
use crate::core::custody::{left_unlocked, next_step, Custody, Facts, Step};
use crate::core::model::{rfc3339, Request, RequestId, State, Uid, UnixTime};
use crate::core::password::Secret;
use crate::directory::Person;
use crate::store::{AuditEvent, Fingerprints, Writer};

/// The escrowed recovery password (of this account) a grant's activation
/// exposes, if any ([`Engine::exposure_by`]).
pub(super) struct Exposure(Option<String>);

impl Exposure {
    pub(super) fn record(
        &self,
        w: &mut Writer<'_>,
        grant: Option<RequestId>,
        now: UnixTime,
    ) -> Result<()> {
        let Some(account) = &self.0 else {
            return Ok(());
        };
        w.set_escrow_exposed(account)?;
        let detail = json!({"account": account});
        audit(w, now, "recovery_password_exposed", grant, detail)
    }
}

/// A managed account checked out: the grant holding it, and the account's
/// uid when it was checked out (NSS), by which its index entry is made and
/// dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Checkout {
    pub grant: RequestId,
    pub uid: Option<Uid>,
}

fn checkout_of(account: &str, grant: RequestId) -> Checkout {
    let uid = match nix::unistd::User::from_name(account) {
        Ok(Some(user)) => Some(user.uid.as_raw()),
        _ => {
            tracing::warn!(
                account,
                "a managed account has no uid: its own logins are refused"
            );
            None
        }
    };
    Checkout { grant, uid }
}

/// What a step wrote to `/etc/shadow`.
#[derive(Clone, Copy)]
pub enum Written<'a> {
    /// A new random password.
    New(&'a Rotated),
    /// A new recovery password for root, escrowed (`root_custody`).
    NewEscrow(&'a Rotated),
    /// Root's escrowed recovery password again, as recorded.
    Escrow {
        field: &'a Secret,
        fingerprint: &'a str,
    },
}

/// Why a step failed: jitd's own records, or the account.
#[derive(Debug, thiserror::Error)]
pub enum CustodyError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Account(#[from] AccountError),
}

impl Engine {
    /// The next step for `account`; `password_in_memory`: whether the
    /// keeper has its checked-out password (for a holder who may see it).
    pub fn custody_step(
        &self,
        account: &ManagedAccount,
        passwords: &dyn Passwords,
        password_in_memory: bool,
    ) -> std::result::Result<Step, CustodyError> {
        let row = self
            .store
            .account(&account.name)
            .map_err(EngineError::from)?;
        let custody = row.as_ref().map_or(Custody::Unknown, |r| r.custody);
        let field_as_written = match (&row, custody) {
            (Some(row), Custody::Held) => {
                let field = passwords.current_field(&account.name)?;
                let now = self.store.fingerprint(field.expose().as_bytes());
                row.field_fingerprint.as_deref() == Some(now.as_str())
            }
            _ => true,
        };
        let holders: Vec<RequestId> = self
            .store
            .active_holders_of(&account.resource)
            .map_err(EngineError::from)?
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        Ok(next_step(&Facts {
            custody,
            holders: &holders,
            field_as_written,
            password_in_memory,
            reveal: account.reveal,
        }))
    }

    /// Accounts no longer in the config that were left checked out or
    /// half-changed: the keeper locks each once (`LockReason::Unmanaged`).
    pub fn unmanaged_left_unlocked(&self) -> Result<Vec<String>> {
        Ok(self
            .store
            .accounts()?
            .into_iter()
            .filter(|(name, custody)| {
                left_unlocked(*custody) && !self.config.accounts.iter().any(|a| &a.name == name)
            })
            .map(|(name, _)| name)
            .collect())
    }

    /// Writes that `step` is about to be taken.
    pub fn custody_begin(&mut self, account: &str, step: Step) -> Result<()> {
        let now = self.clock.wall();
        let (custody, event, request, detail) = match step {
            Step::Nothing => return Ok(()),
            Step::Lock(reason) => (
                Custody::Rotating,
                "account_rotation_started",
                reason.grant(),
                json!({"account": account, "reason": reason.as_str()}),
            ),
            Step::CheckOut { grant } => (
                Custody::CheckingOut { grant },
                "account_checkout_started",
                Some(grant),
                json!({"account": account}),
            ),
        };
        self.store.write(|w| -> Result<()> {
            w.set_custody(account, custody, Fingerprints::default(), now)?;
            audit(w, now, event, request, detail)
        })?;
        // From here the account's own logins are refused: whatever the
        // step, the password is about to change.
        if let Some(checkout) = self.checked_out.remove(account) {
            if let Some(resource) = self.account_resource(account) {
                self.release_checkout(checkout, &resource);
            }
        }
        Ok(())
    }

    /// Records that `account`'s recovery password may have been read
    /// while `grant` (or some privileged grant) lasted, its file on the
    /// host, with its audit event; a renewal clears it.
    pub fn escrow_exposed_by(&mut self, account: &str, grant: Option<RequestId>) -> Result<()> {
        if self.store.escrow_exposed(account)? {
            return Ok(());
        }
        let now = self.clock.wall();
        let exposure = Exposure(Some(account.to_owned()));
        self.store.write(|w| exposure.record(w, grant, now))
    }

    /// The managed account ended grant `grant` checked out, and when its
    /// checkout started, on the boot clock (as `/proc` times processes), a
    /// second early: whose processes since then it may have left.
    pub fn checkout_of_ended(&self, grant: RequestId) -> Result<Option<(String, Duration)>> {
        let held = self.load(grant)?;
        let Some(account) = self.account_for(&held.resource) else {
            return Ok(None);
        };
        let Some(started) = self.store.checkout_started_at(grant)? else {
            return Ok(None);
        };
        let ago = u64::try_from(self.clock.wall().saturating_sub(started)).unwrap_or(0) + 1;
        let since = self.clock.boot().saturating_sub(Duration::from_secs(ago));
        Ok(Some((account.name.clone(), since)))
    }

    /// Root's recovery password, taken off the host by security to store
    /// offline (the file read and deleted, audited): the way to fetch it
    /// that needs no root-capable grant, whose holder could read it too.
    pub fn take_recovery(&mut self, who: &Person) -> Result<Secret> {
        if !who.matches_any(&self.config.roles.security) {
            return Err(EngineError::NotSecurity);
        }
        let password = crate::accounts::take_recovery_file(&self.recovery_file)
            .map_err(|e| EngineError::Io(format!("the recovery file: {e}")))?
            .ok_or(EngineError::NoRecoveryFile)?;
        let now = self.clock.wall();
        self.store.write(|w| {
            w.audit(&AuditEvent {
                at: now,
                actor_uid: Some(who.uid),
                actor: &who.name,
                event: "recovery_password_taken",
                request: None,
                detail: json!({"account": "root"}),
            })
        })?;
        Ok(password)
    }

    /// What activating `req` exposes: root's recovery password, when `req`
    /// is a grant of a privileged resource (its holder may read any file)
    /// and the recovery file is on the host. Recorded in the activation's
    /// own transaction, before the grant can be used: a holder who copies
    /// and deletes the file at once leaves the exposure on record all the
    /// same (T35).
    pub(super) fn exposure_by(&self, req: &Request) -> Result<Exposure> {
        let privileged = self
            .config
            .resource(&req.resource)
            .is_some_and(|r| r.privileged);
        let Some(root) = self.config.accounts.iter().find(|a| a.name == "root") else {
            return Ok(Exposure(None));
        };
        let on_host = std::fs::symlink_metadata(&self.recovery_file).is_ok();
        if !privileged || !on_host || self.store.escrow_exposed(&root.name)? {
            return Ok(Exposure(None));
        }
        Ok(Exposure(Some(root.name.clone())))
    }

    /// Whether `account`'s recovery password may have been read.
    pub fn escrow_exposed(&self, account: &str) -> Result<bool> {
        Ok(self.store.escrow_exposed(account)?)
    }

    /// Whether a grant of a privileged resource is active, or ended at
    /// `since` or later (its sessions may still be ending): its holder
    /// could read a recovery file written now.
    pub fn privileged_grant_lasts(&self, since: UnixTime) -> Result<bool> {
        for resource in self.snapshotted_resources() {
            if self.store.grant_active_since(&resource, since)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Whether `account` is held: locked, or for root its recovery
    /// password in place, and no step half-done.
    pub fn is_held(&self, account: &str) -> Result<bool> {
        Ok(self.store.account(account)?.map(|r| r.custody) == Some(Custody::Held))
    }

    /// Root's escrowed recovery password, if one was written: its field and
    /// its keyed fingerprint.
    pub fn escrow_of(&self, account: &str) -> Result<Option<(Secret, String)>> {
        Ok(self
            .store
            .escrow(account)?
            .map(|(field, fingerprint)| (Secret::new(field), fingerprint)))
    }

    /// Writes what `step` did: the account's new state, with keyed
    /// fingerprints of the password and the field (never either).
    pub fn custody_done(&mut self, account: &str, step: Step, written: Written<'_>) -> Result<()> {
        let now = self.clock.wall();
        self.store.write(|w| -> Result<()> {
            let (password, field) = match written {
                Written::New(rotated) | Written::NewEscrow(rotated) => (
                    w.fingerprint(rotated.password.expose().as_bytes()),
                    w.fingerprint(rotated.field.expose().as_bytes()),
                ),
                Written::Escrow { field, fingerprint } => (
                    fingerprint.to_owned(),
                    w.fingerprint(field.expose().as_bytes()),
                ),
            };
            let fingerprints = Fingerprints {
                password: Some(&password),
                field: Some(&field),
            };
            let (custody, event, request, detail) = match step {
                Step::Nothing => return Ok(()),
                Step::Lock(reason) => (
                    Custody::Held,
                    "account_rotated",
                    reason.grant(),
                    json!({
                        "account": account,
                        "reason": reason.as_str(),
                        "locked": true,
                        "fingerprint": password,
                    }),
                ),
                Step::CheckOut { grant } => (
                    Custody::CheckedOut { grant },
                    "account_checked_out",
                    Some(grant),
                    json!({"account": account, "locked": false, "fingerprint": password}),
                ),
            };
            w.set_custody(account, custody, fingerprints, now)?;
            audit(w, now, event, request, detail)?;
            if let Written::NewEscrow(rotated) = written {
                w.set_escrow(account, rotated.field.expose(), &password)?;
                let detail = json!({"account": account, "fingerprint": password});
                audit(w, now, "recovery_password_escrowed", None, detail)?;
            }
            Ok(())
        })?;
        if let Step::CheckOut { grant } = step {
            self.checked_out
                .insert(account.to_owned(), checkout_of(account, grant));
            let held = self.load(grant)?;
            if let (State::Active, Some(expires_at)) = (held.state, held.expires_at) {
                self.hold_as_account(grant, &held.resource, expires_at);
            }
        }
        Ok(())
    }

    /// The checked-out accounts, from the store (at start and reload).
    pub(super) fn load_checkouts(&mut self) -> Result<()> {
        self.checked_out.clear();
        for account in &self.config.accounts {
            if let Some(Custody::CheckedOut { grant }) =
                self.store.account(&account.name)?.map(|r| r.custody)
            {
                self.checked_out
                    .insert(account.name.clone(), checkout_of(&account.name, grant));
            }
        }
        Ok(())
    }

    fn account_resource(&self, account: &str) -> Option<String> {
        self.config
            .accounts
            .iter()
            .find(|a| a.name == account)
            .map(|a| a.resource.clone())
    }

    /// The checkout `grant` (of `resource`) holds, if it holds one.
    fn checkout_by(&self, grant: RequestId, resource: &str) -> Option<Checkout> {
        let account = self.account_for(resource)?;
        self.checked_out
            .get(&account.name)
            .copied()
            .filter(|c| c.grant == grant)
    }

    /// The managed account `resource`'s grants check out, if any, and
    /// whether it is checked out now (to the first of the resource's
    /// active grants: a shared account's other holders and a break-glass
    /// grant work as it too).
    pub fn account_of_resource(&self, resource: &str) -> Option<AccountView> {
        let account = self.account_for(resource)?;
        Some(AccountView {
            name: account.name.clone(),
            checked_out: self.checked_out.contains_key(&account.name),
        })
    }

    /// The uid `resource`'s managed account was checked out with, while it
    /// is checked out (to any of the resource's grants).
    pub(super) fn checked_out_uid(&self, resource: &str) -> Option<Uid> {
        let account = self.account_for(resource)?;
        self.checked_out.get(&account.name)?.uid
    }

    /// The managed account `resource`'s grants check out.
    fn account_for(&self, resource: &str) -> Option<&ManagedAccount> {
        self.config.accounts.iter().find(|a| a.resource == resource)
    }

    /// While `grant` holds its resource's managed account, the account's
    /// own logins (a revealed password at `su` or the console, a key) count
    /// as the grant's: pam_jit, asked about the account's uid for the
    /// resource (`targets=`), finds the grant, and binds the login to the
    /// grant's cgroup, so it ends with the grant.
    pub(super) fn hold_as_account(
        &mut self,
        grant: RequestId,
        resource: &str,
        expires_at: UnixTime,
    ) {
        if let Some(Checkout { uid: Some(uid), .. }) = self.checkout_by(grant, resource) {
            self.grants
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .insert(uid, resource, grant, expires_at);
        }
    }

    /// `grant` ended: the account's logins no longer count as its.
    pub(super) fn release_as_account(&mut self, grant: RequestId, resource: &str) {
        if let Some(checkout) = self.checkout_by(grant, resource) {
            self.release_checkout(checkout, resource);
        }
    }

    /// Drops the account's entry by the uid it was made with: an account
    /// renumbered or deleted meanwhile must not keep its old uid in.
    fn release_checkout(&mut self, checkout: Checkout, resource: &str) {
        if let Some(uid) = checkout.uid {
            self.grants
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .remove(uid, resource, checkout.grant);
        }
    }

    /// Audits a failed step (`None`: deciding it failed, e.g. reading
    /// `/etc/shadow`; `reason` says which). The account's row stays as
    /// `custody_begin` wrote it, so the next pass locks it again.
    /// `escalate`: the first failure in a row tells security (a password
    /// someone knew may still work); the retries are audited without a new
    /// alert each.
    pub fn custody_failed(
        &mut self,
        account: &str,
        step: Option<Step>,
        error: &str,
        escalate: bool,
    ) -> Result<()> {
        let now = self.clock.wall();
        let (request, reason) = match step {
            Some(Step::Nothing) => return Ok(()),
            Some(Step::CheckOut { grant }) => (Some(grant), "checkout"),
            Some(Step::Lock(reason)) => (reason.grant(), reason.as_str()),
            None => (None, "check"),
        };
        let event = if escalate {
            "account_rotation_failed"
        } else {
            "account_rotation_retry_failed"
        };
        let detail = json!({"account": account, "reason": reason, "error": error});
        self.store.write(|w| audit(w, now, event, request, detail))
    }

    /// Audits the users' programs ended for holding the account files
    /// locked while `account` was being changed.
    pub fn custody_lock_holders_ended(
        &mut self,
        account: &str,
        holders: &[LockHolder],
        error: &str,
    ) -> Result<()> {
        let now = self.clock.wall();
        self.store.write(|w| -> Result<()> {
            for holder in holders {
                let detail = json!({
                    "account": account,
                    "pid": holder.pid,
                    "uid": holder.uid,
                    "command": holder.command,
                    "error": error,
                });
                audit(w, now, "account_lock_holder_killed", None, detail)?;
            }
            Ok(())
        })
    }

    /// Refuses a grant of `resource` to `uid` while its exclusive account
    /// is checked out to someone else, naming them and until when, or is
    /// not yet locked again after the last holder.
    pub(super) fn check_exclusive(&self, uid: Uid, resource: &str) -> Result<()> {
        let Some(account) = self
            .account_for(resource)
            .filter(|a| a.checkout == crate::config::Checkout::Exclusive)
        else {
            return Ok(());
        };
        for (id, _) in self.store.active_holders_of(resource)? {
            let grant = self.load(id)?;
            if grant.uid != uid {
                return Err(EngineError::CheckedOut {
                    account: account.name.clone(),
                    holder: grant.user,
                    grant: id,
                    until: rfc3339(grant.expires_at.unwrap_or_default()),
                });
            }
        }
        // The last holder's password is replaced first: until it is, the
        // account is not free (a rotation that keeps failing is security's).
        let custody = self.store.account(&account.name)?.map(|r| r.custody);
        if !matches!(custody, None | Some(Custody::Held)) {
            return Err(EngineError::CheckingIn(account.name.clone()));
        }
        Ok(())
    }

    /// The managed account `who` may see the password of through active
    /// grant `id`: theirs, for a resource whose account reveals it. The
    /// reveal is audited by [`Engine::audit_reveal`] once the keeper has
    /// the password.
    pub fn revealable(&self, who: &Person, id: RequestId) -> Result<ManagedAccount> {
        let grant = self.load(id)?;
        if grant.uid != who.uid {
            return Err(crate::core::workflow::WorkflowError::NotYours(id).into());
        }
        if grant.state != State::Active || grant.expires_at.unwrap_or_default() <= self.now() {
            return Err(crate::core::workflow::WorkflowError::NotActive {
                id,
                state: grant.state,
            }
            .into());
        }
        let account = self
            .account_for(&grant.resource)
            .ok_or_else(|| EngineError::NoAccount(grant.resource.clone()))?;
        if !account.reveal {
            return Err(EngineError::NoReveal(account.name.clone()));
        }
        Ok(account.clone())
    }

    pub fn audit_reveal(
        &mut self,
        who: &Person,
        id: RequestId,
        account: &str,
        password: &[u8],
    ) -> Result<()> {
        let now = self.clock.wall();
        self.store.write(|w| -> Result<()> {
            let fingerprint = w.fingerprint(password);
            w.audit(&AuditEvent {
                at: now,
                actor_uid: Some(who.uid),
                actor: &who.name,
                event: "account_revealed",
                request: Some(id),
                detail: json!({"account": account, "fingerprint": fingerprint}),
            })?;
            Ok(())
        })
    }
}

/// A jitd-made audit event in `w`'s transaction.
pub(super) fn audit(
    w: &mut Writer<'_>,
    at: UnixTime,
    event: &str,
    request: Option<RequestId>,
    detail: Value,
) -> Result<()> {
    w.audit(&AuditEvent {
        at,
        actor_uid: None,
        actor: JITD,
        event,
        request,
        detail,
    })?;
    Ok(())
}
