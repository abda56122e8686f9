//! A new request, scored and routed from the facts of its resource, its
//! requester's history and the time of day.

use std::time::Duration;

use super::{Engine, Result};
use crate::clock::local_weekday_minute;
use crate::config::Resource;
use crate::core::model::{Kind, Request, Route, State, UnixTime};
use crate::core::risk::{assess, RiskContext};
use crate::core::routing::{route, RouteFacts};
use crate::core::workflow::Submission;
use crate::directory::Person;

/// Recent history that raises risk looks back this far.
const HISTORY_WINDOW_SECS: i64 = 30 * 24 * 3600;

impl Engine {
    fn assess(
        &self,
        who: &Person,
        resource: &Resource,
        duration: Duration,
        now: UnixTime,
    ) -> Result<(crate::core::risk::RiskAssessment, Route)> {
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
            risk,
            state: State::Pending,
            decisions: Vec::new(),
            expires_at: None,
            activate_by: None,
            ended_at: None,
            ended_by: None,
            follow_up: None,
        })
    }
}
