//! The test's sandbox: a private mount namespace (held open by a `sleep`
//! process) whose `/etc/passwd` and `/etc/group` hold the fixture users,
//! commands run in it as root or as a fixture user, and a cgroup v2
//! directory of the test's own for jitd's session cgroups.

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{die_with_parent, fixture_account_files, kill_and_reap, Background, Run, TEST_CONFIG};

/// One isolated test environment. See the crate docs.
pub struct Env {
    /// Holds passwd, group, bus config and socket, jitd config, state dir and logs.
    pub dir: tempfile::TempDir,
    pub(crate) holder: Child,
    pub(crate) dbus: Option<(Child, ChildStdout)>,
    pub(crate) jitd: Option<Child>,
    /// `jit-deliver` as the `jit-deliver` user, when the config has `[notify]`.
    pub(crate) deliver: Option<Child>,
    /// `jit-deliver --tickets` as the `jit-ticket` user, when the config
    /// has `[tickets]`.
    pub(crate) ticket_worker: Option<Child>,
    pub socket: PathBuf,
    pub config_path: PathBuf,
    pub state_dir: PathBuf,
    pub log_path: PathBuf,
    /// This test's cgroup v2 directory for jitd's session cgroups
    /// (`[sessions] cgroup`), removed when the `Env` drops.
    pub cgroup: Option<PathBuf>,
    /// A command (and its arguments) jitd is started under, such as
    /// `setpriv` with the unit's capabilities; empty: none.
    pub jitd_wrapper: Vec<String>,
    /// The namespace has a network namespace of its own too (only `lo`,
    /// down): jitd's nftables rules never reach the host's.
    pub(crate) own_network: bool,
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
        Env::build(config, policies, false)
    }

    /// [`Env::without_jitd`] in a network namespace of its own as well:
    /// every command of [`Env::ns_command`] (jitd's too) runs in it.
    pub fn with_own_network(config: &str) -> Env {
        Env::build(config, &[], true)
    }

    fn build(config: &str, policies: &[&Path], own_network: bool) -> Env {
        let dir = tempfile::Builder::new()
            .prefix("jit-e2e-")
            .tempdir()
            .expect("tempdir");
        // Fixture users must reach the bus socket.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
        let root = dir.path().to_owned();

        let (passwd, group) = fixture_account_files(&root);
        let mut holder_cmd = Command::new("unshare");
        holder_cmd.arg("--mount");
        if own_network {
            holder_cmd.arg("--net");
        }
        holder_cmd
            .args(["--propagation", "private", "--", "sh", "-c"])
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
            ticket_worker: None,
            cgroup: cgroup2_mount().map(|m| {
                let name = root.file_name().expect("name").to_string_lossy();
                m.join(format!("jit-test-{}", name.trim_start_matches("jit-e2e-")))
            }),
            jitd_wrapper: Vec::new(),
            own_network,
        };
        env.write_config(config);
        env.start_bus(policies);
        env
    }

    /// The pid whose mount namespace the environment uses.
    pub fn ns_pid(&self) -> u32 {
        self.holder.id()
    }

    /// The cgroups jitd has made in this test's cgroup (`grant-N`,
    /// `refused-PID`, `recorder-N-pid-P`), by name.
    pub fn session_cgroups(&self) -> Vec<String> {
        let Some(dir) = &self.cgroup else {
            return Vec::new();
        };
        fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    }

    /// `path` inside the namespace, as the test (outside it) reaches it:
    /// through the holder's `/proc/PID/root`.
    pub fn ns_path(&self, path: &str) -> PathBuf {
        let relative = path.strip_prefix('/').expect("an absolute path");
        PathBuf::from(format!("/proc/{}/root", self.ns_pid())).join(relative)
    }

    /// A command run inside the namespace (as root): its network
    /// namespace too when it has its own.
    pub fn ns_command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg("-t").arg(self.ns_pid().to_string()).arg("-m");
        if self.own_network {
            cmd.arg("-n");
        }
        cmd.arg("--").arg(program).current_dir("/");
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
}

impl Default for Env {
    fn default() -> Self {
        Env::new()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for mut worker in [self.deliver.take(), self.ticket_worker.take()]
            .into_iter()
            .flatten()
        {
            kill_and_reap(&mut worker);
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

impl Env {
    /// Runs a shell script as root inside the namespace; asserts success.
    #[track_caller]
    pub fn ns_sh(&self, script: &str) -> Run {
        let mut cmd = self.ns_command("sh");
        cmd.args(["-euc", script]).stdin(Stdio::null());
        self.run(cmd).ok()
    }

    /// Writes `body` as a `/bin/sh` script named `name` in the test's
    /// directory (0755, reachable in the namespace at the same path).
    pub fn write_script(&self, name: &str, body: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    }

    /// Mounts `src` over `dst` inside the namespace.
    #[track_caller]
    pub fn bind(&self, src: &Path, dst: &str) {
        let mut cmd = self.ns_command("mount");
        cmd.arg("--bind").arg(src).arg(dst).stdin(Stdio::null());
        self.run(cmd).ok();
    }
}

impl Env {
    /// Replaces `tool` in the namespace by a script that marks it started,
    /// stalls `secs` and fails; the mark's path ([`Env::wait_started`]).
    pub fn stall_tool(&self, tool: &str, secs: u32) -> PathBuf {
        let name = tool.rsplit('/').next().unwrap_or(tool);
        let started = self.dir.path().join(format!("{name}-started"));
        let script = self.write_script(
            &format!("stalled-{name}"),
            &format!("touch {}\nsleep {secs}\nexit 1", started.display()),
        );
        self.bind(&script, tool);
        started
    }

    /// Puts the real `tool` back ([`Env::stall_tool`]).
    pub fn restore_tool(&self, tool: &str) {
        self.ns_sh(&format!("umount {tool}"));
    }

    /// Waits until jitd ran a stalled tool ([`Env::stall_tool`]).
    #[track_caller]
    pub fn wait_started(&self, started: &Path) {
        if crate::wait_for(std::time::Duration::from_secs(20), || {
            started.exists().then_some(())
        })
        .is_none()
        {
            panic!(
                "jitd never ran {}:{}",
                started.display(),
                self.jitd_log_tail()
            );
        }
    }
}
