//! Rows of `requests` and `decisions`, mapped to the domain model.

use rusqlite::{params, Connection, OptionalExtension, Row};
use std::time::Duration;

use super::{Result, Store, StoreError, Writer};
use crate::core::model::{
    window, Decision, Kind, Request, RequestHead, RequestId, Role, Route, State, Uid, UnixTime,
    Verdict,
};
use crate::core::tickets::TicketCheck;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListFilter {
    /// Pending, approved (awaiting activation), scheduled and active.
    Open,
    Pending,
    Active,
    All,
}

impl ListFilter {
    pub fn parse(text: &str) -> Option<ListFilter> {
        match text {
            "" | "open" => Some(ListFilter::Open),
            "pending" => Some(ListFilter::Pending),
            "active" => Some(ListFilter::Active),
            "all" => Some(ListFilter::All),
            _ => None,
        }
    }

    fn sql(self) -> &'static str {
        match self {
            ListFilter::Open => "state IN ('pending', 'approved', 'scheduled', 'active')",
            ListFilter::Pending => "state = 'pending'",
            ListFilter::Active => "state = 'active'",
            ListFilter::All => "1",
        }
    }
}

const COLUMNS: &str = "id, extends, uid, user, resource, duration_secs, reason, ticket, \
                       requested_at, route, risk, state, expires_at, ended_at, ended_by, \
                       activate_by, starts_at, policy, ticket_check";

fn check_json(check: &TicketCheck) -> Result<String> {
    serde_json::to_string(check).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(super) fn corrupt(what: &str, value: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        0,
        rusqlite::types::Type::Text,
        format!("unknown {what} '{value}'").into(),
    )
}

fn request_from_row(row: &Row<'_>) -> rusqlite::Result<Request> {
    let route: String = row.get(9)?;
    let state: String = row.get(11)?;
    let risk: String = row.get(10)?;
    let extends: Option<RequestId> = row.get(1)?;
    Ok(Request {
        id: row.get(0)?,
        kind: extends.map_or(Kind::Grant, |of| Kind::Extension { of }),
        uid: row.get(2)?,
        user: row.get(3)?,
        resource: row.get(4)?,
        duration: Duration::from_secs(row.get(5)?),
        reason: row.get(6)?,
        ticket: row.get(7)?,
        requested_at: row.get(8)?,
        starts_at: row.get(16)?,
        route: Route::parse(&route).ok_or_else(|| corrupt("route", &route))?,
        risk: serde_json::from_str(&risk).map_err(|_| corrupt("risk", &risk))?,
        state: State::parse(&state).ok_or_else(|| corrupt("state", &state))?,
        decisions: Vec::new(),
        expires_at: row.get(12)?,
        ended_at: row.get(13)?,
        ended_by: row.get(14)?,
        activate_by: row.get(15)?,
        policy: row.get(17)?,
        ticket_check: match row.get::<_, Option<String>>(18)? {
            Some(json) => {
                Some(serde_json::from_str(&json).map_err(|_| corrupt("ticket check", &json))?)
            }
            None => None,
        },
        follow_up: None,
    })
}

/// A decision row: `uid, name, role, verdict, comment, at` (of a request's
/// or a vendor's).
pub(super) fn decision_from_row(r: &Row<'_>) -> rusqlite::Result<Decision> {
    let role: String = r.get(2)?;
    let verdict: String = r.get(3)?;
    Ok(Decision {
        uid: r.get(0)?,
        name: r.get(1)?,
        role: Role::parse(&role).ok_or_else(|| corrupt("role", &role))?,
        verdict: match verdict.as_str() {
            "approve" => Verdict::Approve,
            "deny" => Verdict::Deny,
            other => return Err(corrupt("verdict", other)),
        },
        comment: r.get(4)?,
        at: r.get(5)?,
    })
}

