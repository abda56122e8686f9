//! Watching a session as it is recorded (W4 item 7): `jitctl recordings
//! list --live` and `watch` for the holder, root, auditors, security and
//! the grant's approvers; the watcher sees output within a second of its
//! writing, and stops when the session ends.

use std::time::{Duration, Instant};

use jit_tests::*;

#[test]
fn a_live_session_reaches_its_watchers_within_a_second_and_nobody_else() {
    let s = SessionEnv::new(&session_config("15m"), "sudo");
    let id = s.approved_sudo_grant("rotate the TLS keys");
    let t = Tmux::start(&s, "alice", 100, 30);
    t.open_shell(Some(id));

    // mike approved the grant: he sees it live, though not an auditor.
    let live = s.jitctl_json("mike", &["recordings", "list", "--live", "--json"]);
    let rec = live
        .as_array()
        .and_then(|all| all.iter().find(|r| r["grant"].as_u64() == Some(id)))
        .unwrap_or_else(|| panic!("no live recording of grant {id}: {live:#}"))["id"]
        .as_u64()
        .expect("recording id");
    let theirs = s.jitctl_json("bob", &["recordings", "list", "--live", "--json"]);
    assert_eq!(theirs, serde_json::json!([]), "bob approved nothing");
    s.jitctl("bob", &["recordings", "watch", &rec.to_string()])
        .code(3);

    let watcher = s.spawn_jitctl("mike", &["recordings", "watch", &rec.to_string()]);
    let started = wait_for(Duration::from_secs(10), || {
        watcher
            .stdout_so_far()
            .contains("in-session-42")
            .then_some(())
    });
    assert!(started.is_some(), "the watcher never caught up");
    t.line("echo live-$((40+2))-out");
    t.wait_for("live-42-out", Duration::from_secs(5));
    let written = Instant::now();
    let seen = wait_for(Duration::from_secs(5), || {
        watcher
            .stdout_so_far()
            .contains("live-42-out")
            .then(|| written.elapsed())
    })
    .expect("the watcher never saw the output");
    assert!(seen < Duration::from_secs(1), "seen after {seen:?}");

    // The session ends: so does the watch, on its own.
    t.line("exit");
    let run = watcher.finish(Duration::from_secs(10));
    assert_eq!(run.code, 0, "{run}");
    assert!(
        run.stderr.contains(&format!("recording {rec} ended")),
        "{run}"
    );
    // Approving the session was watching it as it happened, not reading
    // it afterwards: that is the auditors' (and the holder's).
    s.closed_recording(id, Duration::from_secs(10));
    s.jitctl("mike", &["recordings", "watch", &rec.to_string()])
        .code(3);
    let own = s.jitctl("alice", &["recordings", "watch", &rec.to_string()]);
    assert_eq!(own.code, 0, "{own}");
    assert!(own.stdout.contains("live-42-out"), "{own}");
}
