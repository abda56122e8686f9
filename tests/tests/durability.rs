//! Restarts: expiry while jitd was down, and kill -9 in the middle of a stream of operations.

use jit_tests::*;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[test]
fn grants_that_expired_while_down_are_expired_at_startup() {
    let mut env = Env::new();
    let id = id_of(&env.request("alice", "logs", "3s", "short"));
    let untouched = id_of(&env.request("bob", "logs", "30m", "long"));
    let status = env.stop_jitd();
    assert!(
        status.success(),
        "jitd did not exit cleanly on SIGTERM ({status}){}",
        env.jitd_log_tail()
    );
    std::thread::sleep(Duration::from_secs(5));
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

#[test]
fn kill_9_loses_no_acknowledged_operation() {
    const OPS: usize = 200;
    let mut env = Env::new();
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
    // of any later operation that was not acknowledged (it may have committed).
    let mut allowed: BTreeMap<u64, BTreeSet<&str>> = BTreeMap::new();
    let mut pending: Vec<u64> = Vec::new();
    let mut active: Vec<u64> = Vec::new();
    let mut acked = 0usize;
    let mut restarted = false;
    for i in 0..OPS {
        let choice = next(&mut rng) % 4;
        let (run, target, on): (Run, &str, Option<u64>) = match choice {
            0 => (
                env.jitctl(
                    "alice",
                    &[
                        "request",
                        "logs",
                        "--for",
                        "30m",
                        "--reason",
                        &format!("op {i}"),
                        "--json",
                    ],
                ),
                "active",
                None,
            ),
            1 => (
                env.jitctl(
                    "bob",
                    &[
                        "request",
                        "db",
                        "--for",
                        "2h",
                        "--reason",
                        &format!("op {i}"),
                        "--json",
                    ],
                ),
                "pending",
                None,
            ),
            2 if !pending.is_empty() => {
                let id = pending.remove((next(&mut rng) as usize) % pending.len());
                (env.approve("olivia", id), "active", Some(id))
            }
            3 if !active.is_empty() => {
                let id = active.remove((next(&mut rng) as usize) % active.len());
                (
                    env.jitctl("root", &["revoke", &id.to_string(), "--comment", "stream"]),
                    "revoked",
                    Some(id),
                )
            }
            _ => (
                env.jitctl(
                    "alice",
                    &[
                        "request",
                        "logs",
                        "--for",
                        "20m",
                        "--reason",
                        &format!("op {i}"),
                        "--json",
                    ],
                ),
                "active",
                None,
            ),
        };
        done.fetch_add(1, Ordering::SeqCst);
        if run.code == 0 {
            acked += 1;
            let id = match on {
                Some(id) => id,
                None => id_of(&run.json()),
            };
            let doc_state = if on.is_none() {
                run.json()["state"].as_str().map(str::to_owned)
            } else {
                None
            };
            let state: &str = match doc_state.as_deref() {
                Some("pending") => "pending",
                Some("active") => "active",
                Some(other) => panic!("unexpected state {other}:{run}"),
                None => target,
            };
            assert_eq!(state, target, "op {i}:{run}");
            allowed.insert(id, BTreeSet::from([state]));
            match state {
                "pending" => pending.push(id),
                "active" => active.push(id),
                _ => {}
            }
        } else {
            assert!(
                killed.load(Ordering::SeqCst) && !restarted,
                "op {i} failed while jitd should have been up:{run}{}",
                env.jitd_log_tail()
            );
            if let Some(id) = on {
                allowed.entry(id).or_default().insert(target);
                // Unknown outcome: do not touch this id again.
            }
            let status = env.reap_jitd();
            assert!(!status.success(), "jitd was not killed? {status}");
            env.start_jitd();
            restarted = true;
        }
    }
    killer.join().unwrap();
    assert!(killed.load(Ordering::SeqCst), "the kill never happened");
    if !restarted {
        // The kill landed between two operations' checks: restart now.
        let _ = env.reap_jitd();
        env.start_jitd();
    }

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
