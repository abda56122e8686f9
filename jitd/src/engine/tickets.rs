//! Ticket checks (W1.11, docs/design.md "Ticket validation") in the
//! engine: which request or approval needs one, what its answer does, and
//! its record. The check itself runs before the engine is called
//! (`crate::tickets`, off the engine: a slow validator holds up nobody
//! else), so the engine is handed its result and records it in the same
//! transaction as the request or the approval it decided.

use serde_json::json;
use std::time::Duration;

use super::{Engine, EngineError, Result, JITD};
use crate::config::Resource;
use crate::core::model::{Request, RequestId, UnixTime};
use crate::core::sanitize;
use crate::core::tickets::{self, Outcome, Stage, TicketAsk, TicketCheck};
use crate::core::workflow::{self, Submission};
use crate::directory::Person;
use crate::store::{AuditEvent, Writer};

/// A request as the requester asks for it.
pub struct NewRequest<'a> {
    pub resource: &'a str,
    pub duration: Duration,
    pub reason: &'a str,
    pub ticket: Option<&'a str>,
    /// A later start (`--start`), if any.
    pub starts_at: Option<UnixTime>,
    /// The validator's answer for `ticket`, where the resource needs one.
    pub ticket_check: Option<TicketCheck>,
}

impl Engine {
    /// What to ask the validator before `who` makes request `sub` for
    /// `resource`: `None` where there is nothing to check (no validator, a
    /// resource that requires no ticket) or where the request will be
    /// refused anyway (no ticket, a requester not eligible or with all the
    /// pending requests allowed, a duration, reason or ticket refused):
    /// nobody makes jitd ask the ticketing system for what it would refuse.
    pub fn request_ticket_ask(
        &self,
        who: &Person,
        resource: &str,
        sub: &Submission<'_>,
    ) -> Option<TicketAsk> {
        let res = self.config.resource(resource)?;
        let ticket = sub.ticket?;
        let refused = !who.matches_any(&res.eligible)
            || self.is_vendor(who)
            || self.check_pending_limit(who).is_err()
            || workflow::validate_submission(&res.name, sub, res.max_duration).is_err();
        if refused {
            return None;
        }
        self.ticket_ask(res, &who.name, ticket, Stage::Request)
    }

    /// What to ask the validator before `who` approves request `id` with
    /// `comment`: `None` where there is nothing to check, or where the
    /// approval will be refused anyway (not theirs to approve).
    pub fn approval_ticket_ask(
        &self,
        who: &Person,
        id: RequestId,
        comment: &str,
    ) -> Result<Option<TicketAsk>> {
        let req = self.load(id)?;
        let now = self.clock.wall();
        if workflow::approve(&req, &self.actor(who, &req), comment, now).is_err() {
            return Ok(None);
        }
        let (Some(res), Some(ticket)) = (self.config.resource(&req.resource), &req.ticket) else {
            return Ok(None);
        };
        Ok(self.ticket_ask(res, &req.user, ticket, Stage::Approval))
    }

    /// Whether `res`'s tickets are checked by a validator.
    pub(super) fn checks_tickets(&self, res: &Resource) -> bool {
        res.require_ticket && self.config.tickets.validator.is_some()
    }

    fn ticket_ask(
        &self,
        res: &Resource,
        requester: &str,
        ticket: &str,
        stage: Stage,
    ) -> Option<TicketAsk> {
        self.checks_tickets(res).then(|| TicketAsk {
            ticket: ticket.to_owned(),
            requester: requester.to_owned(),
            resource: res.name.clone(),
            stage,
        })
    }

    /// The ticket check `res` needs of `ticket` at `stage`, and what it
    /// does: `None` where none is needed.
    pub(super) fn admit_ticket(
        &self,
        res: &Resource,
        ticket: Option<&str>,
        check: Option<TicketCheck>,
        stage: Stage,
    ) -> Result<Option<(TicketCheck, Outcome)>> {
        if !res.require_ticket {
            return Ok(None);
        }
        let Some(ticket) = ticket else {
            // A request from before the resource required a ticket is
            // approved as it was asked.
            return match stage {
                Stage::Request => Err(EngineError::TicketRequired(res.name.clone())),
                Stage::Approval => Ok(None),
            };
        };
        if self.config.tickets.validator.is_none() {
            return Ok(None);
        }
        // The bus edge checks before it calls; a caller that did not has
        // no answer, which is what a validator that is down gives.
        let check = check.filter(|c| c.stage == stage).unwrap_or_else(|| {
            TicketCheck::unavailable("the ticket was not checked", stage, self.clock.wall())
        });
        let outcome = tickets::outcome(&check, self.config.tickets.when_down);
        tracing::info!(
            ticket = %sanitize::for_terminal(ticket),
            verdict = check.verdict.as_str(),
            stage = ?stage,
            "ticket checked"
        );
        Ok(Some((check, outcome)))
    }
}

/// The refusal of a request or an approval over `check` of `ticket`.
pub(super) fn refused(ticket: Option<&str>, check: &TicketCheck) -> EngineError {
    EngineError::TicketRefused {
        ticket: ticket.unwrap_or_default().to_owned(),
        verdict: check.verdict,
        message: check.message.clone(),
    }
}

/// `ticket_checked`, with the validator's answer.
pub(super) fn audit_ticket_check(
    w: &mut Writer<'_>,
    id: RequestId,
    req: &Request,
    check: &TicketCheck,
) -> Result<()> {
    w.audit(&AuditEvent {
        at: check.at,
        actor_uid: None,
        actor: JITD,
        event: "ticket_checked",
        request: Some(id),
        detail: json!({
            "ticket": req.ticket,
            "stage": check.stage,
            "verdict": check.verdict.as_str(),
            "title": check.title,
            "message": check.message,
        }),
    })?;
    Ok(())
}
