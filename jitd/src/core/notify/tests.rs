use super::render::*;
use super::*;
use crate::core::model::{Decision, Verdict};
use crate::core::risk::{Factor, RiskAssessment};
use serde_json::json;

const HOSTILE: &str =
    "<script>alert(1)</script> *bold* _it_ `code` & [x](http://evil) \x1b[2J\r\nok";

fn request(route: Route, state: State) -> Request {
    Request {
        id: 12,
        kind: Kind::Grant,
        uid: 1000,
        user: "alice".into(),
        resource: "sudo".into(),
        duration: Duration::from_secs(3600),
        reason: HOSTILE.into(),
        ticket: Some("CHG-42".into()),
        requested_at: 1_700_000_000,
        starts_at: None,
        route,
        risk: RiskAssessment {
            score: 75,
            factors: vec![Factor {
                name: "privileged".into(),
                points: 20,
                detail: String::new(),
            }],
        },
        state,
        decisions: Vec::new(),
        expires_at: (state == State::Active).then_some(1_700_003_600),
        activate_by: None,
        ended_at: None,
        ended_by: None,
        ticket_check: None,
        follow_up: None,
        policy: None,
    }
}

fn policy() -> Policy {
    let mut targets = BTreeMap::new();
    targets.insert(Audience::Requester, vec![Target::Email]);
    targets.insert(Audience::Owner, vec![Target::Email]);
    targets.insert(Audience::Manager, vec![Target::Email]);
    targets.insert(
        Audience::Security,
        vec![Target::Email, Target::Hook("sec-slack".into())],
    );
    targets.insert(
        Audience::Escalation,
        vec![Target::Address("oncall@example.com".into())],
    );
    Policy {
        targets,
        resource_targets: BTreeMap::from([("db".into(), vec![Target::Hook("db-team".into())])]),
        email_domain: Some("example.com".into()),
        addresses: BTreeMap::from([("sam".into(), "sam.s@corp.example".into())]),
        email_enabled: true,
    }
}

/// Members: managers mike and maria, security sam and maria, owners olivia
/// (and alice, who must not be asked to approve her own request).
fn members(a: Audience, _resource: &str) -> Vec<String> {
    let names: &[&str] = match a {
        Audience::Owner => &["olivia", "alice"],
        Audience::Manager => &["mike", "maria"],
        Audience::Security => &["sam", "maria"],
        _ => &[],
    };
    names.iter().map(|s| s.to_string()).collect()
}

fn recipients(out: &[Outgoing]) -> Vec<String> {
    out.iter()
        .map(|o| format!("{}:{}", o.channel.as_str(), o.to))
        .collect()
}

fn trigger<'a>(event: &'a str, detail: &'a Value, actor_uid: Option<u32>) -> Trigger<'a> {
    Trigger {
        event,
        actor: "mike",
        actor_uid,
        request: Some(12),
        detail,
    }
}

