//! A recorded root shell through `jitctl shell` (real sudo with pam_jit, the
//! installed jit-session, a tmux terminal): commands, a resize, vim; the
//! recording parses, asciinema accepts it, its digest verifies and one
//! edited byte is detected. Signals the user sends sudo reach the command.
//! Output redirected from a terminal: the file gets the command's output, the
//! terminal what the command writes to it. Input piped in from a terminal:
//! the command's PTY still has the terminal's size.

use jit_tests::*;
use std::time::Duration;

#[test]
fn recorded_shell_with_resize_and_vim() {
    let s = SessionEnv::new(&session_config("15m"), "sudo");
    let id = s.approved_sudo_grant("rotate the TLS keys");

    let t = Tmux::start(&s, "alice", 100, 30);
    t.open_shell(Some(id));
    t.line("echo hello-$((6*7)); stty size");
    t.wait_for("hello-42", Duration::from_secs(5));
    t.wait_for("30 100", Duration::from_secs(5));

    // A resize reaches the command and the recording.
    t.tmux(&["resize-window", "-t", "main", "-x", "120", "-y", "40"])
        .ok();
    t.wait_until("a 120-column pane", Duration::from_secs(5), |_| {
        t.tmux(&["display-message", "-p", "-t", "main", "#{window_width}"])
            .stdout
            .trim()
            == "120"
    });
    t.line("echo size-is-$(stty size | tr ' ' x)");
    t.wait_for("size-is-40x120", Duration::from_secs(5));

    // A full-screen program: vim opens (alternate screen) and quits.
    t.line("vim -u NONE -i NONE -N -c 'set shortmess+=I' /tmp/jit-vim-test-not-saved");
    t.wait_until("vim's screen", Duration::from_secs(10), |scr| {
        scr.lines().filter(|l| l.starts_with('~')).count() >= 10
    });
    t.keys(&["Escape"]);
    t.line(":q!");
    t.line("echo after-vim-$((1+1))");
    let screen = t.wait_for("after-vim-2", Duration::from_secs(10));
    assert!(
        screen.lines().filter(|l| l.starts_with('~')).count() < 5,
        "vim's screen was not restored:\n{screen}"
    );

    // Exit: back in alice's shell, with the shell's status.
    t.line("exit 7");
    t.line("echo outer-rc=$?");
    t.wait_for("outer-rc=7", Duration::from_secs(10));

    // The listing (as alice, her own recording).
    let rec = s.closed_recording(id, Duration::from_secs(5));
    let mine = s.recordings("alice");
    assert_eq!(mine.len(), 1, "{mine:#?}");
    let listed = &mine[0];
    for field in [
        "id",
        "grant",
        "user",
        "uid",
        "resource",
        "started_at",
        "ended_at",
        "path",
    ] {
        assert!(!listed[field].is_null(), "no {field} in {listed:#}");
    }
    assert_eq!(listed["user"], "alice", "{listed:#}");
    assert_eq!(listed["resource"], "sudo", "{listed:#}");
    assert_eq!(listed["end"], "exit", "{listed:#}");
    let sha = listed["sha256"].as_str().unwrap_or_default();
    assert_eq!(sha.len(), 64, "{listed:#}");
    let path = rec["path"].as_str().expect("path").to_owned();
    assert!(
        path.starts_with(&s.rec_dir.display().to_string()),
        "{path} outside {}",
        s.rec_dir.display()
    );

    // The file: header, events, output.
    let bytes = std::fs::read(&path).expect("read the recording");
    assert_eq!(
        listed["bytes"].as_u64(),
        Some(bytes.len() as u64),
        "{listed:#}"
    );
    let cast = Cast::parse(&bytes);
    let h = &cast.header;
    assert_eq!(h["width"], 100, "{h:#}");
    assert_eq!(h["height"], 30, "{h:#}");
    let ts = h["timestamp"].as_i64().unwrap_or(0);
    assert!(
        (wall_now() as i64 - ts).abs() < 120,
        "timestamp {ts}: {h:#}"
    );
    assert!(h["env"]["TERM"].is_string(), "no env.TERM: {h:#}");
    assert!(h["env"]["SHELL"].is_string(), "no env.SHELL: {h:#}");
    let jit = &h["jit"];
    assert_eq!(jit["grant"].as_u64(), Some(id), "{h:#}");
    assert_eq!(jit["user"], "alice", "{h:#}");
    assert_eq!(jit["target_user"], "root", "{h:#}");
    assert_eq!(jit["resource"], "sudo", "{h:#}");
    assert_eq!(jit["reason"], "rotate the TLS keys", "{h:#}");
    let approvers: Vec<&str> = jit["approvers"]
        .as_array()
        .unwrap_or_else(|| panic!("no approvers: {h:#}"))
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        approvers.contains(&"mike") && approvers.contains(&"sam"),
        "{h:#}"
    );
    assert!(jit["host"].is_string(), "{h:#}");
    assert!(jit["encoding"].is_string(), "{h:#}");
    assert!(cast.of("i").is_empty(), "keystrokes recorded by default");
    assert_eq!(cast.of("r"), vec!["120x40"], "resize events");
    let out = cast.output();
    for text in ["hello-42", "size-is-40x120", "after-vim-2"] {
        assert!(
            out.contains(text),
            "{text:?} not in the recorded output:\n{out}"
        );
    }
    assert!(
        out.contains("\x1b[?1049h") && out.contains("\x1b[?1049l"),
        "vim's alternate screen not in the recording"
    );

    // asciinema (the Debian package) accepts the file.
    // (It insists on a terminal: script gives it one.)
    let run = s
        .run_as(
            "root",
            "script",
            &["-qec", &format!("asciinema cat {path}"), "/dev/null"],
        )
        .ok();
    assert!(run.stdout.contains("hello-42"), "asciinema cat:{run}");

    // The digest verifies; one edited byte is detected.
    let run = s
        .jitctl(
            "alice",
            &["recordings", "verify", &listed["id"].to_string()],
        )
        .ok();
    assert!(run.stdout.contains(sha), "{run}");
    let at = String::from_utf8_lossy(&bytes)
        .find("hello-42")
        .expect("hello-42 in the file");
    let mut edited = bytes.clone();
    edited[at] = b'j';
    std::fs::write(&path, &edited).expect("edit the recording");
    let run = s.jitctl(
        "alice",
        &["recordings", "verify", &listed["id"].to_string()],
    );
    assert_eq!(run.code, 1, "verify of an edited recording:{run}");
    assert!(run.stderr.contains("does NOT match"), "{run}");
}

