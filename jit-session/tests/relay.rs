//! The real binary on real PTYs (needs root: jit-session refuses otherwise).
// Test code: its helpers fail the test by panicking, as the tests do
// (clippy.toml allows that inside #[test] functions only).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use jit_recording::asciicast::decode_output;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_jit-session");

struct Outer {
    master: OwnedFd,
    slave: OwnedFd,
    /// The outer terminal's settings before jit-session started.
    settings_before: Termios,
    child: Child,
    output: mpsc::Receiver<Vec<u8>>,
}

fn winsize(rows: u16, cols: u16) -> libc::winsize {
    libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
}

/// Runs `prog args` with an outer PTY as its controlling terminal.
fn start(prog: &str, args: &[&str]) -> Outer {
    let pair = nix::pty::openpty(Some(&winsize(24, 80)), None).unwrap();
    let slave = pair.slave;
    // Read before the spawn: a fast jit-session may be in raw mode already
    // by the time spawn() returns.
    let settings_before = termios_of(&slave);
    let fd = slave.as_raw_fd();
    let mut cmd = Command::new(prog);
    cmd.args(args)
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave.try_clone().unwrap()));
    // SAFETY: setsid and ioctl are async-signal-safe; nothing else runs
    // between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            if libc::ioctl(fd, libc::TIOCSCTTY, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().unwrap();
    let mut reader = std::fs::File::from(pair.master.try_clone().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 65536];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    Outer {
        master: pair.master,
        slave,
        settings_before,
        child,
        output: rx,
    }
}

/// jit-session recording `sh -c SCRIPT` into `file`, on an outer PTY.
fn start_recorded(file: &Path, script: &str) -> Outer {
    let f = file.to_str().unwrap();
    start(BIN, &["--standalone-record", f, "--", "sh", "-c", script])
}

impl Outer {
    /// Collects output until `needle` shows up (or the timeout).
    fn wait_for(&self, seen: &mut Vec<u8>, needle: &str, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        loop {
            if String::from_utf8_lossy(seen).contains(needle) {
                return true;
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            if let Ok(b) = self.output.recv_timeout(left) {
                seen.extend(b);
            }
        }
    }

    fn wait(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if let Some(st) = self.child.try_wait().unwrap() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    fn send(&self, bytes: &[u8]) {
        nix::unistd::write(&self.master, bytes).unwrap();
    }
}

fn cast(path: &Path) -> (Value, Vec<Value>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap());
    let header = lines.next().unwrap();
    assert_eq!(header["version"], 2);
    (header, lines.collect())
}

fn output_of(events: &[Value]) -> String {
    let bytes: Vec<u8> = events
        .iter()
        .filter(|e| e[1] == "o")
        .flat_map(|e| decode_output(e[2].as_str().unwrap()))
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

type Termios = (u32, u32, u32, u32, Vec<u8>);

fn termios_of(fd: &OwnedFd) -> Termios {
    let t: libc::termios = nix::sys::termios::tcgetattr(fd.as_fd()).unwrap().into();
    (t.c_iflag, t.c_oflag, t.c_cflag, t.c_lflag, t.c_cc.to_vec())
}

#[test]
fn exit_status_output_and_terminal_restored() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.cast");
    let mut o = start_recorded(&file, "sleep 1; printf 'h\\303\\251llo\\n'; exit 3");
    let before = o.settings_before.clone();
    let mut seen = Vec::new();
    // Raw mode while the session runs (polled: a loaded machine is slow to start it).
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while termios_of(&o.slave) == before && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_ne!(
        before,
        termios_of(&o.slave),
        "the outer terminal should be in raw mode"
    );
    let st = o.wait(Duration::from_secs(10)).expect("jit-session exits");
    assert_eq!(st.code(), Some(3));
    assert!(o.wait_for(&mut seen, "héllo", Duration::from_secs(2)));
    assert_eq!(termios_of(&o.slave), before, "terminal settings restored");
    let (header, events) = cast(&file);
    assert_eq!(header["jit"]["standalone"], true);
    assert_eq!(header["width"], 80);
    assert_eq!(header["height"], 24);
    assert!(output_of(&events).contains("héllo\r\n"));
}

#[test]
fn resize_reaches_the_program_and_the_recording() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("r.cast");
    let mut o = start_recorded(&file, "echo ready; read x; stty size");
    let mut seen = Vec::new();
    assert!(o.wait_for(&mut seen, "ready", Duration::from_secs(5)));
    let size = winsize(40, 100);
    // SAFETY: TIOCSWINSZ reads a valid winsize.
    let set = unsafe { libc::ioctl(o.master.as_raw_fd(), libc::TIOCSWINSZ, &size) };
    assert_eq!(set, 0);
    // The kernel signals the outer foreground group; say it explicitly too.
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(o.child.id() as i32),
        nix::sys::signal::Signal::SIGWINCH,
    );
    std::thread::sleep(Duration::from_millis(300));
    o.send(b"\r");
    assert!(
        o.wait_for(&mut seen, "40 100", Duration::from_secs(5)),
        "{}",
        String::from_utf8_lossy(&seen)
    );
    assert_eq!(o.wait(Duration::from_secs(5)).unwrap().code(), Some(0));
    let (_, events) = cast(&file);
    assert!(
        events.iter().any(|e| e[1] == "r" && e[2] == "100x40"),
        "{events:?}"
    );
    assert!(output_of(&events).contains("40 100"));
}

fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s[s.rfind(')').unwrap() + 2..].starts_with('Z'),
    }
}

#[test]
fn sigterm_ends_the_whole_tree_and_closes_the_recording() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.cast");
    let mut o = start_recorded(
        &file,
        "setsid sh -c 'trap \"\" HUP; exec sleep 300' & echo \"pids $$ $! end\"; sleep 300",
    );
    let mut seen = Vec::new();
    assert!(o.wait_for(&mut seen, " end", Duration::from_secs(5)));
    std::thread::sleep(Duration::from_millis(100));
    let text = String::from_utf8_lossy(&seen).into_owned();
    let line = &text[text.find("pids ").unwrap() + 5..];
    let pids: Vec<i32> = line
        .split_whitespace()
        .take(2)
        .map(|p| p.parse().unwrap())
        .collect();
    assert!(!gone(pids[0]) && !gone(pids[1]));
    let t0 = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(o.child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let st = o.wait(Duration::from_secs(3)).expect("jit-session ends");
    let took = t0.elapsed();
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert!(gone(pids[0]), "the command survived");
    assert!(
        gone(pids[1]),
        "the setsid grandchild (ignoring SIGHUP) survived"
    );
    assert!(!st.success());
    let (_, events) = cast(&file);
    assert!(
        events
            .iter()
            .any(|e| e[1] == "m" && e[2] == "end: terminated"),
        "{events:?}"
    );
}

#[test]
fn full_disk_terminates_the_session() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().to_str().unwrap().to_string();
    let script = format!(
        "mount -t tmpfs -o size=64k tmpfs {mnt} && exec {BIN} --standalone-record {mnt}/d.cast -- \
         sh -c 'base64 /dev/urandom | head -c 20000000; sleep 30'"
    );
    let mut o = start("unshare", &["-m", "sh", "-c", &script]);
    let mut seen = Vec::new();
    assert!(
        o.wait_for(
            &mut seen,
            "cannot write the session recording",
            Duration::from_secs(20)
        ),
        "no message"
    );
    let st = o.wait(Duration::from_secs(5)).expect("the session ends");
    assert!(!st.success());
    // The message may arrive in more than one read.
    let ended = o.wait_for(&mut seen, "ending the session", Duration::from_secs(2));
    let text = String::from_utf8_lossy(&seen);
    assert!(ended, "{}", &text[text.len().saturating_sub(300)..]);
}

/// Without root it is a login shell: a command in arguments (rather than
/// `-c`) is a mistake, refused before anything runs.
#[test]
fn refuses_commands_without_root() {
    let out = Command::new(BIN)
        .arg("true")
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "jit-session: as a login shell jit-session takes only '-c COMMAND'; \
         for a root session use 'jitctl shell'\n"
    );
}