#[test]
fn who_hears_what() {
    let none = json!({});
    let comment = json!({"comment": "use the runbook"});
    let extended = json!({"expires_at": 1_700_007_200});
    let by_policy = json!({"expires_at": 1_700_007_200, "approved_by": "policy"});
    let by_break_glass = json!({"expires_at": 1_700_007_200, "approved_by": "break-glass"});
    let emergency = request(Route::BreakGlass, State::Pending);
    let dual = request(Route::Dual, State::Pending);
    let owner = request(Route::Owner, State::Pending);
    let auto = request(Route::Auto, State::Pending);
    let active = request(Route::Dual, State::Active);
    let denied = request(Route::Dual, State::Denied);
    let approved = request(Route::Dual, State::Approved);
    let mut activated = request(Route::Dual, State::Active);
    activated.activate_by = Some(1_700_003_000);
    let by_olivia = json!({"activate_by": 1_700_003_600, "approved_by": "olivia"});
    let mut db = request(Route::Owner, State::Pending);
    db.resource = "db".into();
    // event, detail, actor uid, request, who hears it
    type Case<'a> = (&'a str, &'a Value, Option<u32>, &'a Request, Vec<&'a str>);
    let cases: Vec<Case<'_>> = vec![
        (
            "scored",
            &none,
            Some(1000),
            &dual,
            vec![
                "email:mike@example.com",
                "email:maria@example.com",
                "email:sam.s@corp.example",
                "hook:sec-slack",
            ],
        ),
        (
            "scored",
            &none,
            Some(1000),
            &owner,
            vec!["email:olivia@example.com"],
        ),
        (
            "scored",
            &none,
            Some(1000),
            &db,
            vec!["email:olivia@example.com", "hook:db-team"],
        ),
        ("scored", &none, Some(1000), &auto, vec![]),
        ("scored", &none, Some(1000), &active, vec![]),
        ("granted", &by_policy, None, &active, vec![]),
        ("granted", &by_break_glass, None, &active, vec![]),
        // Step-up: told to activate, unless the reply just said so; not
        // told of the activation they made.
        (
            "awaiting_activation",
            &by_olivia,
            None,
            &approved,
            vec!["email:alice@example.com"],
        ),
        ("awaiting_activation", &by_policy, None, &approved, vec![]),
        (
            "awaiting_activation",
            &by_break_glass,
            None,
            &approved,
            vec![],
        ),
        ("granted", &none, None, &activated, vec![]),
        // Break-glass awaits nobody's approval; security hears of it by its own event.
        ("scored", &none, Some(1000), &emergency, vec![]),
        ("extended", &by_policy, None, &active, vec![]),
        (
            "granted",
            &none,
            None,
            &active,
            vec!["email:alice@example.com"],
        ),
        (
            "extended",
            &extended,
            None,
            &active,
            vec!["email:alice@example.com"],
        ),
        (
            "denied",
            &comment,
            Some(2),
            &denied,
            vec!["email:alice@example.com"],
        ),
        (
            "lapsed",
            &none,
            None,
            &dual,
            vec!["email:alice@example.com"],
        ),
        (
            "expiry_warning",
            &none,
            None,
            &active,
            vec!["email:alice@example.com"],
        ),
        (
            "revoked",
            &comment,
            Some(2),
            &active,
            vec!["email:alice@example.com"],
        ),
        ("revoked", &comment, Some(1000), &active, vec![]),
        ("withdrawn", &comment, Some(1000), &dual, vec![]),
        (
            "expired",
            &none,
            None,
            &active,
            vec!["email:alice@example.com"],
        ),
        ("approved", &comment, Some(2), &dual, vec![]),
        ("requested", &none, Some(1000), &dual, vec![]),
    ];
    for (event, detail, actor_uid, req, want) in cases {
        let out = plan(
            &trigger(event, detail, actor_uid),
            Some(req),
            &policy(),
            &members,
        );
        assert_eq!(recipients(&out), want, "{event} on {:?}", req.route);
        // The store asks the planner only about these events.
        assert!(
            out.is_empty() || EVENTS.contains(&event),
            "{event} missing from EVENTS"
        );
    }
}

