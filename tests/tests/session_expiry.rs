//! A recorded shell on a short grant: the warning banner and marker, a live
//! extension from another terminal, and the end at expiry (the shell, a
//! `setsid` child and the recorder gone within 1 s; the recording closed
//! with end "expired" and a digest that verifies).

use jit_tests::*;
use std::time::Duration;

#[test]
fn warned_extended_and_ended_at_expiry() {
    let s = SessionEnv::new(&session_config("3s"), "ops");
    let grant = s.request("alice", "ops", "6s", "hotfix");
    assert_eq!(state_of(&grant), "active", "{grant:#}");
    let id = id_of(&grant);
    let first_expiry = unix_secs(&grant["expires_at"]);

    let t = Tmux::start(&s, "alice", 100, 30);
    t.open_shell(Some(id));
    let marker = marked_sleep();
    t.line(&format!(
        "setsid sleep {marker} & echo shellpid=$$ setsid-started"
    ));
    let screen = t.wait_for("setsid-started", Duration::from_secs(5));
    let shell: u32 = screen
        .lines()
        .find_map(|l| {
            l.split("shellpid=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no shell pid on screen:\n{screen}"));
    // The shell's parent is the monitor, whose parent is the recorder.
    let monitor = parent_of(shell).expect("monitor");
    let recorder = parent_of(monitor).expect("recorder");
    assert!(
        cmdline(recorder).contains("jit-session"),
        "recorder {recorder}: {}",
        cmdline(recorder)
    );
    let sleeps = wait_for(Duration::from_secs(3), || {
        let p = pids_of(&["sleep", &marker]);
        (!p.is_empty()).then_some(p)
    })
    .expect("the setsid sleep started");
    assert!(
        wall_now() < first_expiry as f64 - 3.0,
        "the session took too long to start (warning already due)"
    );

    // T-3 s: the banner in the terminal.
    t.wait_for("[jit] this session ends at", Duration::from_secs(6));

    // More time, from another terminal: the session hears it at once.
    let ext = s.jitctl_json(
        "alice",
        &[
            "extend",
            &id.to_string(),
            "--for",
            "3s",
            "--reason",
            "almost done",
            "--json",
        ],
    );
    s.wait_state(id_of(&ext), "applied", Duration::from_secs(3));
    let expires_at = unix_secs(&s.show("alice", id)["expires_at"]);
    assert!(
        expires_at > first_expiry,
        "expiry {first_expiry} -> {expires_at}"
    );
    t.wait_for(
        &format!("[jit] grant {id} extended: this session now ends at"),
        Duration::from_secs(3),
    );
    assert!(
        wall_now() < first_expiry as f64 + 0.5,
        "the extension came too late to tell"
    );
    // Nothing may end the session at the first expiry: still alive past it.
    wait_until_wall(first_expiry as f64 + 0.5);
    let mut pids = vec![shell, monitor, recorder];
    pids.extend(&sleeps);
    assert!(
        pids.iter().all(|p| alive(*p)),
        "the session ended at the first expiry despite the extension:\n{}{}",
        t.screen(),
        s.jitd_log_tail()
    );

    // Expiry: everything gone within 1 s.
    let Some(delay) = death_after_expiry(&pids, expires_at) else {
        let left: Vec<String> = pids
            .iter()
            .filter(|p| alive(**p))
            .map(|p| format!("{p} {}", cmdline(*p)))
            .collect();
        panic!(
            "still alive 3 s after expiry: {left:?}\n{}{}",
            t.screen(),
            s.jitd_log_tail()
        );
    };
    eprintln!("jit-session: shell, setsid child and recorder dead {delay:.3} s after expiry");
    assert!(delay <= 1.0, "session dead {delay:.3} s after expiry");

    // The recording is closed and its digest verifies.
    let rec = s.closed_recording(id, Duration::from_secs(3));
    let ended = unix_secs(&rec["ended_at"]);
    assert!(
        ended <= expires_at + 1,
        "recording closed at {ended}, expiry {expires_at}"
    );
    s.jitctl("alice", &["recordings", "verify", &rec["id"].to_string()])
        .ok();

    // ... as "expired", with the final message and a marker for each step.
    let file = std::fs::read(rec["path"].as_str().expect("path")).expect("recording");
    let cast = Cast::parse(&file);
    let markers = cast.of("m");
    let screen = wait_for(Duration::from_secs(1), || {
        let scr = t.screen();
        scr.contains("expired: ending the session").then_some(scr)
    })
    .unwrap_or_else(|| t.screen());
    let pos = |prefix: &str| markers.iter().position(|m| m.starts_with(prefix));
    let (warned, extended, expired) =
        (pos("expiring at"), pos("extended to"), pos("grant expired"));
    let context = format!(
        "\n  recording: {rec:#}\n  markers: {markers:?}\n  screen:\n{screen}{}",
        s.jitd_log_tail()
    );
    assert!(
        warned.is_some() && extended.is_some() && warned < extended,
        "warning and extension markers missing or out of order:{context}"
    );
    assert_eq!(rec["end"], "expired", "the recording's end:{context}");
    assert!(
        screen.contains(&format!("[jit] grant {id} expired: ending the session")),
        "no final message in the terminal:{context}"
    );
    assert!(
        expired.is_some_and(|e| Some(e) > extended),
        "no \"grant expired\" marker after the extension:{context}"
    );
}
