//! Threats T4 (caller gone before its credentials are looked up) and T21
//! (malformed or oversized D-Bus input).

use jit_tests::*;

/// Sends `count` calls of `member` to jitd as `user`, each from its own
/// dbus-send, which disconnects as soon as the message is flushed. Returns
/// how many jitd refused because their caller was gone before it could be
/// identified (the path T4 is about), as a monitor of the bus saw it answer.
fn fire_and_forget(env: &Env, user: &str, count: usize, member: &str, args: &[&str]) -> usize {
    let monitor = env.monitor("type='error'");
    let call = format!(
        "dbus-send --system --type=method_call --dest=org.jit.Daemon1 /org/jit/Daemon1 org.jit.Daemon1.{member} {}",
        args.join(" ")
    );
    let script = format!("for i in $(seq {count}); do {call} & done; wait");
    env.run_as(user, "sh", &["-c", &script]).ok();
    // Every call has been answered (or dropped) once jitd answers this one.
    env.jitctl("root", &["status"]).ok();
    monitor
        .stop()
        .stdout
        .matches("cannot identify caller")
        .count()
}

#[track_caller]
fn some_vanished(vanished: usize, count: usize) {
    assert!(
        vanished > 0,
        "none of {count} callers was gone before jitd looked it up: T4's path did not run"
    );
    eprintln!("{vanished} of {count} callers were gone before jitd identified them");
}

#[test]
fn t4_callers_that_vanish_never_act_with_someone_elses_identity() {
    let env = Env::new();
    let grant = env.request("alice", "logs", "30m", "looking at logs");
    let id = id_of(&grant);
    assert_eq!(state_of(&grant), "active");
    // Revoke is allowed for root and security: a lookup failure taken as
    // success (or as uid 0) would end alice's grant.
    let id_arg = format!("uint64:{id}");
    let vanished = fire_and_forget(&env, "oscar", 1500, "Revoke", &[&id_arg, "string:x"]);
    let after = env.show("root", id);
    assert_eq!(state_of(&after), "active", "{after:#}");
    let revoked = env
        .audit_events_for(id)
        .into_iter()
        .filter(|e| e["event"] != "requested" && e["event"] != "scored" && e["event"] != "granted")
        .count();
    assert_eq!(revoked, 0, "state changes from vanished callers");
    some_vanished(vanished, 1500);
    env.jitctl("sam", &["audit", "verify"]).ok();
}

/// [`TEST_CONFIG`] where root may request `logs` too, so that a request
/// taken for root's (uid 0: what a failed lookup read as a number
/// defaults to, as in polkit's CVE-2021-3560) would be granted and listed.
fn config_root_may_request_logs() -> String {
    let logs = "eligible = [\"group:admins\"]\nmax_duration = \"1h\"";
    let text = TEST_CONFIG.replace(
        logs,
        "eligible = [\"group:admins\", \"user:root\"]\nmax_duration = \"1h\"",
    );
    assert_eq!(TEST_CONFIG.matches(logs).count(), 1);
    text
}

#[test]
fn t4_vanished_requesters_never_act_as_someone_else() {
    let env = Env::with_config(&config_root_may_request_logs());
    // alice holds `logs` first, asked by a caller that waits for the answer.
    env.request("alice", "logs", "30m", "first");
    let vanished = fire_and_forget(
        &env,
        "alice",
        300,
        "Request",
        &["string:logs", "uint64:60", "string:x", "string:"],
    );
    // Requests whose sender was still there when jitd asked the bus are
    // alice's, and refused (she holds `logs`); the rest were refused as
    // callers nobody could identify. The list holds her first grant alone.
    let all = env.jitctl_json("root", &["list", "--all", "--json"]);
    let owners: Vec<(&Value, &Value)> = all
        .as_array()
        .expect("array")
        .iter()
        .map(|r| (&r["user"], &r["uid"]))
        .collect();
    assert_eq!(
        owners,
        [(&Value::from("alice"), &Value::from(uid("alice")))],
        "{all:#}"
    );
    some_vanished(vanished, 300);
}

#[test]
fn t21_malformed_calls_get_typed_errors_and_jitd_keeps_serving() {
    let env = Env::new();
    let busctl = |args: &[&str]| {
        let mut all = vec!["org.jit.Daemon1", "/org/jit/Daemon1", "org.jit.Daemon1"];
        all.extend_from_slice(args);
        env.busctl_call("alice", &all)
    };
    // Wrong signature.
    let wrong = busctl(&["Request", "ss", "logs", "60"]);
    assert_ne!(wrong.code, 0, "{wrong}");
    assert!(wrong.stderr.contains("Signature mismatch"), "{wrong}");
    // No such method.
    let missing = busctl(&["Explode", ""]);
    assert_ne!(missing.code, 0, "{missing}");
    // A 100 KiB reason (argv caps one argument at 128 KiB) is refused by jitd's own limit.
    let huge = "x".repeat(100 << 10);
    let big = busctl(&["Request", "stss", "logs", "60", &huge, ""]);
    assert_ne!(big.code, 0, "{big}");
    assert!(big.stderr.contains("longer than 2048 bytes"), "{big}");
    // Zero duration and absurd durations.
    let zero = busctl(&["Request", "stss", "logs", "0", "why", ""]);
    assert!(zero.stderr.contains("at least 1s"), "{zero}");
    let forever = busctl(&["Request", "stss", "logs", &u64::MAX.to_string(), "why", ""]);
    assert!(forever.stderr.contains("exceeds"), "{forever}");
    // Unknown list filter.
    let filter = busctl(&["List", "s", "everything"]);
    assert!(filter.stderr.contains("unknown list filter"), "{filter}");
    // Still serving, and nothing was created.
    env.jitctl("alice", &["status"]).ok();
    let all = env.jitctl_json("root", &["list", "--all", "--json"]);
    assert_eq!(all.as_array().map(Vec::len), Some(0), "{all:#}");
}
