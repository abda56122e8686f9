//! `policy explain`: what the rules would decide for a request made now,
//! by the same facts and evaluation as `submit`'s draft.

use std::time::Duration;

use super::{Engine, Result};
use crate::api::{rfc3339, PolicyExplanationView, PolicyRuleView};
use crate::core::model::Kind;
use crate::core::policy::Explanation;
use crate::core::workflow::{self, Submission, WorkflowError};
use crate::directory::{GroupsOf, Person};

impl Engine {
    /// Which rule would decide `user`'s request (the caller's when `None`)
    /// for `resource` now, and why. Others' only for root, security and
    /// auditors: the rules say who is pre-authorized when.
    pub fn explain_policy(
        &self,
        who: &Person,
        user: Option<&str>,
        resource: &str,
        duration: Duration,
        ticket: Option<&str>,
    ) -> Result<PolicyExplanationView> {
        let subject = match user {
            Some(name) if name != who.name => {
                self.require_sees_all(who)?;
                Person::lookup_name(name)?
            }
            _ => who.clone(),
        };
        let res = self.resource(resource)?;
        // What `submit` refuses before any rule is looked at.
        if !subject.matches_any(&res.eligible) || self.is_vendor(&subject) {
            return Err(WorkflowError::NotEligible(res.name.clone()).into());
        }
        let sub = Submission {
            duration,
            // No reason is given to explain: any would do for the checks.
            reason: "-",
            ticket,
        };
        workflow::validate_submission(&res.name, &sub, res.max_duration)?;
        let draft = self.draft(&subject, res, Kind::Grant, &sub, self.clock.wall())?;
        let ask = self.policy_ask(&subject, res, &draft);
        let policies = &self.config.policy;
        let Explanation {
            skipped,
            rules,
            applied,
        } = policies.explain(&ask, &GroupsOf::new(&subject), self.rosters.as_ref());
        Ok(PolicyExplanationView {
            user: subject.name.clone(),
            resource: res.name.clone(),
            duration_secs: duration.as_secs(),
            ticket: ticket.map(str::to_owned),
            at: rfc3339(draft.requested_at),
            score_in_hours: ask.score_in_hours,
            risk: draft.risk.clone(),
            risk_ceiling: policies.risk_ceiling,
            routed: draft.route.as_str().into(),
            route: applied.map_or(draft.route, |a| a.route).as_str().into(),
            policy: applied.map(|a| a.rule.name.clone()),
            skipped: skipped.map(|unmet| policies.describe(unmet, None, &ask)),
            rules: rules
                .into_iter()
                .map(|(rule, unmet)| PolicyRuleView {
                    name: rule.name.clone(),
                    action: rule.action.as_str().into(),
                    applies: unmet.is_none(),
                    unmet: unmet.map(|u| policies.describe(u, Some(rule), &ask)),
                })
                .collect(),
        })
    }
}
