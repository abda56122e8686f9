//! Hosts for an [`Env`] with a network namespace of its own
//! ([`Env::with_own_network`]): each peer is a network namespace of the
//! test's (held by a `sleep`), linked to the env's by a veth pair, with TCP
//! listeners in it. Killing the peer's processes ends its namespace and
//! with it the pair: nothing is left on the host.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{die_with_parent, kill_and_reap, wait_for, Env, Run};

/// A network namespace linked to the env's.
pub struct Peer {
    holder: Child,
    listeners: Vec<Child>,
}

impl Peer {
    /// The pid holding the peer's network namespace.
    pub fn pid(&self) -> u32 {
        self.holder.id()
    }

    /// A command run in the peer's network namespace (the host's files).
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg("-t")
            .arg(self.pid().to_string())
            .args(["-n", "--", program])
            .stdin(Stdio::null());
        die_with_parent(&mut cmd);
        cmd
    }

    /// Accepts TCP connections on `addr:port` until the peer drops.
    pub fn listen(&mut self, addr: &str, port: u16) {
        let mut cmd = self.command("nc");
        cmd.args(["-lk", addr, &port.to_string()]);
        self.listeners.push(spawn_listener(cmd));
        let (pid, port) = (self.pid(), port.to_string());
        wait_listening(&port, move || {
            let mut ss = Command::new("nsenter");
            ss.args(["-t", &pid.to_string(), "-n", "--", "ss", "-Hltn"]);
            ss
        });
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        for listener in &mut self.listeners {
            kill_and_reap(listener);
        }
        kill_and_reap(&mut self.holder);
    }
}

/// A TCP listener in the env's network namespace, killed on drop.
pub struct Listener(Child);

impl Drop for Listener {
    fn drop(&mut self) {
        kill_and_reap(&mut self.0);
    }
}

fn spawn_listener(mut cmd: Command) -> Child {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd.spawn().expect("spawn nc -l")
}

/// Waits until `ss -Hltn` (as `ss` builds it) lists a socket on `port`.
#[track_caller]
fn wait_listening(port: &str, ss: impl Fn() -> Command) {
    let suffix = format!(":{port}");
    let listening = wait_for(Duration::from_secs(5), || {
        let out = ss().output().ok()?;
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| {
                l.split_whitespace()
                    .nth(3)
                    .is_some_and(|a| a.ends_with(&suffix))
            })
            .then_some(())
    });
    assert!(listening.is_some(), "nothing listens on port {port}");
}

impl Env {
    /// A new network namespace linked to the env's by a veth pair:
    /// `link` with `ours` (`10.20.0.1/24`) on the env's side, `eth0` with
    /// `theirs` on the peer's. The env must have its own network.
    pub fn add_peer(&self, link: &str, ours: &str, theirs: &str) -> Peer {
        assert!(self.own_network, "Env::with_own_network only");
        let mut cmd = Command::new("unshare");
        cmd.args(["--net", "--", "sh", "-c"])
            .arg("ip link set lo up && echo ready && exec sleep infinity")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        die_with_parent(&mut cmd);
        let mut holder = cmd.spawn().expect("unshare --net");
        let mut line = String::new();
        let _ = BufReader::new(holder.stdout.take().expect("stdout")).read_line(&mut line);
        if line.trim() != "ready" {
            kill_and_reap(&mut holder);
            let mut err = String::new();
            let _ = holder.stderr.take().map(|mut s| s.read_to_string(&mut err));
            panic!("peer network namespace setup failed: {err}");
        }
        let peer = Peer {
            holder,
            listeners: Vec::new(),
        };
        self.ns_sh(&format!(
            "ip link add {link} type veth peer name eth0 netns {pid} && \
             ip addr add {ours} dev {link} && ip link set {link} up",
            pid = peer.pid()
        ));
        let mut up = peer.command("sh");
        up.args([
            "-euc",
            &format!("ip addr add {theirs} dev eth0 && ip link set eth0 up"),
        ]);
        self.run(up).ok();
        peer
    }

    /// Accepts TCP connections on `addr:port` in the env's network
    /// namespace until the listener drops.
    pub fn listen(&self, addr: &str, port: u16) -> Listener {
        let mut cmd = self.ns_command("nc");
        cmd.args(["-lk", addr, &port.to_string()]);
        let listener = Listener(spawn_listener(cmd));
        wait_listening(&port.to_string(), || {
            let mut ss = self.ns_command("ss");
            ss.arg("-Hltn");
            ss
        });
        listener
    }

    /// `nc -vz` to `addr:port` (1 s at most: a dropped SYN times out) from the env's network
    /// namespace as `uid:gid` without supplementary groups.
    pub fn connect_as(&self, uid: u32, gid: u32, addr: &str, port: u16) -> Run {
        let mut cmd = self.ns_command("setpriv");
        cmd.args([
            "--reuid",
            &uid.to_string(),
            "--regid",
            &gid.to_string(),
            "--clear-groups",
            "nc",
            "-vz",
            "-w",
            "1",
            addr,
            &port.to_string(),
        ])
        .stdin(Stdio::null());
        self.run(cmd)
    }
}