#[test]
fn break_glass_contract_events_reach_security() {
    let bg = json!({"resource": "sudo", "reason": HOSTILE, "expires_at": 1_700_007_200, "user": "alice"});
    let overdue = json!({"resource": "sudo", "user": "alice", "due_at": 1_700_086_400});
    let incident = json!({"incident": 3, "resource": "sudo", "user": "alice", "reviewer": "sam", "comment": "no ticket"});
    let rotation = json!({"account": "postgres\u{1b}[2J", "error": "chpasswd failed"});
    let membership =
        json!({"user": "alice", "group": "docker", "change": "remove", "error": "gpasswd failed"});
    let changed = json!({"user": "alice", "resource": "sudo", "count": 2, "truncated": false, "kinds": ["cron"]});
    let security = vec![
        "email:sam.s@corp.example",
        "email:maria@example.com",
        "hook:sec-slack",
    ];
    let mut escalated = security.clone();
    escalated.push("email:oncall@example.com");
    let cases = [
        (
            "break_glass",
            &bg,
            security.clone(),
            "BREAK-GLASS by alice on sudo",
        ),
        (
            "justification_overdue",
            &overdue,
            escalated,
            "justification overdue: alice on sudo",
        ),
        (
            "incident_opened",
            &incident,
            security.clone(),
            "security incident 3",
        ),
        (
            "account_rotation_failed",
            &rotation,
            security.clone(),
            "cannot rotate managed account postgres\\u{1b}[2J",
        ),
        (
            "group_membership_failed",
            &membership,
            security.clone(),
            "cannot change alice's membership of group docker",
        ),
        (
            "host_changed",
            &changed,
            security,
            "the host changed during alice's grant of sudo",
        ),
    ];
    for (event, detail, want, title) in cases {
        // The events stand alone: no request row is needed.
        let out = plan(
            &trigger(event, detail, Some(1000)),
            None,
            &policy(),
            &members,
        );
        assert_eq!(recipients(&out), want, "{event}");
        let notice = &out[0].notice;
        assert!(notice.title.contains(title), "{event}: {}", notice.title);
        assert_eq!(notice.request, Some(12));
    }
    let out = plan(
        &trigger("break_glass", &bg, Some(1000)),
        None,
        &policy(),
        &members,
    );
    let fields: BTreeMap<_, _> = out[0]
        .notice
        .fields
        .iter()
        .map(|f| (f.label.as_str(), f.value.as_str()))
        .collect();
    assert_eq!(fields["Expires"], "2023-11-15T00:13:20Z");
    assert!(!fields["Reason"].contains('\x1b'));
    let out = plan(
        &trigger("incident_opened", &incident, None),
        None,
        &policy(),
        &members,
    );
    assert!(out[0]
        .notice
        .fields
        .iter()
        .any(|f| f.label == "Comment" && f.value == "no ticket"));
}

#[test]
fn approvers_get_everything_they_need_to_decide() {
    let req = request(Route::Dual, State::Pending);
    let out = plan(
        &trigger("scored", &json!({}), None),
        Some(&req),
        &policy(),
        &members,
    );
    let n = &out[0].notice;
    assert!(
        n.title.contains("alice requests sudo for 1h"),
        "{}",
        n.title
    );
    assert!(n.title.contains("risk 75"));
    let labels: Vec<&str> = n.fields.iter().map(|f| f.label.as_str()).collect();
    for want in ["Reason", "Ticket", "Risk", "Awaiting"] {
        assert!(labels.contains(&want), "{labels:?}");
    }
    assert!(n.fields.iter().any(|f| f.value == "75 (privileged +20)"));
    assert!(n
        .action
        .as_deref()
        .unwrap()
        .starts_with("jitctl approve 12"));
    // Control characters never survive into a notice.
    let reason = &n.fields.iter().find(|f| f.label == "Reason").unwrap().value;
    assert!(!reason.chars().any(char::is_control), "{reason:?}");
}

#[test]
fn approvers_still_awaited_are_the_ones_told() {
    let mut req = request(Route::Dual, State::Pending);
    req.decisions.push(Decision {
        uid: 2,
        name: "mike".into(),
        role: Role::Manager,
        verdict: Verdict::Approve,
        comment: String::new(),
        at: 0,
    });
    let out = plan(
        &trigger("scored", &json!({}), None),
        Some(&req),
        &policy(),
        &members,
    );
    assert_eq!(
        recipients(&out),
        vec![
            "email:sam.s@corp.example",
            "email:maria@example.com",
            "hook:sec-slack"
        ]
    );
}

#[test]
fn without_smtp_or_addresses_only_hooks_are_used() {
    let req = request(Route::Dual, State::Pending);
    let mut p = policy();
    p.email_enabled = false;
    let out = plan(
        &trigger("scored", &json!({}), None),
        Some(&req),
        &p,
        &members,
    );
    assert_eq!(recipients(&out), vec!["hook:sec-slack"]);
    let mut p = policy();
    p.email_domain = None;
    let out = plan(
        &trigger("granted", &json!({}), None),
        Some(&req),
        &p,
        &members,
    );
    assert!(out.is_empty(), "alice has no address: {out:?}");
}

