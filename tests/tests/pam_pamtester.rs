//! pam_jit through libpam with pamtester: the account decision against a
//! real jitd on the test's bus.

use jit_tests::*;
use std::time::{Duration, Instant};

fn account_service(env: &Env, resource: &str, extra: &str) -> String {
    format!("account required {} {extra}\n", env.jit_args(resource))
}

fn setup(env: &Env) {
    let logs = account_service(env, "logs", "timeout=1s");
    let logs_bus = format!(
        "account required {} timeout=1s\n",
        env.jit_args_bus_only("logs")
    );
    let sudo = account_service(env, "sudo", "timeout=1s");
    let bad = account_service(env, "logs", "fail_open");
    let no_resource = format!("account required {}\n", pam_module().display());
    let audit = account_service(env, "logs", "audit_only");
    env.install_pam(
        &[
            ("jit-logs", &logs),
            ("jit-logs-bus", &logs_bus),
            ("jit-sudo", &sudo),
            ("jit-bad", &bad),
            ("jit-noresource", &no_resource),
            ("jit-audit", &audit),
        ],
        SUDOERS,
    );
}

#[track_caller]
fn denied(run: &Run) {
    assert_ne!(run.code, 0, "expected a denial:{run}");
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(
        !all.contains("successfully"),
        "pamtester reported success:{run}"
    );
}

#[test]
fn pamtester_account_follows_the_grant() {
    let env = Env::new();
    setup(&env);

    let run = env.pamtester("jit-sudo", "alice", &["acct_mgmt"]);
    denied(&run);
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(
        all.contains("jitctl request sudo --for 30m --reason"),
        "no hint to request a grant:{run}"
    );
    assert!(all.contains("Permission denied"), "{run}");

    // Denied without a grant for logs either, on either way to jitd.
    denied(&env.pamtester("jit-logs", "alice", &["acct_mgmt"]));
    denied(&env.pamtester("jit-logs-bus", "alice", &["acct_mgmt"]));

    // An auto-approved grant: allowed, through jitd's private socket and,
    // where there is none, through the bus.
    let grant = env.request("alice", "logs", "3s", "pam test");
    let id = id_of(&grant);
    assert_eq!(state_of(&grant), "active", "{grant:#}");
    env.pamtester("jit-logs", "alice", &["acct_mgmt"]).ok();
    env.pamtester("jit-logs-bus", "alice", &["acct_mgmt"]).ok();
    denied(&env.pamtester("jit-logs-bus", "bob", &["acct_mgmt"]));
    // The grant is alice's alone, and for logs only.
    denied(&env.pamtester("jit-logs", "bob", &["acct_mgmt"]));
    denied(&env.pamtester("jit-sudo", "alice", &["acct_mgmt"]));

    // After expiry: denied.
    env.wait_state(id, "expired", Duration::from_secs(10));
    denied(&env.pamtester("jit-logs", "alice", &["acct_mgmt"]));
    denied(&env.pamtester("jit-logs-bus", "alice", &["acct_mgmt"]));

    // Revoked: denied.
    let id = id_of(&env.request("alice", "logs", "30m", "again"));
    env.pamtester("jit-logs", "alice", &["acct_mgmt"]).ok();
    env.jitctl("root", &["revoke", &id.to_string(), "--comment", "done"])
        .ok();
    denied(&env.pamtester("jit-logs", "alice", &["acct_mgmt"]));
}

#[test]
fn pamtester_pending_request_is_named() {
    let env = Env::new();
    setup(&env);
    // sudo needs two approvals: the request stays pending.
    let doc = env.request("alice", "sudo", "30m", "maintenance");
    let id = id_of(&doc);
    assert_eq!(state_of(&doc), "pending", "{doc:#}");
    let run = env.pamtester("jit-sudo", "alice", &["acct_mgmt"]);
    denied(&run);
    assert!(
        run.stderr.contains(&format!("request {id} is pending")),
        "pending request not named:{run}"
    );
}

#[test]
fn pamtester_bad_arguments_are_a_service_error() {
    let env = Env::new();
    setup(&env);
    // Even with an active grant, a bad stack line never means success.
    env.request("alice", "logs", "30m", "pam test");
    for service in ["jit-bad", "jit-noresource"] {
        let run = env.pamtester(service, "alice", &["acct_mgmt"]);
        denied(&run);
        assert!(
            run.stderr.contains("Error in service module"),
            "expected PAM_SERVICE_ERR's message:{run}"
        );
    }
}

