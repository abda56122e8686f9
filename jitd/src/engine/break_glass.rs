//! Break-glass (W2) in the engine: the emergency grant, its justification,
//! the overdue escalation, the reviews and the incidents they open.

use serde_json::json;
use std::time::Duration;

use super::lifecycle::submitted;
use super::transitions::{audit_submission, lapse_all};
use super::{EngineError, Event, Result, JITD};
use crate::core::break_glass::{self as bg, BreakGlassError, ReviewVerdict};
use crate::core::model::{Kind, Request, RequestId, Route, State, UnixTime};
use crate::core::workflow::{self, Submission, WorkflowError};
use crate::deadlines::Due;
use crate::directory::Person;
use crate::engine::Engine;
use crate::store::{AuditEvent, Incident};

impl Engine {
    /// An emergency grant for `resource`, active at once (W2.1, W2.2).
    /// `duration` defaults to the resource's `break_glass_max`.
    pub fn break_glass(
        &mut self,
        who: &Person,
        resource: &str,
        duration: Option<Duration>,
        reason: &str,
    ) -> Result<(Request, Vec<Event>)> {
        let res = self.resource(resource)?.clone();
        if !who.matches_any(&res.break_glass) || self.is_vendor(who) {
            return Err(BreakGlassError::NotAllowed(res.name).into());
        }
        let duration = duration.unwrap_or(res.break_glass_max);
        let sub = Submission {
            duration,
            reason,
            ticket: None,
        };
        workflow::validate_submission(&res.name, &sub, res.break_glass_max)?;
        let now = self.clock.wall();
        if let Some((id, _)) = self.active_grant(who.uid, &res.name, now) {
            return Err(EngineError::AlreadyActive {
                id,
                resource: res.name,
            });
        }
        let policy = &self.config.break_glass;
        let used = self
            .store
            .break_glass_count(who.uid, now - workflow::secs(policy.rate_window.0))?;
        if let Err(refusal) = bg::check_rate(
            used,
            policy.rate_limit,
            policy.rate_window.0,
            &policy.contact,
        ) {
            // Attempts past the limit are themselves worth a look.
            self.store.write(|w| -> Result<()> {
                w.audit(&AuditEvent {
                    at: now,
                    actor_uid: Some(who.uid),
                    actor: &who.name,
                    event: "break_glass_refused",
                    request: None,
                    detail: json!({"resource": res.name, "reason": reason, "used": used}),
                })?;
                Ok(())
            })?;
            return Err(refusal.into());
        }
        let mut req = self.draft(who, &res, Kind::Grant, &sub, now)?;
        req.route = Route::BreakGlass;
        // An emergency supersedes the holder's own pending request for the
        // same resource (it could otherwise be approved into a second grant).
        let superseded: Vec<RequestId> = self
            .grants
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .pending(who.uid, &res.name)
            .into_iter()
            .collect();
        let due_at = now + workflow::secs(policy.justify_within.0);
        let start = self.start_of(&req, now)?;
        req.id = self.store.write(|w| -> Result<RequestId> {
            let id = w.insert_request(&req)?;
            audit_submission(w, who, id, &req, "requested")?;
            start.write(w, id, &req, now, "break-glass")?;
            w.insert_case(id, who.uid, due_at)?;
            w.audit(&AuditEvent {
                at: now,
                actor_uid: Some(who.uid),
                actor: &who.name,
                event: "break_glass",
                request: Some(id),
                detail: json!({
                    "resource": req.resource,
                    "reason": req.reason,
                    "user": who.name,
                    "expires_at": start.expires_at(now, &req),
                    "justify_by": due_at,
                }),
            })?;
            lapse_all(w, &superseded, now, "superseded by a break-glass grant")?;
            Ok(id)
        })?;
        let req = self.load(req.id)?;
        let mut events = vec![submitted(&req)];
        events.extend(self.after_start(&req));
        for id in superseded {
            let pending = self.load(id)?;
            self.untrack(&pending.head());
            events.push(Event::Decided {
                id,
                state: State::Lapsed,
            });
        }
        self.schedule_justification(req.id, due_at);
        Ok((req, events))
    }

    /// The holder's justification of break-glass grant `id` (W2.4).
    pub fn justify(
        &mut self,
        who: &Person,
        id: RequestId,
        text: &str,
    ) -> Result<(Request, Vec<Event>)> {
        let (req, case) = self.case_of(who, id)?;
        bg::justify(&case, who.uid, text)?;
        let now = self.clock.wall();
        let late = now >= case.due_at;
        self.store.write(|w| -> Result<()> {
            w.set_justification(id, text, now)?;
            w.audit(&AuditEvent {
                at: now,
                actor_uid: Some(who.uid),
                actor: &who.name,
                event: "justified",
                request: Some(id),
                detail: json!({"resource": req.resource, "justification": text, "late": late}),
            })?;
            Ok(())
        })?;
        self.justifications.cancel(id);
        Ok((self.load(id)?, Vec::new()))
    }

