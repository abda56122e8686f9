//! PAM worlds for the pam_jit tests: the built module, `/etc/pam.d`,
//! `/etc/sudoers`, `/etc/shadow` and `/run` replaced inside the test's mount
//! namespace (never on the host), sshd on a loopback port, processes found
//! by a unique marker.

use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::{bin_dir, wait_for, Background, Env, Run, USERS};

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

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// What the tests' stacks exempt from the gate: root, and oscar, standing
/// for a service account the admin names. Everyone else is gated.
pub const EXEMPT: &str = "exempt=root,oscar";

/// The sudoers the tests use: gated alice and bob, exempt oscar.
pub const SUDOERS: &str = "Defaults !lecture\nDefaults !fqdn\nDefaults !syslog\n\
root ALL=(ALL:ALL) ALL\n\
%jit-gated ALL=(ALL:ALL) NOPASSWD: ALL\n\
oscar ALL=(ALL:ALL) NOPASSWD: ALL\n";

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

    /// Runs a shell script as root inside the namespace; asserts success.
    #[track_caller]
    pub fn ns_sh(&self, script: &str) -> Run {
        let mut cmd = self.ns_command("sh");
        cmd.args(["-euc", script]).stdin(Stdio::null());
        self.run(cmd).ok()
    }

    /// Mounts `src` over `dst` inside the namespace.
    #[track_caller]
    pub fn bind(&self, src: &Path, dst: &str) {
        let mut cmd = self.ns_command("mount");
        cmd.arg("--bind").arg(src).arg(dst).stdin(Stdio::null());
        self.run(cmd).ok();
    }

    /// Replaces, inside the namespace only:
    /// - `/etc/pam.d` by a copy of the host's with `services` (name, text) added or replaced;
    /// - `/etc/sudoers` by `sudoers` (root, 0440);
    /// - `/etc/shadow` by the host's plus locked-password entries for the fixture users;
    /// - `/run` by an empty tmpfs holding `/run/sudo` and `/run/sshd`.
    pub fn install_pam(&self, services: &[(&str, &str)], sudoers: &str) {
        let root = self.dir.path();
        let pamd = root.join("pam.d");
        fs::create_dir(&pamd).expect("pam.d");
        for entry in fs::read_dir("/etc/pam.d").expect("/etc/pam.d").flatten() {
            if entry.file_type().map(|t| t.is_file()).unwrap_or(false) {
                fs::copy(entry.path(), pamd.join(entry.file_name())).expect("copy pam.d");
            }
        }
        self.set_pam_services(services);
        self.bind(&pamd, "/etc/pam.d");

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

        self.ns_sh(
            "mount -t tmpfs -o mode=0755 jit-test-run /run \
             && mkdir -m 0711 /run/sudo && mkdir -m 0755 /run/sshd",
        );
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

    /// `script -qfc CMD /dev/null` as `user`: CMD on a pseudo-terminal, in the background.
    pub fn spawn_in_pty(&self, user: &str, command: &str) -> Background {
        let mut cmd = self.ns_command("runuser");
        cmd.args(["-u", user, "--", "script", "-qfec", command, "/dev/null"]);
        Background::spawn(cmd)
    }
}

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
        keygen(&dir.join("host_key"));
        for user in users {
            let key = dir.join(format!("{user}.id"));
            keygen(&key);
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
        let up = wait_for(Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
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
        let mut cmd = env.ns_command("ssh");
        cmd.args(options)
            .arg("-i")
            .arg(self.dir.join(format!("{user}.id")))
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

fn keygen(path: &Path) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .expect("ssh-keygen");
    assert!(out.status.success(), "ssh-keygen: {out:?}");
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).expect("chmod");
}

/// Waits until every pid is gone; returns when they went (None: still alive).
pub fn wait_all_dead(pids: &[u32], timeout: Duration) -> Option<Instant> {
    wait_for_fast(timeout, || {
        pids.iter().all(|p| !alive(*p)).then(Instant::now)
    })
}

/// Like [`wait_for`], polling every 10 ms.
pub fn wait_for_fast<T>(timeout: Duration, f: impl FnMut() -> Option<T>) -> Option<T> {
    crate::poll_every(Duration::from_millis(10), timeout, f)
}