#[test]
fn pamtester_unknown_user_is_denied() {
    let env = Env::new();
    setup(&env);
    let started = Instant::now();
    let run = env.pamtester("jit-logs", "nosuchuser-jit", &["acct_mgmt"]);
    denied(&run);
    assert!(started.elapsed() < Duration::from_secs(2), "{run}");
}

#[test]
fn pamtester_audit_only_allows_and_enforcement_does_not() {
    let env = Env::new();
    setup(&env);
    env.pamtester("jit-audit", "alice", &["acct_mgmt"]).ok();
    denied(&env.pamtester("jit-logs", "alice", &["acct_mgmt"]));
}

#[test]
fn pamtester_session_registers_with_jitd() {
    let env = Env::new();
    let session = format!("session required {}\n", env.jit_args("logs"));
    env.install_pam(&[("jit-session", &session)], SUDOERS);
    let run = env.pamtester("jit-session", "alice", &["open_session"]);
    assert_ne!(run.code, 0, "session opened without a grant:{run}");
    let id = id_of(&env.request("alice", "logs", "30m", "pam test"));
    let run = env.pamtester("jit-session", "alice", &["open_session", "close_session"]);
    assert_eq!(run.code, 0, "{run}{}", env.jitd_log_tail());
    assert_session_recorded_and_ended(&env, id);
}

/// jitd records a session's end when the process that opened it exits:
/// close_session asks jitd nothing, and a session never closed (pamtester
/// exits straight after opening it, as a killed sudo would) ends all the same.
#[test]
fn pamtester_session_ends_with_its_process_without_close() {
    let env = Env::new();
    let session = format!("session required {}\n", env.jit_args("logs"));
    env.install_pam(&[("jit-session", &session)], SUDOERS);
    let id = id_of(&env.request("alice", "logs", "30m", "pam test"));
    let run = env.pamtester("jit-session", "alice", &["open_session"]);
    assert_eq!(run.code, 0, "{run}{}", env.jitd_log_tail());
    assert_session_recorded_and_ended(&env, id);
}

/// One session_opened for grant `id`, and its session_closed (naming the same
/// session and process) within 2 s of the PAM program's exit.
#[track_caller]
fn assert_session_recorded_and_ended(env: &Env, id: u64) {
    let events = wait_for(Duration::from_secs(2), || {
        let events = env.audit_events_for(id);
        events
            .iter()
            .any(|e| e["event"] == "session_closed")
            .then_some(events)
    })
    .unwrap_or_else(|| panic!("no session_closed:{:#?}", env.audit_events_for(id)));
    let of = |name: &str| -> Vec<(u64, u64)> {
        events
            .iter()
            .filter(|e| e["event"] == name)
            .map(|e| {
                let d = &e["detail"];
                (
                    d["session"].as_u64().unwrap_or(0),
                    d["pid"].as_u64().unwrap_or(0),
                )
            })
            .collect()
    };
    let opened = of("session_opened");
    assert_eq!(opened.len(), 1, "{events:#?}");
    assert_eq!(of("session_closed"), opened, "{events:#?}");
}

/// The private socket is the way to jitd, not a detour through the bus: with
/// the bus frozen, checks still get their answer (and the bus-only stack
/// times out).
#[test]
fn pamtester_reaches_jitd_without_the_bus() {
    let env = Env::new();
    setup(&env);
    env.request("alice", "logs", "30m", "no bus");
    let bus = env.bus_pid().expect("bus") as i32;
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(bus, libc::SIGSTOP) };
    let private = env.pamtester("jit-logs", "alice", &["acct_mgmt"]);
    let through_bus = env.pamtester("jit-logs-bus", "alice", &["acct_mgmt"]);
    // SAFETY: as above; teardown needs it running.
    unsafe { libc::kill(bus, libc::SIGCONT) };
    private.ok();
    denied(&through_bus);
    assert!(
        through_bus.stderr.contains("timed out waiting for jitd"),
        "{through_bus}"
    );
}

/// The messages up to pam_jit's first that holds every one of `parts`
/// (the first at its start: the priority); fails after 5 s without one.
#[track_caller]
fn expect_logged(syslog: &Syslog, parts: &[&str]) -> Vec<String> {
    let holds = |m: &str| m.starts_with(parts[0]) && parts[1..].iter().all(|p| m.contains(p));
    let seen = syslog.messages_until(Duration::from_secs(5), holds);
    assert!(seen.iter().any(|m| holds(m)), "{parts:?} not in {seen:#?}");
    seen
}

