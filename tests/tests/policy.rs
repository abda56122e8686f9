//! W1.10 policy rules with real jitd and jitctl: a rule approves at once
//! and says so everywhere, requests it does not cover route as before,
//! `policy explain` agrees with what `request` then does, break-glass is
//! untouched, and a bad rule is refused at its file:line:col.

use jit_tests::*;

/// `sudo` scores 75 for a first request (off-hours 0): under the ceiling 80.
fn config() -> String {
    let text = TEST_CONFIG.replacen(
        "eligible = [\"group:admins\"]\nmax_duration = \"4h\"",
        "eligible = [\"group:admins\"]\nmax_duration = \"4h\"\nbreak_glass = [\"user:alice\"]",
        1,
    );
    assert_ne!(text, TEST_CONFIG);
    format!(
        r#"{text}
[policy_limits]
risk_ceiling = 80

[[policy]]
name = "oncall-sudo"
users = ["alice"]
resources = ["sudo"]
max_duration = "30m"
ticket = "INC-[0-9]+"
action = "approve"
"#
    )
}

fn explain(env: &Env, user: &str, dur: &str, ticket: &str) -> Value {
    env.jitctl_json(
        user,
        &[
            "policy", "explain", "sudo", "--for", dur, "--ticket", ticket, "--json",
        ],
    )
}

fn request(env: &Env, user: &str, dur: &str, ticket: &str) -> Value {
    env.jitctl_json(
        user,
        &[
            "request", "sudo", "--for", dur, "--reason", "pager", "--ticket", ticket, "--json",
        ],
    )
}

#[test]
fn a_rule_approves_at_once_and_explain_agrees() {
    let env = Env::with_config(&config());
    let predicted = explain(&env, "alice", "30m", "INC-7");
    assert_eq!(predicted["route"], "policy", "{predicted:#}");
    assert_eq!(predicted["routed"], "dual", "{predicted:#}");
    assert_eq!(predicted["policy"], "oncall-sudo", "{predicted:#}");
    assert_eq!(predicted["rules"][0]["applies"], true, "{predicted:#}");

    let doc = request(&env, "alice", "30m", "INC-7");
    let id = id_of(&doc);
    assert_eq!(state_of(&doc), "active", "{doc:#}");
    assert_eq!(doc["route"], "policy", "{doc:#}");
    assert_eq!(doc["policy"], "oncall-sudo", "{doc:#}");
    assert_eq!(doc["risk"]["score"], 75, "risk is still computed: {doc:#}");
    assert_eq!(env.show("root", id)["policy"], "oncall-sudo");
    let list = env.jitctl_json("root", &["list", "--json"]);
    let listed = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("{list:#}"));
    assert_eq!(listed["policy"], "oncall-sudo", "{listed:#}");
    let shown = env.jitctl("alice", &["show", &id.to_string()]).ok();
    assert!(
        shown.stdout.contains("policy (policy oncall-sudo)"),
        "{shown}"
    );

    let events = env.audit_events_for(id);
    let event = |name: &str| {
        events
            .iter()
            .find(|e| e["event"] == name)
            .unwrap_or_else(|| panic!("no {name}: {events:#?}"))
    };
    assert_eq!(event("policy_applied")["detail"]["policy"], "oncall-sudo");
    assert_eq!(
        event("granted")["detail"]["approved_by"],
        "policy oncall-sudo"
    );
    let human = env
        .jitctl("alice", &["policy", "explain", "sudo", "--for", "30m"])
        .ok();
    assert!(
        human
            .stdout
            .contains("oncall-sudo (approve): not: it needs a ticket"),
        "{human}"
    );
}

