//! Threats T4 (caller gone before its credentials are looked up) and T21
//! (malformed or oversized D-Bus input).

use jit_tests::*;

/// Sends one method call to jitd as `user` without waiting for the reply:
/// dbus-send disconnects as soon as the message is flushed.
fn fire_and_forget(env: &Env, user: &str, count: usize, member: &str, args: &[&str]) -> Run {
    let call = format!(
        "dbus-send --system --type=method_call --dest=org.jit.Daemon1 /org/jit/Daemon1 org.jit.Daemon1.{member} {}",
        args.join(" ")
    );
    let script = format!("for i in $(seq {count}); do {call} & done; wait");
    env.run_as(user, "sh", &["-c", &script])
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
    fire_and_forget(&env, "oscar", 1500, "Revoke", &[&id_arg, "string:x"]).ok();
    // Every call has been answered (or dropped) once jitd answers this one.
    env.jitctl("root", &["status"]).ok();
    let after = env.show("root", id);
    assert_eq!(state_of(&after), "active", "{after:#}");
    let revoked = env
        .audit_events_for(id)
        .into_iter()
        .filter(|e| e["event"] != "requested" && e["event"] != "scored" && e["event"] != "granted")
        .count();
    assert_eq!(revoked, 0, "state changes from vanished callers");
    env.jitctl("sam", &["audit", "verify"]).ok();
}

#[test]
fn t4_vanished_requesters_never_act_as_someone_else() {
    let env = Env::new();
    fire_and_forget(
        &env,
        "alice",
        300,
        "Request",
        &["string:logs", "uint64:60", "string:x", "string:"],
    )
    .ok();
    env.jitctl("root", &["status"]).ok();
    let all = env.jitctl_json("root", &["list", "--all", "--json"]);
    let all = all.as_array().expect("array");
    // Requests whose sender was still there when jitd asked the bus are
    // alice's; the rest were refused. Nothing is anyone else's.
    assert!(
        all.iter()
            .all(|r| r["user"] == "alice" && r["uid"] == uid("alice")),
        "{all:#?}"
    );
    assert!(
        all.iter().filter(|r| r["state"] == "active").count() <= 1,
        "{all:#?}"
    );
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
