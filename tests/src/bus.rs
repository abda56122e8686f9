//! The test's private `dbus-daemon`, with jit's bus policy (and any other
//! the test adds), and calls on it.

use std::fs::{self, File};
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::{kill_and_reap, uid, wait_for, workspace_root, Background, Env, Run};

impl Env {
    /// `unix:path=SOCKET`
    pub fn address(&self) -> String {
        format!("unix:path={}", self.socket.display())
    }

    pub(crate) fn start_bus(&mut self, policies: &[&Path]) {
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

    /// Whether pam_jit's CheckGrant, asked by root, finds `uid`'s active
    /// grant of `resource`.
    pub fn holds_grant(&self, uid: u32, resource: &str) -> bool {
        let reply = self
            .busctl_call(
                "root",
                &[
                    "org.jit.Daemon1",
                    "/org/jit/Daemon1",
                    "org.jit.Daemon1",
                    "CheckGrant",
                    "us",
                    &uid.to_string(),
                    resource,
                ],
            )
            .ok();
        reply.stdout.split_whitespace().nth(1) == Some("true")
    }

    /// Whether someone owns `org.jit.Daemon1` on the private bus.
    pub fn name_owned(&self) -> bool {
        name_owned_at(&self.address())
    }

    /// The test bus's dbus-daemon pid.
    pub fn bus_pid(&self) -> Option<u32> {
        self.dbus.as_ref().map(|(child, _)| child.id())
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

/// `dbus-monitor` on the test's bus, run as root (whom the bus lets monitor).
pub struct BusMonitor(Background);

impl Env {
    /// Monitors the messages that match `rule` (a D-Bus match rule); returns
    /// once the bus has made dbus-monitor's connection a monitor.
    pub fn monitor(&self, rule: &str) -> BusMonitor {
        let mut cmd = self.user_command("root", "dbus-monitor");
        cmd.arg("--address").arg(self.address()).arg(rule);
        let monitor = BusMonitor(Background::spawn(cmd));
        // A connection loses its unique name as it becomes a monitor.
        monitor.wait_until("becoming a monitor", Duration::from_secs(10), |out| {
            out.contains("member=NameLost")
        });
        monitor
    }
}

impl BusMonitor {
    /// Waits until what it printed satisfies `done` (panics after `timeout`,
    /// saying it waited for `what`); returns what it printed.
    #[track_caller]
    pub fn wait_until(&self, what: &str, timeout: Duration, done: impl Fn(&str) -> bool) -> String {
        let mut seen = String::new();
        let found = wait_for(timeout, || {
            seen = self.0.stdout_so_far();
            done(&seen).then_some(())
        });
        if found.is_none() {
            panic!("dbus-monitor: no {what} within {timeout:?}:\n{seen}");
        }
        seen
    }

    /// Stops it; returns what it printed.
    pub fn stop(self) -> Run {
        self.0.stop()
    }
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
