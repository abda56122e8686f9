//! Scheduled grants end to end: real jitd, jitctl, and sudo gated by
//! pam_jit. A grant approved ahead of its start admits nobody until then,
//! and its start survives `kill -9` of jitd, whether it comes while jitd is
//! up again or passed while it was down.

use jit_tests::*;
use std::time::Duration;

const WHOAMI: [&str; 3] = ["sh", "-c", "echo ran-as-root $(id -u)"];

/// `user`'s request for `logs` (auto-approved) for a minute from `start`
/// (`+DUR`): scheduled at once.
fn schedule(env: &Env, user: &str, start: &str) -> Value {
    let doc = env.jitctl_json(
        user,
        &[
            "request", "logs", "--for", "1m", "--reason", "window", "--start", start, "--json",
        ],
    );
    assert_eq!(state_of(&doc), "scheduled", "{doc:#}");
    assert!(doc["expires_at"].is_null(), "{doc:#}");
    doc
}

#[track_caller]
fn refused(env: &Env, user: &str) {
    let run = env.sudo(user, &[], &WHOAMI);
    assert_ne!(run.code, 0, "sudo allowed before the start:{run}");
    assert!(!run.stdout.contains("ran-as-root"), "{run}");
}

#[track_caller]
fn allowed(env: &Env, user: &str) {
    let run = env.sudo(user, &[], &WHOAMI).ok();
    assert!(run.stdout.contains("ran-as-root 0"), "{run}");
}

#[test]
fn a_scheduled_grant_admits_sudo_from_its_start_across_kill_9() {
    let mut env = sudo_env("logs");
    let alice = schedule(&env, "alice", "+8s");
    let bob = schedule(&env, "bob", "+3s");
    let (alice_id, bob_id) = (id_of(&alice), id_of(&bob));
    let alice_start = unix_secs(&alice["starts_at"]);
    let bob_start = unix_secs(&bob["starts_at"]);
    refused(&env, "alice");
    refused(&env, "bob");

    // Killed before either start; bob's passes while jitd is down.
    env.kill_jitd();
    wait_until_wall(bob_start as f64 + 0.5);
    env.start_jitd();
    // At start-up: no waiting for a timer, and it ends with its window.
    let doc = env.show("root", bob_id);
    assert_eq!(state_of(&doc), "active", "{doc:#}{}", env.jitd_log_tail());
    assert_eq!(unix_secs(&doc["expires_at"]), bob_start + 60, "{doc:#}");
    allowed(&env, "bob");
    if wall_now() < alice_start as f64 - 0.5 {
        assert_eq!(state_of(&env.show("root", alice_id)), "scheduled");
        refused(&env, "alice");
    }

    // alice's start comes with the restarted jitd up.
    wait_until_wall(alice_start as f64);
    let doc = env.wait_state(alice_id, "active", Duration::from_secs(5));
    assert_eq!(unix_secs(&doc["expires_at"]), alice_start + 60, "{doc:#}");
    allowed(&env, "alice");
    let granted = env
        .audit_events_for(alice_id)
        .into_iter()
        .find(|e| e["event"] == "granted")
        .expect("a granted event");
    assert_eq!(granted["detail"]["scheduled"], true, "{granted:#}");
    env.jitctl("root", &["audit", "verify"]).ok();
}

/// Bad and refused starts: one line saying what to do instead (exit 2).
#[test]
fn a_start_jitctl_cannot_read_or_jitd_refuses_says_what_to_give() {
    let env = Env::new();
    let ask = |start: &str| {
        env.jitctl(
            "alice",
            &[
                "request", "logs", "--for", "1m", "--reason", "w", "--start", start,
            ],
        )
    };
    let run = ask("tomorrow-ish");
    assert_eq!(run.code, 2, "{run}");
    assert!(run.stderr.contains("+DUR (+2h)"), "{run}");
    assert_eq!(run.stderr.trim().lines().count(), 1, "{run}");
    let run = ask("+45d");
    assert_eq!(run.code, 2, "{run}");
    assert!(run.stderr.contains("start_within"), "{run}");
    // Said back in local time, then scheduled.
    let run = ask("+1h").ok();
    assert!(run.stdout.contains("your time (in 1h"), "{run}");
    assert!(run.stdout.contains("scheduled: active from"), "{run}");
}
