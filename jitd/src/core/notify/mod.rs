//! Who hears about which audit event, and what they are told (W1.4-W1.6, W2.3-W2.5).
//!
//! [`plan`] maps one audit event (plus the request it is about) to
//! format-neutral [`Notice`]s addressed to email addresses and webhooks.
//! Group membership is a fact passed in; nothing here performs I/O.
//! [`render`] turns a notice into each wire format, escaping what users typed.

pub mod render;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::model::{rfc3339, Kind, Request, RequestId, Role, Route, State};
use super::sanitize::for_terminal;

/// A group of people a notification goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Audience {
    /// The person who asked (or who holds the grant).
    Requester,
    /// The owners of the request's resource.
    Owner,
    Manager,
    Security,
    /// Where overdue justifications escalate to; fixed targets only.
    Escalation,
}

impl Audience {
    fn of_role(role: Role) -> Audience {
        match role {
            Role::Owner => Audience::Owner,
            Role::Manager => Audience::Manager,
            Role::Security => Audience::Security,
        }
    }
}

/// Where one audience's notifications go.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    /// Each person of the audience, at their own address.
    Email,
    /// One fixed address.
    Address(String),
    /// A configured webhook, by name.
    Hook(String),
}

/// How a delivery is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Email,
    Hook,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Hook => "hook",
        }
    }

    pub fn parse(text: &str) -> Option<Channel> {
        [Channel::Email, Channel::Hook]
            .into_iter()
            .find(|c| c.as_str() == text)
    }
}

/// Who hears what: the `[notify]` section of the config, resolved.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    pub targets: BTreeMap<Audience, Vec<Target>>,
    /// Extra targets per resource, told whatever its owners are told.
    pub resource_targets: BTreeMap<String, Vec<Target>>,
    /// `NAME@email_domain` when a user has no entry in `addresses`.
    pub email_domain: Option<String>,
    pub addresses: BTreeMap<String, String>,
    /// Without an SMTP server, `Email` and `Address` targets are skipped.
    pub email_enabled: bool,
}

impl Policy {
    /// A user's email address, if one is known.
    pub fn address_of(&self, user: &str) -> Option<String> {
        self.addresses.get(user).cloned().or_else(|| {
            self.email_domain
                .as_ref()
                .map(|domain| format!("{user}@{domain}"))
        })
    }
}

/// One line of a notice: a label chosen by jit and a value that may come
/// from a user (already free of control characters).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Field {
    pub label: String,
    pub value: String,
}

/// What a notification says, before it is put into a format.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    /// The audit event that caused it.
    pub event: String,
    pub request: Option<RequestId>,
    /// Subject line / title.
    pub title: String,
    pub fields: Vec<Field>,
    /// A command line for the reader to act on, if any.
    pub action: Option<String>,
}

/// One delivery to enqueue: a notice for one address or webhook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    pub channel: Channel,
    /// An email address or a webhook name.
    pub to: String,
    pub notice: Notice,
}

/// The audit event being written.
#[derive(Clone, Copy, Debug)]
pub struct Trigger<'a> {
    pub event: &'a str,
    pub actor: &'a str,
    pub actor_uid: Option<u32>,
    pub request: Option<RequestId>,
    pub detail: &'a Value,
}

/// Events that may notify anyone; others need no request lookup.
pub const EVENTS: &[&str] = &[
    "scored",
    "policy_applied",
    "granted",
    "awaiting_activation",
    "scheduled",
    "extended",
    "denied",
    "lapsed",
    "expiry_warning",
    "revoked",
    "expired",
    "break_glass",
    "justification_overdue",
    "incident_opened",
    "account_rotation_failed",
    "group_membership_failed",
    "host_changed",
    "mfa_enrolled",
    "mfa_reset",
    "mfa_locked_out",
    "vendor_requested",
    "vendor_activated",
    "vendor_denied",
    "vendor_revoked",
    "vendor_account_unknown",
    "vendor_account_failed",
    "access_denied_repeatedly",
    "access_denied_overflow",
    "oncall_schedule_broken",
    "oncall_schedule_restored",
];

/// Text from the event's detail, made safe (no control characters).
fn detail_text(detail: &Value, key: &str) -> String {
    match &detail[key] {
        Value::String(s) => for_terminal(s).into_owned(),
        Value::Null => "-".into(),
        other => for_terminal(&other.to_string()).into_owned(),
    }
}