fn hostile_notice() -> Notice {
    Notice {
        event: "scored".into(),
        request: Some(12),
        title: "jit: alice requests sudo".into(),
        fields: vec![Field {
            label: "Reason".into(),
            value: for_terminal(HOSTILE).into_owned(),
        }],
        action: Some("jitctl approve 12".into()),
    }
}

#[test]
fn every_format_escapes_what_users_typed() {
    let n = hostile_notice();
    let html = email_html(&n, 7);
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    assert!(!html.contains("<script>"));
    assert!(html.contains("&amp; [x]"));
    let text = email_text(&n, 7);
    assert!(text.contains("<script>alert(1)</script> *bold*"), "{text}");
    assert!(text.contains("\\u{1b}[2J\\r\\nok"), "{text}");
    assert!(text.contains("jit notification 7"));
    assert!(!text.contains('\x1b') && !text.contains('\r'));

    let slack_text = slack(&n, 7)["text"].as_str().unwrap().to_owned();
    assert!(
        slack_text.contains("`&lt;script&gt;alert(1)&lt;/script&gt; *bold* _it_ \u{2cb}code\u{2cb} &amp; [x](http://evil)"),
        "{slack_text}"
    );
    assert!(!slack_text.contains("<script>"));

    let card = teams(&n, 7).to_string();
    assert!(card.contains(r"\\<script\\>alert\\(1\\)\\</script\\> \\*bold\\* \\_it\\_ \\`code\\` & \\[x\\]\\(http://evil\\)"), "{card}");

    let doc = super::render::json(&n, 7);
    assert_eq!(doc["id"], 7);
    assert_eq!(doc["fields"]["Reason"], for_terminal(HOSTILE).as_ref());
}

#[test]
fn escapes_golden() {
    let cases = [
        (
            "a<b>&\"c'",
            "a&lt;b&gt;&amp;&quot;c&#39;",
            "`a&lt;b&gt;&amp;\"c'`",
            "a\\<b\\>&\"c'",
        ),
        (
            "*x* _y_ ~z~",
            "*x* _y_ ~z~",
            "`*x* _y_ ~z~`",
            "\\*x\\* \\_y\\_ \\~z\\~",
        ),
        ("`tick`", "`tick`", "`\u{2cb}tick\u{2cb}`", "\\`tick\\`"),
        (
            "<!channel>",
            "&lt;!channel&gt;",
            "`&lt;!channel&gt;`",
            "\\<\\!channel\\>",
        ),
    ];
    for (input, html, slack, teams) in cases {
        assert_eq!(escape_html(input), html, "{input}");
        assert_eq!(escape_slack(input), slack, "{input}");
        assert_eq!(escape_teams(input), teams, "{input}");
    }
}

#[test]
fn backoff_doubles_up_to_the_cap_with_jitter_into_the_upper_half() {
    let (first, max) = (Duration::from_secs(10), Duration::from_secs(300));
    let cases = [
        (1, u32::MAX, 10_000),
        (1, 0, 5_000),
        (2, u32::MAX, 20_000),
        (3, u32::MAX, 40_000),
        (5, u32::MAX, 160_000),
        (6, u32::MAX, 300_000),
        (60, u32::MAX, 300_000),
        (60, 0, 150_000),
    ];
    for (attempt, jitter, want_ms) in cases {
        assert_eq!(
            backoff(attempt, first, max, jitter).as_millis(),
            want_ms,
            "attempt {attempt}"
        );
    }
}

