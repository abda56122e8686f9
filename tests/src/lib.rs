//! End-to-end harness for jitd and jitctl.
//!
//! Every test builds its own [`Env`]: a private mount namespace (held open by a
//! `sleep` process) in which `/etc/passwd` and `/etc/group` are bind-mounted
//! copies of the host's files plus the fixture users, a private `dbus-daemon`
//! with jit's bus policy, and a `jitd` with a per-test config and state dir.
//! Nothing outside the test's temporary directory is touched; dropping the
//! `Env` (also on panic) kills every process it started.
//!
//! The tests need root and the binaries built first:
//!
//! ```text
//! cargo build --workspace --bins && cargo test -p jit-tests
//! ```
//!
//! The binaries are looked up in `$JIT_BIN_DIR`, else next to the test
//! executable (`<target>/debug`), else `$CARGO_TARGET_DIR/debug`, else
//! `<workspace>/target/debug`.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub use serde_json::Value;

mod chroot;
pub use chroot::*;

mod pam;
pub use pam::*;

mod polkit;
pub use polkit::*;

mod session;
pub use session::*;

pub mod sinks;

/// Primary group of every fixture user.
pub const FIXTURE_GID: u32 = 61000;

/// Fixture users: name, uid, supplementary groups.
pub const USERS: &[(&str, u32, &[&str])] = &[
    ("alice", 61001, &["admins", "jit-gated"]),
    ("bob", 61002, &["admins", "jit-gated"]),
    ("olivia", 61003, &[]),
    ("mike", 61004, &["jit-managers"]),
    ("sam", 61005, &["jit-security"]),
    ("maria", 61006, &["jit-managers", "jit-security"]),
    ("oscar", 61007, &[]),
    ("audrey", 61008, &["jit-audit"]),
];

/// The notification worker's user (`jit-deliver` on a real host), with a
/// primary group of its own, like sysusers.d makes it: not one of
/// [`USERS`], whom the PAM tests log in.
pub const DELIVER_USER: (&str, u32) = ("jit-deliver", 61009);

/// Fixture groups: name, gid.
pub const GROUPS: &[(&str, u32)] = &[
    ("admins", 61101),
    ("jit-managers", 61102),
    ("jit-security", 61103),
    ("jit-audit", 61104),
    ("jit-gated", 61105),
];

/// The uid of a fixture user (0 for root).
pub fn uid(user: &str) -> u32 {
    if user == "root" {
        return 0;
    }
    USERS
        .iter()
        .find(|(n, _, _)| *n == user)
        .unwrap_or_else(|| panic!("no fixture user {user}"))
        .1
}

/// The config most tests use. Scores do not depend on the time of day
/// (`off_hours = 0`). With the default weights:
/// - `logs` 30m: low (0) + first request (10) = 10, < 1h, non-privileged: auto
/// - `db` 2h: medium (15) + duration (3) + first request (10) = 28, but >= 1h: owner (olivia)
/// - `sudo`: privileged + production: dual (manager + security)
pub const TEST_CONFIG: &str = r#"# jitd config for the end-to-end tests
[roles]
manager  = ["group:jit-managers"]
security = ["group:jit-security"]
auditor  = ["group:jit-audit"]

[risk]
auto_below = 30
dual_from  = 70

[risk.weights]
off_hours = 0

[requests]
pending_ttl    = "1h"
expiry_warning = "1s"

[[resource]]
name = "sudo"
privileged = true
sensitivity = "high"
environment = "production"
owners = ["user:olivia"]
eligible = ["group:admins"]
max_duration = "4h"

[[resource]]
name = "db"
privileged = false
sensitivity = "medium"
environment = "staging"
owners = ["user:olivia"]
eligible = ["group:admins"]
max_duration = "8h"

[[resource]]
name = "logs"
privileged = false
sensitivity = "low"
environment = "staging"
eligible = ["group:admins"]
max_duration = "1h"
"#;

