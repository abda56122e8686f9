//! polkit worlds for the polkit gate's tests: the real polkitd on the
//! test's bus (with polkit's own bus policy), reading rules directories of
//! the test's inside the namespace, and the real pkexec and pkcheck run as
//! fixture users. Needs [`Env::install_pam`] (a private `/run`) and
//! [`Env::link_system_bus`]: pkexec is setuid and finds the bus only at
//! `/run/dbus/system_bus_socket`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::{bin_dir, name_has_owner, wait_for, workspace_root, Background, Env, Run};

/// polkit's bus policy (polkitd's account owns its name).
pub const POLKIT_BUS_POLICY: &str = "/usr/share/dbus-1/system.d/org.freedesktop.PolicyKit1.conf";
const POLKITD: &str = "/usr/lib/polkit-1/polkitd";
const POLKIT_NAME: &str = "org.freedesktop.PolicyKit1";
/// Where the package installs the helper; the rule names it.
const INSTALLED_HELPER: &str = "[\"/usr/libexec/jit/jit-polkit-check\"]";

/// Stands for the distribution's and the admin's rules that let an admin
/// group through without a password (and one account the tests exempt).
pub const ADMINS_RULE: &str = "polkit.addRule(function (action, subject) {\n\
    if (subject.isInGroup(\"admins\") || subject.user == \"oscar\") {\n\
        return polkit.Result.YES;\n\
    }\n\
});\n";

/// The rule the package ships, running the built helper on `env`'s config.
pub fn jit_rule(env: &Env) -> String {
    let shipped = fs::read_to_string(workspace_root().join("packaging/polkit/20-jit.rules"))
        .expect("packaging/polkit/20-jit.rules");
    let helper = bin_dir().join("jit-polkit-check");
    assert!(helper.is_file(), "{} not built", helper.display());
    let here = format!(
        "[{:?}, \"--config\", {:?}]",
        helper.display().to_string(),
        env.config_path.display().to_string()
    );
    let rule = shipped.replace(INSTALLED_HELPER, &here);
    assert_ne!(rule, shipped, "the rule no longer names {INSTALLED_HELPER}");
    rule
}

/// polkitd in a test's namespace; stopped when dropped.
pub struct Polkitd {
    process: Background,
}

impl Polkitd {
    /// Starts polkitd with `rules` (file name, text) as its only rules and
    /// waits until it owns its bus name. It starts as root and switches to
    /// its own account, as on a host.
    pub fn start(env: &Env, rules: &[(&str, &str)]) -> Polkitd {
        for program in [POLKITD, "/usr/bin/pkexec"] {
            assert!(
                Path::new(program).exists(),
                "{program} missing: run scripts/install-deps.sh"
            );
        }
        env.install_polkit_rules(rules);
        let mut cmd = env.ns_command(POLKITD);
        cmd.env("DBUS_SYSTEM_BUS_ADDRESS", env.address());
        let mut process = Background::spawn(cmd);
        let address = env.address();
        if wait_for(Duration::from_secs(15), || {
            name_has_owner(&address, POLKIT_NAME).then_some(())
        })
        .is_none()
            || !process.running()
        {
            panic!("polkitd did not start:{}", process.stop());
        }
        Polkitd { process }
    }

    /// What polkitd logged (its rules' `polkit.log` lines among it); stops it.
    pub fn log(self) -> String {
        let run = self.process.stop();
        format!("{}{}", run.stdout, run.stderr)
    }
}

impl Env {
    /// Replaces polkit's rules directories in the namespace by the test's:
    /// `rules` (file name, text) in `/usr/share/polkit-1/rules.d`, where
    /// packages install theirs, and `/etc/polkit-1/rules.d` empty.
    pub fn install_polkit_rules(&self, rules: &[(&str, &str)]) {
        let root = self.dir.path().join("polkit");
        let (etc, usr) = (root.join("etc-rules.d"), root.join("usr-rules.d"));
        for dir in [&root, &etc, &usr] {
            fs::create_dir_all(dir).expect("mkdir");
            fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        for (name, text) in rules {
            let path = usr.join(name);
            fs::write(&path, text).expect("write rule");
            fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
        }
        self.bind(&etc, "/etc/polkit-1/rules.d");
        self.bind(&usr, "/usr/share/polkit-1/rules.d");
    }

    /// `pkexec --disable-internal-agent ARGV` as `user`, from a shell of
    /// theirs (pkexec asks polkit about its parent process). Without an
    /// agent nobody can authenticate: only a rule's YES gets through.
    pub fn pkexec(&self, user: &str, argv: &[&str]) -> Run {
        self.user_shell(
            user,
            "pkexec --disable-internal-agent \"$@\"; exit $?",
            argv,
        )
    }

    /// `pkcheck` about `action` for a shell of `user`'s: exit 0 authorized,
    /// 1 not authorized, 2 authentication needed.
    pub fn pkcheck(&self, user: &str, action: &str) -> Run {
        self.user_shell(
            user,
            "pkcheck --action-id \"$1\" --process $$; exit $?",
            &[action],
        )
    }

    fn user_shell(&self, user: &str, script: &str, args: &[&str]) -> Run {
        let mut cmd = self.ns_command("runuser");
        cmd.args(["-u", user, "--", "sh", "-c", script, "sh"])
            .args(args)
            .stdin(Stdio::null());
        self.run(cmd)
    }
}
