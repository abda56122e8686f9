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
use crate::store::{AuditEvent, MfaRow};

/// The purpose of the code that confirms an enrollment.
const ENROLLMENT: &str = "enrollment";

/// An event `who` caused about their own second factor.
fn user_event<'a>(
    who: &'a Person,
    at: UnixTime,
    event: &'a str,
    detail: serde_json::Value,
) -> AuditEvent<'a> {
    AuditEvent {
        at,
        actor_uid: Some(who.uid),
        actor: &who.name,
        event,
        request: None,
        detail,
    }
}

impl Engine {
    /// `who`'s row, if any; one left by an account that had `who`'s uid
    /// before (deleted, its uid reused) is not theirs.
    fn mfa_row(&self, who: &Person) -> Result<Option<MfaRow>> {
        match self.store.mfa(who.uid)? {
            Some(row) if row.user != who.name => Err(EngineError::MfaOfAnother(row.user)),
            row => Ok(row),
        }
    }

    /// A new seed for `who`, pending until a code confirms it within
    /// `[mfa] enroll_within`: its `otpauth://` URI, for an authenticator
    /// app. Refused while `who` is enrolled (only security resets a
    /// factor), while an enrollment is pending (someone at the user's
    /// terminal would otherwise swap the seed the user just scanned), and
    /// while locked out (wrong codes carry over to a new seed).
    pub fn mfa_enroll(&mut self, who: &Person) -> Result<Secret> {
        self.start_enrollment(who, false)
    }

    /// [`Engine::mfa_enroll`]; `replace_pending`: at a vendor's login, where
    /// the one at the keyboard proved the vendor's key, a pending seed (a
    /// login given up before its code) is replaced by a new one.
    fn start_enrollment(&mut self, who: &Person, replace_pending: bool) -> Result<Secret> {
        let now = self.clock.wall();
        if let Some(row) = self.mfa_row(who)? {
            let e = row.enrollment;
            if let Some(until) = e.locked_until.filter(|until| *until > now) {
                return Err(EngineError::MfaLockedOut(rfc3339(until)));
            }
            match e.stage {
                Stage::Enrolled => return Err(EngineError::MfaEnrolled),
                Stage::Pending { until } if until > now && !replace_pending => {
                    return Err(EngineError::MfaPending(rfc3339(until)))
                }
                Stage::Pending { .. } => {}
            }
        }
        let mut seed = Zeroizing::new([0u8; mfa::SECRET_BYTES]);
        SystemRandom::new()
            .fill(seed.as_mut())
            .map_err(|_| EngineError::Io("the system random source failed".into()))?;
        let uri = mfa::totp(seed.as_ref(), &who.name)
            .and_then(|t| t.to_url().ok())
            .ok_or_else(|| EngineError::Io("cannot make the enrollment URI".into()))?;
        let pending = Enrollment::pending(now, self.config.mfa.enroll_within.0);
        self.store.write(|w| -> Result<()> {
            w.start_mfa(who.uid, &who.name, seed.as_ref(), &pending, now)?;
            w.audit(&user_event(who, now, "mfa_enrollment_started", json!({})))?;
            Ok(())
        })?;
        Ok(Secret::new(uri))
    }

    /// pam_jit's `auth` hook at a login (sshd's keyboard-interactive after
    /// the key): with no code, what to ask for; with one, whether it is
    /// right. Enrolled users give a code; a vendor with no factor yet
    /// enrolls here, the seed shown in the login's conversation (before
    /// any session, so never in a recording); anyone else without one is
    /// refused (they enroll with `jitctl mfa enroll` first).
    pub fn mfa_login(&mut self, who: &Person, code: &str) -> Result<LoginStep> {
        let stage = match self.mfa_row(who)? {
            Some(row) => Some(row.enrollment.stage),
            None => None,
        };
        if !code.is_empty() {
            let checked = match stage {
                Some(Stage::Pending { .. }) => self.mfa_check(who, code, ENROLLMENT),
                _ => self.mfa_check(who, code, "login"),
            };
            return Ok(match checked {
                Ok(()) => LoginStep::Accepted,
                Err(refusal) => LoginStep::Refused(refusal.to_string()),
            });
        }
        if stage == Some(Stage::Enrolled) {
            return Ok(LoginStep::Code);
        }
        if !self.enrolls_at_login(who)? {
            return Ok(LoginStep::Refused(
                EngineError::MfaNotEnrolled(who.name.clone()).to_string(),
            ));
        }
        match self.start_enrollment(who, true) {
            Ok(uri) => Ok(LoginStep::Enroll(uri)),
            Err(refusal) => Ok(LoginStep::Refused(refusal.to_string())),
        }
    }

