//! W1.3 routing: auto, owner and dual approval, and who may decide.

use jit_tests::*;

fn assert_approvers(doc: &Value, expected: &[&str]) {
    let mut who: Vec<String> = doc["approvals"]
        .as_array()
        .unwrap_or_else(|| panic!("no approvals array: {doc:#}"))
        .iter()
        .map(|a| a["who"].as_str().unwrap_or_default().to_owned())
        .collect();
    who.sort();
    let mut want: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(who, want, "approvals of {doc:#}");
}

#[test]
fn auto_route_is_active_at_once() {
    let env = Env::new();
    let doc = env.request("alice", "logs", "30m", "read the app logs");
    assert_eq!(state_of(&doc), "active", "{doc:#}");
    assert_eq!(doc["route"], "auto", "{doc:#}");
    assert_eq!(doc["kind"], "grant", "{doc:#}");
    assert_eq!(doc["user"], "alice", "{doc:#}");
    assert_eq!(doc["uid"], 61001, "{doc:#}");
    assert_eq!(doc["resource"], "logs", "{doc:#}");
    assert_eq!(doc["reason"], "read the app logs", "{doc:#}");
    assert!(doc["ticket"].is_null(), "{doc:#}");
    assert!(
        doc["expires_at"].is_string(),
        "active grant without expires_at: {doc:#}"
    );
    assert!(doc["requested_at"].is_string(), "{doc:#}");
    let score = doc["risk"]["score"].as_u64().expect("risk.score");
    assert!(score < 30, "{doc:#}");
    let factors = doc["risk"]["factors"].as_array().expect("risk.factors");
    assert!(
        factors.iter().any(|f| f["name"] == "first_request"),
        "first request factor missing: {doc:#}"
    );
    assert!(
        factors.iter().all(|f| f["name"] != "off_hours"),
        "off_hours weight is 0 in the test config: {doc:#}"
    );
    let shown = env.show("alice", id_of(&doc));
    assert_eq!(state_of(&shown), "active");
    assert_eq!(shown["expires_at"], doc["expires_at"]);
    // A ticket reference is kept.
    let t = env.jitctl_json(
        "bob",
        &[
            "request", "logs", "--for", "10m", "--reason", "x", "--ticket", "INC-42", "--json",
        ],
    );
    assert_eq!(t["ticket"], "INC-42", "{t:#}");
}

#[test]
fn owner_route_needs_the_owner() {
    let env = Env::new();
    let doc = env.request("alice", "db", "2h", "migrate the schema");
    let id = id_of(&doc);
    assert_eq!(state_of(&doc), "pending", "{doc:#}");
    assert_eq!(doc["route"], "owner", "{doc:#}");
    assert!(
        doc["expires_at"].is_null(),
        "pending request with expiry: {doc:#}"
    );
    assert!(!awaiting_of(&doc).is_empty(), "{doc:#}");

    // Not approvers: a manager, an outsider, the requester, root.
    env.approve("mike", id).code(3);
    env.approve("oscar", id).code(3);
    env.approve("alice", id).code(3);
    env.approve("root", id).code(3);
    assert_eq!(state_of(&env.show("alice", id)), "pending");

    let done = env.approve("olivia", id).ok().json();
    assert_eq!(state_of(&done), "active", "{done:#}");
    assert!(done["expires_at"].is_string(), "{done:#}");
    assert_approvers(&done, &["olivia"]);
    let approval = &done["approvals"][0];
    assert_eq!(approval["uid"], 61003, "{done:#}");
    assert_eq!(approval["comment"], "ok", "{done:#}");
    assert!(awaiting_of(&done).is_empty(), "{done:#}");

    // Decided requests and unknown ids.
    env.approve("olivia", id).code(6);
    env.jitctl(
        "olivia",
        &["deny", &id.to_string(), "--comment", "too late"],
    )
    .code(6);
    env.approve("olivia", 999_999).code(4);
    env.jitctl("alice", &["show", "999999", "--json"]).code(4);
}

