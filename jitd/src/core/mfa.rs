//! The TOTP second factor (RFC 6238; docs/design.md "MFA"): what a code
//! entered at a given time proves, given the user's enrollment. No I/O:
//! the secret comes decrypted from the store, and the outcome goes back to
//! it in one transaction with its audit event (the used step too, so a
//! code is accepted once even when two logins race with it).

use std::time::Duration;

use totp_rs::{Algorithm, Builder, Secret, Totp};

use super::model::UnixTime;
use super::workflow::secs;

/// What every authenticator app assumes (`otpauth://` defaults): SHA-1,
/// six digits, 30-second steps.
pub const DIGITS: u8 = 6;
pub const STEP_SECS: u64 = 30;
/// The steps before and after the current one are accepted too: phones'
/// clocks drift, and a code typed at the end of its step arrives in the next.
const SKEW_STEPS: u16 = 1;
/// 160 bits, as RFC 4226 recommends.
pub const SECRET_BYTES: usize = 20;
/// The name authenticator apps show above the code.
const ISSUER: &str = "jit";

/// How many wrong codes in a row lock a user out, and for how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lockout {
    pub after_failures: u32,
    pub lasts: Duration,
}

/// Where a user's second factor stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// A secret was shown; a code must confirm it before `until`.
    Pending {
        until: UnixTime,
    },
    Enrolled,
}

/// A user's enrollment as the store keeps it, the secret apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Enrollment {
    pub stage: Stage,
    /// The last step whose code was accepted: it and every earlier one are spent.
    pub last_step: Option<u64>,
    /// Wrong codes since the last accepted one.
    pub failures: u32,
    pub locked_until: Option<UnixTime>,
}

impl Enrollment {
    /// A new secret shown at `now`, to be confirmed within `window`.
    pub fn pending(now: UnixTime, window: Duration) -> Enrollment {
        Enrollment {
            stage: Stage::Pending {
                until: now.saturating_add(secs(window)),
            },
            last_step: None,
            failures: 0,
            locked_until: None,
        }
    }
}

/// A refused code, counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// Wrong codes in a row, this one included.
    pub failures: u32,
    /// Set when this failure locks the user out.
    pub locked_until: Option<UnixTime>,
    pub replayed: bool,
}

/// What a code proved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Right, and its step not spent: record `step` as the last one.
    Accepted { step: u64 },
    /// Wrong, or of a spent step (a replay): count it.
    Refused(Refusal),
    /// Too many wrong codes: not even looked at until then.
    LockedOut { until: UnixTime },
    /// The enrollment was not confirmed in time: enroll again.
    Expired,
    /// The clock is behind the last accepted code's step: every code would
    /// look like a replay. Not the user's fault: not counted.
    ClockBehind,
}

/// `uri` as a QR code of text (two rows of modules a line, light on dark
/// so that it scans on a dark terminal), for an authenticator app.
pub fn qr_code(uri: &str) -> Result<zeroize::Zeroizing<String>, qrcode::types::QrError> {
    use qrcode::render::unicode::Dense1x2;
    let code = qrcode::QrCode::new(uri.as_bytes())?;
    Ok(zeroize::Zeroizing::new(
        code.render::<Dense1x2>()
            .dark_color(Dense1x2::Light)
            .light_color(Dense1x2::Dark)
            .build(),
    ))
}

/// The TOTP generator of `secret`, labelled `account` in apps.
pub fn totp(secret: &[u8], account: &str) -> Option<Totp> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(DIGITS)
        .with_skew(SKEW_STEPS)
        .with_step_duration(STEP_SECS)
        .with_secret(Secret::new(secret.into()))
        .with_issuer(Some(ISSUER))
        .with_account_name(account.replace(':', "_"))
        .build()
        .ok()
}

/// Judges `code` entered at `now` against `secret` and the enrollment.
pub fn verify(
    enrollment: &Enrollment,
    secret: &[u8],
    code: &str,
    now: UnixTime,
    lockout: Lockout,
) -> Verdict {
    if let Some(until) = enrollment.locked_until.filter(|until| *until > now) {
        return Verdict::LockedOut { until };
    }
    if let Stage::Pending { until } = enrollment.stage {
        if now >= until {
            return Verdict::Expired;
        }
    }
    let Ok(unix) = u64::try_from(now) else {
        return Verdict::ClockBehind;
    };
    if enrollment
        .last_step
        .is_some_and(|last| unix / STEP_SECS + u64::from(SKEW_STEPS) < last)
    {
        return Verdict::ClockBehind;
    }
    let matched = totp(secret, "").and_then(|t| t.check(code.trim(), unix));
    match matched {
        Some(step) if enrollment.last_step.is_none_or(|last| step > last) => {
            Verdict::Accepted { step }
        }
        spent => Verdict::Refused(refuse(enrollment, now, lockout, spent.is_some())),
    }
}

