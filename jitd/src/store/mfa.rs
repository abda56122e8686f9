//! Rows of `mfa`: users' TOTP seeds, sealed to their uid, with what
//! `core::mfa` needs to judge the next code (docs/design.md "MFA").

use rusqlite::{params, OptionalExtension};
use zeroize::Zeroizing;

use super::{Result, Store, StoreError, Writer};
use crate::core::mfa::{Enrollment, Stage};
use crate::core::model::{Uid, UnixTime};

/// What a seed is sealed to: its owner's uid and name, so a row's seed
/// copied into another's, or renamed, does not open.
fn context(uid: Uid, user: &str) -> Vec<u8> {
    format!("jit mfa seed of uid {uid} ({user})").into_bytes()
}

/// A user's row: whose it is (a uid reused by a new account must not
/// inherit it), the enrollment, and the seed opened.
pub struct MfaRow {
    pub user: String,
    pub enrollment: Enrollment,
    pub seed: Zeroizing<Vec<u8>>,
}

impl Writer<'_> {
    /// A new pending enrollment of `uid` with `seed`, replacing the seed of
    /// any other but keeping its count of wrong codes and its lockout.
    pub fn start_mfa(
        &mut self,
        uid: Uid,
        user: &str,
        seed: &[u8],
        enrollment: &Enrollment,
        at: UnixTime,
    ) -> Result<()> {
        let sealed = self.key.seal(&context(uid, user), seed)?;
        let pending_until = match enrollment.stage {
            Stage::Pending { until } => Some(until),
            Stage::Enrolled => None,
        };
        self.tx
            .prepare_cached(
                "INSERT INTO mfa
                 (uid, user, state, secret, pending_until, last_step, failures, locked_until,
                  updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, NULL, 0, NULL, ?6)
                 ON CONFLICT(uid) DO UPDATE
                 SET user = ?2, state = ?3, secret = ?4, pending_until = ?5, last_step = NULL,
                     updated_at = ?6",
            )?
            .execute(params![
                uid,
                user,
                if pending_until.is_some() {
                    "pending"
                } else {
                    "enrolled"
                },
                sealed,
                pending_until,
                at
            ])?;
        Ok(())
    }

    /// Spends `step` for `uid` (and confirms a pending enrollment): false
    /// when it or a later step was spent already, by a login that raced
    /// this one, so that a code is accepted once whatever the timing.
    pub fn spend_mfa_step(&mut self, uid: Uid, step: u64, at: UnixTime) -> Result<bool> {
        let step = i64::try_from(step).map_err(|_| StoreError::Corrupt("TOTP step".into()))?;
        let changed = self
            .tx
            .prepare_cached(
                "UPDATE mfa SET last_step = ?2, failures = 0, locked_until = NULL,
                        state = 'enrolled', pending_until = NULL, updated_at = ?3
                 WHERE uid = ?1 AND (last_step IS NULL OR last_step < ?2)",
            )?
            .execute(params![uid, step, at])?;
        Ok(changed == 1)
    }

    /// Counts a wrong code, and the lockout it causes.
    pub fn refuse_mfa_code(
        &mut self,
        uid: Uid,
        failures: u32,
        locked_until: Option<UnixTime>,
        at: UnixTime,
    ) -> Result<()> {
        self.tx
            .prepare_cached(
                "UPDATE mfa SET failures = ?2, locked_until = ?3, updated_at = ?4 WHERE uid = ?1",
            )?
            .execute(params![uid, failures, locked_until, at])?;
        Ok(())
    }

    pub fn forget_mfa(&mut self, uid: Uid) -> Result<bool> {
        let changed = self
            .tx
            .prepare_cached("DELETE FROM mfa WHERE uid = ?1")?
            .execute([uid])?;
        Ok(changed == 1)
    }
}

impl Store {
    /// `uid`'s enrollment and its seed, if it has one. A seed that does not
    /// open (another key, or moved from another row) is an error: never
    /// a user without a second factor.
    pub fn mfa(&self, uid: Uid) -> Result<Option<MfaRow>> {
        let row = self
            .conn
            .prepare_cached(
                "SELECT user, secret, pending_until, last_step, failures, locked_until
                 FROM mfa WHERE uid = ?1",
            )?
            .query_row([uid], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, Option<i64>>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                    r.get::<_, u32>(4)?,
                    r.get::<_, Option<i64>>(5)?,
                ))
            })
            .optional()?;
        let Some((user, sealed, pending_until, last_step, failures, locked_until)) = row else {
            return Ok(None);
        };
        let seed = self
            .key
            .open(&context(uid, &user), &sealed)
            .ok_or_else(|| {
                StoreError::Corrupt(format!("the MFA seed of uid {uid} does not open"))
            })?;
        let enrollment = Enrollment {
            stage: pending_until.map_or(Stage::Enrolled, |until| Stage::Pending { until }),
            last_step: last_step.and_then(|s| u64::try_from(s).ok()),
            failures,
            locked_until,
        };
        Ok(Some(MfaRow {
            user,
            enrollment,
            seed,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("dir");
        let store = Store::open(dir.path()).expect("store");
        (dir, store)
    }

    #[test]
    fn a_seed_is_sealed_to_its_uid_and_a_step_is_spent_once() {
        let (_dir, mut store) = store();
        let seed = b"12345678901234567890";
        let pending = Enrollment::pending(1000, Duration::from_secs(600));
        store
            .write(|w| w.start_mfa(1001, "alice", seed, &pending, 1000))
            .expect("start");
        let row = store.mfa(1001).expect("read").expect("row");
        assert_eq!(row.enrollment, pending);
        assert_eq!(row.seed.as_slice(), seed);
        assert_eq!(row.user, "alice");
        let raw: Vec<u8> = store
            .conn
            .query_row("SELECT secret FROM mfa WHERE uid = 1001", [], |r| r.get(0))
            .expect("raw");
        assert!(
            !raw.windows(seed.len()).any(|w| w == seed),
            "stored in clear"
        );

        // Moved to another uid's row, it does not open.
        store
            .conn
            .execute(
                "INSERT INTO mfa (uid, user, state, secret, updated_at)
                 SELECT 1002, 'bob', 'enrolled', secret, 0 FROM mfa WHERE uid = 1001",
                [],
            )
            .expect("copy");
        assert!(store.mfa(1002).is_err());
        // Nor under another name in its own row.
        store
            .conn
            .execute("UPDATE mfa SET user = 'mallory' WHERE uid = 1001", [])
            .expect("rename");
        assert!(store.mfa(1001).is_err());
        store
            .conn
            .execute("UPDATE mfa SET user = 'alice' WHERE uid = 1001", [])
            .expect("restore");

        assert!(store
            .write(|w| w.spend_mfa_step(1001, 7, 1001))
            .expect("spend"));
        assert!(!store
            .write(|w| w.spend_mfa_step(1001, 7, 1002))
            .expect("again"));
        assert!(!store
            .write(|w| w.spend_mfa_step(1001, 6, 1002))
            .expect("earlier"));
        let enrolled = store.mfa(1001).expect("read").expect("row").enrollment;
        assert_eq!(enrolled.stage, Stage::Enrolled);
        assert_eq!(enrolled.last_step, Some(7));
    }
}
