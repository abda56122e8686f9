//! A new request, scored and routed from the facts of its resource, its
//! requester's history and the time of day; then (not for break-glass)
//! the policy rules (W1.10) may approve it at once or lower its route.

use std::time::Duration;

use super::{Engine, Result};
use crate::clock::local_weekday_minute;
use crate::config::Resource;
use crate::core::model::{Kind, Request, Route, State, UnixTime};
use crate::core::policy::{Applied, Ask};
use crate::core::risk::{assess, RiskAssessment, RiskContext, OFF_HOURS};
use crate::core::routing::{route, RouteFacts};
use crate::core::workflow::Submission;
use crate::directory::{GroupsOf, Person};

/// Recent history that raises risk looks back this far.
const HISTORY_WINDOW_SECS: i64 = 30 * 24 * 3600;

impl Engine {
    fn assess(
        &self,
        who: &Person,
        resource: &Resource,
        duration: Duration,
        now: UnixTime,
    ) -> Result<(RiskAssessment, Route)> {
        let history = self
            .store
            .history(who.uid, &resource.name, now - HISTORY_WINDOW_SECS)?;
        let (weekday, minute) = local_weekday_minute(now);
        let ctx = RiskContext {
            sensitivity: resource.sensitivity,
            privileged: resource.privileged,
            production: resource.is_production(),
            duration,
            off_hours: !self.config.risk.business_hours.contains(weekday, minute),
            first_request: !history.held_before,
            recent_denials: history.recent_denials,
            recent_break_glass: history.recent_break_glass,
        };
        let risk = assess(&ctx, &self.config.risk.weights);
        let chosen = route(
            RouteFacts {
                score: risk.score,
                duration,
                privileged: resource.privileged,
                production: resource.is_production(),
                has_owners: !resource.owners.is_empty(),
            },
            self.config.risk.thresholds,
        );
        Ok((risk, chosen))
    }

    /// What policy rules look at in `req` (drafted for `who`, of `res`):
    /// the same facts for `request` and for `policy explain`.
    pub(super) fn policy_ask<'a>(&self, who: &Person, res: &Resource, req: &'a Request) -> Ask<'a> {
        Ask {
            user: &req.user,
            resource: &req.resource,
            duration: req.duration,
            ticket: req.ticket.as_deref(),
            at: req.requested_at,
            route: req.route,
            has_owners: !res.owners.is_empty(),
            score_in_hours: req.risk.score_without(OFF_HOURS),
            extension: matches!(req.kind, Kind::Extension { .. }),
            vendor: self.is_vendor(who),
            scheduled: req.starts_at.is_some(),
        }
    }

    /// The first policy rule that applies to `req` (a draft, routed by
    /// risk) gives its route and is named in it. Break-glass never comes
    /// here: an emergency grant is taken, never pre-authorized.
    pub(super) fn apply_policy(&self, who: &Person, res: &Resource, req: &mut Request) {
        let ask = self.policy_ask(who, res, req);
        let groups = GroupsOf::new(who);
        let Some(Applied { rule, route }) =
            self.config
                .policy
                .decide(&ask, &groups, self.rosters.as_ref())
        else {
            return;
        };
        req.route = route;
        req.policy = Some(rule.name.clone());
    }

    /// A new pending request, scored and routed.
    pub(super) fn draft(
        &self,
        who: &Person,
        res: &Resource,
        kind: Kind,
        sub: &Submission<'_>,
        now: UnixTime,
    ) -> Result<Request> {
        let (risk, route) = self.assess(who, res, sub.duration, now)?;
        Ok(Request {
            id: 0,
            kind,
            uid: who.uid,
            user: who.name.clone(),
            resource: res.name.clone(),
            duration: sub.duration,
            reason: sub.reason.to_owned(),
            ticket: sub.ticket.map(str::to_owned),
            requested_at: now,
            starts_at: None,
            route,
            policy: None,
            risk,
            state: State::Pending,
            decisions: Vec::new(),
            expires_at: None,
            activate_by: None,
            ended_at: None,
            ended_by: None,
            ticket_check: None,
            follow_up: None,
        })
    }
}
