//! PAM worlds for the pam_jit tests: the built module, and `/etc/pam.d`,
//! `/etc/sudoers`, `/etc/shadow` and `/run` replaced inside the test's mount
//! namespace (never on the host); what PAM modules send to syslog.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::{bin_dir, workspace_root, Env, Run, USERS};

/// The built module (`cargo build -p pam_jit`).
pub fn pam_module() -> PathBuf {
    let path = bin_dir().join("libpam_jit.so");
    assert!(
        path.is_file(),
        "{} not found: run `cargo build -p pam_jit` first (or set JIT_BIN_DIR)",
        path.display()
    );
    path
}

/// The password [`Env::set_password`] gives a fixture user.
pub const PASSWORD: &str = "correct horse";
/// Its SHA-512 crypt (`openssl passwd -6 -salt jittests 'correct horse'`).
const PASSWORD_HASH: &str =
    "$6$jittests$5p.Wb0rblDM3mudqSrdxVYBo3rnXs3hW12kt.XaMzNnTPnpgm8p1IBmCpX6QrN8kpQE27hiktNJZw5RHvdiWh/";

/// What the tests' stacks exempt from the gate: root, and oscar, standing
/// for a service account the admin names. Everyone else is gated.
pub const EXEMPT: &str = "exempt=root,oscar";

impl Env {
    /// pam_jit's arguments for `resource` with this test's jitd: its
    /// private socket, and this test's bus as the fallback.
    pub fn jit_args(&self, resource: &str) -> String {
        format!(
            "{} resource={resource} socket={} bus={}",
            pam_module().display(),
            self.private_socket().display(),
            self.address()
        )
    }

    /// pam_jit's arguments for `resource` through this test's bus only (no
    /// private socket at the path given).
    pub fn jit_args_bus_only(&self, resource: &str) -> String {
        format!(
            "{} resource={resource} socket={} bus={}",
            pam_module().display(),
            self.dir.path().join("no-such.socket").display(),
            self.address()
        )
    }

    /// Replaces, inside the namespace only:
    /// - `/etc/pam.d` by a copy of the host's with `services` (name, text) added or replaced;
    /// - `/etc/sudoers` by `sudoers` (root, 0440);
    /// - `/etc/shadow` by the host's plus locked-password entries for the fixture users;
    /// - `/run` by an empty tmpfs holding `/run/sudo` and `/run/sshd`.
    pub fn install_pam(&self, services: &[(&str, &str)], sudoers: &str) {
        let root = self.dir.path();
        self.install_pam_d(services);

        let sudoers_path = root.join("sudoers");
        fs::write(&sudoers_path, sudoers).expect("sudoers");
        fs::set_permissions(&sudoers_path, fs::Permissions::from_mode(0o440)).expect("chmod");
        self.bind(&sudoers_path, "/etc/sudoers");

        let mut shadow = fs::read_to_string("/etc/shadow").unwrap_or_default();
        if !shadow.is_empty() && !shadow.ends_with('\n') {
            shadow.push('\n');
        }
        for (name, _, _) in USERS {
            shadow.push_str(&format!("{name}:*:19000:0:99999:7:::\n"));
        }
        let shadow_path = root.join("shadow");
        fs::write(&shadow_path, shadow).expect("shadow");
        fs::set_permissions(&shadow_path, fs::Permissions::from_mode(0o600)).expect("chmod");
        self.bind(&shadow_path, "/etc/shadow");

        self.private_run();
    }

    /// Mounts an empty tmpfs over the namespace's `/run`, holding
    /// `/run/sudo` and `/run/sshd` (sshd, even `sshd -T`, wants its
    /// privilege separation directory).
    pub fn private_run(&self) {
        self.ns_sh(
            "mount -t tmpfs -o mode=0755 jit-test-run /run \
             && mkdir -m 0711 /run/sudo && mkdir -m 0755 /run/sshd",
        );
    }

    /// Gives `user` the password [`PASSWORD`] in the namespace's
    /// `/etc/shadow` (after [`Env::install_pam`]; rewritten in place, under
    /// its bind mount).
    pub fn set_password(&self, user: &str) {
        self.edit_shadow(user, |fields| {
            assert_eq!(fields[1], "*", "no locked shadow entry for {user}");
            fields[1] = PASSWORD_HASH.to_owned();
        });
    }

    /// Expires `user`'s password as `chage -d 0` does (the last change on
    /// day 0): pam_unix's account check answers `new_authtok_reqd`.
    pub fn expire_password(&self, user: &str) {
        self.edit_shadow(user, |fields| fields[2] = "0".to_owned());
    }

    /// Rewrites `user`'s entry of the namespace's `/etc/shadow` in place.
    fn edit_shadow(&self, user: &str, edit: impl Fn(&mut Vec<String>)) {
        let path = self.dir.path().join("shadow");
        let text = fs::read_to_string(&path).expect("the namespace's shadow");
        let mut found = false;
        let text: String = text
            .lines()
            .map(|line| {
                let mut fields: Vec<String> = line.split(':').map(str::to_owned).collect();
                if fields[0] == user && fields.len() == 9 {
                    found = true;
                    edit(&mut fields);
                }
                format!("{}\n", fields.join(":"))
            })
            .collect();
        assert!(found, "no shadow entry for {user}");
        fs::write(&path, text).expect("rewrite shadow");
    }

