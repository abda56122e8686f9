//! Running commands: their result ([`Run`]), commands in the background
//! ([`Background`]), and what failure messages show of them.

use std::fmt;
use std::fs;
use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::Value;

/// Children die with the test thread that started them, even if the test
/// process is killed.
pub(crate) fn die_with_parent(cmd: &mut Command) {
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        let a = a.to_string_lossy();
        if a.is_empty() || a.contains(|c: char| c.is_whitespace() || c.is_control()) {
            s.push_str(&format!(" {a:?}"));
        } else {
            s.push(' ');
            s.push_str(&a);
        }
    }
    s
}

fn exit_code(status: ExitStatus) -> i32 {
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// The result of one command: what ran, its exit code and output.
#[derive(Clone, Debug)]
pub struct Run {
    pub cmd: String,
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "\n  command: {}\n  exit code: {}\n  stdout: {}\n  stderr: {}\n",
            self.cmd,
            self.code,
            if self.stdout.is_empty() {
                "(empty)"
            } else {
                self.stdout.trim_end()
            },
            if self.stderr.is_empty() {
                "(empty)"
            } else {
                self.stderr.trim_end()
            },
        )
    }
}

impl Run {
    /// Asserts exit code 0.
    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(self.code, 0, "expected success:{self}");
        self
    }

    /// Asserts an exit code, a one-line stderr and no panic.
    #[track_caller]
    pub fn code(self, code: i32) -> Run {
        assert_eq!(self.code, code, "expected exit code {code}:{self}");
        if code != 0 {
            self.assert_clean_error();
        }
        self
    }

    /// Asserts a non-zero exit.
    #[track_caller]
    pub fn fails(self) -> Run {
        assert_ne!(self.code, 0, "expected failure:{self}");
        self
    }

    /// An error is one line on stderr, without panic or backtrace.
    #[track_caller]
    pub fn assert_clean_error(&self) {
        let lines: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        assert_eq!(lines.len(), 1, "expected exactly one line on stderr:{self}");
        for bad in ["panicked", "RUST_BACKTRACE", "stack backtrace"] {
            assert!(!self.stderr.contains(bad), "panic output on stderr:{self}");
        }
    }

    /// stdout parsed as JSON.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):{self}"))
    }
}

/// A command running in the background, killed when dropped.
pub struct Background {
    child: Option<Child>,
    pub(crate) cmd: String,
    /// Its stdout and stderr so far, appended to by `readers`.
    output: [Arc<Mutex<Vec<u8>>>; 2],
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Background {
    /// Spawns `cmd` in its own process group with stdout and stderr captured
    /// (read concurrently, so large outputs never block it).
    pub fn spawn(mut cmd: Command) -> Background {
        let desc = describe(&cmd);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {desc}: {e}"));
        let output: [Arc<Mutex<Vec<u8>>>; 2] = Default::default();
        let out: Box<dyn Read + Send> = Box::new(child.stdout.take().expect("stdout"));
        let err: Box<dyn Read + Send> = Box::new(child.stderr.take().expect("stderr"));
        let readers = [out, err]
            .into_iter()
            .zip(output.iter().cloned())
            .map(|(mut pipe, sink)| {
                std::thread::spawn(move || {
                    let mut chunk = [0u8; 8192];
                    while let Ok(n @ 1..) = pipe.read(&mut chunk) {
                        lock(&sink).extend_from_slice(&chunk[..n]);
                    }
                })
            })
            .collect();
        Background {
            child: Some(child),
            cmd: desc,
            output,
            readers,
        }
    }

    fn kill_group(child: &mut Child) {
        // SAFETY: kill(2) on the process group this harness created.
        unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
        let _ = child.kill();
    }

    /// Waits for the command to end (kills it after `timeout` and panics).
    pub fn finish(mut self, timeout: Duration) -> Run {
        let mut child = self.child.take().expect("child");
        let deadline = Instant::now() + timeout;
        let mut timed_out = false;
        let status = loop {
            if let Some(st) = child.try_wait().expect("try_wait") {
                break st;
            }
            if Instant::now() >= deadline {
                timed_out = true;
                Background::kill_group(&mut child);
                break child.wait().expect("wait");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        for reader in std::mem::take(&mut self.readers) {
            let _ = reader.join();
        }
        let run = Run {
            cmd: self.cmd.clone(),
            code: exit_code(status),
            stdout: self.stdout_so_far(),
            stderr: String::from_utf8_lossy(&lock(&self.output[1])).into_owned(),
        };
        if timed_out {
            panic!("timed out after {timeout:?}:{run}");
        }
        run
    }

    /// What it has written to stdout so far.
    pub fn stdout_so_far(&self) -> String {
        String::from_utf8_lossy(&lock(&self.output[0])).into_owned()
    }

    /// What it has written to stderr so far.
    pub fn stderr_so_far(&self) -> String {
        String::from_utf8_lossy(&lock(&self.output[1])).into_owned()
    }

    /// Kills the command (its whole process group) and returns what it printed.
    pub fn stop(mut self) -> Run {
        if let Some(c) = self.child.as_mut() {
            Background::kill_group(c);
        }
        self.finish(Duration::from_secs(5))
    }

    /// Its pid (of the program itself: `nsenter` and `runuser -u` exec it,
    /// or stay its parent).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }
}

fn lock(buffer: &Mutex<Vec<u8>>) -> MutexGuard<'_, Vec<u8>> {
    buffer.lock().unwrap_or_else(|e| e.into_inner())
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            Background::kill_group(&mut c);
            let _ = c.wait();
        }
    }
}

pub(crate) fn kill_and_reap(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

pub(crate) fn shell_words(args: &[&str]) -> String {
    args.iter()
        .map(|a| {
            if a.is_empty()
                || a.contains(|c: char| c.is_whitespace() || c.is_control() || c == '\'')
            {
                format!("{a:?}")
            } else {
                (*a).to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The last `n` bytes of `text` (trailing whitespace dropped), for failure
/// messages about long output; never splits a character.
pub fn tail_of(text: &str, n: usize) -> String {
    let t = text.trim_end();
    let mut start = t.len().saturating_sub(n);
    while !t.is_char_boundary(start) {
        start += 1;
    }
    t[start..].to_owned()
}

/// A string no other test uses (for process markers and file names).
pub fn unique() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    format!("{}{:09}", std::process::id() % 10_000, nanos)
}

/// `sleep 1000.<unique>`: a sleep that `pids_of` can find.
pub fn marked_sleep() -> String {
    format!("1000.{}", unique())
}

/// Pids whose command line is exactly `argv` (pids are not namespaced).
pub fn pids_of(argv: &[&str]) -> Vec<u32> {
    let want: Vec<u8> = argv.iter().flat_map(|a| a.bytes().chain([0])).collect();
    let mut out = Vec::new();
    let me = std::process::id();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let cmdline = fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if cmdline == want && alive(pid) {
            out.push(pid);
        }
    }
    out
}

/// Whether a process is still there (a zombie counts as gone).
pub fn alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}
