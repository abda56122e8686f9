//! Denied access in the audit trail (docs/design.md "Denied access", T39):
//! real sudo through pam_jit without a grant is recorded as
//! `access_denied` with its service and tty; a loop of failing sudo runs
//! is a bounded number of rows with the right count, across a kill -9;
//! security is told once when a user keeps trying; nobody but root can
//! put denials in the trail.

use jit_tests::sinks::{json_hook_notify, HttpSink};
use jit_tests::*;
use std::time::{Duration, Instant};

/// An environment with `config` whose sudo is gated on `sudo`.
fn denied_env(config: &str) -> Env {
    let env = Env::with_config(config);
    let stack = sudo_stack(&env, "sudo", "timeout=1s");
    env.install_pam(&[("sudo", &stack)], SUDOERS);
    env
}

fn denials(env: &Env, event: &str) -> Vec<Value> {
    env.audit_events()
        .into_iter()
        .filter(|e| e["event"] == event)
        .collect()
}

fn count(events: &[Value]) -> u64 {
    events
        .iter()
        .map(|e| e["detail"]["count"].as_u64().unwrap_or(0))
        .sum()
}

/// The `access_denied` events once their counts add up to `total`.
#[track_caller]
fn wait_denied(env: &Env, total: u64, timeout: Duration) -> Vec<Value> {
    wait_for(timeout, || {
        let events = denials(env, "access_denied");
        (count(&events) >= total).then_some(events)
    })
    .unwrap_or_else(|| {
        panic!(
            "fewer than {total} denials recorded: {:#?}{}",
            denials(env, "access_denied"),
            env.jitd_log_tail()
        )
    })
}

#[test]
fn a_denied_sudo_is_recorded_with_its_service_and_tty() {
    let env = denied_env(TEST_CONFIG);
    let run = env
        .spawn_in_pty("alice", "sudo -n true")
        .finish(Duration::from_secs(10));
    assert!(
        run.stdout.contains("jitctl request sudo --for 30m"),
        "alice is told as before:{run}"
    );
    let [denied] = wait_denied(&env, 1, Duration::from_secs(5))
        .try_into()
        .unwrap_or_else(|e| panic!("one denial: {e:#?}"));
    assert_eq!(denied["actor"], "alice");
    assert_eq!(denied["actor_uid"], uid("alice"));
    assert_eq!(denied["request"], Value::Null);
    let d = &denied["detail"];
    assert_eq!(
        (&d["user"], &d["uid"], &d["resource"], &d["service"]),
        (
            &Value::from("alice"),
            &Value::from(uid("alice")),
            &Value::from("sudo"),
            &Value::from("sudo")
        ),
        "{denied:#}"
    );
    assert!(
        d["tty"]
            .as_str()
            .unwrap_or_default()
            .starts_with("/dev/pts/"),
        "sudo on a terminal names it: {denied:#}"
    );
    assert_eq!(
        (&d["count"], &d["repeats"]),
        (&Value::from(1), &Value::from(false))
    );
    assert_eq!(d["first"], d["last"]);

    // The exempt and a holder of a grant are not denied, and nothing is
    // recorded for them; another user is another key, recorded at once.
    env.sudo("oscar", &[], &["true"]).ok();
    let id = id_of(&env.request("alice", "sudo", "10m", "patching"));
    env.approve("mike", id).ok();
    env.approve("sam", id).ok();
    env.wait_state(id, "active", Duration::from_secs(5));
    env.sudo("alice", &[], &["true"]).ok();
    let run = env.sudo("bob", &[], &["true"]);
    assert_ne!(run.code, 0, "{run}");
    let events = wait_denied(&env, 2, Duration::from_secs(5));
    let who: Vec<_> = events
        .iter()
        .map(|e| e["actor"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(who, ["alice", "bob"], "{events:#?}");
}

#[test]
fn a_loop_of_failing_sudos_is_a_bounded_number_of_rows_with_the_right_count() {
    let config = format!("{TEST_CONFIG}\n[denials]\nwindow = \"2s\"\nalert_after = 0\n");
    let mut env = denied_env(&config);
    let started = Instant::now();
    env.run_as(
        "alice",
        "sh",
        &[
            "-c",
            "for i in $(seq 200); do sudo -n true 2>/dev/null; done; true",
        ],
    )
    .ok();
    let took = started.elapsed();
    // Counted in their window's row within the batch window (100 ms): a
    // kill -9 now loses none of them.
    std::thread::sleep(Duration::from_millis(500));
    env.kill_jitd();
    env.start_jitd();
    let events = wait_denied(&env, 200, Duration::from_secs(5));
    assert_eq!(count(&events), 200, "{events:#?}");
    // Per 2 s window: its first denial, then one record of its repeats.
    let windows = took.as_secs() / 2 + 2;
    assert!(
        events.len() as u64 <= 2 * windows,
        "{} rows for 200 denials in {took:?}: {events:#?}",
        events.len()
    );
    assert!(
        events.iter().all(|e| e["detail"]["service"] == "sudo"),
        "{events:#?}"
    );
    let firsts = events
        .iter()
        .filter(|e| e["detail"]["repeats"] == false)
        .count();
    assert!(firsts >= 1 && firsts as u64 <= windows, "{events:#?}");
    assert!(
        denials(&env, "access_denied_repeatedly").is_empty(),
        "alert_after = 0 tells nobody"
    );
}

#[test]
fn security_is_told_once_when_a_user_keeps_trying() {
    let http = HttpSink::start();
    let config = format!(
        "{TEST_CONFIG}\n[denials]\nwindow = \"1s\"\nalert_after = 5\nalert_window = \"1h\"\n{}",
        json_hook_notify("security = [\"hook:json\"]", http.port)
    );
    let env = denied_env(&config);
    env.run_as(
        "bob",
        "sh",
        &[
            "-c",
            "for i in $(seq 12); do sudo -n true 2>/dev/null; done; true",
        ],
    )
    .ok();
    let posts = http.wait_for(1, Duration::from_secs(10));
    let alert = posts[0].json();
    assert_eq!(alert["event"], "access_denied_repeatedly", "{alert:#}");
    assert!(
        alert["title"]
            .as_str()
            .unwrap_or_default()
            .contains("bob keeps trying access without a grant"),
        "{alert:#}"
    );
    assert_eq!(alert["fields"]["Resources"], "sudo", "{alert:#}");
    assert_eq!(alert["fields"]["Denials"], "5", "{alert:#}");
    // Once per user and window, not per attempt.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(http.posts().len(), 1, "{:#?}", http.posts());
    let alerts = denials(&env, "access_denied_repeatedly");
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0]["actor"], "bob");
    assert_eq!(count(&wait_denied(&env, 12, Duration::from_secs(5))), 12);
}

