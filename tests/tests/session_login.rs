//! jit-session as the login shell of a non-root account (README, "jit-session
//! as a login shell"): real sshd gated by pam_jit, the recorder as bob's
//! shell in the namespace's /etc/passwd. jitd writes the recording from a
//! pipe, so bob never holds a writable descriptor of it (threat T17).

use jit_tests::*;
use std::time::Duration;

const USER: &str = "bob";

fn ssh_grant(s: &SessionEnv) -> u64 {
    let grant = s.request(USER, "ssh", "30m", "vendor maintenance");
    assert_eq!(state_of(&grant), "active", "{grant:#}");
    id_of(&grant)
}

/// The recording's file, parsed, and its audit events.
fn closed(s: &SessionEnv, grant: u64) -> (Value, Cast) {
    let rec = s.closed_recording(grant, Duration::from_secs(10));
    let cast = Cast::parse(&s.read_ns_file(rec["path"].as_str().expect("path")));
    (rec, cast)
}

fn closing_event(s: &SessionEnv, grant: u64, recording: u64) -> Value {
    s.audit_events_for(grant)
        .into_iter()
        .find(|e| e["event"] == "recording_closed" && e["detail"]["recording"] == recording)
        .unwrap_or_else(|| panic!("no recording_closed for recording {recording}"))
}

#[test]
fn ssh_command_is_recorded_by_jitd() {
    let (s, sshd) = login_env(&[USER], |_| {});
    // No grant: pam_jit's account line refuses the login, nothing runs.
    let run = s.run(sshd.ssh(&s, USER, &["echo unrecorded-$((6*7))"]));
    assert_ne!(run.code, 0, "login without a grant:{run}");
    assert!(!run.stdout.contains("unrecorded-42"), "{run}");

    let grant = ssh_grant(&s);
    let run = s.run(sshd.ssh(&s, USER, &["echo hello-$((6*7)); id -u"]));
    assert_eq!(run.code, 0, "{run}{}", s.jitd_log_tail());
    assert!(run.stdout.contains("hello-42"), "{run}");
    assert!(run.stdout.contains(&uid(USER).to_string()), "{run}");

    let (rec, cast) = closed(&s, grant);
    assert_eq!(rec["end"], "exit", "{rec:#}");
    assert_eq!(rec["user"], USER, "{rec:#}");
    // Root's file in the recordings dir, not the user's.
    let path = std::path::PathBuf::from(rec["path"].as_str().unwrap());
    assert!(path.starts_with(&s.rec_dir), "{rec:#}");
    let (owner, group, mode) = owner_and_mode(&path);
    assert_eq!(owner, 0, "the recording belongs to uid {owner}");
    assert_eq!(group, 61104, "the recording's group is not jit-audit");
    assert_eq!(mode, 0o640, "mode {mode:o}");
    // The header is jitd's; the events are the session's.
    assert_eq!(cast.header["jit"]["grant"], grant, "{:#}", cast.header);
    assert_eq!(cast.header["jit"]["user"], USER, "{:#}", cast.header);
    assert_eq!(cast.header["jit"]["target_user"], USER, "{:#}", cast.header);
    assert_eq!(cast.header["command"], "echo hello-$((6*7)); id -u");
    assert_eq!(
        cast.header["env"]["SHELL"], "/bin/bash",
        "{:#}",
        cast.header
    );
    let output = cast.output();
    assert!(output.contains("hello-42"), "{output:?}");
    assert!(output.contains(&uid(USER).to_string()), "{output:?}");
    assert_eq!(cast.of("m").last().copied(), Some("end: exit"));

    // The recording tools work as for any other recording; bob plays his own.
    let id = rec["id"].as_u64().unwrap().to_string();
    s.jitctl("root", &["recordings", "verify", &id]).ok();
    let run = s
        .jitctl(USER, &["recordings", "play", &id, "--speed", "100"])
        .ok();
    assert!(run.stdout.contains("hello-42"), "{run}");
    let out = s.dir.path().join("export");
    std::fs::create_dir(&out).unwrap();
    s.jitctl(
        "root",
        &["recordings", "export", &id, "--out", out.to_str().unwrap()],
    )
    .ok();
    let exported = std::fs::read(out.join(format!("recording-{id}.cast"))).unwrap();
    assert_eq!(exported, s.read_ns_file(rec["path"].as_str().unwrap()));
    let event = closing_event(&s, grant, rec["id"].as_u64().unwrap());
    assert_eq!(event["detail"]["end"], "exit", "{event:#}");
    assert_eq!(event["detail"]["sha256"], rec["sha256"], "{event:#}");
}

