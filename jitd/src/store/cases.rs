//! Rows of `break_glass_cases`, `break_glass_reviews` and `incidents`: the
//! follow-up of emergency grants (W2).

use rusqlite::{params, Connection, OptionalExtension};

use super::{Result, Store, Writer};
use crate::core::break_glass::{Case, Review, ReviewVerdict};
use crate::core::model::{RequestId, Role, Uid, UnixTime};

/// A security incident opened by an "unjustified" review.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Incident {
    pub id: u64,
    pub grant: RequestId,
    pub opened_at: UnixTime,
    pub opened_by_uid: Uid,
    pub opened_by: String,
    pub comment: String,
    /// The grant's holder and resource.
    pub user: String,
    pub resource: String,
}

impl Writer<'_> {
    pub fn insert_case(&mut self, grant: RequestId, holder: Uid, due_at: UnixTime) -> Result<()> {
        self.tx.execute(
            "INSERT INTO break_glass_cases (grant_id, holder, due_at) VALUES (?1, ?2, ?3)",
            params![grant, holder, due_at],
        )?;
        Ok(())
    }

    pub fn set_justification(&mut self, grant: RequestId, text: &str, at: UnixTime) -> Result<()> {
        self.tx.execute(
            "UPDATE break_glass_cases SET justification = ?2, justified_at = ?3 WHERE grant_id = ?1",
            params![grant, text, at],
        )?;
        Ok(())
    }

    pub fn set_overdue(&mut self, grant: RequestId, at: UnixTime) -> Result<()> {
        self.tx.execute(
            "UPDATE break_glass_cases SET overdue_at = ?2 WHERE grant_id = ?1",
            params![grant, at],
        )?;
        Ok(())
    }

    pub fn add_review(&mut self, grant: RequestId, r: &Review) -> Result<()> {
        self.tx.execute(
            "INSERT INTO break_glass_reviews (grant_id, role, uid, name, verdict, comment, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                grant,
                r.role.as_str(),
                r.uid,
                r.name,
                r.verdict.as_str(),
                r.comment,
                r.at
            ],
        )?;
        Ok(())
    }

    pub fn close_case(&mut self, grant: RequestId, at: UnixTime) -> Result<()> {
        self.tx.execute(
            "UPDATE break_glass_cases SET closed_at = ?2 WHERE grant_id = ?1",
            params![grant, at],
        )?;
        Ok(())
    }

    /// Opens an incident and returns its id.
    pub fn insert_incident(&mut self, grant: RequestId, by: &Review) -> Result<u64> {
        self.tx.execute(
            "INSERT INTO incidents (grant_id, opened_at, opened_by_uid, opened_by, comment)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![grant, by.at, by.uid, by.name, by.comment],
        )?;
        Ok(self.tx.last_insert_rowid() as u64)
    }
}

/// A review row's `role, uid, name, verdict, comment, at`, from column
/// `first` on.
pub(super) fn review_from_row(r: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<Review> {
    let role: String = r.get(first)?;
    let verdict: String = r.get(first + 3)?;
    Ok(Review {
        uid: r.get(first + 1)?,
        name: r.get(first + 2)?,
        role: Role::parse(&role).ok_or_else(|| corrupt_column("role", &role))?,
        verdict: ReviewVerdict::parse(&verdict).map_err(|_| corrupt_column("verdict", &verdict))?,
        comment: r.get(first + 4)?,
        at: r.get(first + 5)?,
    })
}

fn corrupt_column(what: &str, value: &str) -> rusqlite::Error {
    super::requests::corrupt(&format!("{what} of a break-glass review"), value)
}

fn reviews(conn: &Connection, grant: RequestId) -> Result<Vec<Review>> {
    let mut stmt = conn.prepare_cached(
        "SELECT role, uid, name, verdict, comment, at FROM break_glass_reviews
         WHERE grant_id = ?1 ORDER BY at, rowid",
    )?;
    let rows = stmt.query_map([grant], |r| review_from_row(r, 0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn incident_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Incident> {
    Ok(Incident {
        id: r.get(0)?,
        grant: r.get(1)?,
        opened_at: r.get(2)?,
        opened_by_uid: r.get(3)?,
        opened_by: r.get(4)?,
        comment: r.get(5)?,
        user: r.get(6)?,
        resource: r.get(7)?,
    })
}

const INCIDENTS: &str = "SELECT i.id, i.grant_id, i.opened_at, i.opened_by_uid, i.opened_by, \
                         i.comment, r.user, r.resource \
                         FROM incidents i JOIN requests r ON r.id = i.grant_id";

/// The follow-up of break-glass grant `grant`, with its reviews and incidents.
pub(super) fn load_case(conn: &Connection, grant: RequestId) -> Result<Option<Case>> {
    let mut stmt = conn.prepare_cached(
        "SELECT holder, due_at, justification, justified_at, overdue_at, closed_at
             FROM break_glass_cases WHERE grant_id = ?1",
    )?;
    let Some(mut case) = stmt
        .query_row([grant], |r| {
            Ok(Case {
                grant,
                holder: r.get(0)?,
                due_at: r.get(1)?,
                justification: r.get(2)?,
                justified_at: r.get(3)?,
                overdue_at: r.get(4)?,
                reviews: Vec::new(),
                incidents: Vec::new(),
                closed_at: r.get(5)?,
            })
        })
        .optional()?
    else {
        return Ok(None);
    };
    case.reviews = reviews(conn, grant)?;
    let mut stmt =
        conn.prepare_cached("SELECT id FROM incidents WHERE grant_id = ?1 ORDER BY id")?;
    case.incidents = stmt
        .query_map([grant], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(Some(case))
}

/// How many emergency grants `uid` took since `since`.
pub(super) fn break_glass_count(conn: &Connection, uid: Uid, since: UnixTime) -> Result<u32> {
    Ok(conn.query_row(
        "SELECT COUNT(*) FROM requests
         WHERE route = 'break_glass' AND uid = ?1 AND requested_at >= ?2",
        params![uid, since],
        |r| r.get(0),
    )?)
}

impl Store {
    /// Cases still waiting for a justification that was not escalated yet:
    /// (grant, due_at), for the deadlines.
    pub fn unjustified_cases(&self) -> Result<Vec<(RequestId, UnixTime)>> {
        let mut stmt = self.conn.prepare(
            "SELECT grant_id, due_at FROM break_glass_cases
             WHERE closed_at IS NULL AND justification IS NULL AND overdue_at IS NULL",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn break_glass_count(&self, uid: Uid, since: UnixTime) -> Result<u32> {
        break_glass_count(&self.conn, uid, since)
    }

    /// Every incident, newest first, or those of one grant.
    pub fn incidents(&self, grant: Option<RequestId>) -> Result<Vec<Incident>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "{INCIDENTS} WHERE ?1 IS NULL OR i.grant_id = ?1 ORDER BY i.id DESC"
        ))?;
        let rows = stmt.query_map([grant], incident_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn incident(&self, id: u64) -> Result<Option<Incident>> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!("{INCIDENTS} WHERE i.id = ?1"))?;
        Ok(stmt.query_row([id], incident_from_row).optional()?)
    }
}