#[test]
fn nobody_but_root_puts_denials_in_the_trail() {
    let env = denied_env(TEST_CONFIG);
    let call = |caller: &str, holder: &str, rhost: &str| {
        env.busctl_call(
            caller,
            &[
                "org.jit.Daemon1",
                "/org/jit/Daemon1",
                "org.jit.Daemon1",
                "CheckAccess",
                "ussss",
                &uid(holder).to_string(),
                "sudo",
                "sshd",
                "ssh",
                rhost,
            ],
        )
    };
    // A user cannot write denials for anyone, themselves included: the
    // caller's bus credentials decide, not the uid asked about.
    for holder in ["bob", "alice"] {
        let run = call("alice", holder, "forged.example");
        assert_ne!(run.code, 0, "{run}");
        assert!(
            run.stderr.contains("NotAuthorized") || run.stderr.contains("root"),
            "{run}"
        );
    }
    // CheckGrant records nothing, whoever asks.
    env.check_grant("root", "bob", "sudo").ok();
    env.check_grant("bob", "bob", "sudo").ok();
    // Root (pam_jit on the bus) does; what it names from the network is
    // escaped and cut.
    let hostile = format!("evil\u{1b}[2J{}", "x".repeat(1000));
    let run = call("root", "bob", &hostile).ok();
    assert!(run.stdout.starts_with("btxt false"), "{run}");
    let [denied] = wait_denied(&env, 1, Duration::from_secs(5))
        .try_into()
        .unwrap_or_else(|e| panic!("only root's: {e:#?}"));
    let rhost = denied["detail"]["rhost"].as_str().unwrap();
    assert!(rhost.starts_with("evil\\u{1b}[2Jxxx"), "{rhost}");
    assert_eq!(rhost.len(), 256);
    assert_eq!(denied["actor"], "bob");
    assert_eq!(denied["detail"]["service"], "sshd");
}
