//! Pre-authorized policy rules (W1.10, docs/design.md "Policy rules"):
//! which request needs no person's approval, or one fewer.
//!
//! The config is read once into [`Policies`] (rules indexed by resource,
//! time zones interned, ticket patterns compiled); each request is then
//! evaluated with the facts the engine gathered. The first rule, in file
//! order, whose every condition holds decides; [`Policies::decide`] and
//! [`Policies::explain`] walk the same code, so `jitctl policy explain`
//! says exactly what `request` then does. No I/O: group membership and
//! on-call shifts are asked of the caller through [`Membership`] and
//! [`OnCall`] (jitd's `oncall::Rosters`), the time is an argument.

pub mod window;

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;

use super::model::{Route, UnixTime};
use super::oncall::OnCall;
use window::{Local, Window};

/// The requester's groups, as the caller looks them up (once per group
/// and request: NSS may be slow, and many rules name the same groups).
pub trait Membership {
    fn is_member(&self, group: &str) -> bool;
}

/// What a rule does when it applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Granted at once, route `policy`.
    Approve,
    /// One approval step fewer: dual becomes owner (a resource with
    /// owners); any other route stays as it is, and the rule does not apply.
    Lower,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Approve => "approve",
            Action::Lower => "lower",
        }
    }
}

/// Who hears of a grant a rule approved (besides the audit trail).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Told {
    /// The resource's owners (and its `notify` targets).
    Owners,
    Security,
}

impl Told {
    pub fn as_str(self) -> &'static str {
        match self {
            Told::Owners => "owners",
            Told::Security => "security",
        }
    }
}

/// A ticket pattern: the whole reference must match.
#[derive(Clone, Debug)]
pub struct TicketPattern {
    /// As the config wrote it (shown in explanations).
    pub source: String,
    regex: regex::Regex,
}

impl TicketPattern {
    /// `source` anchored at both ends; bounded in size (a pattern is
    /// admin-written, but a huge one would slow every request).
    pub fn new(source: &str) -> Result<TicketPattern, regex::Error> {
        let regex = regex::RegexBuilder::new(&format!("^(?:{source})$"))
            .size_limit(1 << 20)
            .build()?;
        Ok(TicketPattern {
            source: source.to_owned(),
            regex,
        })
    }

    fn matches(&self, ticket: &str) -> bool {
        self.regex.is_match(ticket)
    }
}

/// One `[[policy]]` rule, checked at config load.
#[derive(Clone, Debug)]
pub struct Rule {
    pub name: String,
    pub users: Vec<String>,
    pub groups: Vec<String>,
    /// An on-call schedule whose current shift's holders the rule names.
    pub oncall: Option<String>,
    pub resources: Vec<String>,
    pub max_duration: Duration,
    pub window: Option<Window>,
    pub ticket: Option<TicketPattern>,
    pub action: Action,
    pub notify: Vec<Told>,
}

/// The facts of one request that rules look at.
#[derive(Clone, Copy, Debug)]
pub struct Ask<'a> {
    pub user: &'a str,
    pub resource: &'a str,
    pub duration: Duration,
    pub ticket: Option<&'a str>,
    pub at: UnixTime,
    /// The route risk chose (auto, owner or dual).
    pub route: Route,
    pub has_owners: bool,
    /// The risk score without the off-hours factor: the night the on-call
    /// rule exists for must not push it over the ceiling.
    pub score_in_hours: u8,
    /// An extension: never pre-authorized (a rule's `max_duration` bounds
    /// the grant it made, and extensions would stretch it).
    pub extension: bool,
    /// The requester is a vendor account: never pre-authorized (W4).
    pub vendor: bool,
    /// The request names a later start (`--start`): never pre-authorized,
    /// as a rule's window and on-call shift are checked at `at`, the time
    /// of the request, not at the grant's start.
    pub scheduled: bool,
}

