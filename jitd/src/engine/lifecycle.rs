//! A request's life: submitted (a grant, or an extension of one), approved
//! or denied, revoked or withdrawn; and what the index, the deadlines and
//! the bus learn after each commit.

use serde_json::json;
use std::time::Duration;

use super::tickets::{audit_ticket_check, refused, NewRequest};
use super::transitions::{
    apply_extension, audit_policy, audit_submission, end_vendors, lapse_all, policy_approver,
    record_decision,
};
use super::{Engine, EngineError, Event, Result};
use crate::core::model::{window, Kind, Request, RequestId, Route, State, UnixTime};
use crate::core::schedule;
use crate::core::tickets::{self, Stage, TicketCheck};
use crate::core::workflow::{self, Approved, Submission, WorkflowError};
use crate::directory::Person;
use crate::store::AuditEvent;

impl Engine {
    /// Refuses a new pending request from someone who has as many as the
    /// limit allows: each one notifies approvers (threat T30).
    pub(super) fn check_pending_limit(&self, who: &Person) -> Result<()> {
        let limit = self.config.limits.pending_per_user;
        let pending = self
            .grants
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .pending_of(who.uid);
        if !who.is_root() && pending >= limit as usize {
            return Err(EngineError::TooManyPending { limit });
        }
        Ok(())
    }

    pub fn submit(
        &mut self,
        who: &Person,
        resource: &str,
        duration: Duration,
        reason: &str,
        ticket: Option<&str>,
    ) -> Result<(Request, Vec<Event>)> {
        self.submit_at(who, resource, duration, reason, ticket, None)
    }

    /// A request for a grant usable from `starts_at` (a maintenance
    /// window) for `duration`: approved ahead of time, it waits until
    /// then. Without a start: from its approval.
    pub fn submit_at(
        &mut self,
        who: &Person,
        resource: &str,
        duration: Duration,
        reason: &str,
        ticket: Option<&str>,
        starts_at: Option<UnixTime>,
    ) -> Result<(Request, Vec<Event>)> {
        self.submit_new(
            who,
            NewRequest {
                resource,
                duration,
                reason,
                ticket,
                starts_at,
                ticket_check: None,
            },
        )
    }

    /// A new request, with the validator's check of its ticket where its
    /// resource requires one ([`Engine::ticket_ask`]).
    pub fn submit_new(
        &mut self,
        who: &Person,
        new: NewRequest<'_>,
    ) -> Result<(Request, Vec<Event>)> {
        let NewRequest {
            resource,
            duration,
            reason,
            ticket,
            starts_at,
            ticket_check,
        } = new;
        let res = self.resource(resource)?.clone();
        if !who.matches_any(&res.eligible) || self.is_vendor(who) {
            return Err(WorkflowError::NotEligible(res.name).into());
        }
        self.check_pending_limit(who)?;
        workflow::validate_submission(
            &res.name,
            &Submission {
                duration,
                reason,
                ticket,
            },
            res.max_duration,
        )?;
        let admitted = self.admit_ticket(&res, ticket, ticket_check, Stage::Request)?;
        if let Some((check, tickets::Outcome::Refuse)) = &admitted {
            return Err(refused(ticket, check));
        }
        let now = self.clock.wall();
        let within = self.config.limits.start_within.0;
        let starts_at = starts_at
            .map(|at| schedule::check_start(at, now, within))
            .transpose()?;
        // A grant starting later may follow one held now: its start waits
        // for what holds it up then.
        if schedule::starts_later(window(starts_at, duration), now).is_none() {
            if let Some((id, _)) = self.active_grant(who.uid, &res.name, now) {
                return Err(EngineError::AlreadyActive {
                    id,
                    resource: res.name,
                });
            }
            self.check_exclusive(who.uid, &res.name)?;
        }
        let sub = Submission {
            duration,
            reason,
            ticket,
        };
        let mut req = self.draft(who, &res, Kind::Grant, &sub, now)?;
        req.starts_at = starts_at;
        // A ticket nobody could check is for people to judge: no rule
        // approves or lowers on it, and what risk approves goes to people.
        match &admitted {
            Some((check, tickets::Outcome::HumanOnly)) => {
                req.route = tickets::human_route(req.route, !res.owners.is_empty());
                req.ticket_check = Some(check.clone());
            }
            Some((check, _)) => {
                self.apply_policy(who, &res, &mut req);
                req.ticket_check = Some(check.clone());
            }
            None => self.apply_policy(who, &res, &mut req),
        }
        // Approved at once: by risk (auto), or by a policy rule.
        let approver = match (req.route, &req.policy) {
            (Route::Auto, _) => Some("policy".to_owned()),
            (Route::Policy, Some(rule)) => Some(policy_approver(rule)),
            _ => None,
        };
        let rule = req
            .policy
            .as_deref()
            .and_then(|n| self.config.policy.rule(n));
        let start = self.start_of(&req, now)?;
        req.id = self.store.write(|w| -> Result<RequestId> {
            let id = w.insert_request(&req)?;
            audit_submission(w, who, id, &req, "requested")?;
            if let Some((check, _)) = &admitted {
                audit_ticket_check(w, id, &req, check)?;
            }
            if let Some(rule) = rule {
                audit_policy(w, id, &req, rule)?;
            }
            if let Some(approver) = &approver {
                start.write(w, id, &req, now, approver)?;
            }
            Ok(id)
        })?;
        let mut events = vec![submitted(&req)];
        if approver.is_some() {
            req = self.load(req.id)?;
            events.extend(self.after_start(&req));
        } else {
            self.track(&req.head());
        }
        Ok((req, events))
    }