/// A wrong code (`replayed`: right, but of a spent step) entered at `now`:
/// one more failure, and a lockout when it is one too many.
pub fn refuse(enrollment: &Enrollment, now: UnixTime, lockout: Lockout, replayed: bool) -> Refusal {
    // A lockout that has passed starts the count again.
    let before = match enrollment.locked_until {
        Some(_) => 0,
        None => enrollment.failures,
    };
    let failures = before.saturating_add(1);
    Refusal {
        failures,
        locked_until: (failures >= lockout.after_failures)
            .then(|| now.saturating_add(secs(lockout.lasts))),
        replayed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_SECRET: &[u8] = b"12345678901234567890";
    const LOCKOUT: Lockout = Lockout {
        after_failures: 3,
        lasts: Duration::from_secs(300),
    };

    fn code_at(secret: &[u8], time: UnixTime) -> String {
        let time = u64::try_from(time).expect("after 1970");
        totp(secret, "alice")
            .expect("totp")
            .generate(time)
            .to_string()
    }

    fn enrolled() -> Enrollment {
        Enrollment {
            stage: Stage::Enrolled,
            last_step: None,
            failures: 0,
            locked_until: None,
        }
    }

    /// RFC 6238 appendix B, SHA-1 (eight digits there; the last six here,
    /// since a code is the HOTP value modulo 10^digits).
    #[test]
    fn codes_match_the_rfc_6238_test_vectors() {
        let vectors = [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ];
        for (time, eight) in vectors {
            assert_eq!(code_at(RFC_SECRET, time), eight[2..], "T = {time}");
        }
    }

    #[test]
    fn a_right_code_is_accepted_once_with_its_step() {
        let now = 1_800_000_000;
        let code = code_at(RFC_SECRET, now);
        let first = verify(&enrolled(), RFC_SECRET, &code, now, LOCKOUT);
        let step = now as u64 / STEP_SECS;
        assert_eq!(first, Verdict::Accepted { step });
        let after = Enrollment {
            last_step: Some(step),
            ..enrolled()
        };
        let again = verify(&after, RFC_SECRET, &code, now + 5, LOCKOUT);
        assert_eq!(
            again,
            Verdict::Refused(Refusal {
                failures: 1,
                locked_until: None,
                replayed: true
            })
        );
        // Nor the previous step's code, once a later one was used.
        let earlier = code_at(RFC_SECRET, now - 30);
        assert!(matches!(
            verify(&after, RFC_SECRET, &earlier, now, LOCKOUT),
            Verdict::Refused(Refusal { replayed: true, .. })
        ));
    }

    #[test]
    fn one_step_of_drift_either_way_is_accepted_and_two_are_not() {
        let now = 1_800_000_015;
        for (offset, ok) in [(-60, false), (-30, true), (30, true), (60, false)] {
            let code = code_at(RFC_SECRET, now + offset);
            let verdict = verify(&enrolled(), RFC_SECRET, &code, now, LOCKOUT);
            assert_eq!(
                matches!(verdict, Verdict::Accepted { .. }),
                ok,
                "{offset}: {verdict:?}"
            );
        }
    }

    #[test]
    fn wrong_codes_lock_out_then_the_count_starts_again() {
        let now = 1_800_000_000;
        let mut e = enrolled();
        for n in 1..=3 {
            match verify(&e, RFC_SECRET, "000000x", now, LOCKOUT) {
                Verdict::Refused(Refusal {
                    failures,
                    locked_until,
                    replayed: false,
                }) => {
                    assert_eq!(failures, n);
                    assert_eq!(locked_until.is_some(), n == 3);
                    e.failures = failures;
                    e.locked_until = locked_until;
                }
                other => panic!("{other:?}"),
            }
        }
        let right = code_at(RFC_SECRET, now + 10);
        assert_eq!(
            verify(&e, RFC_SECRET, &right, now + 10, LOCKOUT),
            Verdict::LockedOut { until: now + 300 }
        );
        let later = now + 301;
        assert!(matches!(
            verify(&e, RFC_SECRET, "123", later, LOCKOUT),
            Verdict::Refused(Refusal { failures: 1, .. })
        ));
        let right = code_at(RFC_SECRET, later);
        assert!(matches!(
            verify(&e, RFC_SECRET, &right, later, LOCKOUT),
            Verdict::Accepted { .. }
        ));
    }

    #[test]
    fn a_clock_set_back_behind_the_last_code_is_not_the_users_fault() {
        let now = 1_800_000_000;
        let used = Enrollment {
            last_step: Some(now as u64 / STEP_SECS),
            ..enrolled()
        };
        let earlier = now - 120;
        let code = code_at(RFC_SECRET, earlier);
        assert_eq!(
            verify(&used, RFC_SECRET, &code, earlier, LOCKOUT),
            Verdict::ClockBehind
        );
        // One step back is drift, judged as usual (a replay here).
        let code = code_at(RFC_SECRET, now - 30);
        assert!(matches!(
            verify(&used, RFC_SECRET, &code, now - 30, LOCKOUT),
            Verdict::Refused(Refusal { replayed: true, .. })
        ));
    }

    #[test]
    fn a_pending_enrollment_expires() {
        let now = 1_800_000_000;
        let e = Enrollment::pending(now, Duration::from_secs(600));
        let code = code_at(RFC_SECRET, now + 599);
        assert!(matches!(
            verify(&e, RFC_SECRET, &code, now + 599, LOCKOUT),
            Verdict::Accepted { .. }
        ));
        let code = code_at(RFC_SECRET, now + 600);
        assert_eq!(
            verify(&e, RFC_SECRET, &code, now + 600, LOCKOUT),
            Verdict::Expired
        );
    }

    #[test]
    fn the_uri_carries_what_apps_need_and_no_colon_in_the_label() {
        let uri = totp(RFC_SECRET, "v:jdoe")
            .expect("totp")
            .to_url()
            .expect("url");
        assert!(uri.starts_with("otpauth://totp/jit:v_jdoe?"), "{uri}");
        assert!(
            uri.contains("secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"),
            "{uri}"
        );
        assert!(uri.contains("issuer=jit"), "{uri}");
    }
}
