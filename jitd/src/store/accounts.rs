//! Rows of `accounts`: managed accounts in jitd's custody (W3). A row is
//! written before jitd touches the account ('rotating', 'checking_out')
//! and after it is done ('held', 'checked_out'), each with its audit event:
//! a jitd stopped in between finds the account to lock again at start.

use rusqlite::{params, OptionalExtension};

use super::{Result, Store, StoreError, Writer};
use crate::core::custody::Custody;
use crate::core::model::{RequestId, UnixTime};

fn columns(custody: Custody) -> (&'static str, Option<RequestId>) {
    match custody {
        // Never written: no row is "unknown".
        Custody::Unknown | Custody::Rotating => ("rotating", None),
        Custody::Held => ("held", None),
        Custody::CheckingOut { grant } => ("checking_out", Some(grant)),
        Custody::CheckedOut { grant } => ("checked_out", Some(grant)),
    }
}

fn parse(state: &str, grant: Option<RequestId>) -> Option<Custody> {
    Some(match (state, grant) {
        ("rotating", None) => Custody::Rotating,
        ("held", None) => Custody::Held,
        ("checking_out", Some(grant)) => Custody::CheckingOut { grant },
        ("checked_out", Some(grant)) => Custody::CheckedOut { grant },
        _ => return None,
    })
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountRecord {
    pub custody: Custody,
    /// Keyed fingerprint of the current password (`AuditKey::fingerprint`).
    pub fingerprint: Option<String>,
    /// Keyed fingerprint of the `/etc/shadow` field jitd wrote.
    pub field_fingerprint: Option<String>,
}

/// The keyed fingerprints of a rotation, for its row.
#[derive(Clone, Copy, Debug, Default)]
pub struct Fingerprints<'a> {
    pub password: Option<&'a str>,
    pub field: Option<&'a str>,
}

impl Writer<'_> {
    pub fn set_custody(
        &mut self,
        name: &str,
        custody: Custody,
        fingerprints: Fingerprints<'_>,
        at: UnixTime,
    ) -> Result<()> {
        let (state, grant) = columns(custody);
        self.tx
            .prepare_cached(
                "INSERT INTO accounts (name, state, grant_id, fingerprint, field_fingerprint, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT(name) DO UPDATE
                 SET state = ?2, grant_id = ?3, fingerprint = ?4, field_fingerprint = ?5,
                     updated_at = ?6",
            )?
            .execute(params![
                name,
                state,
                grant,
                fingerprints.password,
                fingerprints.field,
                at
            ])?;
        Ok(())
    }

    /// A keyed fingerprint of `secret`, for the audit trail and the row.
    pub fn fingerprint(&self, secret: &[u8]) -> String {
        self.key.fingerprint(secret)
    }

    /// Marks `name`'s escrowed recovery password as perhaps read.
    pub fn set_escrow_exposed(&mut self, name: &str) -> Result<()> {
        self.tx
            .prepare_cached("UPDATE accounts SET escrow_exposed = 1 WHERE name = ?1")?
            .execute([name])?;
        Ok(())
    }

    /// Records root's escrowed recovery password: its `/etc/shadow` field
    /// and its keyed fingerprint.
    pub fn set_escrow(&mut self, name: &str, field: &str, fingerprint: &str) -> Result<()> {
        self.tx
            .prepare_cached(
                "UPDATE accounts SET escrow_field = ?2, escrow_fingerprint = ?3, escrow_exposed = 0
                 WHERE name = ?1",
            )?
            .execute(params![name, field, fingerprint])?;
        Ok(())
    }
}

impl Store {
    /// A keyed fingerprint of `secret` ([`Writer::fingerprint`]).
    pub fn fingerprint(&self, secret: &[u8]) -> String {
        self.key.fingerprint(secret)
    }

    /// When `grant`'s checkout of its managed account started, if it did.
    pub fn checkout_started_at(&self, grant: RequestId) -> Result<Option<UnixTime>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT MIN(at) FROM audit WHERE request = ?1 AND event = 'account_checkout_started'",
            )?
            .query_row([grant], |r| r.get(0))?)
    }

    /// Whether `name`'s escrowed recovery password may have been read.
    pub fn escrow_exposed(&self, name: &str) -> Result<bool> {
        let exposed: Option<i64> = self
            .conn
            .prepare_cached("SELECT escrow_exposed FROM accounts WHERE name = ?1")?
            .query_row([name], |r| r.get(0))
            .optional()?;
        Ok(exposed == Some(1))
    }

    /// `name`'s escrowed recovery password, if any: (field, fingerprint).
    pub fn escrow(&self, name: &str) -> Result<Option<(String, String)>> {
        let row = self
            .conn
            .prepare_cached(
                "SELECT escrow_field, escrow_fingerprint FROM accounts WHERE name = ?1",
            )?
            .query_row([name], |r| {
                Ok((
                    r.get::<_, Option<String>>(0)?,
                    r.get::<_, Option<String>>(1)?,
                ))
            })
            .optional()?;
        Ok(match row {
            Some((Some(field), Some(fingerprint))) => Some((field, fingerprint)),
            _ => None,
        })
    }

    pub fn account(&self, name: &str) -> Result<Option<AccountRecord>> {
        let row = self
            .conn
            .prepare_cached(
                "SELECT state, grant_id, fingerprint, field_fingerprint FROM accounts WHERE name = ?1",
            )?
            .query_row([name], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<RequestId>>(1)?,
                    r.get(2)?,
                    r.get(3)?,
                ))
            })
            .optional()?;
        let Some((state, grant, fingerprint, field_fingerprint)) = row else {
            return Ok(None);
        };
        Ok(Some(AccountRecord {
            custody: parse(&state, grant)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown account state '{state}'")))?,
            fingerprint,
            field_fingerprint,
        }))
    }

    /// Every account with a row, and where it stands.
    pub fn accounts(&self) -> Result<Vec<(String, Custody)>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT name, state, grant_id FROM accounts ORDER BY name")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<RequestId>>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (name, state, grant) = row?;
            let custody = parse(&state, grant)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown account state '{state}'")))?;
            out.push((name, custody));
        }
        Ok(out)
    }
}