fn clean(text: &str) -> String {
    for_terminal(text).into_owned()
}

fn field(label: &str, value: impl Into<String>) -> Field {
    Field {
        label: label.into(),
        value: value.into(),
    }
}

fn duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

fn risk_text(req: &Request) -> String {
    match req.risk.factor_list() {
        f if f.is_empty() => req.risk.score.to_string(),
        f => format!("{} ({f})", req.risk.score),
    }
}

/// The facts every notice about a request carries.
fn request_fields(req: &Request) -> Vec<Field> {
    let mut fields = vec![
        field("Request", req.id.to_string()),
        field("User", clean(&req.user)),
        field("Resource", clean(&req.resource)),
        field("Duration", duration(req.duration)),
        field("Reason", clean(&req.reason)),
        field("Ticket", req.ticket.as_deref().map_or("-".into(), clean)),
    ];
    if let Some(start) = req.starts_at {
        fields.insert(4, field("Starts", rfc3339(start)));
    }
    if let Some(check) = &req.ticket_check {
        // Escaped already (core::tickets).
        fields.push(field("Ticket check", check.summary()));
    }
    if let Some(rule) = &req.policy {
        fields.push(field("Policy", clean(rule)));
    }
    fields
}

/// Who a policy rule says hears of the grants it approves (W1.10).
fn told_by_rule(detail: &Value) -> Vec<Audience> {
    let told = detail["notify"].as_array().into_iter().flatten();
    told.filter_map(|t| match t.as_str() {
        Some("owners") => Some(Audience::Owner),
        Some("security") => Some(Audience::Security),
        _ => None,
    })
    .collect()
}

