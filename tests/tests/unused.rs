//! Unused grants (docs/design.md "Unused grants"): a grant of a resource
//! with `revoke_unused_after` that no session used by then is revoked by
//! jitd and its holder told why; a used one stays; the deadline counts from
//! the grant's start across a restart of jitd, and one that passed while
//! jitd was down is handled at start.

use jit_tests::sinks::{json_hook_notify, HttpSink};
use jit_tests::*;
use std::time::Duration;

/// [`TEST_CONFIG`] with `logs` (auto-approved) revoked unused after
/// `after`, requesters told through a JSON webhook on `port`; sudo gated
/// on `logs`.
fn unused_env(after: &str, port: u16) -> Env {
    let base = TEST_CONFIG.replace(
        "eligible = [\"group:admins\"]\nmax_duration = \"1h\"\n",
        &format!("eligible = [\"group:admins\"]\nmax_duration = \"1h\"\nrevoke_unused_after = \"{after}\"\n"),
    );
    assert_ne!(base, TEST_CONFIG);
    let config = base + &json_hook_notify("requester = [\"hook:json\"]", port);
    let env = Env::with_config(&config);
    let stack = sudo_stack(&env, "logs", "timeout=1s");
    env.install_pam(&[("sudo", &stack)], SUDOERS);
    env
}

/// When the audit trail says `event` happened to request `id`.
#[track_caller]
fn at_of(env: &Env, id: u64, event: &str) -> i64 {
    let events = env.audit_events_for(id);
    let found = events
        .iter()
        .find(|e| e["event"] == event)
        .unwrap_or_else(|| panic!("no {event} for {id}: {events:#?}"));
    unix_secs(&found["at"])
}

#[test]
fn an_unused_grant_is_revoked_and_its_holder_told_why_and_a_used_one_stays() {
    let http = HttpSink::start();
    let env = unused_env("2s", http.port);
    let unused = id_of(&env.request("alice", "logs", "10m", "look"));
    let used = id_of(&env.request("bob", "logs", "10m", "look"));
    env.sudo("bob", &[], &["true"]).ok();

    env.wait_state(unused, "revoked", Duration::from_secs(6));
    let revoked = env
        .audit_events_for(unused)
        .into_iter()
        .find(|e| e["event"] == "revoked")
        .unwrap();
    assert_eq!(
        (&revoked["actor"], &revoked["actor_uid"]),
        (&Value::from("jitd"), &Value::Null)
    );
    assert_eq!(revoked["detail"]["reason"], "unused", "{revoked:#}");
    let took = at_of(&env, unused, "revoked") - at_of(&env, unused, "granted");
    assert!((2..=3).contains(&took), "revoked {took} s after its start");
    // The holder is told, with the reason.
    let posts = http.wait_for(1, Duration::from_secs(10));
    let told = posts[0].json();
    assert_eq!(told["event"], "revoked", "{told:#}");
    assert_eq!(told["request"], unused, "{told:#}");
    assert!(
        told["title"]
            .as_str()
            .unwrap_or_default()
            .contains("not used in time"),
        "{told:#}"
    );
    assert_eq!(told["fields"]["Why"], "no session within 2s of its start");
    // Over: sudo is denied.
    assert_ne!(env.sudo("alice", &[], &["true"]).code, 0);

    // bob's grant had a session: it stays.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(state_of(&env.show("root", used)), "active");
    assert_eq!(http.posts().len(), 1, "{:#?}", http.posts());
}

#[test]
fn the_deadline_counts_from_the_start_across_a_restart() {
    let http = HttpSink::start();
    let mut env = unused_env("3s", http.port);
    // A restart in between: the deadline is the grant's start plus 3 s,
    // not the restart's.
    let id = id_of(&env.request("alice", "logs", "10m", "look"));
    env.stop_jitd();
    env.start_jitd();
    env.wait_state(id, "revoked", Duration::from_secs(8));
    let took = at_of(&env, id, "revoked") - at_of(&env, id, "granted");
    assert!((3..=4).contains(&took), "revoked {took} s after its start");

    // Passed while jitd was down: revoked at start, before jitd serves.
    let id = id_of(&env.request("alice", "logs", "10m", "again"));
    env.stop_jitd();
    std::thread::sleep(Duration::from_secs(4));
    env.start_jitd();
    assert_eq!(state_of(&env.show("root", id)), "revoked");
    assert_ne!(env.sudo("alice", &[], &["true"]).code, 0);
}