fn load_decisions(conn: &Connection, req: &mut Request) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(
        "SELECT uid, name, role, verdict, comment, at FROM decisions WHERE request = ?1 ORDER BY at, rowid",
    )?;
    let rows = stmt.query_map([req.id], decision_from_row)?;
    req.decisions = rows.collect::<rusqlite::Result<_>>()?;
    Ok(())
}

pub fn get(conn: &Connection, id: RequestId) -> Result<Option<Request>> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM requests WHERE id = ?1"))?;
    let Some(mut req) = stmt.query_row([id], request_from_row).optional()? else {
        return Ok(None);
    };
    load_decisions(conn, &mut req)?;
    if req.route == Route::BreakGlass {
        req.follow_up = super::cases::load_case(conn, id)?;
    }
    Ok(Some(req))
}

/// The newest `limit` requests matching `filter` (and `only_uid`), oldest first.
pub fn list(
    conn: &Connection,
    filter: ListFilter,
    only_uid: Option<Uid>,
    limit: Option<u32>,
) -> Result<Vec<Request>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM requests WHERE {} AND (?1 IS NULL OR uid = ?1)
         ORDER BY id DESC LIMIT ?2",
        filter.sql()
    ))?;
    // SQLite reads a negative LIMIT as "no limit".
    let limit = limit.map_or(-1, i64::from);
    let mut out: Vec<Request> = stmt
        .query_map(params![only_uid, limit], request_from_row)?
        .collect::<rusqlite::Result<_>>()?;
    out.reverse();
    for req in &mut out {
        load_decisions(conn, req)?;
    }
    Ok(out)
}

/// Facts about a user's history that feed the risk score.
pub struct History {
    pub held_before: bool,
    pub recent_denials: u32,
    pub recent_break_glass: u32,
}

pub fn history(conn: &Connection, uid: Uid, resource: &str, since: UnixTime) -> Result<History> {
    let held_before: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM requests WHERE uid = ?1 AND resource = ?2
                        AND expires_at IS NOT NULL)",
        params![uid, resource],
        |r| r.get(0),
    )?;
    let recent_denials: u32 = conn.query_row(
        "SELECT COUNT(*) FROM requests WHERE uid = ?1 AND state = 'denied' AND requested_at >= ?2",
        params![uid, since],
        |r| r.get(0),
    )?;
    let recent_break_glass = super::cases::break_glass_count(conn, uid, since)?;
    Ok(History {
        held_before,
        recent_denials,
        recent_break_glass,
    })
}

impl Store {
    pub fn request(&self, id: RequestId) -> Result<Option<Request>> {
        get(&self.conn, id)
    }

