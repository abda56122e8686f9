//! What is killed when sessions end: their cgroup, or, for a session
//! registered without one, its process tree.

use std::collections::{HashMap, VecDeque};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::cgroups::read_pids;
use super::pidfd::{stat_field, Pidfd};
use crate::store::SessionRecord;

/// How long to wait for a killed cgroup to empty before giving up on rmdir.
const REAP_WAIT: Duration = Duration::from_secs(2);

/// Sessions' processes: their cgroup, or one session's process tree.
#[derive(PartialEq)]
pub(super) enum Target {
    Cgroup(PathBuf),
    Tree(u32),
}

impl Target {
    /// Without a cgroup, only an open session's tree can be found: a closed
    /// one's process is gone, and its pid may name another process now.
    pub(super) fn of(s: &SessionRecord) -> Option<Target> {
        match &s.cgroup {
            Some(dir) => Some(Target::Cgroup(PathBuf::from(dir))),
            None => s.closed_at.is_none().then_some(Target::Tree(s.pid)),
        }
    }

    fn pids(&self) -> Vec<u32> {
        match self {
            Target::Cgroup(dir) => read_pids(&dir.join("cgroup.procs")),
            Target::Tree(root) => descendants(*root),
        }
    }

    /// Signals every current member; returns how many there were.
    pub(super) fn signal_all(&self, signal: libc::c_int) -> usize {
        let pids = self.pids();
        for pid in &pids {
            if let Ok(fd) = Pidfd::open(*pid) {
                let _ = fd.signal(signal);
            }
        }
        pids.len()
    }

    pub(super) fn kill(&mut self) {
        if let Target::Cgroup(dir) = self {
            if fs::write(dir.join("cgroup.kill"), "1").is_ok() {
                return;
            }
        }
        // No cgroup.kill (kernel < 5.14) or no cgroup: signal until empty.
        let deadline = Instant::now() + REAP_WAIT;
        while self.signal_all(libc::SIGKILL) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Removes an emptied cgroup (it empties once the kernel has reaped it).
    pub(super) fn remove(&self) {
        let Target::Cgroup(dir) = self else { return };
        let deadline = Instant::now() + REAP_WAIT;
        while !read_pids(&dir.join("cgroup.procs")).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        if let Err(e) = fs::remove_dir(dir) {
            if e.kind() != io::ErrorKind::NotFound {
                tracing::warn!(dir = %dir.display(), error = %e, "could not remove session cgroup");
            }
        }
    }
}

/// `root` and every process below it, from /proc.
pub(super) fn descendants(root: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for pid in super::pidfd::running_pids() {
        if let Some(ppid) = fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .as_deref()
            .and_then(parent_of)
        {
            children.entry(ppid).or_default().push(pid);
        }
    }
    if !Path::new(&format!("/proc/{root}")).exists() {
        return Vec::new();
    }
    let mut out = vec![root];
    let mut queue = VecDeque::from([root]);
    while let Some(pid) = queue.pop_front() {
        for child in children.get(&pid).into_iter().flatten() {
            out.push(*child);
            queue.push_back(*child);
        }
    }
    out
}

/// The parent pid in a /proc/PID/stat line.
fn parent_of(stat: &str) -> Option<u32> {
    stat_field(stat, 4)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_pid_survives_odd_command_names() {
        assert_eq!(parent_of("42 (bash) S 7 42 42 0"), Some(7));
        assert_eq!(parent_of("42 (a) b (c) S 9 1 1"), Some(9));
        assert_eq!(parent_of("garbage"), None);
    }

    #[test]
    fn tree_walk_finds_children() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let found = descendants(std::process::id());
        assert!(found.contains(&child.id()), "{found:?}");
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
