//! On-call schedules end to end (docs/design.md "On-call schedules", T43):
//! `jitctl status` shows who is on call now; the file replaced while jitd
//! runs is read without a restart; a group-writable or malformed one puts
//! nobody on call, is audited, and security is told once, and again when
//! it is fixed.

use jit_tests::sinks::{json_hook_notify, HttpSink};
use jit_tests::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// An RFC 3339 time `secs` from now, at UTC+01:00.
fn from_now(secs: i64) -> String {
    let at = SystemTime::now() + Duration::from_secs(3600);
    let at = if secs >= 0 {
        at + Duration::from_secs(secs.unsigned_abs())
    } else {
        at - Duration::from_secs(secs.unsigned_abs())
    };
    let utc = humantime::format_rfc3339_seconds(at).to_string();
    // The wall time an hour later, with the offset that says so.
    format!("{}+01:00", utc.trim_end_matches('Z'))
}

/// A shift for each of `users` holding now, and one long past for oscar.
fn shifts(users: &[&str]) -> String {
    let mut text = String::from("# written by the pager\n");
    for user in users {
        text.push_str(&format!("{user} {} {}\n", from_now(-600), from_now(3600)));
    }
    text.push_str("oscar 2026-01-01T00:00:00+01:00 2026-01-02T00:00:00+01:00\n");
    text
}

/// Writes `text` beside `file` and renames it over, as config management does.
fn replace(file: &Path, text: &str, mode: u32) {
    let tmp = file.with_extension("tmp");
    fs::write(&tmp, text).unwrap();
    fs::set_permissions(&tmp, fs::Permissions::from_mode(mode)).unwrap();
    fs::rename(tmp, file).unwrap();
}

/// jitd with schedule "primary" (alice and bob on call), security told
/// through a JSON webhook on `port`.
fn oncall_env(port: u16) -> (Env, PathBuf) {
    oncall_env_with(port, "")
}

/// [`oncall_env`] with `more` config.
fn oncall_env_with(port: u16, more: &str) -> (Env, PathBuf) {
    let mut env = Env::without_jitd(TEST_CONFIG);
    let dir = env.dir.path().join("oncall");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    let file = dir.join("primary.shifts");
    replace(&file, &shifts(&["alice", "bob"]), 0o644);
    env.write_config(&format!(
        "{TEST_CONFIG}{more}\n[oncall.primary]\nfile = \"{}\"\n{}",
        file.display(),
        json_hook_notify("security = [\"hook:json\"]", port)
    ));
    env.start_jitd();
    (env, file)
}

/// Schedule "primary" in `jitctl status --json`.
fn primary(env: &Env) -> Value {
    let status = env.jitctl_json("alice", &["status", "--json"]);
    status["oncall"][0].clone()
}

fn oncall_events(env: &Env) -> Vec<String> {
    env.audit_events()
        .into_iter()
        .filter_map(|e| e["event"].as_str().map(str::to_owned))
        .filter(|e| e.starts_with("oncall_"))
        .collect()
}

