//! MFA step-up (docs/design.md "MFA step-up"): a grant of a resource with
//! `require_mfa` is approved first, and becomes usable once its holder
//! proves a second factor; its approvers prove one with their approval.

use serde_json::json;

use super::custody::Exposure;
use super::transitions::{activate, policy_approver};
use super::{Engine, EngineError, Event, Result, JITD};
use crate::core::model::Route;
use crate::core::model::{Request, RequestId, State, UnixTime};
use crate::core::{schedule, workflow};
use crate::directory::Person;
use crate::store::{AuditEvent, Writer};

/// How a grant starts once its approval is complete.
pub(super) enum Start {
    /// Active now, with whatever its activation exposes.
    Now(Exposure),
    /// Approved; usable once its holder proves a second factor before
    /// `by`.
    OnActivation { by: UnixTime },
    /// Approved ahead of its window: it starts then (`scheduled`).
    At { starts_at: UnixTime },
}

impl Start {
    /// When `req` starting so ends, if known now (not before its holder
    /// activates it, nor before its start).
    pub(super) fn expires_at(&self, now: UnixTime, req: &Request) -> Option<UnixTime> {
        match self {
            Start::Now(_) => Some(schedule::expiry_from(req, now)),
            Start::OnActivation { .. } | Start::At { .. } => None,
        }
    }

    /// Not usable before a later start.
    pub(super) fn is_later(&self) -> bool {
        matches!(self, Start::At { .. })
    }

    /// Writes the start inside the caller's transaction, with its audit
    /// event (`granted`, or `awaiting_activation`).
    pub(super) fn write(
        &self,
        w: &mut Writer<'_>,
        id: RequestId,
        req: &Request,
        now: UnixTime,
        approved_by: &str,
    ) -> Result<()> {
        match self {
            Start::Now(exposure) => {
                activate(w, id, req, now, approved_by)?;
                exposure.record(w, Some(id), now)
            }
            Start::OnActivation { by } => {
                w.await_activation(id, *by)?;
                w.audit(&AuditEvent {
                    at: now,
                    actor_uid: None,
                    actor: JITD,
                    event: "awaiting_activation",
                    request: Some(id),
                    detail: json!({
                        "activate_by": by,
                        "approved_by": approved_by,
                        "route": req.route.as_str(),
                        "scheduled": req.state == State::Scheduled,
                    }),
                })?;
                Ok(())
            }
            Start::At { starts_at } => {
                w.set_state(id, State::Scheduled, None, None)?;
                w.audit(&AuditEvent {
                    at: now,
                    actor_uid: None,
                    actor: JITD,
                    event: "scheduled",
                    request: Some(id),
                    detail: json!({
                        "starts_at": starts_at,
                        "ends_at": req.window().map(|w| w.end),
                        "approved_by": approved_by,
                        "route": req.route.as_str(),
                    }),
                })?;
                Ok(())
            }
        }
    }
}

impl Engine {
    /// How `req`, approved now (or at its start), starts: at its start if
    /// that is ahead (or held up); at once; or (its resource requiring a second factor)
    /// when its holder activates it within `[mfa] activate_within`, and
    /// within its window if it has one.
    pub(super) fn start_of(&self, req: &Request, now: UnixTime) -> Result<Start> {
        let window = req.window();
        if let Some(starts_at) = schedule::starts_later(window, now) {
            return Ok(Start::At { starts_at });
        }
        // A window under way while its holder holds another grant of the
        // resource: it starts when that one ends (`Engine::start_due`).
        if let Some(w) = window {
            if self.active_grant(req.uid, &req.resource, now).is_some() {
                return Ok(Start::At { starts_at: w.start });
            }
        }
        if self.resource(&req.resource)?.require_mfa {
            let within = workflow::secs(self.config.mfa.activate_within.0);
            let by = window.map_or(now + within, |w| w.end.min(now + within));
            return Ok(Start::OnActivation { by });
        }
        Ok(Start::Now(self.exposure_by(req)?))
    }

    /// What follows a committed approval: the index, the deadlines and the
    /// events of an active grant, or of one awaiting activation.
    pub(super) fn after_start(&mut self, req: &Request) -> Vec<Event> {
        if req.state == State::Active {
            return self.after_activation(req);
        }
        self.track(&req.head());
        vec![Event::Decided {
            id: req.id,
            state: req.state,
        }]
    }

    /// `who`'s code for `purpose`, where `resource` requires a second
    /// factor: refused without one.
    pub(super) fn step_up(
        &mut self,
        who: &Person,
        resource: &str,
        code: Option<&str>,
        purpose: &str,
    ) -> Result<()> {
        if !self.resource(resource)?.require_mfa {
            return Ok(());
        }
        let code = code.ok_or_else(|| EngineError::MfaRequired(resource.to_owned()))?;
        self.mfa_check(who, code, purpose)
    }

    /// The holder activates approved grant `id` with a code from their
    /// second factor: it is active from now, for its full duration.
    pub fn activate(
        &mut self,
        who: &Person,
        id: RequestId,
        code: &str,
    ) -> Result<(Request, Vec<Event>)> {
        let req = self.load(id)?;
        let now = self.clock.wall();
        workflow::check_activation(&req, who.uid, now)?;
        if let Some((active, _)) = self.active_grant(req.uid, &req.resource, now) {
            return Err(EngineError::AlreadyActive {
                id: active,
                resource: req.resource,
            });
        }
        self.check_exclusive(req.uid, &req.resource)?;
        self.step_up(
            who,
            &req.resource,
            Some(code),
            &format!("activation of {id}"),
        )?;
        // The code is spent: a grant lapsed meanwhile stays lapsed.
        let now = self.clock.wall();
        workflow::check_activation(&req, who.uid, now)?;
        let exposure = self.exposure_by(&req)?;
        self.store.write(|w| -> Result<()> {
            w.audit(&AuditEvent {
                at: now,
                actor_uid: Some(who.uid),
                actor: &who.name,
                event: "activated",
                request: Some(id),
                detail: json!({"resource": req.resource}),
            })?;
            activate(w, id, &req, now, &approved_by(&req))?;
            exposure.record(w, Some(id), now)
        })?;
        let granted = self.load(id)?;
        let events = self.after_activation(&granted);
        Ok((granted, events))
    }
}

/// Who completed `req`'s approval, as the `granted` event names them.
pub(super) fn approved_by(req: &Request) -> String {
    match req.route {
        Route::Auto => "policy".into(),
        Route::Policy => policy_approver(req.policy.as_deref().unwrap_or_default()),
        Route::BreakGlass => "break-glass".into(),
        Route::Vendor => "vendor".into(),
        Route::Owner | Route::Dual => req
            .approvals()
            .last()
            .map_or(JITD, |d| d.name.as_str())
            .into(),
    }
}
