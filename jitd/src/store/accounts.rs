//! Rows of `accounts`: managed accounts in jitd's custody (W3). A row is
//! written before jitd touches the account ('rotating') and after it is
//! done ('held'), each with its audit event: a jitd stopped in between
//! finds the account to do again at start.

use rusqlite::{params, OptionalExtension};

use super::{Result, Store, Writer};
use crate::core::model::UnixTime;

/// Where an account stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Custody {
    /// A new random password and a lock are being applied (or were, when
    /// jitd stopped).
    Rotating,
    /// Locked, with a password nobody knows.
    Held,
}

impl Custody {
    fn as_str(self) -> &'static str {
        match self {
            Custody::Rotating => "rotating",
            Custody::Held => "held",
        }
    }

    fn parse(text: &str) -> Option<Custody> {
        match text {
            "rotating" => Some(Custody::Rotating),
            "held" => Some(Custody::Held),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountRecord {
    pub name: String,
    pub custody: Custody,
    /// Keyed fingerprint of the current password (`AuditKey::fingerprint`).
    pub fingerprint: Option<String>,
    /// Keyed fingerprint of the `/etc/shadow` field jitd wrote.
    pub field_fingerprint: Option<String>,
    pub updated_at: UnixTime,
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
        self.tx
            .prepare_cached(
                "INSERT INTO accounts (name, state, fingerprint, field_fingerprint, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(name) DO UPDATE
                 SET state = ?2, fingerprint = ?3, field_fingerprint = ?4, updated_at = ?5",
            )?
            .execute(params![
                name,
                custody.as_str(),
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
}

impl Store {
    /// A keyed fingerprint of `secret` ([`Writer::fingerprint`]).
    pub fn fingerprint(&self, secret: &[u8]) -> String {
        self.key.fingerprint(secret)
    }

    pub fn account(&self, name: &str) -> Result<Option<AccountRecord>> {
        self.conn
            .prepare_cached(
                "SELECT name, state, fingerprint, field_fingerprint, updated_at FROM accounts WHERE name = ?1",
            )?
            .query_row([name], |r| {
                let state: String = r.get(1)?;
                Ok(AccountRecord {
                    name: r.get(0)?,
                    custody: Custody::parse(&state).unwrap_or(Custody::Rotating),
                    fingerprint: r.get(2)?,
                    field_fingerprint: r.get(3)?,
                    updated_at: r.get(4)?,
                })
            })
            .optional()
            .map_err(Into::into)
    }
}
