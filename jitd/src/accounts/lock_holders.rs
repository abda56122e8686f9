//! Who holds the host's account files locked. shadow-utils takes two
//! locks before it changes `/etc/shadow`: glibc's `lckpwdf` (an `fcntl`
//! lock on `/etc/.pwd.lock`) and its own lock files (`/etc/shadow.lock`,
//! holding the locker's pid). A user who stops their own `passwd` while it
//! holds them (setuid root, but their real uid: they may signal it) would
//! keep jitd from ever rotating a managed account, and keep a password
//! they saw valid. Such holders are found here; the keeper ends them.

use std::fs;
use std::os::unix::fs::MetadataExt;

const PWD_LOCK: &str = "/etc/.pwd.lock";
const LOCK_FILES: [&str; 4] = [
    "/etc/passwd.lock",
    "/etc/shadow.lock",
    "/etc/group.lock",
    "/etc/gshadow.lock",
];

/// A process holding a lock of the account files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockHolder {
    pub pid: u32,
    /// Its real uid: the user who started it.
    pub uid: u32,
    /// Its name (`/proc/PID/comm`), for the audit trail.
    pub command: String,
}

/// The holders that are a user's setuid-root program (real uid not 0,
/// effective or saved uid 0): never root's own tools, and never a process
/// whose pid merely reappears in a stale lock file.
pub fn held_by_users() -> Vec<LockHolder> {
    let mut pids = fcntl_holders();
    pids.extend(LOCK_FILES.iter().filter_map(|f| {
        fs::read_to_string(f)
            .ok()
            .and_then(|text| text.trim().parse::<u32>().ok())
    }));
    pids.sort_unstable();
    pids.dedup();
    pids.into_iter().filter_map(user_setuid_process).collect()
}

/// The pids holding an `fcntl` lock on `/etc/.pwd.lock`, from `/proc/locks`.
fn fcntl_holders() -> Vec<u32> {
    let (Ok(meta), Ok(locks)) = (fs::metadata(PWD_LOCK), fs::read_to_string("/proc/locks")) else {
        return Vec::new();
    };
    let (major, minor) = (libc::major(meta.dev()), libc::minor(meta.dev()));
    locks
        .lines()
        .filter_map(|line| lock_on(line, major, minor, meta.ino()))
        .collect()
}

/// The pid of a `/proc/locks` line locking the inode `ino` of device
/// `major:minor` (`1: POSIX  ADVISORY  WRITE 1234 08:01:5678 0 EOF`).
fn lock_on(line: &str, major: u32, minor: u32, ino: u64) -> Option<u32> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    // A blocked waiter's line starts "1: ->": it holds nothing.
    if fields.get(1) == Some(&"->") {
        return None;
    }
    let pid = fields.get(4)?.parse().ok()?;
    let mut id = fields.get(5)?.split(':');
    let maj = u32::from_str_radix(id.next()?, 16).ok()?;
    let min = u32::from_str_radix(id.next()?, 16).ok()?;
    let inode: u64 = id.next()?.parse().ok()?;
    (maj == major && min == minor && inode == ino).then_some(pid)
}

fn user_setuid_process(pid: u32) -> Option<LockHolder> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let uids: Vec<u32> = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .filter_map(|u| u.parse().ok())
        .collect();
    let [real, effective, saved, ..] = uids[..] else {
        return None;
    };
    if real == 0 || (effective != 0 && saved != 0) {
        return None;
    }
    let command = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    Some(LockHolder {
        pid,
        uid: real,
        command: crate::core::sanitize::for_terminal(command.trim()).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proc_locks_line_names_its_holder_only_for_the_same_inode_and_device() {
        let line = "1: POSIX  ADVISORY  WRITE 4242 08:01:5678 0 EOF";
        assert_eq!(lock_on(line, 8, 1, 5678), Some(4242));
        assert_eq!(lock_on(line, 8, 2, 5678), None);
        assert_eq!(lock_on(line, 8, 1, 5679), None);
        let hex = "7: POSIX  ADVISORY  WRITE 99 fd:1a:12 0 EOF";
        assert_eq!(lock_on(hex, 0xfd, 0x1a, 12), Some(99));
        let waiter = "1: -> POSIX  ADVISORY  WRITE 4243 08:01:5678 0 EOF";
        assert_eq!(lock_on(waiter, 8, 1, 5678), None);
    }
}