    pub fn extend(
        &mut self,
        who: &Person,
        grant_id: RequestId,
        duration: Duration,
        reason: &str,
    ) -> Result<(Request, Vec<Event>)> {
        self.extend_as(who, None, grant_id, duration, reason)
    }

    /// An extension asked from inside grant `grant_id`'s own sessions (its
    /// cgroup, as the bus edge checked): by root in a recorded shell, or by
    /// the managed account in a session as it, not by the holder's uid. It
    /// is the holder's request, routed like any other (the holder cannot
    /// approve it); the audit trail also names who asked.
    pub fn extend_from_session(
        &mut self,
        asker: &Person,
        grant_id: RequestId,
        duration: Duration,
        reason: &str,
    ) -> Result<(Request, Vec<Event>)> {
        let grant = self.load(grant_id)?;
        if grant.uid == asker.uid {
            return self.extend(asker, grant_id, duration, reason);
        }
        let holder = Person::lookup(grant.uid)?;
        self.extend_as(&holder, Some(asker), grant_id, duration, reason)
    }

    fn extend_as(
        &mut self,
        who: &Person,
        asker: Option<&Person>,
        grant_id: RequestId,
        duration: Duration,
        reason: &str,
    ) -> Result<(Request, Vec<Event>)> {
        let grant = self.load(grant_id)?;
        workflow::check_extendable(&grant, &self.actor(who, &grant))?;
        self.check_pending_limit(who)?;
        let res = self.resource(&grant.resource)?.clone();
        workflow::validate_reason(reason)?;
        if duration < Duration::from_secs(1) {
            return Err(WorkflowError::ZeroDuration.into());
        }
        let now = self.clock.wall();
        let current = grant.expires_at.unwrap_or(now);
        let reach = workflow::extension_reach(current, duration, now);
        workflow::validate_submission(
            &res.name,
            &Submission {
                duration: reach,
                reason,
                ticket: None,
            },
            res.max_duration,
        )?;
        if let Some(pending) = self.store.pending_extensions(grant_id)?.first() {
            return Err(WorkflowError::ExtensionPending {
                id: grant_id,
                pending: *pending,
            }
            .into());
        }
        let sub = Submission {
            duration,
            reason,
            ticket: grant.ticket.as_deref(),
        };
        let mut req = self.draft(who, &res, Kind::Extension { of: grant_id }, &sub, now)?;
        // Never decided by a rule (core::policy says why); asked all the same.
        self.apply_policy(who, &res, &mut req);
        // Its ticket is checked again at its approval, which risk alone
        // would skip: a person approves it.
        if self.checks_tickets(&res) {
            req.route = tickets::human_route(req.route, !res.owners.is_empty());
        }
        let auto = req.route == Route::Auto;
        let cap = res.max_duration;
        req.id = self.store.write(|w| -> Result<RequestId> {
            let id = w.insert_request(&req)?;
            audit_submission(w, who, id, &req, "extension_requested")?;
            if let Some(asker) = asker {
                w.audit(&AuditEvent {
                    at: req.requested_at,
                    actor_uid: Some(asker.uid),
                    actor: &asker.name,
                    event: "extension_asked_in_session",
                    request: Some(id),
                    detail: json!({"grant": grant_id, "holder": who.name}),
                })?;
            }
            if auto {
                apply_extension(w, id, &req, &grant, now, cap, "policy")?;
            }
            Ok(id)
        })?;
        let mut events = vec![submitted(&req)];
        if auto {
            events.extend(self.after_extension(req.id, grant_id)?);
        } else {
            self.track(&req.head());
        }
        let req = self.load(req.id)?;
        Ok((req, events))
    }