#[test]
fn signals_sent_to_sudo_reach_the_command() {
    let s = SessionEnv::new(&session_config("15m"), "ops");
    let id = s.ops_grant("alice", "watch dd's progress");
    // As with plain sudo: the user signals sudo (jitctl became it), sudo
    // passes it to jit-session, and jit-session to the command.
    let script = format!(
        r#"out=$(mktemp)
{jitctl} run {id} -- sh -c 'trap "echo got-USR1" USR1; trap "echo got-USR2; exit 7" USR2; echo ready; while :; do sleep 0.05; done' >"$out" 2>&1 &
sudo=$!
wait_for() {{ for _ in $(seq 200); do grep -q "$1" "$out" && return; sleep 0.05; done; echo "no $1"; }}
wait_for ready; kill -USR1 $sudo; wait_for got-USR1; kill -USR2 $sudo
wait $sudo; echo "exit $?"; cat "$out"; rm -f "$out""#,
        jitctl = jitctl_bin().display()
    );
    let run = s.run_as("alice", "sh", &["-c", &script]).ok();
    for line in ["got-USR1", "got-USR2", "exit 7"] {
        assert!(
            run.stdout.lines().any(|l| l.trim_end() == line),
            "no {line:?}:{run}"
        );
    }
    assert!(!run.stdout.contains("no got"), "{run}");
}

#[test]
fn output_redirected_from_a_terminal_leaves_the_terminal_its_part() {
    let s = SessionEnv::new(&session_config("15m"), "ops");
    let id = s.ops_grant("alice", "dump the database");
    let t = Tmux::start(&s, "alice", 100, 30);
    let out = s.dir.path().join("tmux-alice").join("out.txt");
    // (Arithmetic, so that the typed line does not show the output itself.)
    t.line(&format!(
        "{} run {id} -- sh -c 'echo to-file-$((1+1)); echo on-terminal-$((2+2)) >/dev/tty' >{}; echo done-$((3+3))-$?",
        jitctl_bin().display(),
        out.display()
    ));
    let screen = t.wait_for("done-6-0", Duration::from_secs(10));
    assert!(screen.contains("on-terminal-4"), "{screen}");
    assert!(!screen.contains("to-file-2"), "{screen}");
    assert_eq!(std::fs::read(&out).unwrap(), b"to-file-2\n");
}

#[test]
fn input_piped_in_from_a_terminal_keeps_the_terminals_size() {
    let s = SessionEnv::new(&session_config("15m"), "ops");
    let id = s.ops_grant("alice", "page through a log");
    let t = Tmux::start(&s, "alice", 100, 30);
    t.line(&format!(
        "echo | {} run {id} -- sh -c 'echo size-$(stty size </dev/tty | tr \" \" x)'",
        jitctl_bin().display()
    ));
    t.wait_for("size-30x100", Duration::from_secs(10));
}
