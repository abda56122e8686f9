//! Recorded sessions for the jit-session tests: the built `jit-session`
//! installed at `/usr/libexec/jit/jit-session` inside the test's namespace
//! (a tmpfs over `/usr/libexec` with the host's entries bound back into it),
//! sudo gated by pam_jit on the fixed system-bus socket, recordings in a
//! directory of the test, and tmux to drive real terminals.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::{
    binary, documented_sudo_stack, id_of, jitctl_bin, state_of, uid, wait_for, Env, Run, Value,
    TEST_CONFIG,
};

/// Where the packages install the recorder (and where jitctl runs it from).
pub const JIT_SESSION: &str = "/usr/libexec/jit/jit-session";

/// The built recorder (`cargo build -p jit-session`).
pub fn jit_session_bin() -> PathBuf {
    binary("jit-session")
}

/// The sudoers of the recorded-session tests: gated users may run the
/// recorder and nothing else (README, "Recorded sessions"; NOPASSWD because
/// the fixture users have no password, the gate is in `account`).
pub const SESSION_SUDOERS: &str = "Defaults !lecture\nDefaults !fqdn\nDefaults !syslog\n\
root ALL=(ALL:ALL) ALL\n\
%jit-gated ALL=(root) NOPASSWD: /usr/libexec/jit/jit-session\n";

/// [`TEST_CONFIG`] with `expiry_warning`, plus `ops`: a resource alice and
/// bob get at once (auto-approved, extensions too), capped at 1h.
pub fn session_config(expiry_warning: &str) -> String {
    let text = TEST_CONFIG.replace(
        "expiry_warning = \"1s\"",
        &format!("expiry_warning = \"{expiry_warning}\""),
    );
    assert!(text.contains(expiry_warning));
    format!(
        "{text}\n[[resource]]\nname = \"ops\"\nprivileged = false\nsensitivity = \"low\"\n\
         environment = \"staging\"\neligible = [\"group:admins\"]\nmax_duration = \"1h\"\n"
    )
}

/// A test world for recorded sessions: [`Env`] plus the recorder installed.
pub struct SessionEnv {
    pub env: Env,
    /// `[recordings] dir` (created by jitd on the first recording).
    pub rec_dir: PathBuf,
}

impl std::ops::Deref for SessionEnv {
    type Target = Env;
    fn deref(&self) -> &Env {
        &self.env
    }
}

impl SessionEnv {
    /// `config` (see [`session_config`]) with `[recordings] dir` set to a
    /// directory of the test, pam_jit for `resource` in sudo's stack.
    pub fn new(config: &str, resource: &str) -> SessionEnv {
        SessionEnv::with(config, resource, |_| {})
    }

    /// Like [`SessionEnv::new`]; `prepare` runs after the recorder is
    /// installed, before jitd starts (e.g. to mount a tiny tmpfs as the
    /// recordings dir).
    pub fn with(config: &str, resource: &str, prepare: impl FnOnce(&SessionEnv)) -> SessionEnv {
        let env = Env::without_jitd(config);
        let rec_dir = env.dir.path().join("sessions");
        env.write_config(&format!(
            "{config}\n[recordings]\ndir = \"{}\"\n",
            rec_dir.display()
        ));
        let stack =
            documented_sudo_stack().replace("resource=sudo", &format!("resource={resource}"));
        env.install_pam(&[("sudo", &stack)], SESSION_SUDOERS);
        env.link_system_bus();
        install_recorder(&env);
        let mut s = SessionEnv { env, rec_dir };
        prepare(&s);
        s.env.start_jitd();
        s
    }

    /// `jitctl recordings list --json` as `user`.
    #[track_caller]
    pub fn recordings(&self, user: &str) -> Vec<Value> {
        let v = self.jitctl_json(user, &["recordings", "list", "--json"]);
        v.as_array()
            .unwrap_or_else(|| panic!("recordings list --json is not an array: {v:#}"))
            .clone()
    }

