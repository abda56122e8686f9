//! Real sudo gated by pam_jit: denied without a grant, allowed during one,
//! denied after expiry and revocation; commands started under sudo die with
//! the grant.

use jit_tests::*;
use std::time::Duration;

#[track_caller]
fn denied_with_hint(run: &Run, resource: &str) {
    assert_ne!(run.code, 0, "sudo allowed without a grant:{run}");
    assert!(
        run.stderr
            .contains(&format!("jitctl request {resource} --for 30m --reason")),
        "no request hint on stderr:{run}"
    );
    assert!(!run.stdout.contains("ran-as-root"), "{run}");
}

fn approve_both(env: &Env, id: u64) {
    env.approve("mike", id).ok();
    env.approve("sam", id).ok();
    env.wait_state(id, "active", Duration::from_secs(5));
}

#[test]
fn sudo_follows_the_grant() {
    let env = sudo_env("sudo");
    let whoami = ["sh", "-c", "echo ran-as-root $(id -u)"];

    let run = env.sudo("alice", &[], &whoami);
    denied_with_hint(&run, "sudo");

    // Users the stack exempts (`exempt=`) are left to sudoers alone.
    let run = env.sudo("oscar", &[], &whoami).ok();
    assert!(run.stdout.contains("ran-as-root 0"), "{run}");

    // An approved grant: allowed.
    let id = id_of(&env.request("alice", "sudo", "3s", "patching"));
    approve_both(&env, id);
    let run = env.sudo("alice", &[], &whoami).ok();
    assert!(run.stdout.contains("ran-as-root 0"), "{run}");
    assert_eq!(run.stderr, "", "{run}");
    // bob is gated too and holds nothing.
    denied_with_hint(&env.sudo("bob", &[], &whoami), "sudo");

    let events = env.audit_events_for(id);
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "session_opened" && e["detail"]["service"] == "sudo"),
        "no session_opened for grant {id}: {events:#?}{}",
        env.jitd_log_tail()
    );

    // Expired: denied.
    env.wait_state(id, "expired", Duration::from_secs(10));
    denied_with_hint(&env.sudo("alice", &[], &whoami), "sudo");

    // Revoked: denied.
    let id = id_of(&env.request("alice", "sudo", "30m", "patching again"));
    approve_both(&env, id);
    env.sudo("alice", &[], &whoami).ok();
    env.jitctl("sam", &["revoke", &id.to_string(), "--comment", "enough"])
        .ok();
    denied_with_hint(&env.sudo("alice", &[], &whoami), "sudo");
}

#[test]
fn sudo_unknown_user_and_pending_request() {
    let env = sudo_env("sudo");
    let doc = env.request("bob", "sudo", "30m", "waiting");
    let run = env.sudo("bob", &[], &["true"]);
    denied_with_hint(&run, "sudo");
    assert!(
        run.stderr
            .contains(&format!("request {} is pending", id_of(&doc))),
        "{run}"
    );
}

#[test]
fn sudo_commands_die_within_a_second_of_expiry() {
    let env = sudo_env("logs");
    let mark = marked_sleep();
    let grant = env.request("alice", "logs", "4s", "long job");
    let id = id_of(&grant);
    assert_eq!(state_of(&grant), "active", "{grant:#}");

    let mut pty = env.spawn_in_pty(
        "alice",
        &format!("sudo -n sh -c 'setsid sleep {mark} & exec sleep {mark}'"),
    );
    let Some(pids) = wait_for(Duration::from_secs(3), || {
        let p = pids_of(&["sleep", &mark]);
        (p.len() == 2).then_some(p)
    }) else {
        panic!("the two sleeps did not start:{}", pty.stop());
    };
    // Both run as root, in a session cgroup under this test's cgroup.
    for pid in &pids {
        let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
        assert!(
            cg.contains("/grant-"),
            "pid {pid} not in a session cgroup: {cg}"
        );
    }
    let expires_at = unix_secs(&grant["expires_at"]);
    // Nothing may end them before expiry: still there shortly before it.
    wait_until_wall(expires_at as f64 - 0.3);
    assert!(
        pids.iter().all(|p| alive(*p)) && pty.running(),
        "died before expiry:{}",
        env.jitd_log_tail()
    );
    let Some(delay) = death_after_expiry(&pids, expires_at) else {
        panic!(
            "sleeps {pids:?} still alive 3 s after expiry:{}{}",
            pty.stop(),
            env.jitd_log_tail()
        );
    };
    eprintln!("sudo: command and setsid child dead {delay:.3} s after expiry");
    assert!(
        delay <= 1.0,
        "processes died {delay:.3} s after expiry, more than 1 s:{}",
        env.jitd_log_tail()
    );
    // The pty's sudo is gone too.
    let run = pty.finish(Duration::from_secs(3));
    assert_ne!(run.code, 0, "{run}");
    let events = env.audit_events_for(id);
    assert!(
        events.iter().any(|e| e["event"] == "session_opened"),
        "no session_opened: {events:#?}"
    );
    // And no new sudo.
    denied_with_hint(&env.sudo("alice", &[], &["true"]), "logs");
}

