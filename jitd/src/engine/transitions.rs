//! State changes with their audit events, each written inside the caller's
//! transaction: shared by the request lifecycle, the tick and break-glass.

use serde_json::json;
use std::time::Duration;

use super::{Result, JITD};
use crate::core::model::{Decision, Kind, Request, RequestId, State, UnixTime};
use crate::core::policy::Rule;
use crate::core::{schedule, workflow};
use crate::directory::Person;
use crate::store::{AuditEvent, Writer};

/// One approver's decision and its audit event.
pub(super) fn record_decision(
    w: &mut Writer<'_>,
    who: &Person,
    id: RequestId,
    d: &Decision,
    event: &str,
) -> Result<()> {
    w.add_decision(id, d)?;
    w.audit(&AuditEvent {
        at: d.at,
        actor_uid: Some(who.uid),
        actor: &who.name,
        event,
        request: Some(id),
        detail: json!({"role": d.role.as_str(), "comment": d.comment}),
    })?;
    Ok(())
}

pub(super) fn audit_submission(
    w: &mut Writer<'_>,
    who: &Person,
    id: RequestId,
    req: &Request,
    event: &str,
) -> Result<()> {
    let extends = match req.kind {
        Kind::Extension { of } => Some(of),
        Kind::Grant => None,
    };
    w.audit(&AuditEvent {
        at: req.requested_at,
        actor_uid: Some(who.uid),
        actor: &who.name,
        event,
        request: Some(id),
        detail: json!({
            "resource": req.resource,
            "duration_secs": req.duration.as_secs(),
            "reason": req.reason,
            "ticket": req.ticket,
            "extends": extends,
        }),
    })?;
    w.audit(&AuditEvent {
        at: req.requested_at,
        actor_uid: None,
        actor: JITD,
        event: "scored",
        request: Some(id),
        detail: json!({
            "score": req.risk.score,
            "factors": req.risk.factors,
            "route": req.route.as_str(),
            "policy": req.policy,
        }),
    })?;
    Ok(())
}

/// Who approved a grant a policy rule approved, as the audit trail and
/// `ended_by` name it.
pub(super) fn policy_approver(rule: &str) -> String {
    format!("policy {rule}")
}

/// The rule that approved request `id` or lowered its route (W1.10): its
/// name, what it did, and who is told (`core::notify` reads `notify`).
pub(super) fn audit_policy(
    w: &mut Writer<'_>,
    id: RequestId,
    req: &Request,
    rule: &Rule,
) -> Result<()> {
    w.audit(&AuditEvent {
        at: req.requested_at,
        actor_uid: None,
        actor: JITD,
        event: "policy_applied",
        request: Some(id),
        detail: json!({
            "policy": rule.name,
            "action": rule.action.as_str(),
            "route": req.route.as_str(),
            "notify": rule.notify.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
        }),
    })?;
    Ok(())
}

pub(super) fn activate(
    w: &mut Writer<'_>,
    id: RequestId,
    req: &Request,
    now: UnixTime,
    by: &str,
) -> Result<()> {
    let expires_at = schedule::expiry_from(req, now);
    let mut detail = json!({
        "expires_at": expires_at,
        "approved_by": by,
        "route": req.route.as_str(),
        "policy": req.policy,
    });
    if req.state == State::Scheduled {
        // Active at its start, not at its approval.
        detail["scheduled"] = true.into();
        detail["starts_at"] = req.starts_at.into();
    }
    w.set_state(id, State::Active, Some(expires_at), None)?;
    w.audit(&AuditEvent {
        at: now,
        actor_uid: None,
        actor: JITD,
        event: "granted",
        request: Some(id),
        detail,
    })?;
    Ok(())
}

pub(super) fn apply_extension(
    w: &mut Writer<'_>,
    id: RequestId,
    req: &Request,
    grant: &Request,
    now: UnixTime,
    cap: Duration,
    by: &str,
) -> Result<()> {
    let current = grant.expires_at.unwrap_or(now);
    let expires_at = workflow::extended_expiry(current, req.duration, now, cap);
    w.set_state(grant.id, State::Active, Some(expires_at), None)?;
    w.set_state(id, State::Applied, Some(expires_at), Some((now, by)))?;
    w.audit(&AuditEvent {
        at: now,
        actor_uid: None,
        actor: JITD,
        event: "extended",
        request: Some(grant.id),
        detail: json!({"extension": id, "from": current, "expires_at": expires_at, "approved_by": by}),
    })?;
    Ok(())
}

pub(super) fn lapse_all(
    w: &mut Writer<'_>,
    ids: &[RequestId],
    now: UnixTime,
    why: &str,
) -> Result<()> {
    for id in ids {
        w.set_state(*id, State::Lapsed, None, Some((now, JITD)))?;
        w.audit(&AuditEvent {
            at: now,
            actor_uid: None,
            actor: JITD,
            event: "lapsed",
            request: Some(*id),
            detail: json!({"why": why}),
        })?;
    }
    Ok(())
}

/// Vendors whose access ends with the grants this transaction ends.
pub(super) fn end_vendors(
    w: &mut Writer<'_>,
    vendors: &[crate::core::vendor::VendorId],
    state: State,
    now: UnixTime,
    by: &str,
) -> Result<()> {
    for id in vendors {
        w.end_vendor(*id, state, now, by)?;
        w.audit(&AuditEvent {
            at: now,
            actor_uid: None,
            actor: JITD,
            event: "vendor_ended",
            request: None,
            detail: json!({"vendor": id, "state": state.as_str()}),
        })?;
    }
    Ok(())
}