/// Decisions reach syslog (authpriv) naming the PAM service, the user, the
/// resource and, once there is one, the grant: a denial at notice, a
/// session opened at info. A session's close is not logged (jitd records
/// when it really ended).
#[test]
fn decisions_reach_syslog_with_service_user_resource_and_grant() {
    let env = Env::new();
    let both = format!(
        "account required {args}\nsession required {args}\n",
        args = env.jit_args("logs")
    );
    env.install_pam(&[("jit-both", &both)], SUDOERS);
    let syslog = env.capture_syslog();
    let ours = |m: &str| m.contains("pam_jit: ");

    denied(&env.pamtester("jit-both", "alice", &["acct_mgmt"]));
    // LOG_AUTHPRIV (10 << 3) | LOG_NOTICE (5)
    let denial = [
        "<85>",
        "account service=jit-both",
        "user=alice",
        "resource=logs",
        "denied",
    ];
    expect_logged(&syslog, &denial);

    let grant = id_of(&env.request("alice", "logs", "30m", "syslog test"));
    let run = env.pamtester(
        "jit-both",
        "alice",
        &["acct_mgmt", "open_session", "close_session"],
    );
    assert_eq!(run.code, 0, "{run}");
    // LOG_AUTHPRIV | LOG_INFO (6)
    let grant = format!("grant={grant}");
    let opened = [
        "<86>",
        "session service=jit-both",
        "user=alice",
        "resource=logs",
        &grant,
        "session registered",
    ];
    let seen = expect_logged(&syslog, &opened);
    let later = syslog.messages_until(Duration::from_millis(500), |_| false);
    assert!(
        !later
            .iter()
            .chain(&seen)
            .any(|m| ours(m) && m.contains("closing")),
        "{later:#?}"
    );
}

const FAKE_JITD: &str = env!("CARGO_BIN_EXE_fake-jitd");

/// sudo's account check and its session share one connection to jitd's
/// private socket (one handshake per sudo, not two). When jitd hangs up in
/// between, as a restarting jitd does, the session hook connects again.
#[test]
fn the_session_hook_carries_on_the_account_checks_connection() {
    let env = Env::new();
    let mut services = Vec::new();
    let mut fakes = Vec::new();
    for (name, extra) in [("jit-kept", None), ("jit-hung-up", Some("--hang-up"))] {
        // A scripted jitd (root, like jitd) that prints each connection and call.
        let path = env.dir.path().join(format!("{name}.socket"));
        let mut cmd = env.ns_command(FAKE_JITD);
        cmd.arg("--listen").arg(&path).args(extra);
        let fake = Background::spawn(cmd);
        // The probe is the first connection each fake sees.
        if wait_for(Duration::from_secs(10), || {
            std::os::unix::net::UnixStream::connect(&path).ok()
        })
        .is_none()
        {
            panic!("fake-jitd did not listen:{}", fake.stop());
        }
        let line = |hook: &str| {
            format!(
                "{hook} required {} resource=logs socket={} bus=unix:path=/nonexistent timeout=1s\n",
                pam_module().display(),
                path.display()
            )
        };
        // The pause lets the hanging-up fake close before the session hook.
        let pause = "session required pam_exec.so quiet /usr/bin/sleep 0.3\n";
        services.push((
            name,
            format!("{}{pause}{}", line("account"), line("session")),
        ));
        fakes.push(fake);
    }
    let refs: Vec<(&str, &str)> = services.iter().map(|(n, t)| (*n, t.as_str())).collect();
    env.install_pam(&refs, SUDOERS);
    // After the probe's connection: one for both calls, or one each.
    let expected: [&[&str]; 2] = [
        &["connection", "CheckAccess", "RegisterSession"],
        &["connection", "CheckAccess", "connection", "RegisterSession"],
    ];
    for (((name, _), fake), expected) in services.iter().zip(fakes).zip(expected) {
        let run = env.pamtester(
            name,
            "alice",
            &["acct_mgmt", "open_session", "close_session"],
        );
        let seen = fake.stop();
        assert_eq!(run.code, 0, "{name}:{run}{seen}");
        let lines: Vec<&str> = seen.stdout.lines().skip(2).collect();
        assert_eq!(lines, expected, "{name}:{seen}");
    }
}