/// Whether `pid`'s `field` mask in /proc (`SigIgn:`, `SigCgt:`) has SIGHUP.
fn hup_in(pid: u32, field: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (libc::SIGHUP - 1)) != 0)
}

/// What jitd's SIGHUP does not end, `cgroup.kill` does: a `nohup`ed
/// command (SIGHUP ignored) and a shell that traps SIGHUP and goes on, both
/// under sudo, die when the grant ends.
#[test]
fn commands_that_outlive_sighup_die_with_the_grant() {
    let env = sudo_env("logs");
    let id = id_of(&env.request("alice", "logs", "30m", "hangup-proof"));
    let (hups, mark) = (env.dir.path().join("hups"), marked_sleep());
    let script = env.write_script(
        "hangup-proof",
        &format!(
            "nohup sleep {mark} >/dev/null 2>&1 &\n\
             trap 'echo hup >>{}' HUP\n\
             while :; do sleep 0.05; done",
            hups.display()
        ),
    );
    let script = script.to_string_lossy().into_owned();
    let pty = env.spawn_in_pty("alice", &format!("sudo -n {script}"));
    // Until the shell has set its trap and nohup its sleep's disposition.
    let Some(pids) = wait_for(Duration::from_secs(5), || {
        let shell = pids_of(&["/bin/sh", &script]).pop()?;
        let sleep = pids_of(&["sleep", &mark]).pop()?;
        (hup_in(shell, "SigCgt:") && hup_in(sleep, "SigIgn:")).then_some([shell, sleep])
    }) else {
        panic!("the shell and its nohup sleep did not start:{}", pty.stop());
    };

    env.jitctl("sam", &["revoke", &id.to_string(), "--comment", "end"])
        .ok();
    if wait_all_dead(&pids, Duration::from_secs(5)).is_none() {
        panic!(
            "shell and nohup sleep {pids:?} alive 5 s after the revocation:{}{}",
            pty.stop(),
            env.jitd_log_tail()
        );
    }
    // They outlived jitd's SIGHUP: the shell ran its trap.
    let trapped = std::fs::read_to_string(&hups).unwrap_or_default();
    assert!(trapped.contains("hup"), "the shell never got SIGHUP");
    // The pty's sudo is gone with them.
    let run = pty.finish(Duration::from_secs(3));
    assert_ne!(run.code, 0, "{run}");
}

/// Gated users give their password here (no `NOPASSWD`), so sudo caches
/// their credential in its timestamp file.
fn password_sudo_env() -> Env {
    let env = Env::new();
    let stack = sudo_stack(&env, "logs", "timeout=1s");
    env.install_pam(&[("sudo", &stack)], &password_sudoers());
    env.set_password("alice");
    env
}

/// alice authenticates to sudo under her grant; returns her timestamp file,
/// which sudo wrote.
#[track_caller]
fn cache_alices_credential(env: &Env) -> std::path::PathBuf {
    let ts = env.sudo_timestamp("alice");
    assert!(!ts.exists(), "{} before any sudo", ts.display());
    let run = env.sudo_with_password("alice", PASSWORD, &["true"]).ok();
    assert!(
        ts.is_file(),
        "sudo cached no credential at {}:{run}",
        ts.display()
    );
    ts
}

#[track_caller]
fn wait_deleted(env: &Env, ts: &std::path::Path) {
    if wait_for(Duration::from_secs(5), || (!ts.exists()).then_some(())).is_none() {
        panic!(
            "{} still there 5 s after the grant ended:{}",
            ts.display(),
            env.jitd_log_tail()
        );
    }
}

/// A cached sudo credential does not outlive the grant it was given under.
#[test]
fn the_sudo_timestamp_is_deleted_at_expiry() {
    let env = password_sudo_env();
    let id = id_of(&env.request("alice", "logs", "4s", "cached"));
    let ts = cache_alices_credential(&env);
    env.wait_state(id, "expired", Duration::from_secs(10));
    wait_deleted(&env, &ts);
}

#[test]
fn the_sudo_timestamp_is_deleted_at_revocation() {
    let env = password_sudo_env();
    let id = id_of(&env.request("alice", "logs", "30m", "cached"));
    let ts = cache_alices_credential(&env);
    env.jitctl("sam", &["revoke", &id.to_string(), "--comment", "end"])
        .ok();
    wait_deleted(&env, &ts);
}