#[test]
fn a_lockout_of_the_second_factor_tells_security() {
    let detail = json!({"until": "2026-12-06T10:15:00Z", "failures": 5, "purpose": "sudo"});
    let mut t = trigger("mfa_locked_out", &detail, Some(1002));
    t.actor = "bob\u{1b}[2J";
    t.request = None;
    let out = plan(&t, None, &policy(), &members);
    assert_eq!(
        recipients(&out),
        [
            "email:sam.s@corp.example",
            "email:maria@example.com",
            "hook:sec-slack"
        ]
    );
    let notice = &out[0].notice;
    assert!(
        notice
            .title
            .contains("locked out after wrong second-factor codes"),
        "{}",
        notice.title
    );
    assert!(!notice.title.contains('\u{1b}'), "{}", notice.title);
    assert_eq!(notice.request, None);
}

#[test]
fn enrollments_and_resets_tell_security_and_enrollment_lockouts_tell_nobody() {
    let none = json!({});
    let mut t = trigger("mfa_enrolled", &none, Some(1002));
    t.actor = "bob";
    t.request = None;
    let out = plan(&t, None, &policy(), &members);
    assert_eq!(out.len(), 3, "{out:?}");
    assert!(out[0].notice.title.contains("bob's second factor enrolled"));

    let reset = json!({"user": "bob", "uid": 1002});
    let mut t = trigger("mfa_reset", &reset, Some(1004));
    t.actor = "sam";
    t.request = None;
    let out = plan(&t, None, &policy(), &members);
    assert!(
        out[0]
            .notice
            .title
            .contains("bob's second factor removed by sam"),
        "{}",
        out[0].notice.title
    );

    let own = json!({"until": "2026-12-06T10:15:00Z", "failures": 5, "purpose": "enrollment"});
    let mut t = trigger("mfa_locked_out", &own, Some(1002));
    t.request = None;
    assert!(plan(&t, None, &policy(), &members).is_empty());
}

#[test]
fn a_vendors_events_reach_its_sponsors_manager_security_and_the_sponsor() {
    let asked = json!({"vendor": 3, "account": "v-jdoe", "organization": "Acme", "sponsor": "alice", "manager": "mike"});
    let no_manager = json!({"vendor": 3, "account": "v-jdoe", "sponsor": "alice", "manager": null});
    let activated =
        json!({"vendor": 3, "account": "v-jdoe", "sponsor": "alice", "expires_at": 1_700_007_200});
    let revoked = json!({"vendor": 3, "account": "v-jdoe", "sponsor": "alice", "comment": "done"});
    let unknown = json!({"account": "v-rogue", "uid": 70009});
    let cases: Vec<(&str, &Value, Vec<&str>)> = vec![
        // The manager [managers] names, not every manager.
        (
            "vendor_requested",
            &asked,
            vec![
                "email:mike@example.com",
                "email:sam.s@corp.example",
                "email:maria@example.com",
                "hook:sec-slack",
            ],
        ),
        (
            "vendor_requested",
            &no_manager,
            vec![
                "email:mike@example.com",
                "email:maria@example.com",
                "email:sam.s@corp.example",
                "hook:sec-slack",
            ],
        ),
        (
            "vendor_activated",
            &activated,
            vec!["email:alice@example.com"],
        ),
        ("vendor_revoked", &revoked, vec!["email:alice@example.com"]),
        (
            "vendor_account_unknown",
            &unknown,
            vec![
                "email:sam.s@corp.example",
                "email:maria@example.com",
                "hook:sec-slack",
            ],
        ),
    ];
    for (event, detail, want) in cases {
        let out = plan(&vendor_trigger(event, detail), None, &policy(), &members);
        assert_eq!(recipients(&out), want, "{event}: {detail}");
        assert!(EVENTS.contains(&event), "{event} missing from EVENTS");
    }
}

/// An event about a vendor: no request, its facts in the detail.
fn vendor_trigger<'a>(event: &'a str, detail: &'a Value) -> Trigger<'a> {
    Trigger {
        event,
        actor: "sam",
        actor_uid: Some(61005),
        request: None,
        detail,
    }
}

