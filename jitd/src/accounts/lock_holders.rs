//! Who holds the host's account files locked. shadow-utils takes two
//! locks before it changes `/etc/shadow`: glibc's `lckpwdf` (an `fcntl`
//! lock on `/etc/.pwd.lock`) and its own lock files (`/etc/shadow.lock`,
//! holding the locker's pid). A user who stops their own `passwd` while it
//! holds them (setuid root, but their real uid: they may signal it) would
//! keep jitd from ever rotating a managed account, and keep a password
//! they saw valid. Such holders are found here; the keeper ends them.

use std::fs;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

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

/// The process holding an `fcntl` lock on `/etc/.pwd.lock`, as `F_GETLK`
/// tells it: `lckpwdf` locks are exclusive, so there is one at most. Not
/// `/proc/locks`, which jitd.service's `ProcSubset=pid` hides.
fn fcntl_holders() -> Vec<u32> {
    fcntl_holder(Path::new(PWD_LOCK)).into_iter().collect()
}

fn fcntl_holder(path: &Path) -> Option<u32> {
    let file = fs::File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    // SAFETY: flock is plain old data; all zeroes is a valid value.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::F_WRLCK as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    // Whole file (l_start 0, l_len 0). F_GETLK needs no write access.
    nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_GETLK(&mut lock)).ok()?;
    // F_UNLCK: nobody holds it; an open file description lock has no pid (-1).
    if lock.l_type == libc::F_UNLCK as libc::c_short {
        return None;
    }
    u32::try_from(lock.l_pid).ok().filter(|pid| *pid > 0)
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

    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    #[test]
    fn the_holder_of_an_fcntl_lock_is_found_without_proc_locks() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join(".pwd.lock");
        fs::write(&path, "").expect("lock file");
        assert_eq!(fcntl_holder(&path), None, "nobody holds it yet");
        // Another process (F_GETLK ignores the caller's own locks), as
        // glibc's lckpwdf takes it: F_SETLKW, write, whole file.
        let mut holder = Command::new("python3")
            .args([
                "-c",
                "import fcntl, sys, time\n\
                 f = open(sys.argv[1], 'w')\n\
                 fcntl.lockf(f, fcntl.LOCK_EX)\n\
                 print('locked', flush=True)\n\
                 time.sleep(60)",
            ])
            .arg(&path)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        BufReader::new(holder.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("locked");
        assert_eq!(line.trim(), "locked");
        assert_eq!(fcntl_holder(&path), Some(holder.id()));
        holder.kill().expect("kill");
        holder.wait().expect("wait");
        assert_eq!(fcntl_holder(&path), None, "released when it died");
    }
}
