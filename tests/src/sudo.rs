//! Real sudo in the test's namespace, gated by pam_jit: the stacks the
//! README documents, the tests' sudoers, and sudo run as a fixture user.

use crate::{pam_module, Background, Env, Run, EXEMPT};
use std::path::PathBuf;
use std::process::Stdio;

/// The sudoers the tests use: gated alice and bob, exempt oscar.
pub const SUDOERS: &str = "Defaults !lecture\nDefaults !fqdn\nDefaults !syslog\n\
root ALL=(ALL:ALL) ALL\n\
%jit-gated ALL=(ALL:ALL) NOPASSWD: ALL\n\
oscar ALL=(ALL:ALL) NOPASSWD: ALL\n";

/// [`SUDOERS`], but gated users give their password (no `NOPASSWD`): sudo
/// authenticates them and caches the credential in its timestamp file.
pub fn password_sudoers() -> String {
    let text = SUDOERS.replace(
        "%jit-gated ALL=(ALL:ALL) NOPASSWD: ALL",
        "%jit-gated ALL=(ALL:ALL) ALL",
    );
    assert_ne!(text, SUDOERS);
    text
}

/// Where sudo keeps its timestamp files (Debian's sudo; jitd's default
/// `sudo_timestamp_dirs`).
const SUDO_TIMESTAMPS: &str = "/run/sudo/ts";

impl Env {
    /// `runuser -u USER -- sudo -n ARGS` (no terminal), with the environment
    /// `env` (NAME=VALUE) set before sudo.
    pub fn sudo(&self, user: &str, env: &[&str], args: &[&str]) -> Run {
        let mut cmd = self.ns_command("runuser");
        cmd.args(["-u", user, "--", "env"])
            .args(env)
            .args(["sudo", "-n"])
            .args(args)
            .stdin(Stdio::null());
        self.run(cmd)
    }

    /// `runuser -u USER -- sudo -S ARGS` with `password` on sudo's standard
    /// input (no terminal): sudo authenticates the user with it.
    pub fn sudo_with_password(&self, user: &str, password: &str, args: &[&str]) -> Run {
        let mut cmd = self.ns_command("runuser");
        cmd.args(["-u", user, "--", "sh", "-c"])
            .arg("printf '%s\\n' \"$0\" | sudo -S -p '' \"$@\"")
            .arg(password)
            .args(args);
        self.run(cmd)
    }

    /// `user`'s sudo timestamp file in the namespace, as the test reaches it.
    pub fn sudo_timestamp(&self, user: &str) -> PathBuf {
        self.ns_path(&format!("{SUDO_TIMESTAMPS}/{user}"))
    }

    /// `script -qfc CMD /dev/null` as `user`: CMD on a pseudo-terminal, in the background.
    pub fn spawn_in_pty(&self, user: &str, command: &str) -> Background {
        let mut cmd = self.ns_command("runuser");
        cmd.args(["-u", user, "--", "script", "-qfec", command, "/dev/null"]);
        Background::spawn(cmd)
    }
}

/// `/etc/pam.d/sudo` as the README documents it (Debian's file plus the
/// gate), with pam_jit on this test's bus for `resource`.
pub fn sudo_stack(env: &Env, resource: &str, extra: &str) -> String {
    let jit = env.jit_args(resource);
    format!(
        "#%PAM-1.0\n\
         session    required   pam_limits.so\n\
         @include common-auth\n\
         account required {jit} {EXEMPT} {extra}\n\
         @include common-account\n\
         @include common-session-noninteractive\n\
         session required {jit} {EXEMPT} {extra}\n"
    )
}

/// A test environment whose sudo is gated on `resource` by the documented
/// stack (1 s timeout), with [`SUDOERS`].
pub fn sudo_env(resource: &str) -> Env {
    let env = Env::new();
    let stack = sudo_stack(&env, resource, "timeout=1s");
    env.install_pam(&[("sudo", &stack)], SUDOERS);
    env
}

/// `/etc/pam.d/sudo` exactly as the README documents it (no `bus=`: the
/// system bus socket).
pub fn documented_sudo_stack() -> String {
    let module = pam_module();
    format!(
        "#%PAM-1.0\n\
         session    required   pam_limits.so\n\
         @include common-auth\n\
         account required {m} resource=sudo {EXEMPT}\n\
         @include common-account\n\
         @include common-session-noninteractive\n\
         session required {m} resource=sudo {EXEMPT}\n",
        m = module.display()
    )
}
