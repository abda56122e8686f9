//! Managed accounts in jitd's custody (W3, docs/design.md "Managed
//! accounts"): at start, every configured account jitd does not hold yet,
//! or holds but finds changed, or left half-done by a jitd that stopped,
//! gets a new random password nobody learns and is locked. The intent is
//! written (and audited) before the account is touched, the result after.

use serde_json::json;

use super::{Engine, Result, JITD};
use crate::accounts::{AccountError, Passwords};
use crate::store::{AccountRecord, AuditEvent, Custody, Fingerprints};

/// Why an account is rotated at start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CustodyReason {
    /// jitd did not hold it yet.
    Adopted,
    /// A jitd stopped while rotating it.
    Interrupted,
    /// Held, yet its `/etc/shadow` field is not the one jitd wrote: someone
    /// set a password (or unlocked it) behind jitd's back.
    Changed,
}

impl CustodyReason {
    fn as_str(self) -> &'static str {
        match self {
            CustodyReason::Adopted => "adopted",
            CustodyReason::Interrupted => "interrupted",
            CustodyReason::Changed => "changed",
        }
    }
}

impl Engine {
    /// Takes custody of the configured accounts that need it (see the
    /// module). Blocking (one `chpasswd -e` an account): run at start,
    /// before jitd serves. A failure is logged and audited, and the others
    /// go on, but for a timeout (`/etc/shadow` locked by someone else): the
    /// rest are skipped then, so that a start never waits for each in turn.
    /// What failed is tried again at the next start.
    pub fn take_custody(&mut self, passwords: &dyn Passwords) -> Result<()> {
        let accounts = self.config.accounts.clone();
        let mut timed_out = false;
        for account in &accounts {
            let name = account.name.as_str();
            if timed_out {
                self.custody_failed(name, "skipped: an earlier account timed out")?;
                continue;
            }
            let row = self.store.account(name)?;
            let reason = match self.custody_reason(name, row, passwords) {
                Ok(Some(reason)) => reason,
                Ok(None) => continue,
                Err(e) => {
                    self.custody_failed(name, &e.to_string())?;
                    continue;
                }
            };
            let now = self.clock.wall();
            self.store.write(|w| -> Result<()> {
                w.set_custody(name, Custody::Rotating, Fingerprints::default(), now)?;
                w.audit(&AuditEvent {
                    at: now,
                    actor_uid: None,
                    actor: JITD,
                    event: "account_rotation_started",
                    request: None,
                    detail: json!({"account": name, "reason": reason.as_str()}),
                })?;
                Ok(())
            })?;
            let rotated = match passwords.rotate_and_lock(name, &account.password) {
                Ok(rotated) => rotated,
                Err(e) => {
                    timed_out = matches!(e, AccountError::Timeout { .. });
                    self.custody_failed(name, &e.to_string())?;
                    continue;
                }
            };
            let now = self.clock.wall();
            self.store.write(|w| -> Result<()> {
                let password = w.fingerprint(rotated.password.expose().as_bytes());
                let field = w.fingerprint(rotated.field.expose().as_bytes());
                let fingerprints = Fingerprints {
                    password: Some(&password),
                    field: Some(&field),
                };
                w.set_custody(name, Custody::Held, fingerprints, now)?;
                w.audit(&AuditEvent {
                    at: now,
                    actor_uid: None,
                    actor: JITD,
                    event: "account_rotated",
                    request: None,
                    detail: json!({
                        "account": name,
                        "reason": reason.as_str(),
                        "locked": true,
                        "fingerprint": password,
                    }),
                })?;
                Ok(())
            })?;
            tracing::info!(
                account = name,
                reason = reason.as_str(),
                "account in custody: rotated and locked"
            );
        }
        Ok(())
    }

    /// Why `name` (whose row is `row`) must be rotated now, if it must.
    fn custody_reason(
        &self,
        name: &str,
        row: Option<AccountRecord>,
        passwords: &dyn Passwords,
    ) -> std::result::Result<Option<CustodyReason>, AccountError> {
        Ok(match row {
            None => Some(CustodyReason::Adopted),
            Some(row) if row.custody == Custody::Rotating => Some(CustodyReason::Interrupted),
            Some(row) => {
                let field = passwords.current_field(name)?;
                let now = self.store.fingerprint(field.expose().as_bytes());
                (row.field_fingerprint.as_deref() != Some(now.as_str()))
                    .then_some(CustodyReason::Changed)
            }
        })
    }

    fn custody_failed(&mut self, name: &str, error: &str) -> Result<()> {
        tracing::error!(
            account = name,
            error,
            "cannot take custody of a managed account; tried again at the next start"
        );
        let now = self.clock.wall();
        self.store.write(|w| {
            w.audit(&AuditEvent {
                at: now,
                actor_uid: None,
                actor: JITD,
                event: "account_rotation_failed",
                request: None,
                detail: json!({"account": name, "error": error}),
            })
        })?;
        Ok(())
    }
}
