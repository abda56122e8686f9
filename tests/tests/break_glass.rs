//! W2 break-glass: an emergency grant at once, capped and rate-limited, a
//! justification that is escalated when late, and a post-facto review by a
//! manager and security whose "unjustified" verdict opens an incident.

use jit_tests::*;
use std::time::Duration;

/// [`TEST_CONFIG`] where admins may break the glass on `sudo`, with `policy`
/// as the `[break_glass]` section.
fn config(policy: &str) -> String {
    let out = TEST_CONFIG
        .replacen(
            "[[resource]]",
            &format!("[break_glass]\n{policy}\n\n[[resource]]"),
            1,
        )
        .replacen(
            "max_duration = \"4h\"",
            "max_duration = \"4h\"\nbreak_glass = [\"group:admins\"]\nbreak_glass_max = \"2h\"",
            1,
        );
    assert_ne!(out, TEST_CONFIG);
    out
}

fn break_glass(env: &Env, user: &str, args: &[&str]) -> Run {
    let mut all = vec!["break-glass"];
    all.extend_from_slice(args);
    env.jitctl(user, &all)
}

fn events_named(env: &Env, id: u64, name: &str) -> Vec<Value> {
    env.audit_events_for(id)
        .into_iter()
        .filter(|e| e["event"] == name)
        .collect()
}

#[test]
fn break_glass_opens_sudo_at_once_and_is_flagged_everywhere() {
    let env = Env::with_config(&config(""));
    let stack = sudo_stack(&env, "sudo", "timeout=1s");
    env.install_pam(&[("sudo", &stack)], SUDOERS);
    let whoami = ["sh", "-c", "echo ran-as-root $(id -u)"];
    assert_ne!(env.sudo("alice", &[], &whoami).code, 0, "no grant yet");

    // Not listed in break_glass, over the cap, no reason: refused, saying why.
    let run = break_glass(&env, "oscar", &["sudo", "--reason", "fire"]).code(3);
    assert!(run.stderr.contains("may not use break-glass"), "{run}");
    let run = break_glass(&env, "alice", &["sudo", "--for", "3h", "--reason", "fire"]).code(2);
    assert!(run.stderr.contains("2h"), "the cap is named:{run}");
    break_glass(&env, "alice", &["sudo", "--reason", ""]).code(2);

    // Human output says what is owed.
    let run = break_glass(&env, "alice", &["sudo", "--reason", "db1 is down"]).ok();
    assert!(run.stdout.contains("Security has been told"), "{run}");
    assert!(run.stdout.contains("jitctl justify"), "{run}");
    let doc = env.show("alice", list_newest(&env, "alice"));
    let id = id_of(&doc);
    assert_eq!(state_of(&doc), "active", "{doc:#}");
    assert_eq!(doc["route"], "break_glass", "{doc:#}");
    assert_eq!(doc["break_glass"], true, "{doc:#}");
    assert!(doc["approvals"].as_array().unwrap().is_empty(), "{doc:#}");
    let case = &doc["follow_up"];
    assert_eq!(case["status"], "awaiting justification", "{doc:#}");
    assert_eq!(case["overdue"], false, "{doc:#}");
    // Default duration: the resource's break_glass_max (2h).
    assert_eq!(doc["duration_secs"], 7200, "{doc:#}");

    // Usable like any grant: sudo is allowed at once.
    let run = env.sudo("alice", &[], &whoami).ok();
    assert!(run.stdout.contains("ran-as-root 0"), "{run}");

    // Flagged in list, show and the audit trail.
    let listed = env.jitctl_json("sam", &["list", "--json"]);
    let row = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("security cannot see {id}: {listed:#}"));
    assert_eq!(row["break_glass"], true, "{row:#}");
    let managers_see_it = env.jitctl_json("mike", &["list", "--json"]);
    assert!(
        managers_see_it
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == id),
        "reviewers (managers) see break-glass grants: {managers_see_it:#}"
    );
    let used = events_named(&env, id, "break_glass");
    assert_eq!(used.len(), 1, "{:#?}", env.audit_events_for(id));
    assert_eq!(used[0]["detail"]["reason"], "db1 is down");
    assert_eq!(used[0]["detail"]["user"], "alice");
    assert!(env
        .audit_events_for(id)
        .iter()
        .all(|e| e["break_glass"] == true));
    let text = env.jitctl("sam", &["audit"]).ok();
    assert!(text.stdout.contains("BREAK-GLASS"), "{text}");

    // One grant at a time, as for normal requests.
    break_glass(&env, "alice", &["sudo", "--reason", "again"]).code(6);
}