    /// A manager's or security's verdict on break-glass grant `id` (W2.5).
    pub fn review(
        &mut self,
        who: &Person,
        id: RequestId,
        verdict: &str,
        comment: &str,
    ) -> Result<(Request, Vec<Event>)> {
        let verdict = ReviewVerdict::parse(verdict)?;
        let (req, case) = self.case_of(who, id)?;
        let now = self.clock.wall();
        let outcome = bg::review(&case, &self.actor(who, &req), verdict, comment, now)?;
        let r = &outcome.review;
        self.store.write(|w| -> Result<()> {
            w.add_review(id, r)?;
            w.audit(&AuditEvent {
                at: now,
                actor_uid: Some(who.uid),
                actor: &who.name,
                event: "reviewed",
                request: Some(id),
                detail: json!({"role": r.role.as_str(), "verdict": r.verdict.as_str(), "comment": r.comment}),
            })?;
            if outcome.opens_incident {
                let incident = w.insert_incident(id, r)?;
                w.audit(&AuditEvent {
                    at: now,
                    actor_uid: Some(who.uid),
                    actor: &who.name,
                    event: "incident_opened",
                    request: Some(id),
                    detail: json!({
                        "incident": incident,
                        "resource": req.resource,
                        "user": req.user,
                        "reviewer": who.name,
                        "comment": r.comment,
                    }),
                })?;
            }
            if outcome.closes_case {
                w.close_case(id, now)?;
                w.audit(&AuditEvent {
                    at: now,
                    actor_uid: None,
                    actor: JITD,
                    event: "case_closed",
                    request: Some(id),
                    detail: json!({"resource": req.resource, "user": req.user}),
                })?;
            }
            Ok(())
        })?;
        if outcome.closes_case {
            self.justifications.cancel(id);
        }
        Ok((self.load(id)?, Vec::new()))
    }

    /// Security incidents, for those who see everything (root, security, auditors).
    pub fn incidents(&self, who: &Person) -> Result<Vec<Incident>> {
        self.require_sees_all(who)?;
        Ok(self.store.incidents(None)?)
    }

    pub fn incident(&self, who: &Person, id: u64) -> Result<Incident> {
        self.require_sees_all(who)?;
        Ok(self
            .store
            .incident(id)?
            .ok_or(BreakGlassError::NoIncident(id))?)
    }

    /// Escalates the justifications that came due (W2.4), in one transaction.
    /// Due means the timer fired: like an expiry, on the boot clock, so
    /// setting the wall clock back does not postpone it.
    pub(super) fn escalate_overdue(&mut self, due: &[RequestId]) -> Result<()> {
        let now = self.clock.wall();
        let mut overdue = Vec::new();
        for &id in due {
            let Some(req) = self.store.request(id)? else {
                continue;
            };
            if req.follow_up.as_ref().is_some_and(|c| c.owes_escalation()) {
                overdue.push(req);
            }
        }
        if overdue.is_empty() {
            return Ok(());
        }
        self.store.write(|w| -> Result<()> {
            for req in &overdue {
                let due_at = req.follow_up.as_ref().map_or(now, |c| c.due_at);
                w.set_overdue(req.id, now)?;
                w.audit(&AuditEvent {
                    at: now,
                    actor_uid: None,
                    actor: JITD,
                    event: "justification_overdue",
                    request: Some(req.id),
                    detail: json!({"resource": req.resource, "user": req.user, "due_at": due_at}),
                })?;
            }
            Ok(())
        })
    }

    /// Schedules every justification still owed (at start-up).
    pub(super) fn track_justifications(&mut self) -> Result<()> {
        for (grant, due_at) in self.store.unjustified_cases()? {
            self.schedule_justification(grant, due_at);
        }
        Ok(())
    }

    fn schedule_justification(&mut self, grant: RequestId, due_at: UnixTime) {
        let (precise, boot) = (self.clock.wall_precise(), self.clock.boot());
        self.justifications
            .schedule(grant, Due::Justify, due_at, precise, boot);
    }

    /// A break-glass grant and its case, if `who` may see them.
    fn case_of(&self, who: &Person, id: RequestId) -> Result<(Request, bg::Case)> {
        let req = self.load(id)?;
        if !self.viewer(who).may_see(&req) {
            return Err(WorkflowError::NotYours(id).into());
        }
        let case = req
            .follow_up
            .clone()
            .ok_or(BreakGlassError::NotBreakGlass(id))?;
        Ok((req, case))
    }
}
