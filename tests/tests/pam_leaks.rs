//! Threat T10: one process runs 1,000 PAM transactions through libpam with
//! pam_jit; its threads and descriptors are the same before and after, with
//! and without sessions (the account check keeps its connection to jitd for
//! the session hook; pam_end must close it either way).

use jit_tests::*;
use std::collections::HashMap;

const PAM_LOOP: &str = env!("CARGO_BIN_EXE_pam-loop");

fn run_loop(
    env: &Env,
    service: &str,
    user: &str,
    n: usize,
    stack: &[&str],
) -> HashMap<String, u64> {
    let mut cmd = env.ns_command(PAM_LOOP);
    cmd.args([service, user, &n.to_string()]).args(stack);
    let run = env.run(cmd).ok();
    run.stdout
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.parse().unwrap_or(u64::MAX)))
        .collect()
}

#[test]
fn t10_a_thousand_checks_leave_no_threads_or_descriptors() {
    let env = Env::new();
    let jit = env.jit_args("logs");
    let service = format!("account required {jit} timeout=1s\nsession required {jit} timeout=1s\n");
    env.install_pam(&[("jit-loop", &service)], SUDOERS);
    env.request("alice", "logs", "30m", "leak test");
    for (user, stack, want_ok) in [
        ("alice", &[][..], true),
        ("alice", &["session"][..], true),
        ("bob", &[][..], false),
        ("bob", &["session"][..], false),
    ] {
        let r = run_loop(&env, "jit-loop", user, 1000, stack);
        eprintln!("pam-loop {user} {stack:?}: {r:?}");
        assert_eq!(r["threads_before"], r["threads_after"], "{user}: {r:?}");
        assert_eq!(r["threads_after"], 1, "{user}: threads left: {r:?}");
        assert_eq!(r["fds_before"], r["fds_after"], "{user}: {r:?}");
        assert_eq!(r["other"], 0, "{user}: unexpected PAM codes: {r:?}");
        let (ok, denied) = if want_ok { (1000, 0) } else { (0, 1000) };
        assert_eq!((r["ok"], r["denied"]), (ok, denied), "{user}: {r:?}");
    }
    let opened = env
        .audit_events()
        .into_iter()
        .filter(|e| e["event"] == "session_opened")
        .count();
    assert_eq!(opened, 1000, "one session per transaction with a session");
}