/// Why no rule was looked at, or why one did not apply: the first unmet
/// condition, in the order they are checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unmet {
    Extension,
    Vendor,
    Scheduled,
    /// Risk routes it `auto`: nobody waits, nothing to pre-authorize.
    Auto,
    RiskCeiling {
        score: u8,
        ceiling: u8,
    },
    Who,
    Duration {
        max: Duration,
    },
    Window {
        now: Local,
    },
    NoTicket,
    Ticket,
    /// A lowering rule, and nothing to lower.
    CannotLower {
        route: Route,
    },
}

/// The rule that applies and the route it gives.
#[derive(Clone, Copy, Debug)]
pub struct Applied<'a> {
    pub rule: &'a Rule,
    pub route: Route,
}

/// Every rule naming the resource, in order, up to the one that applies.
#[derive(Debug)]
pub struct Explanation<'a> {
    /// Set when no rule was looked at.
    pub skipped: Option<Unmet>,
    /// Each rule with the first condition it did not meet (`None`: it applies).
    pub rules: Vec<(&'a Rule, Option<Unmet>)>,
    pub applied: Option<Applied<'a>>,
}

#[derive(Clone, Debug, Default)]
struct Interned {
    groups: Vec<usize>,
    ticket: Option<usize>,
}

/// What one request has found out so far, by interned index: each zone's
/// local time, each group's membership, each pattern's match.
struct Found {
    local: Vec<Option<Local>>,
    member: Vec<Option<bool>>,
    ticket: Vec<Option<bool>>,
}

/// Every rule, ready for evaluation.
#[derive(Clone, Debug, Default)]
pub struct Policies {
    rules: Vec<Rule>,
    /// Interned zones (rules share them): each request reads the local
    /// time once per zone.
    zones: Vec<(String, jiff::tz::TimeZone)>,
    /// Rule indexes by resource, in file order.
    by_resource: HashMap<String, Vec<usize>>,
    /// Each rule's groups and ticket pattern as indexes into `groups` and
    /// `patterns` (by rule index): a request asks about each distinct
    /// group and pattern once, however many rules name it.
    conditions: Vec<Interned>,
    groups: Vec<String>,
    patterns: Vec<TicketPattern>,
    /// Every pattern in one automaton, matched once per request: a
    /// thousand rules with patterns of their own cost one match, not a
    /// thousand. Built by [`Policies::prepare`]; `None` if too large, and
    /// each pattern is then matched on its own.
    pattern_set: std::sync::OnceLock<Option<regex::RegexSet>>,
    /// A rule never applies to a request whose score (off-hours left out)
    /// is at least this.
    pub risk_ceiling: u8,
}

pub const DEFAULT_RISK_CEILING: u8 = 70;

/// Compiled size allowed for all ticket patterns together (each alone is
/// held to 1 MiB).
const PATTERN_SET_LIMIT: usize = 64 << 20;

impl Policies {
    pub fn new(risk_ceiling: u8) -> Policies {
        Policies {
            risk_ceiling,
            ..Policies::default()
        }
    }

    /// The index of `name`'s zone, interned.
    pub fn zone(&mut self, name: &str, tz: jiff::tz::TimeZone) -> usize {
        intern(
            &mut self.zones,
            |(n, _)| n == name,
            || (name.to_owned(), tz),
        )
    }

    /// Appends a rule (after every rule already added).
    pub fn push(&mut self, rule: Rule) {
        let index = self.rules.len();
        for resource in &rule.resources {
            self.by_resource
                .entry(resource.clone())
                .or_default()
                .push(index);
        }
        let groups = rule
            .groups
            .iter()
            .map(|g| intern(&mut self.groups, |x| x == g, || g.clone()))
            .collect();
        let ticket = rule
            .ticket
            .as_ref()
            .map(|t| intern(&mut self.patterns, |x| x.source == t.source, || t.clone()));
        self.conditions.push(Interned { groups, ticket });
        self.rules.push(rule);
        self.pattern_set = std::sync::OnceLock::new();
    }

