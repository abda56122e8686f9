//! Restarts: expiry while jitd was down, and kill -9 in the middle of a stream of operations.

use jit_tests::*;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[test]
fn grants_that_expired_while_down_are_expired_at_startup() {
    let mut env = Env::new();
    let short = env.request("alice", "logs", "3s", "short");
    let id = id_of(&short);
    let untouched = id_of(&env.request("bob", "logs", "30m", "long"));
    let status = env.stop_jitd();
    assert!(
        status.success(),
        "jitd did not exit cleanly on SIGTERM ({status}){}",
        env.jitd_log_tail()
    );
    wait_until_wall(unix_secs(&short["expires_at"]) as f64);
    env.start_jitd();
    // Immediately: no waiting for a timer.
    let doc = env.show("root", id);
    assert_eq!(
        state_of(&doc),
        "expired",
        "right after restart: {doc:#}{}",
        env.jitd_log_tail()
    );
    let events = env.audit_events_for(id);
    assert!(
        events
            .iter()
            .any(|e| e["event"].as_str().unwrap_or_default().contains("expir")),
        "no expiry event after restart: {events:#?}"
    );
    assert_eq!(state_of(&env.show("root", untouched)), "active");
    env.jitctl("root", &["audit", "verify"]).ok();
}

fn seed() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
        | 1
}

/// xorshift64
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// What the stream believes is open, to choose valid next operations.
#[derive(Default)]
struct Open {
    alice_logs: Option<u64>,
    bob_db: Option<u64>,
    pending: Vec<u64>,
}

impl Open {
    /// The truth according to jitd (after a restart, outcomes of the
    /// operation in flight are unknown).
    fn resync(env: &Env) -> Open {
        let all = env.jitctl_json("root", &["list", "--all", "--json"]);
        let mut open = Open::default();
        for d in all.as_array().expect("array") {
            match (d["user"].as_str(), d["resource"].as_str(), state_of(d)) {
                (Some("alice"), Some("logs"), "active") => open.alice_logs = Some(id_of(d)),
                (Some("bob"), Some("db"), "active") => open.bob_db = Some(id_of(d)),
                (_, _, "pending") => open.pending.push(id_of(d)),
                _ => {}
            }
        }
        open
    }
}

#[test]
fn kill_9_loses_no_acknowledged_operation() {
    const OPS: usize = 200;
    let mut env = Env::with_config(&config_with_many_pending());
    let mut rng = seed();
    let kill_at = 50 + (next(&mut rng) % 100) as usize;
    let done = Arc::new(AtomicUsize::new(0));
    let killed = Arc::new(AtomicBool::new(false));
    let pid = env.jitd_pid().expect("jitd pid") as i32;
    let killer = {
        let (done, killed) = (done.clone(), killed.clone());
        let jitter = next(&mut rng) % 40;
        std::thread::spawn(move || {
            while done.load(Ordering::SeqCst) < kill_at {
                std::thread::sleep(Duration::from_millis(1));
            }
            std::thread::sleep(Duration::from_millis(jitter));
            // SAFETY: kill(2) on the test's own unreaped child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            killed.store(true, Ordering::SeqCst);
        })
    };

    // id -> states it may be in: the last acknowledged one, plus the target
    // of a later operation that was not acknowledged (it may have committed).
    let mut allowed: BTreeMap<u64, BTreeSet<&str>> = BTreeMap::new();
    let mut open = Open::default();
    let mut acked = 0usize;
    let mut restarted = false;
    for i in 0..OPS {
        let reason = format!("op {i}");
        // (result, expected state, id acted on; None for a new request)
        let (run, target, on): (Run, &str, Option<u64>) = match next(&mut rng) % 4 {
            0 => match open.alice_logs.take() {
                None => (
                    env.jitctl(
                        "alice",
                        &[
                            "request", "logs", "--for", "30m", "--reason", &reason, "--json",
                        ],
                    ),
                    "active",
                    None,
                ),
                Some(id) => (
                    env.jitctl("root", &["revoke", &id.to_string(), "--comment", &reason]),
                    "revoked",
                    Some(id),
                ),
            },
            2 if !open.pending.is_empty() => {
                let id = open
                    .pending
                    .remove((next(&mut rng) as usize) % open.pending.len());
                if open.bob_db.is_none() {
                    (env.approve("olivia", id), "active", Some(id))
                } else {
                    (
                        env.jitctl("olivia", &["deny", &id.to_string(), "--comment", &reason]),
                        "denied",
                        Some(id),
                    )
                }
            }
            // bob holds at most one db grant: revoke it before asking again.
            _ => match open.bob_db.take() {
                Some(id) => (
                    env.jitctl("bob", &["revoke", &id.to_string(), "--comment", &reason]),
                    "revoked",
                    Some(id),
                ),
                None => (
                    env.jitctl(
                        "bob",
                        &[
                            "request", "db", "--for", "2h", "--reason", &reason, "--json",
                        ],
                    ),
                    "pending",
                    None,
                ),
            },
        };
        done.fetch_add(1, Ordering::SeqCst);
        if run.code == 0 {
            acked += 1;
            let id = match on {
                Some(id) => id,
                None => {
                    let doc = run.json();
                    assert_eq!(state_of(&doc), target, "op {i}:{run}");
                    id_of(&doc)
                }
            };
            allowed.insert(id, BTreeSet::from([target]));
            match (target, on) {
                ("pending", _) => open.pending.push(id),
                ("active", None) => open.alice_logs = Some(id),
                ("active", Some(_)) => open.bob_db = Some(id),
                _ => {}
            }
        } else {
            assert!(
                killed.load(Ordering::SeqCst) && !restarted,
                "op {i} failed while jitd should have been up:{run}{}",
                env.jitd_log_tail()
            );
            // 5 (unreachable) or, for the call in flight, 1 (no reply); one clean line.
            assert!(matches!(run.code, 1 | 5), "jitctl with jitd gone:{run}");
            run.assert_clean_error();
            if let Some(id) = on {
                allowed.entry(id).or_default().insert(target);
            }
            let status = env.reap_jitd();
            assert!(!status.success(), "jitd was not killed? {status}");
            env.start_jitd();
            restarted = true;
            open = Open::resync(&env);
        }
    }
    killer.join().unwrap();
    assert!(killed.load(Ordering::SeqCst), "the kill never happened");
    assert!(restarted, "no operation noticed the kill");

    let all = env.jitctl_json("root", &["list", "--all", "--json"]);
    let states: BTreeMap<u64, String> = all
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {all:#}"))
        .iter()
        .map(|d| (id_of(d), state_of(d).to_owned()))
        .collect();
    let mut lost = Vec::new();
    for (id, ok) in &allowed {
        match states.get(id) {
            Some(s) if ok.contains(s.as_str()) => {}
            other => lost.push(format!(
                "request {id}: expected one of {ok:?}, found {other:?}"
            )),
        }
    }
    assert!(
        lost.is_empty(),
        "{} of {acked} acknowledged operations lost after kill -9 at op ~{kill_at}:\n{}{}",
        lost.len(),
        lost.join("\n"),
        env.jitd_log_tail()
    );
    let verify = env.jitctl("root", &["audit", "verify", "--json"]).ok();
    assert_eq!(verify.json()["ok"], true, "{verify}");
}