    /// The only recording of `grant` (as root), once it is closed (sha256 set).
    #[track_caller]
    pub fn closed_recording(&self, grant: u64, timeout: Duration) -> Value {
        let mut last = Vec::new();
        wait_for(timeout, || {
            last = self.recordings("root");
            last.iter()
                .find(|r| r["grant"].as_u64() == Some(grant) && r["sha256"].is_string())
                .cloned()
        })
        .unwrap_or_else(|| {
            panic!(
                "no closed recording of grant {grant} within {timeout:?}; recordings: {last:#?}{}",
                self.jitd_log_tail()
            )
        })
    }

    /// A file inside the namespace (the recordings dir may be a tmpfs there).
    #[track_caller]
    pub fn read_ns_file(&self, path: &str) -> Vec<u8> {
        let out = self
            .ns_command("cat")
            .arg(path)
            .stdin(Stdio::null())
            .output()
            .expect("cat");
        assert!(out.status.success(), "cannot read {path}: {out:?}");
        out.stdout
    }

    /// A grant of `ops` (granted at once, see [`session_config`]) to `user`.
    #[track_caller]
    pub fn ops_grant(&self, user: &str, reason: &str) -> u64 {
        let grant = self.request(user, "ops", "30m", reason);
        assert_eq!(state_of(&grant), "active", "{grant:#}");
        id_of(&grant)
    }

    /// A grant of `sudo` to alice, approved by mike (manager) and sam
    /// (security), as the dual route asks.
    #[track_caller]
    pub fn approved_sudo_grant(&self, reason: &str) -> u64 {
        let id = id_of(&self.request("alice", "sudo", "30m", reason));
        self.approve("mike", id).ok();
        self.approve("sam", id).ok();
        self.wait_state(id, "active", Duration::from_secs(5));
        id
    }

    /// `jitctl run GRANT -- CMD...` as `user` (no terminal).
    pub fn jitctl_run(&self, user: &str, grant: u64, command: &[&str]) -> Run {
        let mut args = vec!["run".to_string(), grant.to_string(), "--".into()];
        args.extend(command.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.jitctl(user, &args)
    }
}

/// Puts the built jit-session at [`JIT_SESSION`] inside the namespace only:
/// a tmpfs over `/usr/libexec` with each host entry bound back (sudo needs
/// `/usr/libexec/sudo`), plus `jit/jit-session`. `/root` becomes a tmpfs
/// too, so root's shell and vim write their history there, not on the host.
pub fn install_recorder(env: &Env) {
    let orig = env.dir.path().join("libexec-orig");
    fs::create_dir(&orig).expect("libexec-orig");
    env.ns_sh(&format!(
        r#"O='{orig}'; B='{bin}'
mount --bind /usr/libexec "$O"
mount -t tmpfs -o mode=0755 jit-test-libexec /usr/libexec
for e in "$O"/* "$O"/.[!.]*; do
  [ -e "$e" ] || [ -L "$e" ] || continue
  n=${{e##*/}}
  if [ -L "$e" ]; then cp -P "$e" /usr/libexec/
  elif [ -d "$e" ]; then mkdir /usr/libexec/"$n" && mount --bind "$e" /usr/libexec/"$n"
  else : > /usr/libexec/"$n" && mount --bind "$e" /usr/libexec/"$n"
  fi
done
mkdir -m 0755 /usr/libexec/jit
cp "$B" {target} && chmod 0755 {target}
mount -t tmpfs -o mode=0700 jit-test-root /root
"#,
        orig = orig.display(),
        bin = jit_session_bin().display(),
        target = JIT_SESSION,
    ));
}

/// Makes `shell` the login shell of fixture `user` inside the test's
/// namespace (its `/etc/passwd` is a bind-mounted copy, rewritten in place).
pub fn set_login_shell(env: &Env, user: &str, shell: &str) {
    let path = env.dir.path().join("passwd");
    let text = fs::read_to_string(&path).expect("the namespace's passwd");
    let prefix = format!("{user}:x:{}:", uid(user));
    let mut found = false;
    let text: String = text
        .lines()
        .map(|line| match line.strip_prefix(&prefix) {
            Some(_) => {
                found = true;
                let (rest, _) = line.rsplit_once(':').expect("a passwd line");
                format!("{rest}:{shell}\n")
            }
            None => format!("{line}\n"),
        })
        .collect();
    assert!(found, "no passwd line for {user}");
    // The same inode: the bind mount shows the new contents.
    fs::write(&path, text).expect("rewrite passwd");
}

