//! The reviewer's terminal and files are not the recorded user's to act on:
//! `jitctl recordings play` leaves out what would set the clipboard or make
//! the terminal answer (`--raw` plays it, with a warning), and `recordings
//! export` creates new files only, never through a symbolic link.

use jit_tests::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

/// A recorded command that prints a clipboard write (OSC 52 of
/// "clipboard"), a title report request (CSI 21t) and a cursor position
/// request (CSI 6n) among harmless text and colours; a second clipboard
/// write split across two output events (0.5 s apart); a third introduced by
/// the UTF-8 form of the C1 control OSC (U+009D).
const HOSTILE_OUTPUT: &str =
    "printf 'visible-1 \\033]52;c;Y2xpcGJvYXJk\\007\\033[21t\\033[6n\\033[31mred\\033[0m\\n'; \
     printf '\\033]52;c;'; sleep 0.5; printf 'c3BsaXQ=\\007visible-2\\n'; \
     printf '\\302\\23552;c;dXRmOA==\\007visible-3\\n'";

/// One recording of [`HOSTILE_OUTPUT`] by alice; its id.
fn hostile_recording(s: &SessionEnv) -> String {
    let id = s.ops_grant("alice", "maintenance");
    s.jitctl_run("alice", id, &["sh", "-c", HOSTILE_OUTPUT])
        .ok();
    let rec = s.closed_recording(id, Duration::from_secs(5));
    // The recording holds the sequences as printed, the split one in two events.
    let cast = Cast::parse(&s.read_ns_file(rec["path"].as_str().expect("path")));
    let outputs = cast.of("o");
    assert!(
        outputs
            .iter()
            .any(|o| o.ends_with("\u{1b}]52;c;") && !o.contains("c3BsaXQ=")),
        "the OSC 52 is not split across events: {outputs:?}"
    );
    assert!(cast.output().contains("\u{1b}[21t"), "{outputs:?}");
    rec["id"].to_string()
}

#[test]
fn play_leaves_out_what_acts_on_the_terminal_and_raw_plays_it_with_a_warning() {
    let s = SessionEnv::new(&session_config("15m"), "ops");
    let rid = hostile_recording(&s);

    let play = s
        .jitctl("alice", &["recordings", "play", &rid, "--speed", "100"])
        .ok();
    assert!(
        play.stdout.contains("visible-1 \x1b[31mred\x1b[0m"),
        "the text and its colours are not replayed as recorded:{play}"
    );
    for shown in ["visible-2", "visible-3"] {
        assert!(play.stdout.contains(shown), "{shown} missing:{play}");
    }
    for hidden in [
        "\x1b]",
        "\x1b[21t",
        "\x1b[6n",
        "\u{9d}",
        "Y2xpcGJvYXJk",
        "c3BsaXQ=",
        "dXRmOA==",
    ] {
        assert!(!play.stdout.contains(hidden), "{hidden:?} replayed:{play}");
    }
    assert!(
        play.stderr.contains("left out 5 control sequences"),
        "no note of what was left out:{play}"
    );
    // Whatever modes the recording left on, the reviewer's terminal is reset.
    assert!(
        play.stdout.ends_with("\x1b[?25h\x1b[?1049l"),
        "no terminal reset after the play:{play}"
    );

    let raw = s
        .jitctl(
            "alice",
            &["recordings", "play", &rid, "--speed", "100", "--raw"],
        )
        .ok();
    for shown in [
        "\x1b]52;c;Y2xpcGJvYXJk\x07",
        "\x1b[21t",
        "\x1b[6n",
        "\x1b]52;c;c3BsaXQ=\x07",
        "\u{9d}52;c;dXRmOA==",
    ] {
        assert!(raw.stdout.contains(shown), "--raw left out {shown:?}:{raw}");
    }
    assert!(
        raw.stderr.lines().next().is_some_and(|l| l
            .starts_with("jitctl: --raw: playing recording")
            && l.contains("unfiltered")),
        "no warning before a raw play:{raw}"
    );
}