/// Denied access tells security only when a user keeps trying (X.6, T39)
/// or when denials overflow what jitd counts apart; one denial tells
/// nobody.
#[test]
fn repeated_denials_and_their_overflow_tell_security_and_a_denial_nobody() {
    let security = [
        "email:sam.s@corp.example",
        "email:maria@example.com",
        "hook:sec-slack",
    ];
    let denied = json!({"user": "bob", "resource": "sudo", "count": 1});
    let mut t = trigger("access_denied", &denied, Some(1002));
    t.request = None;
    assert!(plan(&t, None, &policy(), &members).is_empty());
    let detail = json!({
        "user": "bob\u{1b}[2J", "uid": 1002, "attempts": 10,
        "resources": ["sudo", "db\u{7}"], "first": 1_700_000_000, "last": 1_700_000_060,
    });
    let mut t = trigger("access_denied_repeatedly", &detail, Some(1002));
    t.request = None;
    let out = plan(&t, None, &policy(), &members);
    assert_eq!(recipients(&out), security);
    let notice = &out[0].notice;
    assert!(
        notice.title.contains("keeps trying access without a grant"),
        "{}",
        notice.title
    );
    assert!(!format!("{notice:?}").contains('\u{1b}'), "{notice:?}");
    let resources = notice
        .fields
        .iter()
        .find(|f| f.label == "Resources")
        .unwrap();
    assert_eq!(resources.value, "sudo, db\\u{7}");
    let overflow = json!({"count": 5000, "max_tracked": 1024, "first": 1, "last": 2});
    let mut t = trigger("access_denied_overflow", &overflow, None);
    t.request = None;
    assert_eq!(recipients(&plan(&t, None, &policy(), &members)), security);
}

/// A grant revoked for not being used: its holder is told why, though
/// jitd (not a person) revoked it.
#[test]
fn a_grant_revoked_unused_tells_its_holder_why() {
    let detail = json!({"reason": "unused", "comment": "no session within 30m of its start"});
    let mut t = trigger("revoked", &detail, None);
    t.actor = "jitd";
    let req = request(Route::Owner, State::Active);
    let out = plan(&t, Some(&req), &policy(), &members);
    assert_eq!(recipients(&out), ["email:alice@example.com"]);
    let notice = &out[0].notice;
    assert_eq!(
        notice.title,
        "jit: grant 12 on sudo revoked: not used in time"
    );
    let why = notice.fields.iter().find(|f| f.label == "Why").unwrap();
    assert_eq!(why.value, "no session within 30m of its start");
}

/// A grant a policy rule approved (W1.10, T42): those the rule names hear
/// of it with the rule's name; nobody is asked to approve; the requester,
/// who read it in jitctl's reply, gets nothing more.
#[test]
fn a_policy_grant_tells_whom_its_rule_names() {
    let mut req = request(Route::Policy, State::Pending);
    req.policy = Some("oncall-night".into());
    let plan_of = |event: &str, detail: &Value| {
        plan(
            &trigger(event, detail, None),
            Some(&req),
            &policy(),
            &members,
        )
    };
    let applied = json!({"policy": "oncall-night", "action": "approve", "route": "policy",
                         "notify": ["owners", "security"]});
    let out = plan_of("policy_applied", &applied);
    assert_eq!(
        recipients(&out),
        [
            "email:olivia@example.com",
            "email:sam.s@corp.example",
            "email:maria@example.com",
            "hook:sec-slack"
        ]
    );
    let notice = &out[0].notice;
    assert_eq!(
        notice.title,
        "jit: alice granted sudo for 1h by policy oncall-night"
    );
    assert!(notice
        .fields
        .iter()
        .any(|f| f.label == "Policy" && f.value == "oncall-night"));
    let quiet = json!({"policy": "oncall-night", "action": "approve", "notify": []});
    assert!(plan_of("policy_applied", &quiet).is_empty());
    let lowered = json!({"policy": "oncall-night", "action": "lower", "notify": ["security"]});
    assert!(
        plan_of("policy_applied", &lowered).is_empty(),
        "the owners' approval notice names it"
    );
    assert!(plan_of("scored", &json!({})).is_empty(), "nobody is asked");
    let granted = json!({"approved_by": "policy oncall-night", "route": "policy"});
    assert!(plan_of("granted", &granted).is_empty());
}