#[test]
fn sudo_gated_by_the_pam_auth_update_profile() {
    let env = Env::new();
    // Debian's own /etc/pam.d/sudo; the gate comes from common-account and
    // common-session-noninteractive, written by pam-auth-update.
    env.install_pam(&[], SUDOERS);
    env.install_pam_profiles(&["jit", "jit-session"]);
    env.pam_auth_update("--enable jit jit-session");
    let account = std::fs::read_to_string(env.dir.path().join("pam.d/common-account")).unwrap();
    assert!(account.contains("libpam_jit.so resource=sudo"), "{account}");

    denied_with_hint(&env.sudo("alice", &[], &["true"]), "sudo");
    // pam_unix ends the account stack on an expired password
    // (`new_authtok_reqd=done`): the profile puts pam_jit before it, so the
    // account check refuses first and no password change is offered.
    env.expire_password("oscar");
    let expired = env.sudo("oscar", &[], &["true"]);
    denied_with_hint(&expired, "sudo");
    assert!(
        !expired.stderr.contains("change your password"),
        "{expired}"
    );
    let seen = wait_for(Duration::from_secs(5), || {
        env.audit_events()
            .iter()
            .any(|e| {
                e["event"] == "access_denied"
                    && e["detail"]["user"] == "oscar"
                    && e["detail"]["service"] == "sudo"
            })
            .then_some(())
    });
    assert!(
        seen.is_some(),
        "the account check did not see oscar: {:#?}",
        env.audit_events()
    );
    // The profile exempts root alone: oscar, in no jit group, is gated too.
    denied_with_hint(&env.sudo("oscar", &[], &["true"]), "sudo");
    env.sudo("root", &[], &["true"]).ok();
    // Other services are not gated: runuser still works for alice.
    env.run_as("alice", "true", &[]).ok();
    let id = id_of(&env.request("alice", "sudo", "30m", "profile"));
    approve_both(&env, id);
    env.sudo("alice", &[], &["true"]).ok();
    let events = env.audit_events_for(id);
    assert!(
        events.iter().any(|e| e["event"] == "session_opened"),
        "the profile's session lines registered nothing: {events:#?}"
    );

    env.pam_auth_update("--disable jit jit-session");
    env.jitctl("sam", &["revoke", &id.to_string(), "--comment", "x"])
        .ok();
    env.sudo("alice", &[], &["true"]).ok();
}

/// Sessions open while jitd is down: the end of one whose process exited in
/// the meantime is recorded at start; one still running is watched again,
/// and its end is recorded when it exits.
#[test]
fn session_ends_are_recorded_across_a_jitd_restart() {
    let mut env = sudo_env("logs");
    let id = id_of(&env.request("alice", "logs", "30m", "restart"));
    let sessions = |env: &Env, event: &str| -> Vec<u64> {
        env.audit_events_for(id)
            .iter()
            .filter(|e| e["event"] == event)
            .filter_map(|e| e["detail"]["session"].as_u64())
            .collect()
    };
    // Started one after the other, so the first session opened is `gone`'s.
    let mut started = Vec::new();
    for _ in 0..2 {
        let mark = marked_sleep();
        let pty = env.spawn_in_pty("alice", &format!("sudo -n sleep {mark}"));
        let sleep = wait_for(Duration::from_secs(3), || pids_of(&["sleep", &mark]).pop())
            .unwrap_or_else(|| panic!("sudo sleep did not start:{}", env.jitd_log_tail()));
        started.push((pty, sleep));
    }
    let opened = sessions(&env, "session_opened");
    assert_eq!(opened.len(), 2, "{:#?}", env.audit_events_for(id));
    let (kept, mut gone) = (started.pop().unwrap(), started.pop().unwrap());

    env.kill_jitd();
    // SAFETY: kill(2) on a process this test started (through sudo).
    unsafe { libc::kill(gone.1 as i32, libc::SIGKILL) };
    assert!(
        wait_for(Duration::from_secs(3), || (!gone.0.running()).then_some(())).is_some(),
        "sudo did not exit after its command was killed"
    );
    env.start_jitd();
    let closed = wait_for(Duration::from_secs(3), || {
        Some(sessions(&env, "session_closed")).filter(|c| !c.is_empty())
    });
    assert_eq!(
        closed,
        Some(vec![opened[0]]),
        "only the session that ended while jitd was down is recorded as ended:{}",
        env.jitd_log_tail()
    );

    // SAFETY: as above.
    unsafe { libc::kill(kept.1 as i32, libc::SIGKILL) };
    let closed = wait_for(Duration::from_secs(3), || {
        Some(sessions(&env, "session_closed")).filter(|c| c.len() == 2)
    });
    assert_eq!(
        closed,
        Some(opened.clone()),
        "the session still running at restart is watched again:{}",
        env.jitd_log_tail()
    );
}
