//! TOTP second factors (docs/design.md "MFA"): enrollment, security's
//! reset, and the check of a code (`core::mfa` judges it; the store keeps
//! the seed sealed and spends each step once).

use ring::rand::{SecureRandom, SystemRandom};
use serde_json::json;
use zeroize::Zeroizing;

use super::{Engine, EngineError, Result};
use crate::api::MfaView;
use crate::core::mfa::{self, Enrollment, Refusal, Stage, Verdict};
use crate::core::model::{rfc3339, UnixTime};
use crate::core::password::Secret;
use crate::directory::Person;
use crate::store::AuditEvent;

impl Engine {
    /// A new seed for `who`, pending until a code confirms it within
    /// `[mfa] enroll_within`: its `otpauth://` URI, for an authenticator
    /// app. Refused while `who` is enrolled: only security resets a second
    /// factor, so that someone at a user's unlocked terminal cannot
    /// replace it.
    pub fn mfa_enroll(&mut self, who: &Person) -> Result<Secret> {
        if let Some((e, _)) = self.store.mfa(who.uid)? {
            if e.stage == Stage::Enrolled {
                return Err(EngineError::MfaEnrolled);
            }
        }
        let mut seed = Zeroizing::new([0u8; mfa::SECRET_BYTES]);
        SystemRandom::new()
            .fill(seed.as_mut())
            .map_err(|_| EngineError::Io("the system random source failed".into()))?;
        let uri = mfa::totp(seed.as_ref(), &who.name)
            .and_then(|t| t.to_url().ok())
            .ok_or_else(|| EngineError::Io("cannot make the enrollment URI".into()))?;
        let now = self.clock.wall();
        let pending = Enrollment::pending(now, self.config.mfa.enroll_within.0);
        self.store.write(|w| -> Result<()> {
            w.start_mfa(who.uid, &who.name, seed.as_ref(), &pending, now)?;
            w.audit(&AuditEvent {
                at: now,
                actor_uid: Some(who.uid),
                actor: &who.name,
                event: "mfa_enrollment_started",
                request: None,
                detail: json!({}),
            })?;
            Ok(())
        })?;
        Ok(Secret::new(uri))
    }

    /// `who`'s code confirming their pending enrollment.
    pub fn mfa_confirm(&mut self, who: &Person, code: &str) -> Result<()> {
        match self.store.mfa(who.uid)? {
            Some((e, _)) if e.stage == Stage::Enrolled => Err(EngineError::MfaEnrolled),
            Some(_) => self.mfa_check(who, code, "enrollment"),
            None => Err(EngineError::MfaNotEnrolled(who.name.clone())),
        }
    }

    /// Checks `who`'s code for `purpose` (audited with it): accepted once,
    /// wrong codes counted towards a lockout, all audited.
    pub fn mfa_check(&mut self, who: &Person, code: &str, purpose: &str) -> Result<()> {
        let (enrollment, seed) = self
            .store
            .mfa(who.uid)?
            .ok_or_else(|| EngineError::MfaNotEnrolled(who.name.clone()))?;
        let now = self.clock.wall();
        let verdict = mfa::verify(
            &enrollment,
            seed.as_ref(),
            code,
            now,
            self.config.mfa.lockout(),
        );
        match verdict {
            Verdict::Accepted { step } => {
                let event = match enrollment.stage {
                    Stage::Enrolled => "mfa_accepted",
                    Stage::Pending { .. } => "mfa_enrolled",
                };
                let spent = self.store.write(|w| -> Result<bool> {
                    if !w.spend_mfa_step(who.uid, step, now)? {
                        return Ok(false);
                    }
                    w.audit(&AuditEvent {
                        at: now,
                        actor_uid: Some(who.uid),
                        actor: &who.name,
                        event,
                        request: None,
                        detail: json!({"purpose": purpose}),
                    })?;
                    Ok(true)
                })?;
                if spent {
                    return Ok(());
                }
                // Another login spent this step between the read and the
                // write: this one is the replay.
                let refused = mfa::refuse(&enrollment, now, self.config.mfa.lockout(), true);
                self.mfa_refused(who, refused, purpose)
            }
            Verdict::Refused(refused) => self.mfa_refused(who, refused, purpose),
            Verdict::LockedOut { until } => Err(EngineError::MfaLockedOut(rfc3339(until))),
            Verdict::Expired => Err(EngineError::MfaExpired),
        }
    }

