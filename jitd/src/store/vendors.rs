//! Rows of `vendors`, `vendor_decisions` and `vendor_grants`: sponsored
//! vendor accounts (docs/design.md "Vendor accounts").

use rusqlite::{params, Connection, OptionalExtension, Row};
use std::time::Duration;

use super::requests::{corrupt, decision_from_row};
use super::{Result, Store, StoreError, Writer};
use crate::core::model::{Decision, RequestId, State, Uid, UnixTime};
use crate::core::vendor::{Host, Vendor, VendorAsk, VendorId};

const COLUMNS: &str = "id, organization, name, email, resources, segments, duration_secs, \
                       project, reason, key, account, uid, sponsor_uid, sponsor, manager, \
                       requested_at, state, expires_at, ended_at, ended_by, host";

fn names(text: &str) -> rusqlite::Result<Vec<String>> {
    serde_json::from_str(text).map_err(|_| corrupt("list", text))
}

fn vendor_from_row(row: &Row<'_>) -> rusqlite::Result<Vendor> {
    let state: String = row.get(16)?;
    let host: String = row.get(20)?;
    Ok(Vendor {
        id: row.get(0)?,
        ask: VendorAsk {
            organization: row.get(1)?,
            name: row.get(2)?,
            email: row.get(3)?,
            resources: names(&row.get::<_, String>(4)?)?,
            segments: names(&row.get::<_, String>(5)?)?,
            duration: Duration::from_secs(row.get(6)?),
            project: row.get(7)?,
            reason: row.get(8)?,
            key: row.get(9)?,
        },
        account: row.get(10)?,
        uid: row.get(11)?,
        sponsor_uid: row.get(12)?,
        sponsor: row.get(13)?,
        manager: row.get(14)?,
        requested_at: row.get(15)?,
        state: State::parse(&state).ok_or_else(|| corrupt("state", &state))?,
        decisions: Vec::new(),
        expires_at: row.get(17)?,
        ended_at: row.get(18)?,
        ended_by: row.get(19)?,
        host: Host::parse(&host).ok_or_else(|| corrupt("host", &host))?,
    })
}

fn load_decisions(conn: &Connection, vendor: &mut Vendor) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(
        "SELECT uid, name, role, verdict, comment, at FROM vendor_decisions
         WHERE vendor = ?1 ORDER BY at, rowid",
    )?;
    let rows = stmt.query_map([vendor.id], decision_from_row)?;
    vendor.decisions = rows.collect::<rusqlite::Result<_>>()?;
    Ok(())
}

fn get(conn: &Connection, id: VendorId) -> Result<Option<Vendor>> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM vendors WHERE id = ?1"))?;
    let Some(mut vendor) = stmt.query_row([id], vendor_from_row).optional()? else {
        return Ok(None);
    };
    load_decisions(conn, &mut vendor)?;
    Ok(Some(vendor))
}

fn corrupt_json(e: serde_json::Error) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