/// Approvers see when a scheduled request would start; its holder hears
/// of a person's approval ahead of it (not of the policy's: jitctl said
/// so), of its start whoever approved it, and of a window missed.
#[test]
fn a_scheduled_grant_tells_approvers_its_start_and_its_holder_when_it_starts() {
    let mut pending = request(Route::Owner, State::Pending);
    pending.starts_at = Some(1_700_086_400);
    let out = plan(
        &trigger("scored", &json!({}), None),
        Some(&pending),
        &policy(),
        &members,
    );
    let starts = out[0].notice.fields.iter().find(|f| f.label == "Starts");
    assert_eq!(starts.unwrap().value, "2023-11-15T22:13:20Z");

    let ahead =
        json!({"starts_at": 1_700_086_400, "ends_at": 1_700_090_000, "approved_by": "olivia"});
    let out = plan(
        &trigger("scheduled", &ahead, None),
        Some(&pending),
        &policy(),
        &members,
    );
    assert_eq!(recipients(&out), ["email:alice@example.com"]);
    assert_eq!(
        out[0].notice.title,
        "jit: request 12 approved: sudo from 2023-11-15T22:13:20Z until 2023-11-15T23:13:20Z"
    );
    let by_policy = json!({"starts_at": 1_700_086_400, "approved_by": "policy"});
    let out = plan(
        &trigger("scheduled", &by_policy, None),
        Some(&pending),
        &policy(),
        &members,
    );
    assert!(out.is_empty(), "{out:?}");

    let mut active = request(Route::Auto, State::Active);
    active.starts_at = Some(1_700_000_000);
    let started = json!({"expires_at": 1_700_003_600, "approved_by": "policy", "scheduled": true});
    let out = plan(
        &trigger("granted", &started, None),
        Some(&active),
        &policy(),
        &members,
    );
    assert_eq!(recipients(&out), ["email:alice@example.com"]);
    assert_eq!(
        out[0].notice.title,
        "jit: scheduled grant 12 on sudo is active until 2023-11-14T23:13:20Z"
    );

    let missed = json!({"why": crate::core::schedule::WINDOW_OVER});
    let out = plan(
        &trigger("lapsed", &missed, None),
        Some(&pending),
        &policy(),
        &members,
    );
    assert_eq!(
        out[0].notice.title,
        "jit: request 12 for sudo lapsed: its window ended before it could start"
    );
}

#[test]
fn a_broken_or_fixed_oncall_schedule_reaches_security_and_a_new_version_nobody() {
    let broken = json!({"schedule": "primary", "file": "/etc/jit/oncall/primary.shifts",
        "reason": "/etc/jit/oncall/primary.shifts:2:7: 'x\u{1b}[2J' is not an RFC 3339 time"});
    let fixed =
        json!({"schedule": "primary", "file": "/etc/jit/oncall/primary.shifts", "shifts": 12});
    let security = vec![
        "email:sam.s@corp.example",
        "email:maria@example.com",
        "hook:sec-slack",
    ];
    for (event, detail, want) in [
        ("oncall_schedule_broken", &broken, security.clone()),
        ("oncall_schedule_restored", &fixed, security),
        ("oncall_schedule_loaded", &fixed, vec![]),
    ] {
        let out = plan(&vendor_trigger(event, detail), None, &policy(), &members);
        assert_eq!(recipients(&out), want, "{event}");
        assert!(out.is_empty() || EVENTS.contains(&event), "{event}");
    }
    let out = plan(
        &vendor_trigger("oncall_schedule_broken", &broken),
        None,
        &policy(),
        &members,
    );
    let notice = &out[0].notice;
    assert_eq!(
        notice.title,
        "jit: on-call schedule primary is broken: nobody is on call"
    );
    let problem = &notice
        .fields
        .iter()
        .find(|f| f.label == "Problem")
        .unwrap()
        .value;
    assert!(problem.contains("'x\\u{1b}[2J'"), "escaped: {problem}");
}