#[test]
fn dual_route_needs_manager_and_security() {
    let env = Env::new();
    let doc = env.request("alice", "sudo", "1h", "patch the kernel");
    let id = id_of(&doc);
    assert_eq!(state_of(&doc), "pending", "{doc:#}");
    assert_eq!(doc["route"], "dual", "{doc:#}");
    let mut awaiting = awaiting_of(&doc);
    awaiting.sort();
    assert_eq!(awaiting, ["manager", "security"], "{doc:#}");

    env.approve("alice", id).code(3); // own request
    env.approve("oscar", id).code(3);
    env.approve("olivia", id).code(3); // the owner does not decide dual requests
    env.approve("root", id).code(3);

    let half = env.approve("mike", id).ok().json();
    assert_eq!(state_of(&half), "pending", "{half:#}");
    assert_eq!(awaiting_of(&half), ["security"], "{half:#}");
    env.approve("mike", id).code(6);

    let done = env.approve("sam", id).ok().json();
    assert_eq!(state_of(&done), "active", "{done:#}");
    assert!(done["expires_at"].is_string(), "{done:#}");
    assert_approvers(&done, &["mike", "sam"]);
    let mut roles: Vec<&str> = done["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["role"].as_str().unwrap_or_default())
        .collect();
    roles.sort();
    assert_eq!(roles, ["manager", "security"], "{done:#}");
    env.approve("sam", id).code(6);

    // An approver may end what they approved (watching its session, say);
    // the resource's owner, who did not, may not.
    let id_arg = id.to_string();
    env.jitctl("olivia", &["revoke", &id_arg]).code(3);
    let ended = env.jitctl_json("mike", &["revoke", &id_arg, "--json"]);
    assert_eq!(state_of(&ended), "revoked", "{ended:#}");
}

#[test]
fn a_person_with_both_roles_counts_once() {
    let env = Env::new();
    let id = id_of(&env.request("bob", "sudo", "30m", "rotate certificates"));
    let half = env.approve("maria", id).ok().json();
    assert_eq!(
        state_of(&half),
        "pending",
        "maria alone approved a dual request: {half:#}"
    );
    let left = awaiting_of(&half);
    assert_eq!(left.len(), 1, "{half:#}");
    env.approve("maria", id).code(6);
    let other = match left[0].as_str() {
        "security" => "sam",
        "manager" => "mike",
        r => panic!("unexpected role {r}: {half:#}"),
    };
    let done = env.approve(other, id).ok().json();
    assert_eq!(state_of(&done), "active", "{done:#}");
    assert_approvers(&done, &["maria", other]);
}

#[test]
fn deny_ends_a_request() {
    let env = Env::new();
    let id = id_of(&env.request("bob", "db", "2h", "bulk export"));
    env.jitctl("mike", &["deny", &id.to_string(), "--comment", "no"])
        .code(3);
    env.jitctl(
        "olivia",
        &["deny", &id.to_string(), "--comment", "not this week"],
    )
    .ok();
    let doc = env.show("bob", id);
    assert_eq!(state_of(&doc), "denied", "{doc:#}");
    assert!(
        doc["approvals"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["verdict"] == "deny"
                && a["who"] == "olivia"
                && a["comment"] == "not this week"),
        "{doc:#}"
    );
    env.approve("olivia", id).code(6);
}

#[test]
fn list_shows_what_each_may_see() {
    let env = Env::new();
    let a = id_of(&env.request("alice", "db", "2h", "a"));
    let b = id_of(&env.request("bob", "db", "2h", "b"));
    let ids = |user: &str, filter: &str| -> Vec<u64> {
        let v = env.jitctl_json(user, &["list", filter, "--json"]);
        v.as_array()
            .unwrap_or_else(|| panic!("not an array: {v:#}"))
            .iter()
            .map(id_of)
            .collect()
    };
    let alice = ids("alice", "--all");
    assert!(
        alice.contains(&a) && !alice.contains(&b),
        "alice sees {alice:?}"
    );
    let olivia = ids("olivia", "--pending");
    assert!(
        olivia.contains(&a) && olivia.contains(&b),
        "olivia sees {olivia:?}"
    );
    let audrey = ids("audrey", "--all");
    assert!(
        audrey.contains(&a) && audrey.contains(&b),
        "the auditor sees {audrey:?}"
    );
    assert!(ids("oscar", "--all").is_empty());
    env.approve("olivia", a).ok();
    let active = ids("root", "--active");
    assert_eq!(active, [a]);
}
