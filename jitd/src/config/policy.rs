//! `[[policy]]` rules and `[policy_limits]` (docs/design.md "Policy
//! rules"): checked here into [`Policies`], ready for evaluation (zones
//! loaded, ticket patterns compiled, rules indexed by resource).

use serde::Deserialize;
use std::collections::BTreeSet;
use std::ops::Range;
use toml::Spanned;

use super::polkit::AccountName;
use super::{GroupName, HumanDuration, Resource};
use crate::core::policy::window::{Hours, Window, ALL_DAYS, DAY_NAMES};
use crate::core::policy::{Action, Policies, Rule, TicketPattern, Told, DEFAULT_RISK_CEILING};

type SpanError = (Range<usize>, String);

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawPolicyLimits {
    risk_ceiling: Spanned<u8>,
}

impl Default for RawPolicyLimits {
    fn default() -> Self {
        RawPolicyLimits {
            risk_ceiling: Spanned::new(0..0, DEFAULT_RISK_CEILING),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRule {
    name: Spanned<String>,
    #[serde(default)]
    users: Vec<AccountName>,
    #[serde(default)]
    groups: Vec<GroupName>,
    oncall: Option<Spanned<String>>,
    resources: Spanned<Vec<Spanned<String>>>,
    max_duration: HumanDuration,
    #[serde(default)]
    days: Vec<Spanned<String>>,
    hours: Option<Spanned<String>>,
    timezone: Option<Spanned<String>>,
    ticket: Option<Spanned<String>>,
    action: Action,
    #[serde(default = "default_notify")]
    notify: Vec<Told>,
}

fn default_notify() -> Vec<Told> {
    vec![Told::Owners, Told::Security]
}

/// The rules in file order. `schedules` are the on-call schedules a rule
/// may name (`[oncall.NAME]`); a rule naming another is refused.
/// `tickets_checked`: a `[tickets]` validator is configured, so a rule
/// approving on a ticket must name resources whose tickets it checks.
pub(super) fn resolve(
    limits: RawPolicyLimits,
    raw: Vec<RawRule>,
    resources: &[Resource],
    schedules: &BTreeSet<String>,
    tickets_checked: bool,
) -> Result<Policies, SpanError> {
    let ceiling = *limits.risk_ceiling.get_ref();
    if !(1..=100).contains(&ceiling) {
        return Err((
            limits.risk_ceiling.span(),
            "[policy_limits] risk_ceiling is between 1 and 100".into(),
        ));
    }
    let mut policies = Policies::new(ceiling);
    for r in raw {
        if tickets_checked {
            check_ticket_checked(&r, resources)?;
        }
        let rule = resolve_rule(r, resources, schedules, &mut policies)?;
        policies.push(rule);
    }
    policies.prepare();
    Ok(policies)
}

/// A rule with a ticket pattern names only resources whose tickets the
/// validator checks (`require_ticket`): a pattern alone is a shape, and a
/// made-up reference of that shape would otherwise be approved at once.
fn check_ticket_checked(r: &RawRule, resources: &[Resource]) -> Result<(), SpanError> {
    let Some(ticket) = &r.ticket else {
        return Ok(());
    };
    let unchecked = r.resources.get_ref().iter().find(|name| {
        resources
            .iter()
            .any(|res| res.name == *name.get_ref() && !res.require_ticket)
    });
    match unchecked {
        None => Ok(()),
        Some(name) => Err((
            ticket.span(),
            format!(
                "policy '{}' approves on a ticket, but resource '{}' does not have its tickets \
                 checked by [tickets]: set require_ticket = true on it",
                r.name.get_ref(),
                name.get_ref()
            ),
        )),
    }
}

fn resolve_rule(
    r: RawRule,
    resources: &[Resource],
    schedules: &BTreeSet<String>,
    policies: &mut Policies,
) -> Result<Rule, SpanError> {
    let name = r.name.get_ref();
    let at_name = |message: String| (r.name.span(), message);
    if !super::valid_resource_name(name) {
        return Err(at_name(format!(
            "policy name '{name}' must be 1-64 characters of a-z, 0-9, '-', '_' or '.'"
        )));
    }
    // Unique: the audit trail and `show` name a rule by its name.
    if policies.rule(name).is_some() {
        return Err(at_name(format!("policy '{name}' is defined twice")));
    }
    if let Some(schedule) = &r.oncall {
        if !schedules.contains(schedule.get_ref()) {
            return Err((
                schedule.span(),
                format!(
                    "policy '{name}': no on-call schedule named '{}'",
                    schedule.get_ref()
                ),
            ));
        }
    }
    if r.users.is_empty() && r.groups.is_empty() && r.oncall.is_none() {
        return Err(at_name(format!(
            "policy '{name}' names nobody: give users, groups or oncall"
        )));
    }
    if r.resources.get_ref().is_empty() {
        return Err((
            r.resources.span(),
            format!("policy '{name}' names no resource"),
        ));
    }
    let mut rule_resources: Vec<String> = Vec::new();
    for res in r.resources.get_ref() {
        let at = |message: String| (res.span(), message);
        let Some(resource) = resources.iter().find(|x| x.name == *res.get_ref()) else {
            return Err(at(format!(
                "policy '{name}': resource '{}' is not a [[resource]]",
                res.get_ref()
            )));
        };
        if rule_resources.contains(&resource.name) {
            return Err(at(format!(
                "policy '{name}': resource '{}' is listed twice",
                resource.name
            )));
        }
        // Vendors' access is approved as a whole by their sponsor's
        // manager and security (W4): never by a rule.
        if resource.vendors {
            return Err(at(format!(
                "policy '{name}': resource '{}' is for vendors, which no rule may pre-authorize",
                resource.name
            )));
        }
        if r.action == Action::Lower && resource.owners.is_empty() {
            return Err(at(format!(
                "policy '{name}' lowers dual to owner, but resource '{}' has no owners: \
                 its requests would stay dual",
                resource.name
            )));
        }
        rule_resources.push(resource.name.clone());
    }
    let window = resolve_window(name, &r, policies)?;
    let ticket = r
        .ticket
        .as_ref()
        .map(|t| {
            TicketPattern::new(t.get_ref()).map_err(|e| {
                (
                    t.span(),
                    format!("policy '{name}': ticket is not a valid pattern: {e}"),
                )
            })
        })
        .transpose()?;
    Ok(Rule {
        name: name.clone(),
        users: r.users.into_iter().map(|u| u.0).collect(),
        groups: r.groups.into_iter().map(|g| g.0).collect(),
        oncall: r.oncall.map(Spanned::into_inner),
        resources: rule_resources,
        max_duration: r.max_duration.0,
        window,
        ticket,
        action: r.action,
        notify: r.notify,
    })
}

/// `days` and `hours` in `timezone`, which they need (and which means
/// nothing without them).
fn resolve_window(
    name: &str,
    r: &RawRule,
    policies: &mut Policies,
) -> Result<Option<Window>, SpanError> {
    let mut days = 0u8;
    for day in &r.days {
        let Some(i) = DAY_NAMES.iter().position(|d| d == day.get_ref()) else {
            return Err((
                day.span(),
                format!(
                    "policy '{name}': '{}' is not a day; use {}",
                    day.get_ref(),
                    DAY_NAMES.join(", ")
                ),
            ));
        };
        if days & (1 << i) != 0 {
            return Err((
                day.span(),
                format!("policy '{name}': day '{}' is listed twice", day.get_ref()),
            ));
        }
        days |= 1 << i;
    }
    let hours = r
        .hours
        .as_ref()
        .map(|h| {
            Hours::parse(h.get_ref()).ok_or_else(|| {
                (
                    h.span(),
                    format!(
                        "policy '{name}': '{}' is not a span like \"08:00-18:00\" or \"22:00-06:00\"",
                        h.get_ref()
                    ),
                )
            })
        })
        .transpose()?;
    match (&r.timezone, days == 0 && hours.is_none()) {
        (None, true) => Ok(None),
        (None, false) => Err((
            r.name.span(),
            format!(
                "policy '{name}' has days or hours: give its timezone (e.g. \"Europe/Berlin\")"
            ),
        )),
        (Some(tz), true) => Err((
            tz.span(),
            format!("policy '{name}': timezone without days or hours means nothing"),
        )),
        (Some(tz), false) => {
            let zone = jiff::tz::TimeZone::get(tz.get_ref()).map_err(|e| {
                (
                    tz.span(),
                    format!(
                        "policy '{name}': unknown time zone '{}' ({e}); use an IANA name such as \"Europe/Berlin\"",
                        tz.get_ref()
                    ),
                )
            })?;
            Ok(Some(Window {
                days: if days == 0 { ALL_DAYS } else { days },
                hours,
                zone: policies.zone(tz.get_ref(), zone),
            }))
        }
    }
}

#[cfg(test)]
mod tests;