#[test]
fn the_user_cannot_write_the_recording() {
    let (s, sshd) = login_env(&[USER], |_| {});
    let grant = ssh_grant(&s);
    s.run(sshd.ssh(&s, USER, &["echo first"])).ok();
    let (rec, _) = closed(&s, grant);
    let path = rec["path"].as_str().unwrap().to_owned();
    let id = rec["id"].as_u64().unwrap().to_string();
    // Neither outside a session nor from inside one.
    let append = format!("echo forged >> '{path}'");
    let run = s.run_as(USER, "sh", &["-c", &append]);
    assert_ne!(run.code, 0, "{run}");
    assert!(run.stderr.contains("Permission denied"), "{run}");
    let run = s.run(sshd.ssh(&s, USER, &[&append]));
    assert_ne!(run.code, 0, "{run}");
    // The shell's stderr stays stderr (ssh without a terminal: pipes).
    assert!(run.stderr.contains("Permission denied"), "{run}");
    // The file is as jitd closed it.
    s.jitctl("root", &["recordings", "verify", &id]).ok();
}

#[test]
fn interactive_login_is_recorded() {
    let (s, sshd) = login_env(&[USER], |_| {});
    let grant = ssh_grant(&s);
    let tmux = Tmux::start(&s, "root", 100, 30);
    tmux.line(&sshd.ssh_tty_line(USER));
    tmux.line("echo in-login-$((40+2)) uid=$(id -u) shell=$SHELL");
    tmux.wait_for(
        &format!("in-login-42 uid={} shell=/bin/bash", uid(USER)),
        Duration::from_secs(15),
    );

    // While it runs: the recorder holds no descriptor of the file, and the
    // user cannot look into it (not dumpable). The shell's parent is the
    // monitor, whose parent is the recorder (pids are not namespaced: other
    // tests run bob's recorders too).
    tmux.line("echo monitor-pid=$PPID");
    let screen = tmux.wait_until("the monitor's pid", Duration::from_secs(10), |t| {
        number_after(t, "monitor-pid=").is_some()
    });
    let pid = parent_of(number_after(&screen, "monitor-pid=").unwrap()).expect("the recorder");
    assert!(is_recorder(pid, USER), "{pid} is not {USER}'s jit-session");
    let fds: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("fds")
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .map(|p| p.display().to_string())
        .collect();
    assert!(
        !fds.iter().any(|f| f.ends_with(".cast")),
        "the recorder holds the recording: {fds:?}"
    );
    assert!(fds.iter().any(|f| f.starts_with("pipe:")), "{fds:?}");
    let run = s.run_as(USER, "ls", &[&format!("/proc/{pid}/fd")]);
    assert_ne!(run.code, 0, "the user can list the recorder's fds:{run}");

    tmux.line("exit");
    let (rec, cast) = closed(&s, grant);
    assert_eq!(rec["end"], "exit", "{rec:#}");
    assert_eq!(cast.header["command"], "/bin/bash", "{:#}", cast.header);
    assert_eq!(cast.header["width"], 100, "{:#}", cast.header);
    assert_eq!(cast.header["height"], 30, "{:#}", cast.header);
    let output = cast.output();
    assert!(
        output.contains(&format!("in-login-42 uid={}", uid(USER))),
        "{output:?}"
    );
    let id = rec["id"].as_u64().unwrap().to_string();
    s.jitctl("root", &["recordings", "verify", &id]).ok();
}