/// `/etc/pam.d/sudo` as the README documents it (Debian's file plus the
/// gate), with pam_jit on this test's bus for `resource`.
pub fn sudo_stack(env: &Env, resource: &str, extra: &str) -> String {
    let jit = env.jit_args(resource);
    format!(
        "#%PAM-1.0\n\
         session    required   pam_limits.so\n\
         @include common-auth\n\
         @include common-account\n\
         account required {jit} {EXEMPT} {extra}\n\
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

/// Parses jitd's RFC 3339 UTC timestamps ("2024-05-01T10:00:00Z") into Unix seconds.
pub fn unix_secs(v: &crate::Value) -> i64 {
    let s = v.as_str().unwrap_or_else(|| panic!("not a timestamp: {v}"));
    let t = humantime::parse_rfc3339(s).unwrap_or_else(|e| panic!("not RFC 3339: {s}: {e}"));
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Seconds since the epoch, now.
pub fn wall_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// Waits until every pid is gone, at most until `expires_at + 3 s` (wall
/// clock); returns how long after `expires_at` they were gone (None: alive).
pub fn death_after_expiry(pids: &[u32], expires_at: i64) -> Option<f64> {
    let limit = expires_at as f64 + 3.0;
    loop {
        if pids.iter().all(|p| !alive(*p)) {
            return Some(wall_now() - expires_at as f64);
        }
        if wall_now() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
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
         @include common-account\n\
         account required {jit} {EXEMPT} timeout=1s\n\
         session required {jit} {EXEMPT} timeout=1s\n\
         session    required     pam_loginuid.so\n\
         @include common-session\n\
         session    required     pam_limits.so\n"
    )
}

/// A second bus in a test's namespace, with an impostor owning jitd's name.
pub struct FakeBus {
    pub address: String,
    pub bus: Background,
    pub impostor: Option<Background>,
}

impl Env {
    /// Starts a second dbus-daemon (`name.sock` in the test dir). Permissive:
    /// anyone may own any name (so a non-root process can take jitd's).
    pub fn start_fake_bus(&self, name: &str) -> FakeBus {
        let socket = self.dir.path().join(format!("{name}.sock"));
        let conf = self.dir.path().join(format!("{name}.conf"));
        fs::write(
            &conf,
            format!(
                "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN\"\n \
                 \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n\
                 <busconfig><type>system</type><listen>unix:path={}</listen><auth>EXTERNAL</auth>\n\
                 <policy context=\"default\"><allow user=\"*\"/><allow own=\"*\"/>\
                 <allow send_destination=\"*\" eavesdrop=\"true\"/><allow eavesdrop=\"true\"/></policy>\n\
                 </busconfig>\n",
                socket.display()
            ),
        )
        .expect("write fake bus config");
        let mut cmd = self.ns_command("dbus-daemon");
        cmd.arg(format!("--config-file={}", conf.display()))
            .args(["--nofork", "--nopidfile"]);
        let mut bus = Background::spawn(cmd);
        let address = format!("unix:path={}", socket.display());
        if wait_for(Duration::from_secs(10), || {
            std::os::unix::net::UnixStream::connect(&socket).ok()
        })
        .is_none()
        {
            panic!("fake bus did not start:{}", bus.stop());
        }
        assert!(bus.running());
        FakeBus {
            address,
            bus,
            impostor: None,
        }
    }

    /// Starts `fake-jitd` as `user` on `bus`; waits until it owns the name.
    pub fn start_impostor(&self, bus: &mut FakeBus, user: &str, fake_jitd: &str) {
        let mut cmd = self.ns_command("runuser");
        cmd.args(["-u", user, "--", fake_jitd, "--address", &bus.address]);
        let mut impostor = Background::spawn(cmd);
        if wait_for(Duration::from_secs(10), || {
            crate::name_owned_at(&bus.address).then_some(())
        })
        .is_none()
        {
            panic!("fake-jitd did not take the name:{}", impostor.stop());
        }
        assert!(impostor.running());
        bus.impostor = Some(impostor);
    }

    /// `/run/dbus/system_bus_socket` and `/run/jit/pam.socket` in the
    /// namespace (whose `/run` is a tmpfs, see [`Env::install_pam`]) are this
    /// test's bus and jitd: stack lines without `bus=` and `socket=` reach
    /// the test's jitd.
    pub fn link_system_bus(&self) {
        self.ns_sh(&format!(
            "mkdir -p /run/dbus /run/jit && ln -sf {} /run/dbus/system_bus_socket \
             && ln -sf {} /run/jit/pam.socket",
            self.socket.display(),
            self.private_socket().display()
        ));
    }
}

/// `/etc/pam.d/sudo` exactly as the README documents it (no `bus=`: the
/// system bus socket).
pub fn documented_sudo_stack() -> String {
    let module = pam_module();
    format!(
        "#%PAM-1.0\n\
         session    required   pam_limits.so\n\
         @include common-auth\n\
         @include common-account\n\
         account required {m} resource=sudo {EXEMPT}\n\
         @include common-session-noninteractive\n\
         session required {m} resource=sudo {EXEMPT}\n",
        m = module.display()
    )
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
