//! jitd in the test's namespace: its configuration, start and stop, log,
//! and state database.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::{
    die_with_parent, jit_deliver_bin, jitd_bin, kill_and_reap, Env, Run, DELIVER_USER, TICKET_USER,
};

impl Env {
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

    /// Starts jitd without waiting for it to serve ([`Env::start_jitd`] waits).
    pub fn spawn_jitd(&mut self) {
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
            .args(&self.jitd_wrapper)
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
        self.jitd = Some(cmd.spawn().expect("spawn jitd"));
    }

    /// Starts jitd and waits until it owns `org.jit.Daemon1` (20s at most).
    pub fn start_jitd(&mut self) {
        self.spawn_jitd();
        let mut child = self.jitd.take().expect("spawned");
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
        let config = fs::read_to_string(&self.config_path).unwrap_or_default();
        let delivers = config.contains("[notify") || config.contains("[siem");
        if delivers && self.deliver.is_none() {
            self.start_deliver();
        }
        if config.contains("[tickets]") && self.ticket_worker.is_none() {
            self.start_ticket_worker();
        }
    }

    /// Starts the notification worker as the unprivileged `jit-deliver`
    /// user and group (no other groups), as jit-deliver.service does; it
    /// connects to jitd on its own (retrying every second).
    pub fn start_deliver(&mut self) {
        assert!(self.deliver.is_none(), "jit-deliver already running");
        let socket = self.deliver_socket();
        let siem = self.runtime_dir().join("siem.socket");
        let args = [
            "--socket".as_ref(),
            socket.as_os_str(),
            "--siem-socket".as_ref(),
            siem.as_os_str(),
        ];
        self.deliver = Some(self.spawn_worker(DELIVER_USER, "deliver", &args));
    }

    /// Starts the ticket validator (`jit-deliver --tickets`) as the
    /// unprivileged `jit-ticket` user and group, as jit-ticket.service does.
    pub fn start_ticket_worker(&mut self) {
        assert!(
            self.ticket_worker.is_none(),
            "ticket worker already running"
        );
        let socket = self.runtime_dir().join("tickets.socket");
        let args = [
            "--tickets".as_ref(),
            "--tickets-socket".as_ref(),
            socket.as_os_str(),
        ];
        self.ticket_worker = Some(self.spawn_worker(TICKET_USER, "tickets", &args));
    }

    /// SIGKILL to the ticket worker, and reaps it.
    pub fn kill_ticket_worker(&mut self) {
        let mut child = self
            .ticket_worker
            .take()
            .expect("ticket worker not running");
        kill_and_reap(&mut child);
    }

    /// `jit-deliver ARGS` as `user` (its own group, no other), logging to
    /// `NAME.log` in the test's directory.
    fn spawn_worker(&self, user: (&str, u32), name: &str, args: &[&std::ffi::OsStr]) -> Child {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("{name}.log")))
            .expect("worker log");
        let _ = writeln!(&log, "---- {name} start ----");
        let id = user.1.to_string();
        // nsenter sets the ids (dropping supplementary groups) and execs:
        // the child is the worker itself.
        let mut cmd = Command::new("nsenter");
        cmd.arg("-t")
            .arg(self.ns_pid().to_string())
            .args(["-m", "-S", &id, "-G", &id, "--"])
            .arg(jit_deliver_bin())
            .args(args)
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup"))
            .stderr(log);
        die_with_parent(&mut cmd);
        cmd.spawn().expect("spawn jit-deliver")
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
        let tail = |path: &std::path::Path, n: usize| {
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

impl Env {
    /// Runs jitd as jitd.service would, as far as that works without
    /// systemd: its own `/proc` with `ProcSubset=pid` (only processes'
    /// directories), and no capability beyond the unit's bounding set.
    pub fn run_jitd_as_the_unit(&mut self) {
        self.jitd_wrapper = vec![
            "unshare".into(),
            "--mount".into(),
            "--propagation".into(),
            "private".into(),
            "--".into(),
            "sh".into(),
            "-c".into(),
            "mount -t proc -o subset=pid jit-test-proc /proc && exec \"$@\"".into(),
            "sh".into(),
            "setpriv".into(),
            format!("--bounding-set={}", unit_capabilities()),
            "--inh-caps=-all".into(),
            "--".into(),
        ];
    }
}

/// The capabilities jitd.service leaves jitd (`CapabilityBoundingSet=`),
/// as `setpriv --bounding-set` takes them: `-all,+kill,+chown`.
pub fn unit_capabilities() -> String {
    let unit =
        std::fs::read_to_string(crate::workspace_root().join("packaging/systemd/jitd.service"))
            .expect("jitd.service");
    let caps = unit
        .lines()
        .find_map(|l| l.strip_prefix("CapabilityBoundingSet="))
        .expect("the unit bounds jitd's capabilities");
    let caps: Vec<String> = caps
        .split_whitespace()
        .map(|c| format!("+{}", c.trim_start_matches("CAP_").to_lowercase()))
        .collect();
    format!("-all,{}", caps.join(","))
}