    /// Compiles what evaluation shares between rules; call once every rule
    /// is pushed (evaluation compiles it at first use otherwise).
    pub fn prepare(&self) {
        self.pattern_set();
    }

    fn pattern_set(&self) -> Option<&regex::RegexSet> {
        self.pattern_set
            .get_or_init(|| {
                regex::RegexSetBuilder::new(self.patterns.iter().map(|p| p.regex.as_str()))
                    .size_limit(PATTERN_SET_LIMIT)
                    .build()
                    .ok()
            })
            .as_ref()
    }

    /// Whether `ticket` matches each pattern, all at once where the set
    /// could be built.
    fn match_all_patterns(&self, ticket: &str, matched: &mut [Option<bool>]) {
        let Some(set) = self.pattern_set() else {
            return;
        };
        let hits = set.matches(ticket);
        for (i, m) in matched.iter_mut().enumerate() {
            *m = Some(hits.matched(i));
        }
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn rule(&self, name: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.name == name)
    }

    pub fn zone_name(&self, zone: usize) -> &str {
        self.zones.get(zone).map_or("", |(n, _)| n.as_str())
    }

    /// The rule that decides `ask`, if any: the first that applies.
    pub fn decide(
        &self,
        ask: &Ask<'_>,
        groups: &dyn Membership,
        on_call: &dyn OnCall,
    ) -> Option<Applied<'_>> {
        self.walk(ask, groups, on_call, &mut |_, _| ())
            .ok()
            .flatten()
    }

    /// What [`Policies::decide`] decides, and why each rule before the one
    /// that applies (or every rule naming the resource) did not.
    pub fn explain(
        &self,
        ask: &Ask<'_>,
        groups: &dyn Membership,
        on_call: &dyn OnCall,
    ) -> Explanation<'_> {
        let mut rules = Vec::new();
        let result = self.walk(ask, groups, on_call, &mut |rule, unmet| {
            rules.push((rule, unmet));
        });
        let (skipped, applied) = match result {
            Ok(applied) => (None, applied),
            Err(unmet) => (Some(unmet), None),
        };
        Explanation {
            skipped,
            rules,
            applied,
        }
    }

    /// The one evaluation: `Err` when no rule is looked at; each rule
    /// looked at is reported to `each` with its first unmet condition.
    fn walk<'a>(
        &'a self,
        ask: &Ask<'_>,
        groups: &dyn Membership,
        on_call: &dyn OnCall,
        each: &mut dyn FnMut(&'a Rule, Option<Unmet>),
    ) -> Result<Option<Applied<'a>>, Unmet> {
        let Some(indexes) = self.by_resource.get(ask.resource) else {
            return Ok(None);
        };
        if ask.extension {
            return Err(Unmet::Extension);
        }
        if ask.vendor {
            return Err(Unmet::Vendor);
        }
        if ask.scheduled {
            return Err(Unmet::Scheduled);
        }
        if ask.route == Route::Auto {
            return Err(Unmet::Auto);
        }
        if ask.score_in_hours >= self.risk_ceiling {
            return Err(Unmet::RiskCeiling {
                score: ask.score_in_hours,
                ceiling: self.risk_ceiling,
            });
        }
        let mut found = Found {
            local: vec![None; self.zones.len()],
            member: vec![None; self.groups.len()],
            ticket: vec![None; self.patterns.len()],
        };
        for &i in indexes {
            let rule = &self.rules[i];
            match self.check(i, ask, groups, on_call, &mut found) {
                Ok(route) => {
                    each(rule, None);
                    return Ok(Some(Applied { rule, route }));
                }
                Err(unmet) => each(rule, Some(unmet)),
            }
        }
        Ok(None)
    }

    /// The route `rule` gives `ask`, or its first unmet condition.
    fn check(
        &self,
        index: usize,
        ask: &Ask<'_>,
        groups: &dyn Membership,
        on_call: &dyn OnCall,
        found: &mut Found,
    ) -> Result<Route, Unmet> {
        let (rule, interned) = (&self.rules[index], &self.conditions[index]);
        let named = rule.users.iter().any(|u| u == ask.user)
            || interned.groups.iter().any(|&g| {
                *found.member[g].get_or_insert_with(|| groups.is_member(&self.groups[g]))
            })
            || rule
                .oncall
                .as_deref()
                .is_some_and(|s| on_call.is_on_call(s, ask.user, ask.at));
        if !named {
            return Err(Unmet::Who);
        }
        if ask.duration > rule.max_duration {
            return Err(Unmet::Duration {
                max: rule.max_duration,
            });
        }
        if let Some(w) = &rule.window {
            let now = *found.local[w.zone]
                .get_or_insert_with(|| window::local(&self.zones[w.zone].1, ask.at));
            if !w.contains(now) {
                return Err(Unmet::Window { now });
            }
        }
        if let Some(p) = interned.ticket {
            let Some(ticket) = ask.ticket else {
                return Err(Unmet::NoTicket);
            };
            if found.ticket[p].is_none() {
                self.match_all_patterns(ticket, &mut found.ticket);
            }
            if !*found.ticket[p].get_or_insert_with(|| self.patterns[p].matches(ticket)) {
                return Err(Unmet::Ticket);
            }
        }
        match (rule.action, ask.route) {
            (Action::Approve, _) => Ok(Route::Policy),
            (Action::Lower, Route::Dual) if ask.has_owners => Ok(Route::Owner),
            (Action::Lower, route) => Err(Unmet::CannotLower { route }),
        }
    }

    /// What `unmet` means, in words (about `rule` where it is one's).
    pub fn describe(&self, unmet: Unmet, rule: Option<&Rule>, ask: &Ask<'_>) -> String {
        let dur = |d: Duration| humantime::format_duration(d).to_string();
        match unmet {
            Unmet::Extension => {
                "extensions are never pre-authorized: they go to approvers as routed".into()
            }
            Unmet::Vendor => "vendor accounts are never pre-authorized".into(),
            Unmet::Scheduled => {
                "a request with a later start (--start) is never pre-authorized: it goes to approvers as routed".into()
            }
            Unmet::Auto => "risk routes it auto: approved at once without a rule".into(),
            Unmet::RiskCeiling { score, ceiling } => format!(
                "risk {score} (off-hours not counted) reaches the rules' ceiling {ceiling}"
            ),
            Unmet::Who => format!(
                "{} is not among its users or groups, nor on call in its schedule",
                ask.user
            ),
            Unmet::Duration { max } => format!(
                "{} is longer than its max_duration {}",
                dur(ask.duration),
                dur(max)
            ),
            Unmet::Window { now } => {
                let window = rule
                    .and_then(|r| r.window.as_ref())
                    .map(|w| w.describe(self.zone_name(w.zone)))
                    .unwrap_or_default();
                format!("outside its window ({window}): it is {now} there")
            }
            Unmet::NoTicket => "it needs a ticket (--ticket)".into(),
            Unmet::Ticket => format!(
                "the ticket does not match its pattern {}",
                rule.and_then(|r| r.ticket.as_ref())
                    .map_or("", |t| t.source.as_str())
            ),
            Unmet::CannotLower { route } => format!(
                "it lowers dual to owner only (on a resource with owners); this request routes {}{}",
                route.as_str(),
                if route == Route::Dual { " and the resource has no owners" } else { "" }
            ),
        }
    }
}

/// The index of the item in `items` that `same` picks, added by `make`
/// if none is.
fn intern<T>(items: &mut Vec<T>, same: impl Fn(&T) -> bool, make: impl FnOnce() -> T) -> usize {
    if let Some(i) = items.iter().position(same) {
        return i;
    }
    items.push(make());
    items.len() - 1
}

#[cfg(test)]
mod tests;