    /// `who`'s code confirming their pending enrollment.
    pub fn mfa_confirm(&mut self, who: &Person, code: &str) -> Result<()> {
        match self.mfa_row(who)?.map(|row| row.enrollment.stage) {
            Some(Stage::Enrolled) => Err(EngineError::MfaEnrolled),
            Some(Stage::Pending { .. }) => self.mfa_check(who, code, ENROLLMENT),
            None => Err(EngineError::MfaNotEnrolled(who.name.clone())),
        }
    }

    /// Checks `who`'s code for `purpose` (audited with it): accepted once,
    /// wrong codes counted towards a lockout, all audited. Only an
    /// enrolled factor serves a purpose other than its own enrollment.
    pub fn mfa_check(&mut self, who: &Person, code: &str, purpose: &str) -> Result<()> {
        let row = self
            .mfa_row(who)?
            .filter(|row| purpose == ENROLLMENT || row.enrollment.stage == Stage::Enrolled)
            .ok_or_else(|| EngineError::MfaNotEnrolled(who.name.clone()))?;
        let enrollment = row.enrollment;
        let now = self.clock.wall();
        let lockout = self.config.mfa.lockout();
        match mfa::verify(&enrollment, &row.seed, code, now, lockout) {
            Verdict::Accepted { step } => {
                let event = match enrollment.stage {
                    Stage::Enrolled => "mfa_accepted",
                    Stage::Pending { .. } => "mfa_enrolled",
                };
                let detail = json!({"purpose": purpose});
                let spent = self.store.write(|w| -> Result<bool> {
                    if !w.spend_mfa_step(who.uid, step, now)? {
                        return Ok(false);
                    }
                    w.audit(&user_event(who, now, event, detail))?;
                    Ok(true)
                })?;
                if spent {
                    return Ok(());
                }
                // Another login spent this step between the read and the
                // write: this one is the replay.
                self.mfa_refused(who, mfa::refuse(&enrollment, now, lockout, true), purpose)
            }
            Verdict::Refused(refused) => self.mfa_refused(who, refused, purpose),
            Verdict::LockedOut { until } => Err(EngineError::MfaLockedOut(rfc3339(until))),
            Verdict::Expired => Err(EngineError::MfaExpired),
            Verdict::ClockBehind => {
                let detail = json!({"purpose": purpose});
                self.store
                    .write(|w| w.audit(&user_event(who, now, "mfa_clock_behind", detail)))?;
                Err(EngineError::MfaClockBehind)
            }
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
            let detail = json!({"purpose": purpose, "failures": failures, "replayed": replayed});
            w.audit(&user_event(who, now, "mfa_refused", detail))?;
            if let Some(until) = locked_until {
                let detail =
                    json!({"purpose": purpose, "until": rfc3339(until), "failures": failures});
                w.audit(&user_event(who, now, "mfa_locked_out", detail))?;
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
        let row = self.store.mfa(target.uid)?;
        Ok(match row {
            Some(row) if row.user != target.name => MfaView {
                state: format!("stale (enrolled by {}, an account since gone)", row.user),
                ..view(&target.name, None, 0)
            },
            row => view(&target.name, row.map(|r| r.enrollment), self.clock.wall()),
        })
    }
}

/// What a login's `auth` step does next ([`Engine::mfa_login`]).
pub enum LoginStep {
    /// Ask for a code.
    Code,
    /// Show this new seed (`otpauth://` URI), then ask for its first code.
    Enroll(Secret),
    Accepted,
    /// Denied, with what to tell the user.
    Refused(String),
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