/// A world for login-shell sessions (README, "jit-session as a login
/// shell"): [`SessionEnv`] with sshd gated by pam_jit for `ssh` (a resource
/// granted at once, see [`login_config`]) and each of `users` given the
/// recorder as login shell. `prepare` runs before jitd starts.
pub fn login_env(users: &[&str], prepare: impl FnOnce(&SessionEnv)) -> (SessionEnv, crate::Sshd) {
    let s = SessionEnv::with(&login_config(), "ops", |s| {
        let stack = crate::sshd_stack(s, "ssh");
        s.set_pam_services(&[("sshd", &stack)]);
        for user in users {
            set_login_shell(s, user, JIT_SESSION);
        }
        prepare(s);
    });
    let sshd = crate::Sshd::start(&s, users);
    (s, sshd)
}

/// [`session_config`] plus `ssh`, a resource alice and bob get at once.
pub fn login_config() -> String {
    format!(
        "{}\n[[resource]]\nname = \"ssh\"\nprivileged = false\nsensitivity = \"low\"\n\
         environment = \"staging\"\neligible = [\"group:admins\"]\nmax_duration = \"1h\"\n",
        session_config("15m")
    )
}

/// A tmux server run by one user inside a test's namespace, with one
/// session ("main") whose single pane runs the user's shell. Killed on drop.
pub struct Tmux<'a> {
    env: &'a Env,
    user: String,
    socket: PathBuf,
}

impl<'a> Tmux<'a> {
    /// `tmux new-session -d -x COLS -y ROWS` as `user` (shell: /bin/sh,
    /// `DBUS_SYSTEM_BUS_ADDRESS` set for jitctl, TERM xterm-256color).
    pub fn start(env: &'a Env, user: &str, cols: u16, rows: u16) -> Tmux<'a> {
        let dir = env.dir.path().join(format!("tmux-{user}"));
        fs::create_dir(&dir).expect("tmux dir");
        std::os::unix::fs::chown(&dir, Some(uid(user)), Some(crate::FIXTURE_GID)).expect("chown");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).expect("chmod");
        let t = Tmux {
            env,
            user: user.into(),
            socket: dir.join("sock"),
        };
        let mut cmd = env.user_command(user, "env");
        cmd.args([
            "TERM=xterm-256color",
            "HOME=/nonexistent",
            "PS1=$ ",
            "ENV=",
            "tmux",
        ])
        .arg("-S")
        .arg(&t.socket)
        .args(["-f", "/dev/null", "new-session", "-d"])
        .args(["-x", &cols.to_string(), "-y", &rows.to_string()])
        .args(["-s", "main", "/bin/sh"]);
        env.run(cmd).ok();
        t.tmux(&["set-option", "-g", "remain-on-exit", "on"]);
        t
    }

    /// Runs a tmux client command as the server's user.
    pub fn tmux(&self, args: &[&str]) -> Run {
        let mut cmd = self.env.ns_command("runuser");
        cmd.args(["-u", &self.user, "--", "tmux", "-S"])
            .arg(&self.socket)
            .args(args)
            .stdin(Stdio::null());
        self.env.run(cmd)
    }

    /// Types `text` literally, then Enter.
    pub fn line(&self, text: &str) {
        self.tmux(&["send-keys", "-t", "main", "-l", text]).ok();
        self.tmux(&["send-keys", "-t", "main", "Enter"]).ok();
    }