/// In a real terminal (tmux, which keeps what OSC 52 writes as a paste
/// buffer): a play leaves the clipboard alone; a raw play writes it.
#[test]
fn a_played_recording_does_not_reach_the_clipboard() {
    let s = SessionEnv::new(&session_config("15m"), "ops");
    let rid = hostile_recording(&s);
    let tmux = Tmux::start(&s, "alice", 100, 30);
    tmux.tmux(&["set-option", "-g", "set-clipboard", "on"]).ok();
    let play = format!(
        "{} recordings play {rid} --speed 100",
        jitctl_bin().display()
    );

    tmux.line(&format!("{play}; echo played-$((6*7))"));
    tmux.wait_for("played-42", Duration::from_secs(10));
    let buffers = tmux.tmux(&["list-buffers"]).ok();
    assert!(
        buffers.stdout.trim().is_empty(),
        "the replay wrote the clipboard:{buffers}"
    );

    // The same with --raw: the recorded user sets the reviewer's clipboard.
    tmux.line(&format!("{play} --raw; echo raw-played-$((6*7))"));
    tmux.wait_for("raw-played-42", Duration::from_secs(10));
    let buffers = tmux.tmux(&["list-buffers", "-F", "#{buffer_sample}"]).ok();
    assert!(
        buffers.stdout.contains("clipboard"),
        "tmux took no clipboard write from the raw replay (is the test blind?):{buffers}"
    );
}

/// A directory bob may write to (like /tmp without its sticky bit).
fn shared_dir(s: &SessionEnv) -> std::path::PathBuf {
    let dir = s.dir.path().join("shared");
    std::fs::create_dir(&dir).expect("shared dir");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).expect("chmod 0777");
    dir
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn export_creates_new_files_only_and_never_follows_links() {
    let s = SessionEnv::new(&session_config("15m"), "ops");
    let id = s.ops_grant("alice", "maintenance");
    s.jitctl_run("alice", id, &["echo", "exported"]).ok();
    let rec = s.closed_recording(id, Duration::from_secs(5));
    let rid = rec["id"].to_string();
    let dir = shared_dir(&s);
    let out = dir.to_str().expect("a UTF-8 path");
    let cast = dir.join(format!("recording-{rid}.cast"));
    let sidecar = dir.join(format!("recording-{rid}.json"));
    let export = || s.jitctl("root", &["recordings", "export", &rid, "--out", out]);

    // bob plants a link where root's export will write, to a file of root's.
    let victim = s.dir.path().join("victim");
    std::fs::write(&victim, "precious\n").expect("victim");
    s.run_as(
        "bob",
        "ln",
        &["-s", victim.to_str().unwrap(), cast.to_str().unwrap()],
    )
    .ok();
    let run = export().code(6);
    assert!(
        run.stderr
            .contains(&format!("{} is a symbolic link", cast.display())),
        "{run}"
    );
    assert_eq!(read(&victim), "precious\n", "the link was followed");
    assert!(!sidecar.exists(), "a refused export left its sidecar");

    // A dangling link: nothing is created at its target either.
    let target = dir.join("created-through-the-link");
    std::fs::remove_file(&cast).expect("remove link");
    s.run_as(
        "bob",
        "ln",
        &["-s", target.to_str().unwrap(), cast.to_str().unwrap()],
    )
    .ok();
    export().code(6);
    assert!(!target.exists(), "the dangling link was followed");
    std::fs::remove_file(&cast).expect("remove link");

    // An existing file is not truncated, and the other one is not left behind.
    s.run_as(
        "bob",
        "sh",
        &["-c", &format!("echo bobs > '{}'", sidecar.display())],
    )
    .ok();
    let run = export().code(6);
    assert!(
        run.stderr
            .contains(&format!("{} already exists", sidecar.display())),
        "{run}"
    );
    assert_eq!(read(&sidecar), "bobs\n", "an existing file was overwritten");
    assert!(!cast.exists(), "a refused export left its .cast");

    // With the way clear, both are written, the exporter's alone.
    std::fs::remove_file(&sidecar).expect("remove bob's file");
    export().ok();
    assert_eq!(
        std::fs::read(&cast).expect("cast"),
        s.read_ns_file(rec["path"].as_str().expect("path"))
    );
    assert_eq!(owner_and_mode(&cast), (0, 0, 0o600));
    assert_eq!(owner_and_mode(&sidecar), (0, 0, 0o600));
}