/// The audiences to tell and what to tell them.
fn compose(t: &Trigger<'_>, req: Option<&Request>) -> Option<(Vec<Audience>, Notice)> {
    let notice = |title: String, fields: Vec<Field>, action: Option<String>| Notice {
        event: t.event.to_owned(),
        request: t.request,
        title,
        fields,
        action,
    };
    let actor = clean(t.actor);
    let requester = vec![Audience::Requester];
    let security = || vec![Audience::Security];
    // Events about break-glass carry their facts in the detail.
    let emergency_fields = |extra: &[(&str, &str)]| -> Vec<Field> {
        let mut fields = vec![
            field("Grant", t.request.map_or("-".into(), |id| id.to_string())),
            field("User", detail_text(t.detail, "user")),
            field("Resource", detail_text(t.detail, "resource")),
        ];
        fields.extend(
            extra
                .iter()
                .map(|(label, key)| field(label, detail_text(t.detail, key))),
        );
        fields
    };
    let unix_field = |key: &str| t.detail[key].as_i64().map_or("-".into(), rfc3339);
    match t.event {
        "break_glass" => {
            let mut fields = emergency_fields(&[("Reason", "reason")]);
            fields.push(field("Expires", unix_field("expires_at")));
            fields.push(field("Justify by", unix_field("justify_by")));
            let title = format!(
                "jit: BREAK-GLASS by {} on {}",
                detail_text(t.detail, "user"),
                detail_text(t.detail, "resource")
            );
            return Some((security(), notice(title, fields, None)));
        }
        "justification_overdue" => {
            let mut fields = emergency_fields(&[]);
            fields.push(field("Due", unix_field("due_at")));
            let title = format!(
                "jit: break-glass justification overdue: {} on {}",
                detail_text(t.detail, "user"),
                detail_text(t.detail, "resource")
            );
            let action = t.request.map(|id| format!("jitctl show {id}"));
            return Some((
                vec![Audience::Security, Audience::Escalation],
                notice(title, fields, action),
            ));
        }
        // A managed account jitd could not rotate may keep a password
        // someone knows (W3): security is told, every time.
        "account_rotation_failed" => {
            let account = detail_text(t.detail, "account");
            let fields = vec![
                field("Account", account.clone()),
                field("Error", detail_text(t.detail, "error")),
            ];
            let title = format!("jit: cannot rotate managed account {account}");
            let action = Some(format!(
                "journalctl -u jitd; jitctl audit (account {account})"
            ));
            return Some((security(), notice(title, fields, action)));
        }
        // Persistence planted during a privileged grant (W3 item 6).
        "host_changed" => {
            let fields = vec![
                field("Changes", detail_text(t.detail, "count")),
                field("Kinds", detail_text(t.detail, "kinds")),
                field("Truncated", detail_text(t.detail, "truncated")),
            ];
            let title = format!(
                "jit: the host changed during {}'s grant of {}",
                detail_text(t.detail, "user"),
                detail_text(t.detail, "resource")
            );
            let action = t.request.map(|id| format!("jitctl show {id}"));
            return Some((security(), notice(title, fields, action)));
        }
        "vendor_requested"
        | "vendor_activated"
        | "vendor_denied"
        | "vendor_revoked"
        | "vendor_account_unknown"
        | "vendor_account_failed" => return vendor_notice(t),
        // A factor enrolled or removed: security sees who holds one (an
        // enrollment by someone at another's terminal shows here, T36).
        "mfa_enrolled" | "mfa_reset" => {
            let user = match t.event {
                "mfa_reset" => detail_text(t.detail, "user"),
                _ => actor.clone(),
            };
            let (what, action) = match t.event {
                "mfa_reset" => ("removed by", format!("removed by {actor}")),
                _ => ("enrolled by", "enrolled".to_owned()),
            };
            let fields = vec![field("User", user.clone()), field(what, actor.clone())];
            let title = format!("jit: {user}'s second factor {action}");
            let action = Some(format!("jitctl audit; jitctl mfa status {user}"));
            return Some((security(), notice(title, fields, action)));
        }
        // A user's own wrong codes while enrolling lock only their
        // enrollment: not worth an alert (anyone could cause them).
        "mfa_locked_out" if t.detail["purpose"] == "enrollment" => return None,
        // Wrong codes until a lockout: guessing, or a stolen password at
        // work (T36).
        "mfa_locked_out" => {
            let user = clean(t.actor);
            let fields = vec![
                field("User", user.clone()),
                field("Wrong codes", detail_text(t.detail, "failures")),
                field("Locked until", detail_text(t.detail, "until")),
            ];
            let title = format!("jit: {user} is locked out after wrong second-factor codes");
            let action = Some(format!("jitctl audit; jitctl mfa status {user}"));
            return Some((security(), notice(title, fields, action)));
        }
        // A membership jitd cannot remove is standing privilege (M.1).
        "group_membership_failed" => {
            let user = detail_text(t.detail, "user");
            let group = detail_text(t.detail, "group");
            let fields = vec![
                field("User", user.clone()),
                field("Group", group.clone()),
                field("Change", detail_text(t.detail, "change")),
                field("Error", detail_text(t.detail, "error")),
            ];
            let title = format!("jit: cannot change {user}'s membership of group {group}");
            let action = Some("journalctl -u jitd; jitctl audit".to_owned());
            return Some((security(), notice(title, fields, action)));
        }
        // A user who keeps trying what they hold no grant for (X.6, T39):
        // once per user per `[denials] alert_window`.
        "access_denied_repeatedly" => {
            let user = detail_text(t.detail, "user");
            let resources = t.detail["resources"]
                .as_array()
                .map(|list| {
                    list.iter()
                        .map(|r| clean(r.as_str().unwrap_or_default()))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            let fields = vec![
                field("User", user.clone()),
                field("Denials", detail_text(t.detail, "attempts")),
                field("Resources", resources),
                field("First", unix_field("first")),
                field("Last", unix_field("last")),
            ];
            let title = format!("jit: {user} keeps trying access without a grant");
            let action = Some(format!(
                "jitctl audit --since 1h    (access_denied of {user})"
            ));
            return Some((security(), notice(title, fields, action)));
        }
        // More users and resources denied at once than jitd counts apart.
        "access_denied_overflow" => {
            let fields = vec![
                field("Denials", detail_text(t.detail, "count")),
                field("Counted apart", detail_text(t.detail, "max_tracked")),
                field("First", unix_field("first")),
                field("Last", unix_field("last")),
            ];
            let title = "jit: a flood of denied access on this host".to_owned();
            let action = Some("jitctl audit --since 1h".to_owned());
            return Some((security(), notice(title, fields, action)));
        }
        // A schedule with nobody on call (T43): the policy rules naming it
        // approve nobody until it is fixed. Told once per breakage, and
        // when it is fixed.
        "oncall_schedule_broken" | "oncall_schedule_restored" => {
            let schedule = detail_text(t.detail, "schedule");
            let mut fields = vec![
                field("Schedule", schedule.clone()),
                field("File", detail_text(t.detail, "file")),
            ];
            let title = if t.event == "oncall_schedule_broken" {
                fields.push(field("Problem", detail_text(t.detail, "reason")));
                format!("jit: on-call schedule {schedule} is broken: nobody is on call")
            } else {
                fields.push(field("Shifts", detail_text(t.detail, "shifts")));
                format!("jit: on-call schedule {schedule} is fixed")
            };
            let action = Some("jitctl status; journalctl -u jitd".to_owned());
            return Some((security(), notice(title, fields, action)));
        }
        "incident_opened" => {
            let mut fields = vec![field("Incident", detail_text(t.detail, "incident"))];
            fields.extend(emergency_fields(&[
                ("Reviewer", "reviewer"),
                ("Comment", "comment"),
            ]));
            let title = format!(
                "jit: security incident {}: break-glass by {} judged unjustified",
                detail_text(t.detail, "incident"),
                detail_text(t.detail, "user")
            );
            return Some((security(), notice(title, fields, None)));
        }
        _ => {}
    }
    let req = req?;
    let id = req.id;
    let res = clean(&req.resource);
    let user = clean(&req.user);
    let expires = req.expires_at.map_or("-".into(), rfc3339);
    let comment = || detail_text(t.detail, "comment");
    let mut fields = request_fields(req);
    // Granted at once by a rule of the requester's, or by risk: they read
    // it in jitctl's reply a moment ago.
    let at_once = matches!(
        t.detail["approved_by"].as_str(),
        Some("policy" | "break-glass")
    ) || t.detail["route"] == Route::Policy.as_str();
    match t.event {
        // A rule approved it: those it names are told, nobody is asked.
        "policy_applied" if t.detail["action"] == "approve" => {
            fields.push(field("Risk", risk_text(req)));
            let title = format!(
                "jit: {user} granted {res} for {} by policy {}",
                duration(req.duration),
                detail_text(t.detail, "policy")
            );
            let action = format!("jitctl show {id}    (or: jitctl revoke {id} --comment TEXT)");
            Some((told_by_rule(t.detail), notice(title, fields, Some(action))))
        }
        "scored" if req.state == State::Pending && !req.route.required_roles().is_empty() => {
            let what = match req.kind {
                Kind::Grant => format!("{user} requests {res} for {}", duration(req.duration)),
                Kind::Extension { of } => format!(
                    "{user} asks to extend grant {of} on {res} by {}",
                    duration(req.duration)
                ),
            };
            let awaiting: Vec<&str> = req.awaiting().iter().map(|r| r.as_str()).collect();
            fields.push(field("Risk", risk_text(req)));
            fields.push(field("Awaiting", awaiting.join(" + ")));
            let audiences = req.awaiting().into_iter().map(Audience::of_role).collect();
            let title = format!("jit: {what} (risk {}), approval needed", req.risk.score);
            Some((
                audiences,
                notice(
                    title,
                    fields,
                    Some(format!(
                        "jitctl approve {id}    (or: jitctl deny {id} --comment TEXT)"
                    )),
                ),
            ))
        }
        // Started at its scheduled time, maybe long after anyone approved it.
        "granted" if t.detail["scheduled"] == true => {
            fields.push(field("Expires", expires.clone()));
            let title = format!("jit: scheduled grant {id} on {res} is active until {expires}");
            Some((requester, notice(title, fields, None)))
        }
        // Auto-approved or break-glass: the requester read it in jitctl's reply a moment ago.
        "granted" | "extended" if at_once => None,
        // Activated by its holder a moment ago, with a code.
        "granted" if req.activate_by.is_some() => None,
        "awaiting_activation" if t.detail["scheduled"] == true || !at_once => {
            let by = unix_field("activate_by");
            fields.push(field("Activate by", by.clone()));
            fields.push(field("Approved by", detail_text(t.detail, "approved_by")));
            let title = format!("jit: request {id} approved: activate {res} by {by}");
            let action = format!("jitctl activate {id}    (with a code from your second factor)");
            Some((requester, notice(title, fields, Some(action))))
        }
        "granted" => {
            fields.push(field("Expires", expires.clone()));
            fields.push(field("Approved by", detail_text(t.detail, "approved_by")));
            let title = format!("jit: request {id} approved: {res} until {expires}");
            Some((requester, notice(title, fields, None)))
        }
        "scheduled" if !at_once => {
            let start = unix_field("starts_at");
            fields.push(field("Approved by", detail_text(t.detail, "approved_by")));
            let title = format!(
                "jit: request {id} approved: {res} from {start} until {}",
                unix_field("ends_at")
            );
            Some((requester, notice(title, fields, None)))
        }
        "extended" => {
            let until = unix_field("expires_at");
            fields.push(field("Expires", until.clone()));
            let title = format!("jit: grant {id} on {res} extended until {until}");
            Some((requester, notice(title, fields, None)))
        }
        "denied" => {
            fields.push(field("Denied by", actor));
            fields.push(field("Comment", comment()));
            let title = format!("jit: request {id} for {res} denied");
            Some((requester, notice(title, fields, None)))
        }
        "lapsed" => {
            let why = match t.detail["why"].as_str() {
                Some("not activated in time") => "not activated in time",
                Some(super::schedule::WINDOW_OVER) => super::schedule::WINDOW_OVER,
                _ => "nobody decided in time",
            };
            let title = format!("jit: request {id} for {res} lapsed: {why}");
            Some((requester, notice(title, fields, None)))
        }
        "expiry_warning" => {
            fields.push(field("Expires", expires.clone()));
            let title = format!("jit: grant {id} on {res} expires at {expires}");
            let action = format!("jitctl extend {id} --for 30m --reason TEXT");
            Some((requester, notice(title, fields, Some(action))))
        }
        // Never used (`revoke_unused_after`): the holder is told why.
        "revoked" if t.detail["reason"] == "unused" => {
            fields.push(field("Revoked by", actor));
            fields.push(field("Why", comment()));
            let title = format!("jit: grant {id} on {res} revoked: not used in time");
            let action =
                format!("jitctl request {res} --for 30m --reason TEXT    (when you need it)");
            Some((requester, notice(title, fields, Some(action))))
        }
        // Someone else took the grant away; withdrawing one's own is not news.
        "revoked" if t.actor_uid != Some(req.uid) => {
            fields.push(field("Revoked by", actor));
            fields.push(field("Comment", comment()));
            let title = format!("jit: grant {id} on {res} revoked");
            Some((requester, notice(title, fields, None)))
        }
        "expired" => {
            fields.push(field("Expired", expires.clone()));
            let title = format!("jit: grant {id} on {res} expired");
            Some((requester, notice(title, fields, None)))
        }
        _ => None,
    }
}

/// What a vendor's events say and to whom (W4): the request to the
/// sponsor's manager (the one `[managers]` names, else the role) and
/// security; its outcome to the sponsor; an account jitd did not make, or
/// could not make or unmake, to security.
fn vendor_notice(t: &Trigger<'_>) -> Option<(Vec<Audience>, Notice)> {
    let text = |key: &str| detail_text(t.detail, key);
    let vendor = text("vendor");
    let account = text("account");
    let mut fields = vec![
        field("Vendor", vendor.clone()),
        field("Account", account.clone()),
    ];
    let (audiences, title, action) = match t.event {
        "vendor_requested" => {
            for (label, key) in [
                ("Organization", "organization"),
                ("Email", "email"),
                ("Resources", "resources"),
                ("Segments", "segments"),
                ("Project", "project"),
                ("Reason", "reason"),
                ("Sponsor", "sponsor"),
                ("Manager", "manager"),
            ] {
                fields.push(field(label, text(key)));
            }
            let title = format!(
                "jit: {} sponsors vendor account {account} ({}), approval needed",
                text("sponsor"),
                text("organization")
            );
            let action = format!("jitctl vendor approve {vendor}    (or: jitctl vendor deny {vendor} --comment TEXT)");
            (
                vec![Audience::Manager, Audience::Security],
                title,
                Some(action),
            )
        }
        "vendor_activated" => {
            fields.push(field(
                "Expires",
                t.detail["expires_at"].as_i64().map_or("-".into(), rfc3339),
            ));
            let title = format!("jit: vendor account {account} approved; it is being made");
            (
                vec![Audience::Requester],
                title,
                Some(format!("jitctl vendor show {vendor}")),
            )
        }
        "vendor_denied" | "vendor_revoked" if t.detail["sponsor"].as_str() != Some(t.actor) => {
            fields.push(field("By", clean(t.actor)));
            fields.push(field("Comment", text("comment")));
            let what = if t.event == "vendor_denied" {
                "denied"
            } else {
                "revoked"
            };
            (
                vec![Audience::Requester],
                format!("jit: vendor account {account} {what}"),
                None,
            )
        }
        "vendor_account_unknown" => {
            fields.push(field("Uid", text("uid")));
            let title =
                format!("jit: account {account} looks like a vendor's, but jitd did not make it");
            (
                vec![Audience::Security],
                title,
                Some(format!("getent passwd {account}")),
            )
        }
        "vendor_account_failed" => {
            fields.push(field("Error", text("error")));
            let title = format!("jit: cannot bring vendor {vendor}'s account where it should be");
            (
                vec![Audience::Security],
                title,
                Some(format!("jitctl vendor show {vendor}; journalctl -u jitd")),
            )
        }
        _ => return None,
    };
    let notice = Notice {
        event: t.event.to_owned(),
        request: t.request,
        title,
        fields,
        action,
    };
    Some((audiences, notice))
}

/// The deliveries one audit event causes. `members(audience, resource)`
/// lists the user names in an audience (requester, owners, role members);
/// nobody is told to approve their own request.
pub fn plan(
    t: &Trigger<'_>,
    req: Option<&Request>,
    policy: &Policy,
    members: &dyn Fn(Audience, &str) -> Vec<String>,
) -> Vec<Outgoing> {
    let Some((audiences, notice)) = compose(t, req) else {
        return Vec::new();
    };
    let resource = req.map_or_else(
        || t.detail["resource"].as_str().unwrap_or_default().to_owned(),
        |r| r.resource.clone(),
    );
    // A vendor's events are about its sponsor, and name the one manager
    // who approves it (when `[managers]` knows them).
    let requester = req
        .map(|r| r.user.as_str())
        .or_else(|| t.detail["sponsor"].as_str());
    let named_manager = t.detail["manager"].as_str().filter(|_| req.is_none());
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    let mut add = |channel: Channel, to: String| {
        if seen.insert((channel, to.clone())) {
            out.push(Outgoing {
                channel,
                to,
                notice: notice.clone(),
            });
        }
    };
    for audience in audiences {
        let mut targets: Vec<&Target> = policy
            .targets
            .get(&audience)
            .into_iter()
            .flatten()
            .collect();
        if audience == Audience::Owner {
            targets.extend(policy.resource_targets.get(&resource).into_iter().flatten());
        }
        for target in targets {
            match target {
                Target::Hook(name) => add(Channel::Hook, name.clone()),
                Target::Address(addr) if policy.email_enabled => add(Channel::Email, addr.clone()),
                Target::Email if policy.email_enabled => {
                    let people = match audience {
                        Audience::Requester => {
                            requester.map(str::to_owned).into_iter().collect::<Vec<_>>()
                        }
                        Audience::Escalation => Vec::new(),
                        Audience::Manager if named_manager.is_some() => {
                            named_manager.map(str::to_owned).into_iter().collect()
                        }
                        _ => members(audience, &resource)
                            .into_iter()
                            .filter(|name| Some(name.as_str()) != requester)
                            .collect(),
                    };
                    for person in people {
                        if let Some(addr) = policy.address_of(&person) {
                            add(Channel::Email, addr);
                        }
                    }
                }
                Target::Address(_) | Target::Email => {}
            }
        }
    }
    out
}

/// Delay before retry number `attempt` (1 = the first retry): doubling from
/// `first`, capped at `max`, then scaled into [1/2, 1] by `jitter` (any u32,
/// e.g. random) so that many failed deliveries do not retry in lockstep.
pub fn backoff(attempt: u32, first: Duration, max: Duration, jitter: u32) -> Duration {
    let doubled = first.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
    let capped = doubled.min(max);
    let half = capped / 2;
    half + half.mul_f64(f64::from(jitter) / f64::from(u32::MAX))
}

#[cfg(test)]
mod tests;
