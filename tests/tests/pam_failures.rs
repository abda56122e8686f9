//! pam_jit when jitd cannot answer: stopped, frozen (SIGSTOP), or a bus
//! socket that speaks garbage, oversized frames or replies to other serials.
//! Always a denial, never a hang (threats T6, T8).

use jit_tests::*;
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::{Duration, Instant};

fn timed_sudo(env: &Env) -> (Run, Duration) {
    let started = Instant::now();
    let run = env.sudo("alice", &[], &["true"]);
    (run, started.elapsed())
}

#[test]
fn jitd_stopped_denies_at_once() {
    let mut env = sudo_env("sudo");
    let (run, baseline) = timed_sudo(&env);
    assert_ne!(run.code, 0, "{run}");
    env.stop_jitd();
    let (run, elapsed) = timed_sudo(&env);
    eprintln!("sudo denial: {baseline:?} with jitd up (no grant), {elapsed:?} with jitd stopped");
    assert_ne!(run.code, 0, "sudo allowed with jitd stopped:{run}");
    assert!(run.stderr.contains("jitd is not running"), "{run}");
    assert!(
        elapsed < Duration::from_millis(500),
        "denial took {elapsed:?} with jitd stopped:{run}"
    );
    // Killed, jitd leaves its private socket behind: nobody listens there,
    // so pam_jit asks the bus, where nobody owns jitd's name.
    env.start_jitd();
    env.kill_jitd();
    assert!(
        env.private_socket().exists(),
        "no stale socket to test with"
    );
    let (run, elapsed) = timed_sudo(&env);
    assert_ne!(run.code, 0, "sudo allowed with jitd killed:{run}");
    assert!(run.stderr.contains("jitd is not running"), "{run}");
    assert!(
        elapsed < Duration::from_millis(500),
        "denial took {elapsed:?} with jitd killed:{run}"
    );
}

#[test]
fn jitd_frozen_denies_within_the_timeout() {
    let env = sudo_env("sudo");
    let id = id_of(&env.request("alice", "sudo", "30m", "frozen"));
    env.approve("mike", id).ok();
    env.approve("sam", id).ok();
    let (run, baseline) = timed_sudo(&env);
    assert_eq!(run.code, 0, "{run}");
    let pid = env.jitd_pid().expect("jitd") as i32;
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let (run, elapsed) = timed_sudo(&env);
    // SAFETY: as above; teardown needs it running.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    eprintln!(
        "sudo: {baseline:?} allowed with jitd up, {elapsed:?} denied with jitd frozen (timeout=1s)"
    );
    assert_ne!(run.code, 0, "sudo allowed with jitd frozen:{run}");
    assert!(run.stderr.contains("timed out waiting for jitd"), "{run}");
    assert!(
        elapsed < Duration::from_millis(1200) + baseline,
        "denial took {elapsed:?} (timeout 1 s, sudo itself {baseline:?}):{run}"
    );
    // And it answers again once thawed.
    env.sudo("alice", &[], &["true"]).ok();
}

/// What a fake bus does after authentication.
type Misbehave = fn(&mut UnixStream);

/// A bus that authenticates anyone, then misbehaves.
fn fake_bus(env: &Env, name: &str, misbehave: Misbehave) -> String {
    let path = env.dir.path().join(format!("{name}.sock"));
    let listener = UnixListener::bind(&path).expect("bind fake bus");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            std::thread::spawn(move || {
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let mut seen = Vec::new();
                let mut byte = [0u8; 256];
                while !seen.windows(7).any(|w| w == b"BEGIN\r\n") {
                    match s.read(&mut byte) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&byte[..n]),
                    }
                }
                let _ = s.write_all(b"OK 0123456789abcdef0123456789abcdef\r\n");
                misbehave(&mut s);
                // Keep the connection open until the client gives up.
                let _ = s.read_to_end(&mut seen);
            });
        }
    });
    format!("unix:path={}", path.display())
}

fn pad(buf: &mut Vec<u8>, to: usize) {
    buf.resize(buf.len().next_multiple_of(to), 0);
}

/// A little-endian method return carrying one string.
fn method_return(serial: u32, reply_serial: u32, sender: &str, text: &str) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&(text.len() as u32).to_le_bytes());
    body.extend_from_slice(text.as_bytes());
    body.push(0);
    let mut fields = Vec::new();
    // REPLY_SERIAL (5): u
    fields.extend_from_slice(&[5, 1, b'u', 0]);
    fields.extend_from_slice(&reply_serial.to_le_bytes());
    pad(&mut fields, 8);
    // SENDER (7): s
    fields.extend_from_slice(&[7, 1, b's', 0]);
    fields.extend_from_slice(&(sender.len() as u32).to_le_bytes());
    fields.extend_from_slice(sender.as_bytes());
    fields.push(0);
    pad(&mut fields, 8);
    // SIGNATURE (8): g
    fields.extend_from_slice(&[8, 1, b'g', 0, 1, b's', 0]);
    let mut msg = vec![b'l', 2, 0, 1];
    msg.extend_from_slice(&(body.len() as u32).to_le_bytes());
    msg.extend_from_slice(&serial.to_le_bytes());
    msg.extend_from_slice(&(fields.len() as u32).to_le_bytes());
    msg.extend_from_slice(&fields);
    pad(&mut msg, 8);
    msg.extend_from_slice(&body);
    msg
}

#[test]
fn hostile_bus_sockets_deny_quickly() {
    let env = Env::new();
    let cases: [(&str, Misbehave); 4] = [
        ("garbage", |s| {
            let junk: Vec<u8> = (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect();
            let _ = s.write_all(&junk);
        }),
        ("oversized", |s| {
            let mut frame = method_return(1, 1, "org.freedesktop.DBus", ":1.5");
            frame[4..8].copy_from_slice(&0x7ff0_0000u32.to_le_bytes());
            let _ = s.write_all(&frame);
        }),
        ("wrong-serial", |s| {
            for i in 0..20 {
                let _ = s.write_all(&method_return(
                    i + 1,
                    999 + i,
                    "org.freedesktop.DBus",
                    ":1.5",
                ));
            }
        }),
        ("silent", |_| {}),
    ];
    let mut services = Vec::new();
    for (name, misbehave) in cases {
        let address = fake_bus(&env, name, misbehave);
        services.push((
            format!("jit-{name}"),
            format!(
                "account required {} resource=logs bus={address} timeout=1s\n",
                pam_module().display()
            ),
        ));
        // The same misbehaviour from a root listener at the private socket's
        // path (the real jitd on the bus would say yes).
        let path = address.trim_start_matches("unix:path=");
        services.push((
            format!("jit-{name}-private"),
            format!(
                "account required {} resource=logs socket={path} bus={} timeout=1s\n",
                pam_module().display(),
                env.address()
            ),
        ));
    }
    let refs: Vec<(&str, &str)> = services
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    env.install_pam(&refs, SUDOERS);
    // Even with an active grant on the real jitd.
    env.request("alice", "logs", "30m", "hostile sockets");
    for (service, _) in &services {
        let started = Instant::now();
        let run = env.pamtester(service, "alice", &["acct_mgmt"]);
        let elapsed = started.elapsed();
        eprintln!("{service}: denied in {elapsed:?}");
        assert_ne!(run.code, 0, "{service}: allowed:{run}");
        assert!(!run.stdout.contains("successfully"), "{run}");
        assert!(
            run.stderr.contains("cannot verify your grant"),
            "{service}: no explanation:{run}"
        );
        assert!(
            elapsed < Duration::from_millis(1500),
            "{service}: took {elapsed:?}:{run}"
        );
    }
}