    /// Counts a wrong (or replayed) code and audits it; the lockout it
    /// causes is audited as such (`mfa_locked_out`, which tells security).
    fn mfa_refused(&mut self, who: &Person, refused: Refusal, purpose: &str) -> Result<()> {
        let Refusal {
            failures,
            locked_until,
            replayed,
        } = refused;
        let now = self.clock.wall();
        self.store.write(|w| -> Result<()> {
            w.refuse_mfa_code(who.uid, failures, locked_until, now)?;
            let mut event = AuditEvent {
                at: now,
                actor_uid: Some(who.uid),
                actor: &who.name,
                event: "mfa_refused",
                request: None,
                detail: json!({"purpose": purpose, "failures": failures, "replayed": replayed}),
            };
            w.audit(&event)?;
            if let Some(until) = locked_until {
                event.event = "mfa_locked_out";
                event.detail = json!({"until": rfc3339(until), "failures": failures});
                w.audit(&event)?;
            }
            Ok(())
        })?;
        let after = self.config.mfa.lockout().after_failures;
        Err(match locked_until {
            Some(until) => EngineError::MfaLockedOut(rfc3339(until)),
            None => EngineError::MfaWrongCode {
                left: after.saturating_sub(failures),
            },
        })
    }

    /// Security removes `user`'s second factor (a lost phone): they enroll
    /// again.
    pub fn mfa_reset(&mut self, who: &Person, user: &str) -> Result<()> {
        if !who.matches_any(&self.config.roles.security) {
            return Err(EngineError::NotSecurity);
        }
        let target = Person::lookup_name(user).map_err(|_| EngineError::NoUser(user.into()))?;
        let now = self.clock.wall();
        self.store.write(|w| -> Result<()> {
            if !w.forget_mfa(target.uid)? {
                return Err(EngineError::MfaNotEnrolled(target.name.clone()));
            }
            w.audit(&AuditEvent {
                at: now,
                actor_uid: Some(who.uid),
                actor: &who.name,
                event: "mfa_reset",
                request: None,
                detail: json!({"user": target.name, "uid": target.uid}),
            })?;
            Ok(())
        })
    }

    /// `user`'s second factor (`None`: the caller's own). Others' only for
    /// those who see everything (root, security, auditors).
    pub fn mfa_status(&self, who: &Person, user: Option<&str>) -> Result<MfaView> {
        let target = match user {
            Some(name) if name != who.name => {
                if !self.sees_all(who) {
                    return Err(EngineError::NotAuditor);
                }
                Person::lookup_name(name).map_err(|_| EngineError::NoUser(name.into()))?
            }
            _ => who.clone(),
        };
        let enrollment = self.store.mfa(target.uid)?.map(|(e, _)| e);
        Ok(view(&target.name, enrollment, self.clock.wall()))
    }
}

/// A past lockout is not shown (it no longer holds).
fn view(user: &str, enrollment: Option<Enrollment>, now: UnixTime) -> MfaView {
    let Some(e) = enrollment else {
        return MfaView {
            user: user.into(),
            state: "none".into(),
            confirm_by: None,
            failures: 0,
            locked_until: None,
        };
    };
    let (state, confirm_by) = match e.stage {
        Stage::Pending { until } => ("pending", Some(rfc3339(until))),
        Stage::Enrolled => ("enrolled", None),
    };
    MfaView {
        user: user.into(),
        state: state.into(),
        confirm_by,
        failures: e.failures,
        locked_until: e.locked_until.filter(|until| *until > now).map(rfc3339),
    }
}