/// The id of the newest request `user` sees.
fn list_newest(env: &Env, user: &str) -> u64 {
    let all = env.jitctl_json(user, &["list", "--all", "--json"]);
    all.as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["id"].as_u64())
        .max()
        .expect("no requests")
}

#[test]
fn a_pending_request_is_superseded_by_break_glass() {
    let env = Env::with_config(&config(""));
    let pending = id_of(&env.request("alice", "sudo", "1h", "patching"));
    let doc = env.jitctl_json(
        "alice",
        &[
            "break-glass",
            "sudo",
            "--for",
            "30m",
            "--reason",
            "outage",
            "--json",
        ],
    );
    assert_eq!(state_of(&doc), "active", "{doc:#}");
    assert_eq!(doc["duration_secs"], 1800);
    assert_eq!(state_of(&env.show("alice", pending)), "lapsed");
    // Approving it now cannot produce a second grant.
    env.approve("mike", pending).code(6);
}

#[test]
fn a_late_justification_is_escalated_once_and_still_accepted() {
    let env = Env::with_config(&config("justify_within = \"2s\""));
    let doc = env.jitctl_json(
        "alice",
        &["break-glass", "sudo", "--reason", "outage", "--json"],
    );
    let id = id_of(&doc);
    let overdue = wait_for(Duration::from_secs(6), || {
        let d = env.show("alice", id);
        (d["follow_up"]["overdue"] == true).then_some(d)
    })
    .unwrap_or_else(|| panic!("never overdue: {:#}", env.show("alice", id)));
    assert_eq!(overdue["follow_up"]["status"], "justification overdue");
    let escalated = events_named(&env, id, "justification_overdue");
    assert_eq!(escalated.len(), 1, "{escalated:#?}");
    assert_eq!(escalated[0]["detail"]["user"], "alice");
    assert_eq!(escalated[0]["detail"]["resource"], "sudo");

    // Only the holder justifies.
    env.jitctl("bob", &["justify", &id.to_string(), "--reason", "x"])
        .code(3);
    let done = env.jitctl_json(
        "alice",
        &[
            "justify",
            &id.to_string(),
            "--reason",
            "db1 disk full",
            "--json",
        ],
    );
    assert_eq!(done["follow_up"]["status"], "awaiting review", "{done:#}");
    assert_eq!(done["follow_up"]["justification"], "db1 disk full");
    let justified = events_named(&env, id, "justified");
    assert_eq!(justified[0]["detail"]["late"], true, "{justified:#?}");
    env.jitctl("alice", &["justify", &id.to_string(), "--reason", "again"])
        .code(6);
    // Not a break-glass grant.
    let normal = id_of(&env.request("bob", "logs", "10m", "logs"));
    env.jitctl("bob", &["justify", &normal.to_string(), "--reason", "x"])
        .code(2);
}

#[test]
fn a_justification_that_fell_due_while_jitd_was_down_is_escalated_at_start() {
    let mut env = Env::with_config(&config("justify_within = \"1s\""));
    env.stop_jitd();
    env.start_jitd();
    let doc = env.jitctl_json(
        "alice",
        &["break-glass", "sudo", "--reason", "outage", "--json"],
    );
    let id = id_of(&doc);
    env.stop_jitd();
    wait_until_wall(unix_secs(&doc["follow_up"]["justify_by"]) as f64);
    env.start_jitd();
    let escalated = wait_for(Duration::from_secs(3), || {
        let e = events_named(&env, id, "justification_overdue");
        (!e.is_empty()).then_some(e)
    });
    assert!(escalated.is_some(), "{}", env.jitd_log_tail());
}