    /// `who`'s approval of request `id`; `code` is their second factor's,
    /// required where the resource says so (`require_mfa`).
    pub fn approve(
        &mut self,
        who: &Person,
        id: RequestId,
        comment: &str,
        code: Option<&str>,
    ) -> Result<(Request, Vec<Event>)> {
        self.approve_checked(who, id, comment, code, None)
    }

    /// [`Engine::approve`], with the validator's check of the request's
    /// ticket made for this approval where its resource requires one
    /// ([`Engine::approval_ticket_ask`]).
    pub fn approve_checked(
        &mut self,
        who: &Person,
        id: RequestId,
        comment: &str,
        code: Option<&str>,
        ticket_check: Option<TicketCheck>,
    ) -> Result<(Request, Vec<Event>)> {
        let req = self.load(id)?;
        let now = self.clock.wall();
        workflow::approve(&req, &self.actor(who, &req), comment, now)?;
        self.step_up(who, &req.resource, code, &format!("approval of {id}"))?;
        let res = self.resource(&req.resource)?.clone();
        let recheck =
            self.admit_ticket(&res, req.ticket.as_deref(), ticket_check, Stage::Approval)?;
        if let Some((check, tickets::Outcome::Refuse)) = &recheck {
            // On record, though nothing else changes: approvers see why.
            self.store.write(|w| -> Result<()> {
                w.set_ticket_check(id, check)?;
                audit_ticket_check(w, id, &req, check)
            })?;
            return Err(refused(req.ticket.as_deref(), check));
        }
        let recheck = recheck.map(|(check, _)| check);
        // Checked again: the code may have taken a moment.
        let now = self.clock.wall();
        let outcome = workflow::approve(&req, &self.actor(who, &req), comment, now)?;
        let parent = match req.kind {
            Kind::Extension { of } => Some(self.load(of)?),
            Kind::Grant => None,
        };
        let cap = self
            .resource(&req.resource)
            .map(|r| r.max_duration)
            .unwrap_or_default();
        let complete = matches!(outcome, Approved::Complete(_));
        let start = self.start_of(&req, now)?;
        // A grant starting later is checked at its start.
        if complete && parent.is_none() && !start.is_later() {
            self.check_exclusive(req.uid, &req.resource)?;
        }
        self.store.write(|w| -> Result<()> {
            let decision = match &outcome {
                Approved::Partial(d) | Approved::Complete(d) => d,
            };
            if let Some(check) = &recheck {
                w.set_ticket_check(id, check)?;
                audit_ticket_check(w, id, &req, check)?;
            }
            record_decision(w, who, id, decision, "approved")?;
            if complete {
                match &parent {
                    None => start.write(w, id, &req, now, &who.name)?,
                    Some(grant) => apply_extension(w, id, &req, grant, now, cap, &who.name)?,
                }
            }
            Ok(())
        })?;
        let events = if !complete {
            Vec::new()
        } else if let Some(grant) = parent {
            self.deadlines.cancel(id);
            self.after_extension(id, grant.id)?
        } else {
            let granted = self.load(id)?;
            let events = self.after_start(&granted);
            return Ok((granted, events));
        };
        Ok((self.load(id)?, events))
    }

