//! Real sshd on a loopback port in the test's namespace, gated by pam_jit,
//! and ssh clients for the fixture users.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::sinks::free_port;
use crate::{wait_for, Background, Env, EXEMPT};

/// sshd on 127.0.0.1 with its own host key and key authentication, run in a
/// test's namespace. The fixture users' keys are in `dir`.
pub struct Sshd {
    pub port: u16,
    pub dir: PathBuf,
    pub process: Background,
}

impl Sshd {
    /// Starts `sshd -D -e` in `env`'s namespace (after [`Env::install_pam`]),
    /// with a key pair for each of `users`; waits until it accepts connections.
    pub fn start(env: &Env, users: &[&str]) -> Sshd {
        Sshd::start_with(env, users, "")
    }

    /// [`Sshd::start`] with `first` ahead of the usual configuration (sshd
    /// takes the first value it reads for each keyword).
    pub fn start_with(env: &Env, users: &[&str], first: &str) -> Sshd {
        let dir = env.dir.path().join("sshd");
        fs::create_dir(&dir).expect("sshd dir");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod");
        keygen(&dir.join("host_key"), "");
        for user in users {
            let key = dir.join(format!("{user}.id"));
            keygen(&key, "");
            fs::copy(
                key.with_extension("id.pub"),
                dir.join(format!("{user}.keys")),
            )
            .expect("authorized keys");
        }
        let port = free_port();
        let config = dir.join("sshd_config");
        let mut f = fs::File::create(&config).expect("sshd_config");
        write!(
            f,
            "{first}ListenAddress 127.0.0.1\nPort {port}\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
             AuthorizedKeysFile {d}/%u.keys\nUsePAM yes\nStrictModes no\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
             PermitRootLogin no\nUseDNS no\nLogLevel VERBOSE\nPrintMotd no\n\
             ClientAliveInterval 0\nMaxStartups 100\n",
            d = dir.display()
        )
        .expect("write sshd_config");
        drop(f);
        let mut cmd = env.ns_command("/usr/sbin/sshd");
        cmd.args(["-D", "-e", "-f"]).arg(&config);
        let mut process = Background::spawn(cmd);
        // sshd writes its pid file once it listens; probing the port from
        // here would miss an sshd in a network namespace of the test's.
        let pid_file = dir.join("sshd.pid");
        let up = wait_for(Duration::from_secs(10), || {
            fs::read_to_string(&pid_file)
                .ok()
                .filter(|pid| pid.ends_with('\n'))
        });
        if up.is_none() || !process.running() {
            panic!("sshd did not start:{}", process.stop());
        }
        Sshd { port, dir, process }
    }

    /// The ssh command for `user` running `remote` (not yet started), in
    /// the namespace as root (the client's identity does not matter).
    pub fn ssh(&self, env: &Env, user: &str, remote: &[&str]) -> Command {
        self.ssh_with(env, user, &[], remote)
    }

    /// [`Sshd::ssh`] with `options` (`-o KEY=VALUE` pairs) ahead of the
    /// usual ones (ssh takes the first value it reads for each keyword).
    pub fn ssh_with(&self, env: &Env, user: &str, options: &[&str], remote: &[&str]) -> Command {
        let key = self.dir.join(format!("{user}.id"));
        self.ssh_with_key(env, user, &key, options, remote)
    }

    /// [`Sshd::ssh_with`] with the private key at `key`.
    pub fn ssh_with_key(
        &self,
        env: &Env,
        user: &str,
        key: &Path,
        options: &[&str],
        remote: &[&str],
    ) -> Command {
        let mut cmd = env.ns_command("ssh");
        cmd.args(options)
            .arg("-i")
            .arg(key)
            .args([
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "BatchMode=yes",
                "-o",
                "LogLevel=ERROR",
                "-o",
                "ConnectTimeout=5",
                "-p",
            ])
            .arg(self.port.to_string())
            .arg(format!("{user}@127.0.0.1"))
            .args(remote)
            .stdin(Stdio::null());
        cmd
    }

    /// The ssh command line for `user` with a forced terminal (`ssh -tt`),
    /// to type into a terminal (e.g. a [`crate::Tmux`] pane of root's).
    pub fn ssh_tty_line(&self, user: &str) -> String {
        format!(
            "ssh -tt -i {}/{user}.id -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
             -o BatchMode=yes -o LogLevel=ERROR -p {} {user}@127.0.0.1",
            self.dir.display(),
            self.port
        )
    }

    /// What sshd has logged so far (stops it).
    pub fn log(self) -> String {
        self.process.stop().stderr
    }
}

/// A new ed25519 key pair without a passphrase: `path` and `path.pub`.
pub fn keygen(path: &Path, comment: &str) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .expect("ssh-keygen");
    assert!(out.status.success(), "ssh-keygen: {out:?}");
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).expect("chmod");
}

/// The SHA-256 fingerprint of a public key file, as `ssh-keygen -l` prints it.
pub fn key_fingerprint(public: &Path) -> String {
    let out = Command::new("ssh-keygen")
        .args(["-l", "-E", "sha256", "-f"])
        .arg(public)
        .output()
        .expect("ssh-keygen -l");
    assert!(out.status.success(), "ssh-keygen -l: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(1)
        .expect("a fingerprint")
        .to_owned()
}

/// [`crate::TEST_CONFIG`] plus `ssh`, a resource alice and bob get at once.
pub fn config_with_ssh() -> String {
    format!(
        "{}\n[[resource]]\nname = \"ssh\"\nprivileged = false\nsensitivity = \"low\"\n\
         environment = \"staging\"\neligible = [\"group:admins\"]\nmax_duration = \"1h\"\n",
        crate::TEST_CONFIG
    )
}

/// `/etc/pam.d/sshd` as the README documents it (Debian's file, shortened,
/// plus the gate), with pam_jit on this test's bus.
pub fn sshd_stack(env: &Env, resource: &str) -> String {
    let jit = env.jit_args(resource);
    format!(
        "#%PAM-1.0\n\
         @include common-auth\n\
         account    required     pam_nologin.so\n\
         account required {jit} {EXEMPT} timeout=1s\n\
         @include common-account\n\
         session    required     pam_loginuid.so\n\
         @include common-session\n\
         session required {jit} {EXEMPT} timeout=1s\n\
         session    required     pam_limits.so\n"
    )
}