#[test]
fn requests_no_rule_covers_route_as_before_and_explain_says_why() {
    let env = Env::with_config(&config());
    // Too long for the rule.
    let predicted = explain(&env, "alice", "31m", "INC-7");
    assert_eq!(predicted["route"], "dual", "{predicted:#}");
    assert!(predicted["policy"].is_null(), "{predicted:#}");
    let unmet = predicted["rules"][0]["unmet"].as_str().unwrap_or_default();
    assert!(unmet.contains("max_duration 30m"), "{predicted:#}");
    let doc = request(&env, "alice", "31m", "INC-7");
    assert_eq!(
        (state_of(&doc), &doc["route"]),
        ("pending", &serde_json::json!("dual")),
        "{doc:#}"
    );
    assert!(doc["policy"].is_null(), "{doc:#}");
    // A ticket the pattern refuses.
    let predicted = explain(&env, "alice", "30m", "CHG-1");
    assert_eq!(predicted["route"], "dual", "{predicted:#}");
    assert!(request(&env, "alice", "30m", "CHG-1")["policy"].is_null());
    // Someone the rule does not name.
    let predicted = explain(&env, "bob", "30m", "INC-7");
    assert_eq!(predicted["route"], "dual", "{predicted:#}");
    let doc = request(&env, "bob", "30m", "INC-7");
    assert_eq!(doc["route"], "dual", "{doc:#}");
    // Another user's explanation: security may, bob may not.
    env.jitctl(
        "bob",
        &["policy", "explain", "sudo", "--user", "alice", "--json"],
    )
    .code(3);
    let theirs = env.jitctl_json(
        "sam",
        &[
            "policy", "explain", "sudo", "--user", "alice", "--for", "30m", "--ticket", "INC-7",
            "--json",
        ],
    );
    assert_eq!(theirs["policy"], "oncall-sudo", "{theirs:#}");
}

#[test]
fn break_glass_is_never_decided_by_a_rule() {
    let env = Env::with_config(&config());
    let doc = env.jitctl_json(
        "alice",
        &[
            "break-glass",
            "sudo",
            "--reason",
            "db down",
            "--for",
            "20m",
            "--json",
        ],
    );
    assert_eq!(doc["route"], "break_glass", "{doc:#}");
    assert!(doc["policy"].is_null(), "{doc:#}");
}

#[test]
fn a_bad_rule_is_refused_at_its_line_and_column() {
    let bad_text = config().replace(
        "resources = [\"sudo\"]",
        "resources = [\"sudo\", \"nosuch\"]",
    );
    let env = Env::without_jitd(&config());
    let bad = env.dir.path().join("bad.toml");
    std::fs::write(&bad, &bad_text).unwrap();
    let path = bad.display().to_string();
    let line = bad_text.lines().position(|l| l.contains("nosuch")).unwrap() + 1;
    let col = bad_text
        .lines()
        .nth(line - 1)
        .unwrap()
        .find("\"nosuch")
        .unwrap()
        + 1;
    let check = env
        .run_as(
            "root",
            &jitd_bin().display().to_string(),
            &["--check-config", &path],
        )
        .fails();
    let want = format!(
        "{path}:{line}:{col}: policy 'oncall-sudo': resource 'nosuch' is not a [[resource]]"
    );
    assert!(
        check.stderr.contains(&want) || check.stdout.contains(&want),
        "no {want:?}:{check}"
    );
}

/// The hour (0-23) UTC+14 reads now, and `hours` from it to `h` later.
fn hours_from_now_at_plus_14(from: u64, to: u64) -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let local = (secs / 3600 + 14) % 24;
    format!("{:02}:00-{:02}:00", (local + from) % 24, (local + to) % 24)
}

#[test]
fn a_window_on_the_real_clock_in_another_zone_decides() {
    // Etc/GMT-14 is UTC+14 (POSIX signs): the window is read on its wall
    // clock, not jitd's. Within the hour just begun and the next.
    let within = hours_from_now_at_plus_14(0, 2);
    let later = hours_from_now_at_plus_14(2, 4);
    let text = config().replace(
        "ticket = \"INC-[0-9]+\"\naction = \"approve\"\n",
        &format!(
            "hours = \"{within}\"\ntimezone = \"Etc/GMT-14\"\naction = \"approve\"\n\n\
             [[policy]]\nname = \"later\"\nusers = [\"bob\"]\nresources = [\"sudo\"]\n\
             max_duration = \"30m\"\nhours = \"{later}\"\ntimezone = \"Etc/GMT-14\"\naction = \"approve\"\n"
        ),
    );
    assert_ne!(text, config());
    let env = Env::with_config(&text);
    let doc = request(&env, "alice", "30m", "");
    assert_eq!(doc["policy"], "oncall-sudo", "{within}: {doc:#}");
    let predicted = explain(&env, "bob", "30m", "");
    let unmet = predicted["rules"][1]["unmet"].as_str().unwrap_or_default();
    assert!(
        unmet.starts_with(&format!("outside its window ({later}")),
        "{predicted:#}"
    );
    let doc = request(&env, "bob", "30m", "");
    assert!(doc["policy"].is_null(), "{later}: {doc:#}");
}