impl Writer<'_> {
    pub fn insert_vendor(&mut self, v: &Vendor) -> Result<VendorId> {
        let resources = serde_json::to_string(&v.ask.resources).map_err(corrupt_json)?;
        let segments = serde_json::to_string(&v.ask.segments).map_err(corrupt_json)?;
        self.tx.execute(
            "INSERT INTO vendors (organization, name, email, resources, segments, duration_secs,
                                  project, reason, key, account, sponsor_uid, sponsor, manager,
                                  requested_at, state)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
            params![
                v.ask.organization,
                v.ask.name,
                v.ask.email,
                resources,
                segments,
                v.ask.duration.as_secs(),
                v.ask.project,
                v.ask.reason,
                v.ask.key,
                v.account,
                v.sponsor_uid,
                v.sponsor,
                v.manager,
                v.requested_at,
                v.state.as_str(),
            ],
        )?;
        Ok(self.tx.last_insert_rowid() as VendorId)
    }

    pub fn add_vendor_decision(&mut self, id: VendorId, d: &Decision) -> Result<()> {
        self.tx.execute(
            "INSERT INTO vendor_decisions (vendor, uid, name, role, verdict, comment, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                id,
                d.uid,
                d.name,
                d.role.as_str(),
                d.verdict.as_str(),
                d.comment,
                d.at
            ],
        )?;
        Ok(())
    }

    /// Approved: the vendor's uid (unique in the table, so never given
    /// twice) and the end of its access.
    pub fn activate_vendor(&mut self, id: VendorId, uid: Uid, expires_at: UnixTime) -> Result<()> {
        self.changed_one(
            id,
            self.tx.execute(
                "UPDATE vendors SET state = 'active', uid = ?2, expires_at = ?3
                 WHERE id = ?1 AND state = 'pending'",
                params![id, uid, expires_at],
            )?,
        )
    }

    pub fn end_vendor(&mut self, id: VendorId, state: State, at: UnixTime, by: &str) -> Result<()> {
        self.changed_one(
            id,
            self.tx.execute(
                "UPDATE vendors SET state = ?2, ended_at = ?3, ended_by = ?4 WHERE id = ?1",
                params![id, state.as_str(), at, by],
            )?,
        )
    }

    pub fn set_vendor_host(&mut self, id: VendorId, host: Host) -> Result<()> {
        self.changed_one(
            id,
            self.tx.execute(
                "UPDATE vendors SET host = ?2 WHERE id = ?1",
                params![id, host.as_str()],
            )?,
        )
    }

    pub fn link_vendor_grant(&mut self, grant: RequestId, vendor: VendorId) -> Result<()> {
        self.tx.execute(
            "INSERT INTO vendor_grants (grant_id, vendor) VALUES (?1, ?2)",
            params![grant, vendor],
        )?;
        Ok(())
    }

    pub fn vendor(&self, id: VendorId) -> Result<Option<Vendor>> {
        get(&self.tx, id)
    }

    fn changed_one(&self, id: VendorId, changed: usize) -> Result<()> {
        if changed != 1 {
            return Err(StoreError::Corrupt(format!("vendor {id} vanished")));
        }
        Ok(())
    }
}

impl Store {
    pub fn vendor(&self, id: VendorId) -> Result<Option<Vendor>> {
        get(&self.conn, id)
    }

    /// Every vendor, newest last; `open`: only those whose account is not
    /// deleted yet (pending, active, or ended within the retention).
    pub fn vendors(&self, open: bool) -> Result<Vec<Vendor>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM vendors WHERE (?1 = 0 OR host != 'deleted') ORDER BY id"
        ))?;
        let mut out: Vec<Vendor> = stmt
            .query_map([open], vendor_from_row)?
            .collect::<rusqlite::Result<_>>()?;
        for vendor in &mut out {
            load_decisions(&self.conn, vendor)?;
        }
        Ok(out)
    }

    /// The highest uid ever given to a vendor.
    pub fn highest_vendor_uid(&self) -> Result<Option<Uid>> {
        Ok(self
            .conn
            .query_row("SELECT MAX(uid) FROM vendors", [], |r| r.get(0))?)
    }

    /// Whether a vendor that is pending, active or not yet deleted has
    /// `account` as its name.
    pub fn vendor_account_in_use(&self, account: &str) -> Result<bool> {
        Ok(self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM vendors WHERE account = ?1
                            AND state IN ('pending', 'active', 'expired', 'revoked')
                            AND host != 'deleted')",
            [account],
            |r| r.get(0),
        )?)
    }

    /// The vendor whose approval made grant `grant`, if any.
    pub fn vendor_of_grant(&self, grant: RequestId) -> Result<Option<VendorId>> {
        Ok(self
            .conn
            .prepare_cached("SELECT vendor FROM vendor_grants WHERE grant_id = ?1")?
            .query_row([grant], |r| r.get(0))
            .optional()?)
    }

    /// The grants vendor `id`'s approval made.
    pub fn vendor_grants(&self, id: VendorId) -> Result<Vec<RequestId>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT grant_id FROM vendor_grants WHERE vendor = ?1 ORDER BY grant_id",
        )?;
        let rows = stmt.query_map([id], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