    /// The heads of every open request: all jitd keeps in memory, read
    /// without the rest of each row.
    pub fn open_heads(&self) -> Result<Vec<RequestHead>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, extends, uid, resource, state, requested_at, expires_at, activate_by,
                    starts_at, duration_secs
             FROM requests WHERE state IN ('pending', 'approved', 'scheduled', 'active')",
        )?;
        let rows = stmt.query_map([], |r| {
            let extends: Option<RequestId> = r.get(1)?;
            let state: String = r.get(4)?;
            let window = window(r.get(8)?, Duration::from_secs(r.get(9)?));
            Ok(RequestHead {
                id: r.get(0)?,
                kind: extends.map_or(Kind::Grant, |of| Kind::Extension { of }),
                uid: r.get(2)?,
                resource: r.get(3)?,
                state: State::parse(&state).ok_or_else(|| corrupt("state", &state))?,
                requested_at: r.get(5)?,
                expires_at: r.get(6)?,
                activate_by: r.get(7)?,
                window,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn newest_requests(
        &self,
        filter: ListFilter,
        only_uid: Option<Uid>,
        limit: u32,
    ) -> Result<Vec<Request>> {
        list(&self.conn, filter, only_uid, Some(limit))
    }

    /// Pending extension requests of `grant`.
    pub fn pending_extensions(&self, grant: RequestId) -> Result<Vec<RequestId>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id FROM requests WHERE extends = ?1 AND state = 'pending' ORDER BY id",
        )?;
        let ids = stmt.query_map([grant], |r| r.get(0))?;
        Ok(ids.collect::<rusqlite::Result<_>>()?)
    }

    pub fn count(&self, state: State) -> Result<u64> {
        Ok(self.conn.query_row(
            "SELECT COUNT(*) FROM requests WHERE state = ?1",
            [state.as_str()],
            |r| r.get(0),
        )?)
    }

    pub fn history(&self, uid: Uid, resource: &str, since: UnixTime) -> Result<History> {
        history(&self.conn, uid, resource, since)
    }

    pub fn audit_since(
        &self,
        since: UnixTime,
        only_uid: Option<Uid>,
    ) -> Result<Vec<super::AuditRecord>> {
        super::audit::read_since(&self.conn, since, only_uid)
    }
}

impl Writer<'_> {
    /// Inserts a new request and returns its id.
    pub fn insert_request(&mut self, req: &Request) -> Result<RequestId> {
        let extends = match req.kind {
            Kind::Grant => None,
            Kind::Extension { of } => Some(of),
        };
        let risk =
            serde_json::to_string(&req.risk).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let ticket_check = req.ticket_check.as_ref().map(check_json).transpose()?;
        self.tx.execute(
            "INSERT INTO requests (extends, uid, user, resource, duration_secs, reason, ticket,
                                   requested_at, route, risk, state, expires_at, starts_at, policy,
                                   ticket_check)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
            params![
                extends,
                req.uid,
                req.user,
                req.resource,
                req.duration.as_secs(),
                req.reason,
                req.ticket,
                req.requested_at,
                req.route.as_str(),
                risk,
                req.state.as_str(),
                req.expires_at,
                req.starts_at,
                req.policy,
                ticket_check,
            ],
        )?;
        Ok(self.tx.last_insert_rowid() as RequestId)
    }

    /// Records the latest check of request `id`'s ticket.
    pub fn set_ticket_check(&mut self, id: RequestId, check: &TicketCheck) -> Result<()> {
        self.tx.execute(
            "UPDATE requests SET ticket_check = ?2 WHERE id = ?1",
            params![id, check_json(check)?],
        )?;
        Ok(())
    }

    pub fn add_decision(&mut self, id: RequestId, d: &Decision) -> Result<()> {
        self.tx.execute(
            "INSERT INTO decisions (request, uid, name, role, verdict, comment, at)
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

    /// Moves a request to `state`; final states record when and by whom.
    pub fn set_state(
        &mut self,
        id: RequestId,
        state: State,
        expires_at: Option<UnixTime>,
        ended: Option<(UnixTime, &str)>,
    ) -> Result<()> {
        let changed = self.tx.execute(
            "UPDATE requests SET state = ?2, expires_at = ?3, ended_at = ?4, ended_by = ?5 WHERE id = ?1",
            params![id, state.as_str(), expires_at, ended.map(|e| e.0), ended.map(|e| e.1)],
        )?;
        if changed != 1 {
            return Err(StoreError::Corrupt(format!("request {id} vanished")));
        }
        Ok(())
    }

    /// Approved, awaiting its holder's second factor until `activate_by`.
    pub fn await_activation(&mut self, id: RequestId, activate_by: UnixTime) -> Result<()> {
        let changed = self.tx.execute(
            "UPDATE requests SET state = 'approved', activate_by = ?2 WHERE id = ?1",
            params![id, activate_by],
        )?;
        if changed != 1 {
            return Err(StoreError::Corrupt(format!("request {id} vanished")));
        }
        Ok(())
    }

    pub fn request(&self, id: RequestId) -> Result<Option<Request>> {
        get(&self.tx, id)
    }

    /// The name of request `id`'s requester, without the rest of the request.
    pub fn requester(&self, id: RequestId) -> Result<Option<String>> {
        Ok(self
            .tx
            .prepare_cached("SELECT user FROM requests WHERE id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?)
    }
}
