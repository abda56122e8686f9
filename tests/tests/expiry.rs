//! Time: lapse of undecided requests, expiry, revocation, extension, --wait.

use jit_tests::*;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn events_named(env: &Env, id: u64, needle: &str) -> Vec<Value> {
    env.audit_events_for(id)
        .into_iter()
        .filter(|e| e["event"].as_str().unwrap_or_default().contains(needle))
        .collect()
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn undecided_requests_lapse() {
    let env = Env::with_config(&config_with_pending_ttl("2s"));
    let id = id_of(&env.request("alice", "db", "2h", "nobody will answer"));
    let doc = env.wait_state(id, "lapsed", Duration::from_secs(6));
    assert!(
        doc["expires_at"].is_null(),
        "a lapsed request has no expiry: {doc:#}"
    );
    env.approve("olivia", id).code(6);
    assert!(
        !events_named(&env, id, "laps").is_empty(),
        "no lapse event: {:#?}",
        env.audit_events_for(id)
    );
}

/// CheckGrant for alice's logs grant, asked by alice over the bus.
fn alice_checks_logs(env: &Env) -> Run {
    env.check_grant("alice", "alice", "logs").ok()
}

#[test]
fn grants_expire_on_time() {
    let env = Env::new();
    let doc = env.request("alice", "logs", "2s", "quick look");
    let id = id_of(&doc);
    assert_eq!(state_of(&doc), "active", "{doc:#}");
    let expires = unix_secs(&doc["expires_at"]);
    assert!(
        (expires - now()).abs() <= 3,
        "expires_at {expires} is not ~2s from now: {doc:#}"
    );
    let check = alice_checks_logs(&env);
    assert!(
        check.stdout.starts_with("btxt true"),
        "CheckGrant while active:{check}"
    );

    let start = Instant::now();
    let done = env.wait_state(id, "expired", Duration::from_secs(6));
    // Within ~1s after expiry (whole-second timestamps and polling add slack).
    let seen = now();
    assert!(
        seen <= expires + 2,
        "expired only at {seen}, expiry was {expires} (waited {:?})",
        start.elapsed()
    );
    assert!(
        done["ended_at"].is_string(),
        "an expired grant has ended_at: {done:#}"
    );
    let check = alice_checks_logs(&env);
    assert!(
        check.stdout.starts_with("btxt false"),
        "CheckGrant after expiry:{check}"
    );
    let events = env.audit_events_for(id);
    assert!(
        events
            .iter()
            .any(|e| e["event"].as_str().unwrap_or_default().contains("expir")),
        "no expiry event in {events:#?}"
    );
    env.jitctl("alice", &["revoke", &id.to_string()]).code(6);
}

#[test]
fn revocation() {
    let env = Env::new();
    let own = id_of(&env.request("alice", "logs", "30m", "mine"));
    env.jitctl("bob", &["revoke", &own.to_string()]).code(3);
    env.jitctl("olivia", &["revoke", &own.to_string()]).code(3);
    env.jitctl(
        "alice",
        &["revoke", &own.to_string(), "--comment", "done early"],
    )
    .ok();
    assert_eq!(state_of(&env.show("alice", own)), "revoked");
    env.jitctl("alice", &["revoke", &own.to_string()]).code(6);

    let other = id_of(&env.request("alice", "logs", "30m", "again"));
    env.jitctl(
        "sam",
        &["revoke", &other.to_string(), "--comment", "incident 7"],
    )
    .ok();
    assert_eq!(state_of(&env.show("alice", other)), "revoked");
    assert!(
        !events_named(&env, other, "revok").is_empty(),
        "{:#?}",
        env.audit_events_for(other)
    );

    // Root may revoke too; a pending request can be withdrawn by its requester.
    let third = id_of(&env.request("bob", "logs", "30m", "three"));
    env.jitctl(
        "root",
        &["revoke", &third.to_string(), "--comment", "root says"],
    )
    .ok();
    assert_eq!(state_of(&env.show("root", third)), "revoked");
    let pending = id_of(&env.request("bob", "db", "2h", "withdraw me"));
    env.jitctl("bob", &["revoke", &pending.to_string()]).ok();
    let doc = env.show("bob", pending);
    assert_eq!(state_of(&doc), "revoked", "a withdrawn request: {doc:#}");
    env.approve("olivia", pending).code(6);
    env.jitctl("alice", &["revoke", "999999"]).code(4);
}

#[test]
fn extension_moves_the_expiry() {
    let env = Env::new();
    let grant = env.request("alice", "logs", "30m", "long task");
    let gid = id_of(&grant);
    let before = unix_secs(&grant["expires_at"]);

    let ext = env.jitctl_json(
        "alice",
        &[
            "extend",
            &gid.to_string(),
            "--for",
            "10m",
            "--reason",
            "need more",
            "--json",
        ],
    );
    assert_eq!(ext["kind"], "extension", "{ext:#}");
    assert_eq!(ext["extends"].as_u64(), Some(gid), "{ext:#}");
    assert_ne!(id_of(&ext), gid, "{ext:#}");
    assert_eq!(ext["route"], "auto", "{ext:#}");
    let ext = env.wait_state(id_of(&ext), "applied", Duration::from_secs(3));
    let after = env.show("alice", gid);
    assert_eq!(state_of(&after), "active", "{after:#}");
    let moved = unix_secs(&after["expires_at"]);
    assert!(
        moved >= before + 590,
        "expiry {before} -> {moved}; extension {ext:#}"
    );
    assert!(
        !events_named(&env, gid, "exten").is_empty()
            || !env.audit_events_for(id_of(&ext)).is_empty()
    );

    // Over the cap (1h from now), someone else's grant, unknown grant.
    env.jitctl(
        "alice",
        &["extend", &gid.to_string(), "--for", "45m", "--reason", "x"],
    )
    .code(2);
    env.jitctl(
        "bob",
        &["extend", &gid.to_string(), "--for", "5m", "--reason", "x"],
    )
    .code(3);
    env.jitctl(
        "alice",
        &["extend", "999999", "--for", "5m", "--reason", "x"],
    )
    .code(4);
    env.jitctl(
        "alice",
        &["extend", &gid.to_string(), "--for", "5m", "--reason", ""],
    )
    .code(2);
}

#[test]
fn extension_routes_like_a_new_request() {
    let env = Env::new();
    let gid = id_of(&env.request("alice", "db", "2h", "work"));
    env.approve("olivia", gid).ok();
    let before = unix_secs(&env.show("alice", gid)["expires_at"]);
    let ext = env.jitctl_json(
        "alice",
        &[
            "extend",
            &gid.to_string(),
            "--for",
            "1h",
            "--reason",
            "more",
            "--json",
        ],
    );
    assert_eq!(state_of(&ext), "pending", "{ext:#}");
    assert_eq!(ext["route"], "owner", "{ext:#}");
    let done = env.approve("olivia", id_of(&ext)).ok().json();
    assert_eq!(state_of(&done), "applied", "{done:#}");
    let after = unix_secs(&env.show("alice", gid)["expires_at"]);
    assert!(after >= before + 3590, "expiry {before} -> {after}");
}

#[test]
fn wait_for_approval_and_denial() {
    let env = Env::new();
    let pending_of = |user: &str| -> u64 {
        let found = wait_for(Duration::from_secs(10), || {
            let v = env.jitctl_json("olivia", &["list", "--pending", "--json"]);
            v.as_array()
                .unwrap()
                .iter()
                .find(|d| d["user"] == user)
                .map(id_of)
        });
        found.unwrap_or_else(|| panic!("no pending request of {user}{}", env.jitd_log_tail()))
    };

    let mut waiter = env.spawn_jitctl(
        "alice",
        &[
            "request",
            "db",
            "--for",
            "2h",
            "--reason",
            "wait for it",
            "--wait=20s",
            "--json",
        ],
    );
    let id = pending_of("alice");
    // A period in which nothing may happen: the waiter must not exit while
    // its request is pending.
    std::thread::sleep(Duration::from_millis(300));
    assert!(waiter.running(), "the waiter did not wait");
    env.approve("olivia", id).ok();
    let run = waiter.finish(Duration::from_secs(10)).ok();
    assert!(
        run.stdout.contains("active"),
        "waiter should report the grant as active:{run}"
    );

    let waiter = env.spawn_jitctl(
        "bob",
        &[
            "request",
            "db",
            "--for",
            "2h",
            "--reason",
            "wait for no",
            "--wait=20s",
        ],
    );
    let id = pending_of("bob");
    env.jitctl("olivia", &["deny", &id.to_string(), "--comment", "no"])
        .ok();
    let run = waiter.finish(Duration::from_secs(10));
    assert_eq!(run.code, 3, "a denied --wait request exits 3:{run}");
    assert!(
        format!("{}{}", run.stdout, run.stderr).contains("denied"),
        "the waiter should say it was denied:{run}"
    );
    assert!(!run.stderr.contains("panicked"), "{run}");
}

#[test]
fn lifecycle_signals_are_sent() {
    let env = Env::new();
    let monitor = env.monitor("type='signal',interface='org.jit.Daemon1'");

    // expiry_warning is 1s in the test config: a 3s grant is warned, then ends.
    let id = id_of(&env.request("alice", "logs", "3s", "watch the signals"));
    let pending = id_of(&env.request("bob", "db", "2h", "to be approved"));
    env.approve("olivia", pending).ok();
    env.wait_state(id, "expired", Duration::from_secs(6));
    // jitd signals an end after committing it.
    monitor.wait_until("GrantEnded", Duration::from_secs(3), |out| {
        out.contains("member=GrantEnded")
    });
    let run = monitor.stop();

    // Blocks of "signal ... member=NAME" followed by indented argument lines.
    let mut signals: Vec<(String, Vec<String>)> = Vec::new();
    for line in run.stdout.lines() {
        if line.starts_with("signal ") {
            let member = line
                .rsplit("member=")
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned();
            signals.push((member, Vec::new()));
        } else if let Some((_, args)) = signals.last_mut() {
            args.push(line.trim().to_owned());
        }
    }
    let has = |member: &str, want: &[String]| {
        signals
            .iter()
            .any(|(m, args)| m == member && want.iter().all(|w| args.contains(w)))
    };
    let u64_ = |v: u64| format!("uint64 {v}");
    let s_ = |v: &str| format!("string \"{v}\"");
    let checks: Vec<(&str, Vec<String>)> = vec![
        (
            "RequestSubmitted",
            vec![u64_(id), "uint32 61001".into(), s_("logs"), s_("auto")],
        ),
        (
            "GrantActivated",
            vec![u64_(id), "uint32 61001".into(), s_("logs")],
        ),
        ("GrantExpiring", vec![u64_(id)]),
        (
            "GrantEnded",
            vec![u64_(id), "uint32 61001".into(), s_("logs"), s_("expired")],
        ),
        (
            "RequestSubmitted",
            vec![u64_(pending), "uint32 61002".into(), s_("db"), s_("owner")],
        ),
        ("RequestDecided", vec![u64_(pending), s_("active")]),
        (
            "GrantActivated",
            vec![u64_(pending), "uint32 61002".into(), s_("db")],
        ),
    ];
    for (member, want) in checks {
        assert!(
            has(member, &want),
            "no {member} signal with {want:?}; signals seen:{run}"
        );
    }
}