#[test]
fn reviews_need_a_manager_and_security_and_unjustified_opens_an_incident() {
    let env = Env::with_config(&config(""));
    let doc = env.jitctl_json(
        "alice",
        &["break-glass", "sudo", "--reason", "outage", "--json"],
    );
    let id = id_of(&doc).to_string();
    let review = |user: &str, verdict: &str| {
        env.jitctl(
            user,
            &[
                "review",
                &id,
                "--verdict",
                verdict,
                "--comment",
                "seen",
                "--json",
            ],
        )
    };
    review("alice", "justified").code(3); // the holder
    review("oscar", "justified").code(3); // no reviewer role
    review("olivia", "justified").code(3); // an owner is not a reviewer
    env.jitctl(
        "mike",
        &["review", &id, "--verdict", "maybe", "--comment", "x"],
    )
    .code(2);
    env.jitctl(
        "mike",
        &["review", &id, "--verdict", "justified", "--comment", ""],
    )
    .code(2);

    let first = review("mike", "justified").ok().json();
    assert_eq!(first["follow_up"]["status"], "awaiting justification");
    assert_eq!(
        first["follow_up"]["awaiting_reviews"],
        serde_json::json!(["security"])
    );
    review("mike", "unjustified").code(6); // once per person
                                           // maria holds both roles: she fills the one still open.
    let last = review("maria", "unjustified").ok().json();
    let case = &last["follow_up"];
    assert_eq!(case["status"], "closed", "{last:#}");
    assert_eq!(case["reviews"].as_array().unwrap().len(), 2, "{last:#}");
    let incident = case["incidents"][0].as_u64().expect("an incident");

    let opened = events_named(&env, id_of(&doc), "incident_opened");
    assert_eq!(opened.len(), 1, "{opened:#?}");
    assert_eq!(opened[0]["detail"]["user"], "alice");
    assert_eq!(opened[0]["detail"]["reviewer"], "maria");
    assert_eq!(events_named(&env, id_of(&doc), "case_closed").len(), 1);

    let listed = env.jitctl_json("sam", &["incidents", "list", "--json"]);
    assert_eq!(listed[0]["id"], incident, "{listed:#}");
    assert_eq!(listed[0]["user"], "alice");
    assert_eq!(listed[0]["resource"], "sudo");
    let shown = env.jitctl_json(
        "audrey",
        &["incidents", "show", &incident.to_string(), "--json"],
    );
    assert_eq!(shown["opened_by"], "maria", "{shown:#}");
    let text = env.jitctl("sam", &["incidents", "list"]).ok();
    assert!(text.stdout.contains("alice"), "{text}");
    // Incidents are for security and auditors only.
    env.jitctl("alice", &["incidents", "list"]).code(3);
    env.jitctl("sam", &["incidents", "show", "999"]).code(4);
}

#[test]
fn two_justified_verdicts_close_the_case_without_an_incident() {
    let env = Env::with_config(&config(""));
    let id = id_of(&env.jitctl_json(
        "bob",
        &["break-glass", "sudo", "--reason", "outage", "--json"],
    ));
    let s = id.to_string();
    env.jitctl("bob", &["justify", &s, "--reason", "pager 123"])
        .ok();
    for reviewer in ["sam", "mike"] {
        env.jitctl(
            reviewer,
            &["review", &s, "--verdict", "justified", "--comment", "fine"],
        )
        .ok();
    }
    let doc = env.show("bob", id);
    assert_eq!(doc["follow_up"]["status"], "closed", "{doc:#}");
    assert!(doc["follow_up"]["incidents"].as_array().unwrap().is_empty());
    let text = env.jitctl("sam", &["show", &s]).ok();
    assert!(text.stdout.contains("BREAK-GLASS"), "{text}");
    assert!(text.stdout.contains("pager 123"), "{text}");
    assert!(env
        .jitctl_json("sam", &["incidents", "list", "--json"])
        .as_array()
        .unwrap()
        .is_empty());
}

#[test]
fn the_rate_limit_refuses_and_says_who_to_call() {
    let env = Env::with_config(&config(
        "rate_limit = 2\nrate_window = \"1h\"\ncontact = \"the SOC on +1 555 0100\"",
    ));
    for _ in 0..2 {
        let id = id_of(&env.jitctl_json(
            "alice",
            &["break-glass", "sudo", "--reason", "outage", "--json"],
        ));
        env.jitctl("alice", &["revoke", &id.to_string()]).ok();
    }
    let run = break_glass(&env, "alice", &["sudo", "--reason", "third"]).code(3);
    assert!(run.stderr.contains("call the SOC on +1 555 0100"), "{run}");
    run.assert_clean_error();
    // Per user: bob is not limited by alice's use.
    break_glass(&env, "bob", &["sudo", "--reason", "outage"]).ok();
    let refused: Vec<Value> = env
        .audit_events()
        .into_iter()
        .filter(|e| e["event"] == "break_glass_refused")
        .collect();
    assert_eq!(refused.len(), 1, "{refused:#?}");
    // Recent break-glass use raises the risk of later requests.
    let doc = env.request("alice", "db", "2h", "after the outage");
    let factors = doc["risk"]["factors"].as_array().unwrap();
    assert!(
        factors.iter().any(|f| f["name"] == "recent_break_glass"),
        "{doc:#}"
    );
}
