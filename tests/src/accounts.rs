//! Local accounts in the test's namespace: `/etc`, `/home`, `/var/mail`,
//! `/var/spool`, `/root` and `/usr/local` become overlays of the host's
//! (nothing reaches the host),
//! so that shadow-utils can replace `/etc/shadow` as it does on a host.

use std::fs;

use crate::Env;

impl Env {
    /// Mounts the overlays (upper layers in the test's directory). The
    /// fixture users' `/etc/passwd` and `/etc/group`, bind-mounted over
    /// the host's, would be hidden by the overlay: they are copied into it.
    pub fn private_system_dirs(&self) {
        let saved = self.dir.path().join("fixture-accounts");
        fs::create_dir_all(&saved).expect("fixture accounts");
        let saved = saved.display();
        let mut script = format!("set -e\ncp /etc/passwd /etc/group {saved}/\n");
        for dir in [
            "/etc",
            "/home",
            "/var/mail",
            "/var/spool",
            "/root",
            "/usr/local",
        ] {
            if !std::path::Path::new(dir).is_dir() {
                continue;
            }
            let layer = self
                .dir
                .path()
                .join(format!("overlay{}", dir.replace('/', "-")));
            let (upper, work) = (layer.join("upper"), layer.join("work"));
            fs::create_dir_all(&upper).expect("overlay upper");
            fs::create_dir_all(&work).expect("overlay work");
            script.push_str(&format!(
                "mount -t overlay jit-test -o lowerdir={dir},upperdir={},workdir={} {dir}\n",
                upper.display(),
                work.display()
            ));
        }
        script.push_str(&format!(
            "cat {saved}/passwd > /etc/passwd\ncat {saved}/group > /etc/group\n"
        ));
        self.ns_sh(&script);
    }

    /// Creates the local account `name` in the namespace with `password`
    /// (given to chpasswd on its standard input).
    pub fn add_local_account(&self, name: &str, password: &str) {
        self.ns_sh(&format!(
            "useradd --create-home --shell /bin/sh {name} && \
             printf '%s:%s\\n' {name} '{password}' | chpasswd"
        ));
    }

    /// `name`'s password field in the namespace's `/etc/shadow`.
    pub fn shadow_field(&self, name: &str) -> String {
        let shadow = self.ns_sh("cat /etc/shadow").stdout;
        shadow
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .and_then(|rest| rest.split(':').next())
            .unwrap_or_default()
            .to_owned()
    }

    /// Whether `password` matches `name`'s current hash, locked or not
    /// (libcrypt, through Python's crypt module; the password on standard
    /// input).
    pub fn password_opens(&self, name: &str, password: &str) -> bool {
        let field = self.shadow_field(name);
        let hash = field.trim_start_matches('!');
        let mut cmd = std::process::Command::new("python3");
        cmd.args([
            "-W",
            "ignore",
            "-c",
            "import crypt, sys; h = sys.argv[1]; p = sys.stdin.read(); \
             sys.exit(0 if crypt.crypt(p, h) == h else 1)",
            hash,
        ]);
        cmd.stdin(std::process::Stdio::piped());
        let mut child = cmd.spawn().expect("python3");
        if let Some(mut stdin) = child.stdin.take() {
            use std::io::Write;
            stdin
                .write_all(password.as_bytes())
                .expect("write password");
        }
        child.wait().expect("python3").success()
    }
}