/// [`TEST_CONFIG`] with another `pending_ttl`.
/// [`TEST_CONFIG`] for tests that keep many requests pending at once:
/// they test durability, not the per-user cap (`tests/tests/flood.rs` does).
pub fn config_with_many_pending() -> String {
    format!("{TEST_CONFIG}\n[limits]\npending_per_user = 1000\n")
}

pub fn config_with_pending_ttl(ttl: &str) -> String {
    let out = TEST_CONFIG.replace(
        "pending_ttl    = \"1h\"",
        &format!("pending_ttl    = \"{ttl}\""),
    );
    assert_ne!(out, TEST_CONFIG);
    out
}

/// The workspace root (parent of this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned()
}

/// Where `jitd` and `jitctl` are.
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("JIT_BIN_DIR") {
        return PathBuf::from(dir);
    }
    // A test executable lives in <target>/debug/deps/.
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent().and_then(Path::parent) {
            if dir.join("jitd").is_file() {
                return dir.to_owned();
            }
        }
    }
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir).join("debug");
    }
    workspace_root().join("target").join("debug")
}

fn binary(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.is_file(),
        "{} not found: run `cargo build --workspace --bins` first (or set JIT_BIN_DIR)",
        path.display()
    );
    path
}

pub fn jitd_bin() -> PathBuf {
    binary("jitd")
}

pub fn jitctl_bin() -> PathBuf {
    binary("jitctl")
}

pub fn jit_deliver_bin() -> PathBuf {
    binary("jit-deliver")
}

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

/// A request document's id.
#[track_caller]
pub fn id_of(doc: &Value) -> u64 {
    doc["id"]
        .as_u64()
        .unwrap_or_else(|| panic!("no numeric id in {doc:#}"))
}

/// A request document's state.
#[track_caller]
pub fn state_of(doc: &Value) -> &str {
    doc["state"]
        .as_str()
        .unwrap_or_else(|| panic!("no state in {doc:#}"))
}

/// A request document's `awaiting` roles.
#[track_caller]
pub fn awaiting_of(doc: &Value) -> Vec<String> {
    doc["awaiting"]
        .as_array()
        .unwrap_or_else(|| panic!("no awaiting array in {doc:#}"))
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Polls `f` every 50ms until it returns `Some` or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, f: impl FnMut() -> Option<T>) -> Option<T> {
    poll_every(Duration::from_millis(50), timeout, f)
}

/// Polls `f` every `interval` until it returns `Some` or `timeout` passes.
pub fn poll_every<T>(
    interval: Duration,
    timeout: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(interval);
    }
}