#[test]
fn killing_the_recorder_ends_the_session_and_is_audited() {
    let (s, sshd) = login_env(&[USER], |_| {});
    let grant = ssh_grant(&s);
    let mark = marked_sleep();
    let session = Background::spawn(sshd.ssh(&s, USER, &[&format!("sleep {mark}")]));
    let Some(sleeps) = wait_for(Duration::from_secs(10), || {
        let p = pids_of(&["sleep", &mark]);
        (!p.is_empty()).then_some(p)
    }) else {
        panic!("the remote sleep did not start:{}", session.stop());
    };
    // The sleep's parent is the monitor; the monitor's is the recorder.
    let recorder = parent_of(sleeps[0])
        .and_then(parent_of)
        .expect("the recorder");
    assert!(
        is_recorder(recorder, USER),
        "{recorder} is not {USER}'s jit-session"
    );
    // The recorder itself (sshd's child), not its monitor.
    assert!(
        !parent_of(recorder).is_some_and(|p| is_recorder(p, USER)),
        "{recorder} is a monitor"
    );

    // The user (same uid) kills it from another session of theirs.
    let run = s.run(sshd.ssh(&s, USER, &[&format!("kill -9 {recorder}")]));
    assert_eq!(run.code, 0, "{run}");
    let run = session.finish(Duration::from_secs(10));
    assert_ne!(run.code, 0, "{run}");
    assert!(
        wait_all_dead(&sleeps, Duration::from_secs(5)).is_some(),
        "the session's command outlived its recorder"
    );

    let mut last = Vec::new();
    let killed = wait_for(Duration::from_secs(10), || {
        last = s.recordings("root");
        last.iter()
            .find(|r| r["grant"] == grant && r["end"] == "terminated")
            .cloned()
    })
    .unwrap_or_else(|| panic!("no terminated recording: {last:#?}{}", s.jitd_log_tail()));
    let cast = Cast::parse(&s.read_ns_file(killed["path"].as_str().unwrap()));
    assert_eq!(cast.header["command"], format!("sleep {mark}"));
    let event = closing_event(&s, grant, killed["id"].as_u64().unwrap());
    assert_eq!(event["detail"]["end"], "terminated", "{event:#}");
    let id = killed["id"].as_u64().unwrap().to_string();
    s.jitctl("root", &["recordings", "verify", &id]).ok();
}

#[test]
fn a_killed_jitd_ends_login_sessions_and_seals_their_recordings_at_its_start() {
    let (mut s, sshd) = login_env(&[USER], |_| {});
    let grant = ssh_grant(&s);
    let mark = marked_sleep();
    let session =
        Background::spawn(sshd.ssh(&s, USER, &[&format!("echo before-the-kill; sleep {mark}")]));
    // jitd has the output in the file (the recorder sends within 100 ms).
    let Some(path) = wait_for(Duration::from_secs(10), || {
        let rec = s
            .recordings("root")
            .into_iter()
            .find(|r| r["grant"] == grant)?;
        let path = rec["path"].as_str()?.to_owned();
        let text = String::from_utf8_lossy(&s.read_ns_file(&path)).into_owned();
        text.contains("before-the-kill").then_some(path)
    }) else {
        panic!("the output never reached the recording:{}", session.stop());
    };

    s.env.kill_jitd();
    // Nobody records the session any more: it hears so at once and ends.
    let run = session.finish(Duration::from_secs(10));
    assert_ne!(run.code, 0, "{run}");
    // Notices go to stderr when stdout is not a terminal.
    assert!(
        run.stderr.contains("cannot write the session recording"),
        "{run}"
    );
    assert!(
        wait_all_dead(&pids_of(&["sleep", &mark]), Duration::from_secs(5)).is_some(),
        "the session's command outlived its recording"
    );
    let found = s.read_ns_file(&path);
    s.env.start_jitd();
    let rec = s.closed_recording(grant, Duration::from_secs(10));
    assert_eq!(rec["end"], "abandoned", "{rec:#}");
    assert_eq!(rec["bytes"], found.len(), "{rec:#}");
    let id = rec["id"].as_u64().unwrap();
    let event = closing_event(&s, grant, id);
    assert_eq!(event["detail"]["end"], "abandoned", "{event:#}");
    assert_eq!(event["detail"]["sha256"], rec["sha256"], "{event:#}");
    assert_eq!(rec["digest_of"], "file", "{rec:#}");
    // What happened to the file before the new jitd found it is unknown:
    // verify says so, with a status of its own.
    let verified = s
        .jitctl("root", &["recordings", "verify", &id.to_string()])
        .code(7);
    assert!(verified.stderr.contains("UNVERIFIED"), "{verified}");
    let listed = s.jitctl("root", &["recordings", "list"]).ok();
    assert!(listed.stdout.contains("UNVERIFIED"), "{listed}");
    assert_eq!(s.read_ns_file(&path), found, "sealing changed the file");
}