    /// Gives `pam-auth-update` in the namespace copies of the host's profiles
    /// (`/usr/share/pam-configs`), state (`/var/lib/pam`) and debconf
    /// database (`/var/cache/debconf`, where it keeps the selection), plus the
    /// package's `profiles` (`packaging/pam/NAME`) with their pam_jit lines
    /// on the built module and this test's jitd (1 s timeout). After
    /// [`Env::install_pam`]: [`Env::pam_auth_update`] then writes the
    /// namespace's `/etc/pam.d/common-*`.
    pub fn install_pam_profiles(&self, profiles: &[&str]) {
        let root = self.dir.path();
        let (configs, state, debconf) = (
            root.join("pam-configs"),
            root.join("var-lib-pam"),
            root.join("debconf"),
        );
        for (from, to) in [
            ("/usr/share/pam-configs", &configs),
            ("/var/lib/pam", &state),
            ("/var/cache/debconf", &debconf),
        ] {
            fs::create_dir(to).expect("mkdir");
            for entry in fs::read_dir(from).into_iter().flatten().flatten() {
                fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
            }
        }
        for name in profiles {
            let shipped = workspace_root().join("packaging/pam").join(name);
            let text = fs::read_to_string(&shipped).expect("packaging/pam profile");
            let here: String = text
                .lines()
                .map(|line| match line.split_once("pam_jit.so resource=") {
                    Some((head, rest)) => {
                        let (resource, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                        format!("{head}{} timeout=1s {tail}\n", self.jit_args(resource))
                    }
                    None => format!("{line}\n"),
                })
                .collect();
            assert_ne!(here, text, "no pam_jit line in {}", shipped.display());
            fs::write(configs.join(name), here).expect("write profile");
        }
        self.bind(&configs, "/usr/share/pam-configs");
        self.bind(&state, "/var/lib/pam");
        self.bind(&debconf, "/var/cache/debconf");
    }

    /// `pam-auth-update ARGS` in the namespace (see [`Env::install_pam_profiles`]).
    pub fn pam_auth_update(&self, args: &str) {
        self.ns_sh(&format!(
            "DEBIAN_FRONTEND=noninteractive pam-auth-update {args}"
        ));
    }

    /// Replaces the namespace's `/etc/pam.d` by a copy of the host's with
    /// `services` (name, text) added or replaced, and nothing else.
    pub fn install_pam_d(&self, services: &[(&str, &str)]) {
        let pamd = self.dir.path().join("pam.d");
        fs::create_dir(&pamd).expect("pam.d");
        for entry in fs::read_dir("/etc/pam.d").expect("/etc/pam.d").flatten() {
            if entry.file_type().map(|t| t.is_file()).unwrap_or(false) {
                fs::copy(entry.path(), pamd.join(entry.file_name())).expect("copy pam.d");
            }
        }
        self.set_pam_services(services);
        self.bind(&pamd, "/etc/pam.d");
    }

    /// Writes (again) PAM service files into the namespace's `/etc/pam.d`.
    pub fn set_pam_services(&self, services: &[(&str, &str)]) {
        let pamd = self.dir.path().join("pam.d");
        for (name, text) in services {
            let path = pamd.join(name);
            fs::write(&path, text).expect("write service");
            fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
        }
    }

    /// `pamtester SERVICE USER acct_mgmt` (as root, in the namespace).
    pub fn pamtester(&self, service: &str, user: &str, ops: &[&str]) -> Run {
        let mut cmd = self.ns_command("pamtester");
        cmd.args(["-v", service, user])
            .args(ops)
            .stdin(Stdio::null());
        self.run(cmd)
    }
}

/// What programs in the namespace send to syslog (`/dev/log`), as a local
/// syslog daemon would receive it: one datagram per message.
pub struct Syslog {
    socket: std::os::unix::net::UnixDatagram,
}

impl Syslog {
    /// Messages received until one satisfies `done` or `timeout` passes.
    pub fn messages_until(&self, timeout: Duration, done: impl Fn(&str) -> bool) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        let mut buf = vec![0u8; 8192];
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let _ = self
                .socket
                .set_read_timeout(Some(left.max(Duration::from_millis(1))));
            let Ok(n) = self.socket.recv(&mut buf) else {
                break;
            };
            let message = String::from_utf8_lossy(&buf[..n]).into_owned();
            let finished = done(&message);
            seen.push(message);
            if finished {
                break;
            }
        }
        seen
    }
}

impl Env {
    /// Gives the namespace a `/dev` of its own (a tmpfs holding the host's
    /// entries, bound one by one) whose `/dev/log` is a socket this test
    /// reads: glibc's syslog(3) has that path built in, and the host's
    /// `/dev` must not change.
    pub fn capture_syslog(&self) -> Syslog {
        let path = self.dir.path().join("syslog.socket");
        let socket = std::os::unix::net::UnixDatagram::bind(&path).expect("bind syslog socket");
        let dev = self.dir.path().join("dev");
        std::fs::create_dir(&dev).expect("mkdir dev");
        self.ns_sh(&format!(
            r#"d={dev}
mount -t tmpfs -o mode=0755 jit-test-dev "$d"
for e in /dev/* /dev/.[!.]*; do
    [ -e "$e" ] || [ -L "$e" ] || continue
    n=${{e##*/}}
    [ "$n" = log ] && continue
    if [ -L "$e" ]; then cp -P "$e" "$d/$n"
    elif [ -d "$e" ]; then mkdir "$d/$n"; mount --rbind "$e" "$d/$n"
    else : >"$d/$n"; mount --bind "$e" "$d/$n"
    fi
done
: >"$d/log"
mount --bind {sock} "$d/log"
mount --move "$d" /dev"#,
            dev = dev.display(),
            sock = path.display(),
        ));
        Syslog { socket }
    }
}