    pub fn deny(
        &mut self,
        who: &Person,
        id: RequestId,
        comment: &str,
    ) -> Result<(Request, Vec<Event>)> {
        let req = self.load(id)?;
        let now = self.clock.wall();
        let decision = workflow::deny(&req, &self.actor(who, &req), comment, now)?;
        self.store.write(|w| -> Result<()> {
            record_decision(w, who, id, &decision, "denied")?;
            w.set_state(id, State::Denied, None, Some((now, &who.name)))?;
            Ok(())
        })?;
        let req = self.load(id)?;
        self.untrack(&req.head());
        Ok((
            req,
            vec![Event::Decided {
                id,
                state: State::Denied,
            }],
        ))
    }

    pub fn revoke(
        &mut self,
        who: &Person,
        id: RequestId,
        comment: &str,
    ) -> Result<(Request, Vec<Event>)> {
        let req = self.load(id)?;
        workflow::revoke(&req, &self.actor(who, &req))?;
        let now = self.clock.wall();
        let event = if req.state == State::Pending {
            "withdrawn"
        } else {
            "revoked"
        };
        let extensions = self.store.pending_extensions(id)?;
        let vendors_ended = self.vendors_ended_by(&[id])?;
        self.store.write(|w| -> Result<()> {
            w.set_state(id, State::Revoked, req.expires_at, Some((now, &who.name)))?;
            w.audit(&AuditEvent {
                at: now,
                actor_uid: Some(who.uid),
                actor: &who.name,
                event,
                request: Some(id),
                detail: json!({"comment": comment}),
            })?;
            lapse_all(w, &extensions, now, "grant revoked")?;
            end_vendors(w, &vendors_ended, State::Revoked, now, &who.name)
        })?;
        let mut events = self.after_end(&req, State::Revoked, &extensions);
        events.extend(self.after_vendors_ended(&vendors_ended)?);
        Ok((self.load(id)?, events))
    }

    pub(super) fn after_activation(&mut self, req: &Request) -> Vec<Event> {
        self.track(&req.head());
        let now = self.clock.wall();
        self.schedule_unused(req, now);
        vec![
            Event::Decided {
                id: req.id,
                state: State::Active,
            },
            Event::Activated {
                id: req.id,
                uid: req.uid,
                resource: req.resource.clone(),
                expires_at: req.expires_at.unwrap_or_default(),
            },
        ]
    }

    fn after_extension(&mut self, ext: RequestId, grant: RequestId) -> Result<Vec<Event>> {
        let grant = self.load(grant)?;
        self.track(&grant.head());
        let expires_at = grant.expires_at.unwrap_or_default();
        Ok(vec![
            Event::Decided {
                id: ext,
                state: State::Applied,
            },
            Event::Extended {
                id: grant.id,
                expires_at,
            },
        ])
    }

    pub(super) fn after_end(
        &mut self,
        req: &Request,
        state: State,
        lapsed: &[RequestId],
    ) -> Vec<Event> {
        self.untrack(&req.head());
        self.unused.cancel(req.id);
        let mut events = vec![Event::Decided { id: req.id, state }];
        if req.state == State::Active {
            events.push(Event::Ended {
                id: req.id,
                uid: req.uid,
                user: req.user.clone(),
                resource: req.resource.clone(),
                reason: state,
            });
        }
        for ext in lapsed {
            self.deadlines.cancel(*ext);
            events.push(Event::Decided {
                id: *ext,
                state: State::Lapsed,
            });
        }
        events
    }
}

pub(super) fn submitted(req: &Request) -> Event {
    Event::Submitted {
        id: req.id,
        uid: req.uid,
        resource: req.resource.clone(),
        route: req.route.as_str(),
    }
}