#[test]
fn status_shows_the_schedule_and_a_broken_file_puts_nobody_on_call_and_tells_security() {
    let http = HttpSink::start();
    let (env, file) = oncall_env(http.port);
    let schedule = primary(&env);
    assert_eq!(schedule["name"], "primary", "{schedule:#}");
    assert_eq!(schedule["shifts"], 3, "{schedule:#}");
    assert_eq!(schedule["on_call"], serde_json::json!(["alice", "bob"]));
    assert_eq!(schedule["problem"], Value::Null);
    let human = env.jitctl("alice", &["status"]).ok();
    assert!(
        human
            .stdout
            .contains("on call (primary): alice, bob (3 shifts)"),
        "{human}"
    );

    // Replaced while jitd runs: read at the next lookup.
    replace(&file, &shifts(&["bob"]), 0o644);
    assert_eq!(primary(&env)["on_call"], serde_json::json!(["bob"]));

    // Group-writable: nobody, and security is told.
    fs::set_permissions(&file, fs::Permissions::from_mode(0o664)).unwrap();
    let schedule = primary(&env);
    assert_eq!(schedule["on_call"], serde_json::json!([]), "{schedule:#}");
    let problem = schedule["problem"].as_str().unwrap_or_default().to_owned();
    assert!(
        problem.ends_with("primary.shifts: writable by its group or others (mode 0664)"),
        "{schedule:#}"
    );
    let human = env.jitctl("alice", &["status"]).ok();
    assert!(
        human
            .stdout
            .contains("on call (primary): BROKEN, nobody is on call: "),
        "{human}"
    );
    let posts = http.wait_for(1, Duration::from_secs(10));
    let told = posts[0].json();
    assert_eq!(told["event"], "oncall_schedule_broken", "{told:#}");
    assert_eq!(
        told["title"],
        "jit: on-call schedule primary is broken: nobody is on call"
    );
    assert_eq!(told["fields"]["Problem"], problem.as_str(), "{told:#}");

    // Malformed now: still nobody, with the line and column; not told twice.
    replace(
        &file,
        &format!("{}alice yesterday {}\n", shifts(&["bob"]), from_now(60)),
        0o644,
    );
    let schedule = primary(&env);
    assert_eq!(schedule["on_call"], serde_json::json!([]));
    let problem = schedule["problem"].as_str().unwrap_or_default();
    assert!(
        problem.ends_with("primary.shifts:4:7: 'yesterday' is not an RFC 3339 time with an offset: expected a four-digit year"),
        "{schedule:#}"
    );

    // Fixed: on call again, and security hears that too.
    replace(&file, &shifts(&["alice"]), 0o600);
    assert_eq!(primary(&env)["on_call"], serde_json::json!(["alice"]));
    let posts = http.wait_for(2, Duration::from_secs(10));
    assert_eq!(posts[1].json()["event"], "oncall_schedule_restored");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(http.posts().len(), 2, "{:#?}", http.posts());
    assert_eq!(
        oncall_events(&env),
        [
            "oncall_schedule_loaded",
            "oncall_schedule_loaded",
            "oncall_schedule_broken",
            "oncall_schedule_restored"
        ]
    );
}

/// `sudo` scores 75 for a first request (off-hours 0): under the ceiling.
const ONCALL_RULE: &str = r#"
[policy_limits]
risk_ceiling = 80

[[policy]]
name = "pager"
oncall = "primary"
resources = ["sudo"]
max_duration = "30m"
action = "approve"
"#;

/// The route of `user`'s 30-minute request for `sudo`, withdrawn or
/// revoked after.
fn route_of_request(env: &Env, user: &str) -> (String, String) {
    let doc = env.jitctl_json(
        user,
        &[
            "request", "sudo", "--for", "30m", "--reason", "paged", "--json",
        ],
    );
    let id = id_of(&doc).to_string();
    env.jitctl(user, &["revoke", &id, "--comment", "done"]).ok();
    (
        doc["route"].as_str().unwrap_or_default().to_owned(),
        doc["policy"].as_str().unwrap_or_default().to_owned(),
    )
}

#[test]
fn a_rule_naming_the_schedule_approves_who_is_on_call_as_the_file_says() {
    let http = HttpSink::start();
    let (env, file) = oncall_env_with(http.port, ONCALL_RULE);
    let approved = ("policy".to_owned(), "pager".to_owned());
    assert_eq!(route_of_request(&env, "alice"), approved);

    // Replaced while jitd runs: alice is off call at once.
    replace(&file, &shifts(&["bob"]), 0o644);
    assert_eq!(
        route_of_request(&env, "alice"),
        ("dual".into(), String::new())
    );
    assert_eq!(route_of_request(&env, "bob"), approved);

    // Group-writable, then malformed: nobody is on call, never everyone.
    fs::set_permissions(&file, fs::Permissions::from_mode(0o664)).unwrap();
    assert_eq!(
        route_of_request(&env, "bob"),
        ("dual".into(), String::new())
    );
    replace(&file, &format!("{}bob soon\n", shifts(&["bob"])), 0o644);
    assert_eq!(
        route_of_request(&env, "bob"),
        ("dual".into(), String::new())
    );
    replace(&file, &shifts(&["bob"]), 0o644);
    assert_eq!(route_of_request(&env, "bob"), approved);
}
