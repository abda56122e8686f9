//! Managed accounts in jitd's custody (W3, docs/design.md "Managed
//! accounts"): at start, every configured account jitd does not hold yet,
//! or held and found unlocked, or left half-done by a jitd that stopped,
//! gets a new random password nobody learns and is locked. The intent is
//! written (and audited) before the account is touched, the result after.

use serde_json::json;

use super::{Engine, Result, JITD};
use crate::accounts::Passwords;
use crate::store::{AuditEvent, Custody};

/// Why an account is rotated at start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CustodyReason {
    /// jitd did not hold it yet.
    Adopted,
    /// A jitd stopped while rotating it.
    Interrupted,
    /// Held, yet unlocked: someone set a password behind jitd's back.
    FoundUnlocked,
}

impl CustodyReason {
    fn as_str(self) -> &'static str {
        match self {
            CustodyReason::Adopted => "adopted",
            CustodyReason::Interrupted => "interrupted",
            CustodyReason::FoundUnlocked => "found_unlocked",
        }
    }
}

impl Engine {
    /// Takes custody of the configured accounts that need it (see the
    /// module). Blocking (shadow-utils, tens of milliseconds an account):
    /// run at start, before jitd serves. A failure is logged and audited,
    /// and the others go on; the account is tried again at the next start.
    pub fn take_custody(&mut self, passwords: &dyn Passwords) -> Result<()> {
        let accounts = self.config.accounts.clone();
        for account in &accounts {
            let name = account.name.as_str();
            let reason = match self.store.account(name)? {
                None => CustodyReason::Adopted,
                Some(row) if row.custody == Custody::Rotating => CustodyReason::Interrupted,
                Some(_) => match passwords.is_locked(name) {
                    Ok(true) => continue,
                    Ok(false) => CustodyReason::FoundUnlocked,
                    Err(e) => {
                        self.custody_failed(name, &e.to_string())?;
                        continue;
                    }
                },
            };
            let now = self.clock.wall();
            self.store.write(|w| -> Result<()> {
                w.set_custody(name, Custody::Rotating, None, now)?;
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
            match passwords.rotate_and_lock(name, &account.password) {
                Ok(secret) => {
                    let now = self.clock.wall();
                    self.store.write(|w| -> Result<()> {
                        let fingerprint = w.fingerprint(secret.expose().as_bytes());
                        w.set_custody(name, Custody::Held, Some(&fingerprint), now)?;
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
                                "fingerprint": fingerprint,
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
                Err(e) => self.custody_failed(name, &e.to_string())?,
            }
        }
        Ok(())
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
