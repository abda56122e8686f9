//! Rows of `memberships`: group memberships jitd adds for a grant's
//! lifetime (M.1). Written before `gpasswd` runs and after, each with its
//! audit event; a removed membership's row is deleted.

use rusqlite::{params, OptionalExtension};

use super::{Result, Store, StoreError, Writer};
use crate::core::membership::{Membership, Toggle};
use crate::core::model::{RequestId, UnixTime};

fn state(toggle: Toggle) -> &'static str {
    match toggle {
        Toggle::Adding => "adding",
        Toggle::Added => "added",
        Toggle::Removing => "removing",
    }
}

fn parse(text: &str) -> Option<Toggle> {
    Some(match text {
        "adding" => Toggle::Adding,
        "added" => Toggle::Added,
        "removing" => Toggle::Removing,
        _ => return None,
    })
}

impl Writer<'_> {
    pub fn set_membership(
        &mut self,
        membership: &Membership,
        toggle: Toggle,
        grant: Option<RequestId>,
        at: UnixTime,
    ) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO memberships (user, grp, state, grant_id, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(user, grp) DO UPDATE
                 SET state = ?3, grant_id = COALESCE(?4, grant_id), updated_at = ?5",
            )?
            .execute(params![
                membership.user,
                membership.group,
                state(toggle),
                grant,
                at
            ])?;
        Ok(())
    }

    pub fn forget_membership(&mut self, membership: &Membership) -> Result<()> {
        self.tx
            .prepare_cached("DELETE FROM memberships WHERE user = ?1 AND grp = ?2")?
            .execute(params![membership.user, membership.group])?;
        Ok(())
    }
}

impl Store {
    /// Every membership jitd recorded adding or removing.
    pub fn memberships(&self) -> Result<Vec<(Membership, Toggle)>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT user, grp, state FROM memberships ORDER BY user, grp")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (user, group, text) = row?;
            let toggle = parse(&text)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown membership state '{text}'")))?;
            out.push((Membership { user, group }, toggle));
        }
        Ok(out)
    }

    /// Whether a grant (not an extension) of `resource` is active, or ended
    /// at `since` or later.
    pub fn grant_active_since(&self, resource: &str, since: UnixTime) -> Result<bool> {
        let found: Option<i64> = self
            .conn
            .prepare_cached(
                "SELECT 1 FROM requests
                 WHERE resource = ?1 AND extends IS NULL
                   AND (state = 'active' OR (ended_at >= ?2 AND state IN ('expired', 'revoked')))
                 LIMIT 1",
            )?
            .query_row(params![resource, since], |r| r.get(0))
            .optional()?;
        Ok(found.is_some())
    }

    /// The active grants (not extensions) of `resource`, with their holders' names, oldest first.
    pub fn active_holders_of(&self, resource: &str) -> Result<Vec<(RequestId, String)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, user FROM requests
             WHERE state = 'active' AND extends IS NULL AND resource = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([resource], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