#[test]
fn the_session_ends_with_the_grant() {
    let (s, sshd) = login_env(&[USER], |_| {});
    let grant = s.request(USER, "ssh", "5s", "a short look");
    let grant = id_of(&grant);
    let mark = marked_sleep();
    let session = Background::spawn(sshd.ssh(&s, USER, &[&format!("sleep {mark}")]));
    let run = session.finish(Duration::from_secs(20));
    assert_ne!(run.code, 0, "{run}");
    assert!(run.stderr.contains("expired: ending the session"), "{run}");
    let (rec, cast) = closed(&s, grant);
    assert_eq!(rec["end"], "expired", "{rec:#}");
    assert!(
        cast.of("m").contains(&"grant expired"),
        "{:?}",
        cast.of("m")
    );
    assert_eq!(cast.of("m").last().copied(), Some("end: expired"));
    assert!(
        pids_of(&["sleep", &mark]).is_empty(),
        "the command outlived the grant"
    );
}

#[test]
fn outside_a_jit_session_it_refuses() {
    let (s, _sshd) = login_env(&[USER], |_| {});
    // A grant is not enough: the process must be in the grant's PAM session.
    ssh_grant(&s);
    for args in [&["-c", "echo unrecorded-$((6*7))"][..], &[]] {
        let run = s.run_as(USER, JIT_SESSION, args);
        assert_eq!(run.code, 1, "{run}");
        assert!(!run.stdout.contains("unrecorded-42"), "{run}");
        let lines: Vec<&str> = run.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{run}");
        assert!(
            lines[0].starts_with("jit-session: not inside a jit session"),
            "{run}"
        );
    }
    assert!(s.recordings("root").is_empty());
}

#[test]
fn full_disk_at_jitd_ends_the_session() {
    let (s, sshd) = login_env(&[USER], |s| {
        s.ns_sh(&format!(
            "mkdir -p '{d}' && mount -t tmpfs -o size=64k,mode=0750 jit-test-tiny '{d}' \
             && chgrp jit-audit '{d}'",
            d = s.rec_dir.display()
        ));
    });
    let grant = ssh_grant(&s);
    let started = std::time::Instant::now();
    let run = s.run(sshd.ssh(
        &s,
        USER,
        &["base64 /dev/urandom | head -c 20000000; echo; echo printed-everything"],
    ));
    let took = started.elapsed();
    let tail = tail_of(&run.stdout, 400);
    assert_ne!(run.code, 0, "exit status after a failed recording:{run}");
    assert!(
        run.stderr.contains("cannot write the session recording"),
        "no message; last output: {tail:?}\nstderr: {}",
        run.stderr
    );
    assert!(!run.stdout.contains("printed-everything"), "{tail:?}");
    assert!(took < Duration::from_secs(20), "took {took:?}");
    let rec = s.closed_recording(grant, Duration::from_secs(10));
    assert_eq!(rec["end"], "write_failed", "{rec:#}");
}

/// Whether `pid` is a jit-session process of `user`'s.
fn is_recorder(pid: u32, user: &str) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_owned())
            .unwrap_or_default()
    };
    field("Name:") == "jit-session"
        && field("Uid:").split_whitespace().next() == Some(uid(user).to_string().as_str())
}

/// The number right after `tag` in `text`, if there is one.
fn number_after(text: &str, tag: &str) -> Option<u32> {
    text.match_indices(tag).find_map(|(at, _)| {
        let digits: String = text[at + tag.len()..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    })
}