/// A command running in the background, killed when dropped.
pub struct Background {
    child: Option<Child>,
    cmd: String,
    readers: Vec<std::thread::JoinHandle<Vec<u8>>>,
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
        let mut readers = Vec::new();
        let out: Box<dyn Read + Send> = Box::new(child.stdout.take().expect("stdout"));
        let err: Box<dyn Read + Send> = Box::new(child.stderr.take().expect("stderr"));
        for mut pipe in [out, err] {
            readers.push(std::thread::spawn(move || {
                let mut buf = Vec::new();
                let _ = pipe.read_to_end(&mut buf);
                buf
            }));
        }
        Background {
            child: Some(child),
            cmd: desc,
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
        let mut texts = std::mem::take(&mut self.readers)
            .into_iter()
            .map(|r| String::from_utf8_lossy(&r.join().unwrap_or_default()).into_owned());
        let run = Run {
            cmd: self.cmd.clone(),
            code: exit_code(status),
            stdout: texts.next().unwrap_or_default(),
            stderr: texts.next().unwrap_or_default(),
        };
        if timed_out {
            panic!("timed out after {timeout:?}:{run}");
        }
        run
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

/// One isolated test environment. See the crate docs.
pub struct Env {
    /// Holds passwd, group, bus config and socket, jitd config, state dir and logs.
    pub dir: tempfile::TempDir,
    holder: Child,
    dbus: Option<(Child, ChildStdout)>,
    jitd: Option<Child>,
    /// `jit-deliver` as the `jit-deliver` user, when the config has `[notify]`.
    deliver: Option<Child>,
    pub socket: PathBuf,
    pub config_path: PathBuf,
    pub state_dir: PathBuf,
    pub log_path: PathBuf,
    /// This test's cgroup v2 directory for jitd's session cgroups
    /// (`[sessions] cgroup`), removed when the `Env` drops.
    pub cgroup: Option<PathBuf>,
}

impl Env {
    /// Namespace, bus and jitd with [`TEST_CONFIG`].
    pub fn new() -> Env {
        Env::with_config(TEST_CONFIG)
    }

    /// Namespace, bus and jitd with this config text.
    pub fn with_config(config: &str) -> Env {
        let mut env = Env::without_jitd(config);
        env.start_jitd();
        env
    }

    /// Namespace and bus; jitd is not started. The config is written.
    pub fn without_jitd(config: &str) -> Env {
        Env::with_bus_policies(config, &[])
    }

    /// [`Env::without_jitd`] with more bus policy files than jit's own
    /// (another service's, such as polkitd's).
    pub fn with_bus_policies(config: &str, policies: &[&Path]) -> Env {
        let dir = tempfile::Builder::new()
            .prefix("jit-e2e-")
            .tempdir()
            .expect("tempdir");
        // Fixture users must reach the bus socket.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
        let root = dir.path().to_owned();

        let (passwd, group) = fixture_account_files(&root);
        let mut holder_cmd = Command::new("unshare");
        holder_cmd
            .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
            .arg(
                "mount --bind \"$1\" /etc/passwd && mount --bind \"$2\" /etc/group \
                 && echo ready && exec sleep infinity",
            )
            .arg("sh")
            .arg(&passwd)
            .arg(&group)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        die_with_parent(&mut holder_cmd);
        let mut holder = holder_cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run unshare: {e}"));
        let mut line = String::new();
        let mut out = BufReader::new(holder.stdout.take().expect("stdout"));
        let _ = out.read_line(&mut line);
        if line.trim() != "ready" {
            kill_and_reap(&mut holder);
            let mut err = String::new();
            let _ = holder.stderr.take().map(|mut s| s.read_to_string(&mut err));
            panic!("mount namespace setup failed (are we root?): {err}");
        }

        let config_path = root.join("jitd.toml");
        let state_dir = root.join("state");
        fs::create_dir(&state_dir).expect("state dir");
        fs::set_permissions(&state_dir, fs::Permissions::from_mode(0o700)).expect("chmod");
        let mut env = Env {
            socket: root.join("bus.sock"),
            log_path: root.join("jitd.log"),
            config_path,
            state_dir,
            dir,
            holder,
            dbus: None,
            jitd: None,
            deliver: None,
            cgroup: cgroup2_mount().map(|m| {
                let name = root.file_name().expect("name").to_string_lossy();
                m.join(format!("jit-test-{}", name.trim_start_matches("jit-e2e-")))
            }),
        };
        env.write_config(config);
        env.start_bus(policies);
        env
    }

    /// The pid whose mount namespace the environment uses.
    pub fn ns_pid(&self) -> u32 {
        self.holder.id()
    }

    /// jitd's runtime directory (`/run/jit` on a real host).
    pub fn runtime_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    /// jitd's private socket for pam_jit.
    pub fn private_socket(&self) -> PathBuf {
        self.runtime_dir().join("pam.socket")
    }

    /// jitd's socket for the notification worker.
    pub fn deliver_socket(&self) -> PathBuf {
        self.runtime_dir().join("deliver.socket")
    }

    /// `unix:path=SOCKET`
    pub fn address(&self) -> String {
        format!("unix:path={}", self.socket.display())
    }

    /// Replaces the config file (takes effect on the next jitd start).
    /// Session cgroups go to this test's own cgroup ([`Env::cgroup`]) unless
    /// the text names one.
    pub fn write_config(&self, text: &str) {
        let text = match &self.cgroup {
            Some(dir) if !text.contains("cgroup =") => {
                let line = format!("cgroup = \"{}\"\n", dir.display());
                match text.find("[sessions]\n") {
                    Some(at) => {
                        let at = at + "[sessions]\n".len();
                        format!("{}{line}{}", &text[..at], &text[at..])
                    }
                    None => format!("{text}\n[sessions]\n{line}"),
                }
            }
            _ => text.to_owned(),
        };
        fs::write(&self.config_path, text).expect("write config");
        fs::set_permissions(&self.config_path, fs::Permissions::from_mode(0o644)).expect("chmod");
    }

    fn start_bus(&mut self, policies: &[&Path]) {
        let template = fs::read_to_string(workspace_root().join("tests/fixtures/bus.conf.in"))
            .expect("tests/fixtures/bus.conf.in");
        let jit = workspace_root().join("packaging/dbus/org.jit.Daemon1.conf");
        let includes: String = std::iter::once(jit.as_path())
            .chain(policies.iter().copied())
            .map(|policy| {
                assert!(policy.is_file(), "{} missing", policy.display());
                format!("  <include>{}</include>\n", policy.display())
            })
            .collect();
        let conf = template
            .replace("@SOCKET@", &self.socket.display().to_string())
            .replace("@INCLUDES@\n", &includes);
        let conf_path = self.dir.path().join("bus.conf");
        fs::write(&conf_path, conf).expect("write bus.conf");

        let mut cmd = self.ns_command("dbus-daemon");
        cmd.arg(format!("--config-file={}", conf_path.display()))
            .args(["--nofork", "--nopidfile", "--print-address"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(File::create(self.dir.path().join("dbus.log")).expect("dbus.log"));
        let mut child = cmd.spawn().expect("spawn dbus-daemon");
        let mut stdout = child.stdout.take().expect("stdout");
        // The address line means the socket is listening.
        let mut buf = Vec::new();
        let mut byte = [0u8; 1];
        while stdout.read(&mut byte).map(|n| n == 1).unwrap_or(false) && byte[0] != b'\n' {
            buf.push(byte[0]);
        }
        if buf.is_empty() || !self.socket.exists() {
            kill_and_reap(&mut child);
            panic!(
                "dbus-daemon did not start: {}",
                fs::read_to_string(self.dir.path().join("dbus.log")).unwrap_or_default()
            );
        }
        self.dbus = Some((child, stdout));
    }

    /// A command run inside the namespace (as root).
    pub fn ns_command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg("-t")
            .arg(self.ns_pid().to_string())
            .args(["-m", "--"])
            .arg(program)
            .current_dir("/");
        die_with_parent(&mut cmd);
        cmd
    }

    /// A command run inside the namespace as `user` ("root" for root), with
    /// `DBUS_SYSTEM_BUS_ADDRESS` pointing at the private bus.
    pub fn user_command(&self, user: &str, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = if user == "root" {
            self.ns_command("env")
        } else {
            let mut c = self.ns_command("runuser");
            c.args(["-u", user, "--", "env"]);
            c
        };
        cmd.arg(format!("DBUS_SYSTEM_BUS_ADDRESS={}", self.address()))
            .arg(program)
            .stdin(Stdio::null());
        cmd
    }

    /// Runs a command to completion (30s at most).
    pub fn run(&self, cmd: Command) -> Run {
        Background::spawn(cmd).finish(Duration::from_secs(30))
    }

    /// Runs `program args` as `user` inside the namespace.
    pub fn run_as(&self, user: &str, program: &str, args: &[&str]) -> Run {
        let mut cmd = self.user_command(user, program);
        cmd.args(args);
        self.run(cmd)
    }

    /// `busctl call ARGS` as `user` on the test bus: ARGS are the
    /// destination, path, interface, member, signature and values.
    pub fn busctl_call(&self, user: &str, args: &[&str]) -> Run {
        let address = format!("--address={}", self.address());
        let mut all = vec![address.as_str(), "call"];
        all.extend_from_slice(args);
        self.run_as(user, "busctl", &all)
    }

    /// `CheckGrant(holder's uid, resource)` called by `caller` through busctl.
    pub fn check_grant(&self, caller: &str, holder: &str, resource: &str) -> Run {
        self.busctl_call(
            caller,
            &[
                "org.jit.Daemon1",
                "/org/jit/Daemon1",
                "org.jit.Daemon1",
                "CheckGrant",
                "us",
                &uid(holder).to_string(),
                resource,
            ],
        )
    }

    /// `jitctl ARGS` as `user` ("root" for root).
    pub fn jitctl(&self, user: &str, args: &[&str]) -> Run {
        let mut cmd = self.user_command(user, jitctl_bin());
        cmd.args(args);
        let mut run = self.run(cmd);
        run.cmd = format!("[{user}] jitctl {}", shell_words(args));
        run
    }

    /// `jitctl ARGS` as `user`, asserting success, stdout parsed as JSON.
    #[track_caller]
    pub fn jitctl_json(&self, user: &str, args: &[&str]) -> Value {
        let run = self.jitctl(user, args);
        assert_eq!(
            run.code,
            0,
            "expected success:{run}{}",
            self.jitd_log_tail()
        );
        run.json()
    }

    /// `jitctl ARGS` in the background.
    pub fn spawn_jitctl(&self, user: &str, args: &[&str]) -> Background {
        let mut cmd = self.user_command(user, jitctl_bin());
        cmd.args(args);
        let mut bg = Background::spawn(cmd);
        bg.cmd = format!("[{user}] jitctl {}", shell_words(args));
        bg
    }

    /// `jitctl request RESOURCE --for DUR --reason REASON --json` as `user`, asserting success.
    #[track_caller]
    pub fn request(&self, user: &str, resource: &str, dur: &str, reason: &str) -> Value {
        self.jitctl_json(
            user,
            &[
                "request", resource, "--for", dur, "--reason", reason, "--json",
            ],
        )
    }

    /// `jitctl show ID --json` as `user`, asserting success.
    #[track_caller]
    pub fn show(&self, user: &str, id: u64) -> Value {
        self.jitctl_json(user, &["show", &id.to_string(), "--json"])
    }

    /// `jitctl approve ID --json` as `user`.
    pub fn approve(&self, user: &str, id: u64) -> Run {
        self.jitctl(
            user,
            &["approve", &id.to_string(), "--comment", "ok", "--json"],
        )
    }

    /// Polls `show ID` (as root) until the state is `state`.
    #[track_caller]
    pub fn wait_state(&self, id: u64, state: &str, timeout: Duration) -> Value {
        let mut last = None;
        let found = wait_for(timeout, || {
            let doc = self.show("root", id);
            let hit = state_of(&doc) == state;
            last = Some(doc.clone());
            hit.then_some(doc)
        });
        found.unwrap_or_else(|| {
            panic!(
                "request {id} did not become {state} within {timeout:?}; last: {:#}{}",
                last.unwrap_or(Value::Null),
                self.jitd_log_tail()
            )
        })
    }

    /// Audit events (as root), all of them.
    #[track_caller]
    pub fn audit_events(&self) -> Vec<Value> {
        let v = self.jitctl_json("root", &["audit", "--since", "1day", "--json"]);
        v.as_array()
            .unwrap_or_else(|| panic!("audit --json is not an array: {v:#}"))
            .clone()
    }

    /// Audit events about request `id`.
    pub fn audit_events_for(&self, id: u64) -> Vec<Value> {
        self.audit_events()
            .into_iter()
            .filter(|e| e["request"].as_u64() == Some(id))
            .collect()
    }

    /// Starts jitd and waits until it owns `org.jit.Daemon1` (20s at most).
    pub fn start_jitd(&mut self) {
        assert!(self.jitd.is_none(), "jitd already running");
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("jitd.log");
        let _ = writeln!(&log, "---- jitd start ----");
        let mut cmd = self.ns_command("env");
        cmd.arg(format!("DBUS_SYSTEM_BUS_ADDRESS={}", self.address()))
            .arg("RUST_BACKTRACE=1")
            .arg(jitd_bin())
            .arg("--config")
            .arg(&self.config_path)
            .arg("--state-dir")
            .arg(&self.state_dir)
            .arg("--runtime-dir")
            .arg(self.runtime_dir())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup"))
            .stderr(log);
        let mut child = cmd.spawn().expect("spawn jitd");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(st) = child.try_wait().expect("try_wait") {
                panic!("jitd exited during startup ({st}):{}", self.jitd_log_tail());
            }
            if self.name_owned() {
                break;
            }
            if Instant::now() >= deadline {
                kill_and_reap(&mut child);
                panic!(
                    "jitd did not take its bus name within 20s:{}",
                    self.jitd_log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        self.jitd = Some(child);
        let notify = fs::read_to_string(&self.config_path)
            .unwrap_or_default()
            .contains("[notify");
        if notify && self.deliver.is_none() {
            self.start_deliver();
        }
    }

    /// Starts the notification worker as the unprivileged `jit-deliver`
    /// user and group (no other groups), as jit-deliver.service does; it
    /// connects to jitd on its own (retrying every second).
    pub fn start_deliver(&mut self) {
        assert!(self.deliver.is_none(), "jit-deliver already running");
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("deliver.log"))
            .expect("deliver.log");
        let _ = writeln!(&log, "---- jit-deliver start ----");
        let id = DELIVER_USER.1.to_string();
        // nsenter sets the ids (dropping supplementary groups) and execs:
        // the child is the worker itself.
        let mut cmd = Command::new("nsenter");
        cmd.arg("-t")
            .arg(self.ns_pid().to_string())
            .args(["-m", "-S", &id, "-G", &id, "--"])
            .arg(jit_deliver_bin())
            .arg("--socket")
            .arg(self.deliver_socket())
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup"))
            .stderr(log);
        die_with_parent(&mut cmd);
        self.deliver = Some(cmd.spawn().expect("spawn jit-deliver"));
    }

    /// The worker's pid.
    pub fn deliver_pid(&self) -> Option<u32> {
        self.deliver.as_ref().map(Child::id)
    }

    /// SIGKILL to the worker, and reaps it.
    pub fn kill_deliver(&mut self) {
        let mut child = self.deliver.take().expect("jit-deliver not running");
        kill_and_reap(&mut child);
    }

    /// Whether someone owns `org.jit.Daemon1` on the private bus.
    pub fn name_owned(&self) -> bool {
        name_owned_at(&self.address())
    }

    /// The test bus's dbus-daemon pid.
    pub fn bus_pid(&self) -> Option<u32> {
        self.dbus.as_ref().map(|(child, _)| child.id())
    }

    /// The running jitd's pid.
    pub fn jitd_pid(&self) -> Option<u32> {
        self.jitd.as_ref().map(Child::id)
    }

    /// SIGTERM, and waits for jitd to exit (10s, then SIGKILL and panic).
    pub fn stop_jitd(&mut self) -> ExitStatus {
        let mut child = self.jitd.take().expect("jitd not running");
        // SAFETY: plain kill(2) on our own unreaped child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(st) = child.try_wait().expect("try_wait") {
                return st;
            }
            if Instant::now() >= deadline {
                kill_and_reap(&mut child);
                panic!("jitd ignored SIGTERM for 10s:{}", self.jitd_log_tail());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL and reap.
    pub fn kill_jitd(&mut self) {
        let mut child = self.jitd.take().expect("jitd not running");
        kill_and_reap(&mut child);
    }

    /// Reaps a jitd that was killed by someone else (e.g. another thread).
    pub fn reap_jitd(&mut self) -> ExitStatus {
        self.jitd
            .take()
            .expect("jitd not running")
            .wait()
            .expect("wait")
    }

    /// The last lines of jitd's stdout/stderr, for failure messages.
    pub fn jitd_log_tail(&self) -> String {
        let tail = |path: &Path, n: usize| {
            let text = fs::read_to_string(path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let start = lines.len().saturating_sub(n);
            lines[start..].join("\n    ")
        };
        let mut out = format!(
            "\n  jitd log (last lines):\n    {}\n",
            tail(&self.log_path, 30)
        );
        let deliver = self.dir.path().join("deliver.log");
        if deliver.exists() {
            out.push_str(&format!(
                "  jit-deliver log (last lines):\n    {}\n",
                tail(&deliver, 10)
            ));
        }
        out
    }

    /// The SQLite database.
    pub fn db_path(&self) -> PathBuf {
        self.state_dir.join("jit.db")
    }

    /// Runs SQL with the sqlite3 CLI on the state database.
    pub fn sqlite(&self, sql: &str) -> Run {
        let mut cmd = Command::new("sqlite3");
        cmd.arg("-batch")
            .arg("-cmd")
            .arg(".timeout 5000")
            .arg(self.db_path())
            .arg(sql);
        self.run(cmd)
    }
}

impl Default for Env {
    fn default() -> Self {
        Env::new()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if self.deliver.is_some() {
            self.kill_deliver();
        }
        if let Some(mut c) = self.jitd.take() {
            kill_and_reap(&mut c);
        }
        if let Some((mut c, _)) = self.dbus.take() {
            kill_and_reap(&mut c);
        }
        kill_and_reap(&mut self.holder);
        if let Some(dir) = &self.cgroup {
            remove_cgroup_tree(dir);
        }
    }
}

/// Whether someone owns `org.jit.Daemon1` on the bus at `address`.
pub fn name_owned_at(address: &str) -> bool {
    name_has_owner(address, "org.jit.Daemon1")
}

/// Whether someone owns `name` on the bus at `address`.
pub fn name_has_owner(address: &str, name: &str) -> bool {
    Command::new("busctl")
        .arg(format!("--address={address}"))
        .args([
            "call",
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "NameHasOwner",
            "s",
            name,
        ])
        .stderr(Stdio::null())
        .output()
        .map(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == "b true")
        .unwrap_or(false)
}

/// Where cgroup v2 is mounted (from /proc/self/mountinfo).
pub fn cgroup2_mount() -> Option<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        (right.split_whitespace().next()? == "cgroup2")
            .then(|| left.split_whitespace().nth(4).map(PathBuf::from))
            .flatten()
    })
}

/// Kills whatever is left in `dir` and its child cgroups, then removes them.
pub(crate) fn remove_cgroup_tree(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            remove_cgroup_tree(&entry.path());
        }
    }
    let _ = fs::write(dir.join("cgroup.kill"), "1");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let procs = fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        if procs.trim().is_empty() || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = fs::remove_dir(dir);
}

fn shell_words(args: &[&str]) -> String {
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

/// Writes passwd and group: the host's plus the fixtures. Returns their paths.
fn fixture_account_files(dir: &Path) -> (PathBuf, PathBuf) {
    let mut passwd = fs::read_to_string("/etc/passwd").expect("/etc/passwd");
    let mut group = fs::read_to_string("/etc/group").expect("/etc/group");
    for text in [&mut passwd, &mut group] {
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
    }
    for (name, uid, _) in USERS {
        passwd.push_str(&format!(
            "{name}:x:{uid}:{FIXTURE_GID}:jit fixture:/nonexistent:/bin/sh\n"
        ));
    }
    group.push_str(&format!("jitusers:x:{FIXTURE_GID}:\n"));
    let (deliver, deliver_id) = DELIVER_USER;
    passwd.push_str(&format!(
        "{deliver}:x:{deliver_id}:{deliver_id}:jit notification worker:/nonexistent:/usr/sbin/nologin\n"
    ));
    group.push_str(&format!("{deliver}:x:{deliver_id}:\n"));
    for (g, gid) in GROUPS {
        let members: Vec<&str> = USERS
            .iter()
            .filter(|(_, _, gs)| gs.contains(g))
            .map(|(n, _, _)| *n)
            .collect();
        group.push_str(&format!("{g}:x:{gid}:{}\n", members.join(",")));
    }
    let (p, g) = (dir.join("passwd"), dir.join("group"));
    fs::write(&p, passwd).expect("write passwd");
    fs::write(&g, group).expect("write group");
    for f in [&p, &g] {
        fs::set_permissions(f, fs::Permissions::from_mode(0o644)).expect("chmod");
    }
    (p, g)
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