    /// Sends tmux key names (`Escape`, `C-c`, ...).
    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "main"];
        args.extend_from_slice(keys);
        self.tmux(&args).ok();
    }

    /// What the pane shows now.
    pub fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-t", "main"]).ok().stdout
    }

    /// Waits until the pane shows `needle`; returns the screen.
    #[track_caller]
    pub fn wait_for(&self, needle: &str, timeout: Duration) -> String {
        let mut last = String::new();
        wait_for(timeout, || {
            last = self.screen();
            last.contains(needle).then(|| last.clone())
        })
        .unwrap_or_else(|| {
            panic!(
                "the pane did not show {needle:?} within {timeout:?}; it shows:\n{last}{}",
                self.env.jitd_log_tail()
            )
        })
    }

    /// Waits until `f(screen)` holds; returns the screen.
    #[track_caller]
    pub fn wait_until(&self, what: &str, timeout: Duration, f: impl Fn(&str) -> bool) -> String {
        let mut last = String::new();
        wait_for(timeout, || {
            last = self.screen();
            f(&last).then(|| last.clone())
        })
        .unwrap_or_else(|| {
            panic!("the pane did not show {what} within {timeout:?}; it shows:\n{last}")
        })
    }

    /// `jitctl shell [ID]` typed into the pane; waits for root's shell to answer.
    #[track_caller]
    pub fn open_shell(&self, grant: Option<u64>) {
        let id = grant.map(|g| format!(" {g}")).unwrap_or_default();
        self.line(&format!("{} shell{id}", jitctl_bin().display()));
        self.line("echo in-session-$((40+2)) uid=$(id -u)");
        self.wait_for("in-session-42 uid=0", Duration::from_secs(10));
    }
}

impl Drop for Tmux<'_> {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]);
    }
}

/// A parsed asciicast v2 file: the header and the events.
#[derive(Debug)]
pub struct Cast {
    pub header: Value,
    pub events: Vec<(f64, String, String)>,
}

impl Cast {
    /// Parses the file; panics with the offending line if it is not asciicast v2.
    #[track_caller]
    pub fn parse(bytes: &[u8]) -> Cast {
        let text = std::str::from_utf8(bytes).expect("a recording is UTF-8");
        let mut lines = text.lines();
        let header: Value = serde_json::from_str(lines.next().expect("header line"))
            .unwrap_or_else(|e| panic!("header is not JSON ({e}): {text:.300}"));
        assert_eq!(header["version"], 2, "{header:#}");
        let mut events = Vec::new();
        let mut last = 0.0;
        for line in lines {
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("event line is not JSON ({e}): {line}"));
            let (Some(t), Some(kind), Some(data)) = (v[0].as_f64(), v[1].as_str(), v[2].as_str())
            else {
                panic!("not an asciicast v2 event: {line}");
            };
            assert!(t >= last, "event times go backwards: {line}");
            last = t;
            events.push((t, kind.to_owned(), data.to_owned()));
        }
        Cast { header, events }
    }

    /// The data of the events of one kind.
    pub fn of(&self, kind: &str) -> Vec<&str> {
        self.events
            .iter()
            .filter(|e| e.1 == kind)
            .map(|e| e.2.as_str())
            .collect()
    }

    /// The recorded output, decoded back to bytes (U+10FF00+b is byte b).
    pub fn output_bytes(&self) -> Vec<u8> {
        self.of("o").iter().flat_map(|t| decode(t)).collect()
    }

    /// The recorded output as text (lossy).
    pub fn output(&self) -> String {
        String::from_utf8_lossy(&self.output_bytes()).into_owned()
    }
}

/// The documented mapping: characters U+10FF00..=U+10FFFF are raw bytes.
pub fn decode(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        let u = c as u32;
        if (0x10_FF00..=0x10_FFFF).contains(&u) {
            out.push((u - 0x10_FF00) as u8);
        } else {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
    out
}

/// Owner uid, group gid and permission bits of a path.
pub fn owner_and_mode(path: &Path) -> (u32, u32, u32) {
    use std::os::unix::fs::MetadataExt;
    let m = fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (m.uid(), m.gid(), m.mode() & 0o7777)
}

/// The parent of process `pid`, while it lives.
pub fn parent_of(pid: u32) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 2..].split(' ').nth(1)?.parse().ok()
}

/// Process `pid`'s command line, arguments separated by spaces (empty once
/// it is gone).
pub fn cmdline(pid: u32) -> String {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}
