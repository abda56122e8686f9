//! Ending the sessions of a grant (W1.7): every process they started dies,
//! including children that called setsid or were re-parented (threat T15).
//!
//! Each registered session's process is moved into its grant's cgroup, which
//! every descendant inherits whatever it does to its session or parent. At the
//! end: SIGHUP to every member through pidfds, then, after a short grace,
//! `cgroup.kill` (SIGKILL to all, atomically). Without cgroup v2 nothing can
//! be contained, so every session is refused (a process tree walk would let
//! re-parented children escape). The grant holder's sudo timestamps are
//! removed too, so a cached sudo credential cannot outlive the grant.

use std::fs;
use std::io::{self, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::cgroups::{
    cgroup_path_of, default_cgroup_base, grant_of_cgroup, grant_of_cgroup_path, maybe_in_session,
    proc_cgroups, read_pids, slow_migrations,
};
use super::pidfd::Process;
use super::targets::{descendants, Target};
use crate::config::SessionsConfig;
use crate::store::SessionRecord;

/// How long recorders may end their sessions themselves before jitd does.
const RECORDER_HEAD_START: Duration = Duration::from_millis(150);
/// How long a recorder may take to close its recording after its session ended.
const RECORDER_GRACE: Duration = Duration::from_secs(5);
/// How many times a process tree found outside its grant's cgroup is walked
/// and moved back: it may fork while it is moved.
const MOVE_PASSES: usize = 3;
/// How long a refused PAM process may take to exit by itself (sudo does, on
/// the error it is given) before its cgroup is killed (sshd goes on).
const REFUSED_GRACE: Duration = Duration::from_secs(1);

/// Why a process could not be put into its grant's cgroup: a denial.
#[derive(Debug, thiserror::Error)]
pub enum ContainError {
    #[error(
        "this host has no cgroup v2 hierarchy: jit cannot contain sessions and refuses them \
         (mount cgroup2, see the README's Requirements)"
    )]
    NoCgroupV2,
    #[error("cannot move process {pid} into {dir}: {source}")]
    Move {
        pid: u32,
        dir: String,
        source: io::Error,
    },
}

#[derive(Clone, Debug)]
pub struct SessionControl {
    /// Where per-session cgroups are made; None without cgroup v2.
    cgroup_base: Option<PathBuf>,
    /// `cgroup_base` as `/proc/PID/cgroup` names it (relative to the cgroup
    /// namespace's root); None if it is not in a cgroup2 mount.
    cgroup_base_path: Option<String>,
    grace: Duration,
    sudo_timestamp_dirs: Vec<PathBuf>,
}

impl SessionControl {
    pub fn new(config: &SessionsConfig) -> SessionControl {
        // The directory itself is made on first use (a jitd that never
        // registers a session leaves nothing in the cgroup tree).
        let cgroup_base = match &config.cgroup {
            Some(dir) => Some(dir.clone()),
            None => default_cgroup_base(),
        };
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let cgroup_base_path = cgroup_base
            .as_deref()
            .and_then(|dir| cgroup_path_of(&mountinfo, dir));
        match &cgroup_base {
            None => tracing::error!("{}", ContainError::NoCgroupV2),
            Some(dir) => {
                if cgroup_base_path.is_none() {
                    tracing::error!(
                        dir = %dir.display(),
                        "the session cgroups' directory is not in a cgroup2 mount: \
                         no process will be taken for a session's"
                    );
                }
                if slow_migrations(&mountinfo, dir) {
                    tracing::info!(
                        "cgroup2 is mounted without favordynmods: each session registration \
                         waits for an RCU grace period (see README, \"Performance\")"
                    );
                }
            }
        }
        SessionControl {
            cgroup_base,
            cgroup_base_path,
            grace: config.kill_grace.0,
            sudo_timestamp_dirs: config.sudo_timestamp_dirs.clone(),
        }
    }

    /// Whether sessions can be contained here (a cgroup v2 hierarchy).
    pub fn contains_sessions(&self) -> bool {
        self.cgroup_base.is_some()
    }

    /// Moves `pid`, a session under `grant`, into the grant's cgroup;
    /// returns the cgroup's path. One cgroup per grant, not per session: the
    /// grant's sessions end together, and a grant used by a thousand sudo
    /// runs leaves one directory, made once.
    pub fn adopt(&self, grant: u64, pid: u32) -> Result<String, ContainError> {
        let name = format!("grant-{grant}");
        match self.move_into(&name, pid) {
            Ok(Some(dir)) => Ok(dir),
            Ok(None) => Err(ContainError::NoCgroupV2),
            Err(source) => Err(ContainError::Move {
                pid,
                dir: name,
                source,
            }),
        }
    }

    /// Ends a PAM process jitd refused, and everything it starts: sudo exits
    /// on the error by itself, but sshd ignores every session failure and
    /// would start the shell. It is moved into a cgroup of its own at once
    /// (so whatever it forks from now on is inside) and the cgroup is killed
    /// after [`REFUSED_GRACE`]; if it cannot be moved, it is killed now.
    /// Called on a runtime: the wait is a task there, not a thread.
    pub fn end_refused(&self, process: &Process) {
        let name = format!("refused-{}", process.pid);
        match self.move_into(&name, process.pid) {
            Ok(Some(dir)) => {
                tokio::spawn(async move {
                    tokio::time::sleep(REFUSED_GRACE).await;
                    let ended = tokio::task::spawn_blocking(move || {
                        let mut target = Target::Cgroup(PathBuf::from(dir));
                        target.kill();
                        target.remove();
                    });
                    if let Err(e) = ended.await {
                        tracing::warn!(error = %e, "could not end a refused process's cgroup");
                    }
                });
                return;
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(pid = process.pid, error = %e, "cannot move a refused process")
            }
        }
        if let Err(e) = process.fd.signal(libc::SIGKILL) {
            tracing::warn!(pid = process.pid, error = %e, "cannot kill a refused process");
        }
    }

    /// Moves a session recorder out of its session's cgroup into one that
    /// outlives the session's end by `RECORDER_GRACE`, so that it can close
    /// and report its recording (threat T17: the session cannot take it down
    /// with itself by ending).
    pub fn adopt_recorder(&self, grant: u64, pid: u32) -> io::Result<Option<String>> {
        self.move_into(&format!("recorder-{grant}-pid-{pid}"), pid)
    }

    /// The grant whose session cgroup `pid` is in, if any: only a cgroup
    /// jitd made, `<base>/grant-G` exactly. A `grant-G` elsewhere (in a
    /// subtree delegated to a user, say) is anybody's.
    pub fn grant_of_process(&self, pid: u32) -> Option<u64> {
        grant_of_cgroup_path(self.cgroup_base_path.as_deref()?, &proc_cgroups(pid)?)
    }

    /// Whether `pid` may be in an elevated session (see
    /// `cgroups::maybe_in_session`): also when it is gone, its cgroup
    /// cannot be read, or jitd has no cgroup base. Fails closed: a password
    /// is shown only to a process known to be outside every session.
    pub fn maybe_in_session(&self, pid: u32) -> bool {
        match (self.cgroup_base_path.as_deref(), proc_cgroups(pid)) {
            (Some(base), Some(cgroups)) => maybe_in_session(base, &cgroups),
            _ => true,
        }
    }

    /// The real uid `pid` runs as, if it is running. A caller's pid comes
    /// from the bus when it connected; checking that it still runs as the
    /// caller's uid keeps a pid reused by another user's process out of
    /// what is done for the caller (threat T5).
    pub fn uid_of_process(&self, pid: u32) -> Option<u32> {
        real_uid(pid)
    }

    fn move_into(&self, name: &str, pid: u32) -> io::Result<Option<String>> {
        let Some(base) = &self.cgroup_base else {
            return Ok(None);
        };
        let dir = base.join(name);
        let procs = dir.join("cgroup.procs");
        // A grant's cgroup serves all its sessions: made by the first one.
        let join = || {
            fs::OpenOptions::new()
                .write(true)
                .open(&procs)?
                .write_all(pid.to_string().as_bytes())
        };
        match join() {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir_all(&dir)?;
                join()?;
            }
            joined => joined?,
        }
        Ok(Some(dir.to_string_lossy().into_owned()))
    }

    /// Ends every process of `grant`'s sessions (its recorded `sessions`, and
    /// any cgroup made for it whose row was lost), then clears `user`'s sudo
    /// timestamps. Blocking (sleeps for the grace period): run it off the executor.
    pub fn terminate(&self, grant: u64, sessions: &[SessionRecord], user: Option<&str>) {
        let started = Instant::now();
        // A recorded session's recorder ends it itself on GrantEnded, saying
        // why (banner, marker, recording closed as "expired"/"revoked"): give
        // it that head start before the signals.
        if !self
            .cgroups_named(&format!("recorder-{grant}-pid-"))
            .is_empty()
        {
            std::thread::sleep(RECORDER_HEAD_START);
        }
        let mut targets: Vec<Target> = Vec::new();
        let found = self.cgroups_of(grant).into_iter().map(Target::Cgroup);
        let escaped = self.escaped(grant, sessions).into_iter().map(Target::Tree);
        for target in sessions
            .iter()
            .filter_map(Target::of)
            .chain(found)
            .chain(escaped)
        {
            if !targets.contains(&target) {
                targets.push(target);
            }
        }
        let mut hung_up = 0;
        for t in &mut targets {
            hung_up += t.signal_all(libc::SIGHUP);
        }
        if hung_up > 0 {
            std::thread::sleep(self.grace);
        }
        for t in &mut targets {
            t.kill();
        }
        for t in &targets {
            t.remove();
        }
        self.end_recorders(grant);
        if let Some(user) = user {
            self.clear_sudo_timestamps(user);
        }
        if !targets.is_empty() {
            tracing::info!(
                grant,
                sessions = targets.len(),
                processes = hung_up,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "terminated sessions"
            );
        }
    }

    /// Puts `process` and everything below it back into `grant`'s cgroup if
    /// a PAM session module took it out after it registered (pam_systemd
    /// after pam_jit's session line, into a logind scope: T33). Only into
    /// the cgroup as it is: a grant whose cgroup is gone has ended, and its
    /// end dealt with its sessions. Returns how many processes were moved.
    pub fn recontain(&self, grant: u64, process: &Process) -> usize {
        let Some(base) = &self.cgroup_base else {
            return 0;
        };
        let procs = base.join(format!("grant-{grant}")).join("cgroup.procs");
        let mut moved = 0;
        for _ in 0..MOVE_PASSES {
            if !process.is_running() {
                break;
            }
            let outside: Vec<u32> = descendants(process.pid)
                .into_iter()
                .filter(|&pid| self.grant_of_process(pid) != Some(grant))
                .collect();
            if outside.is_empty() {
                break;
            }
            for pid in outside {
                match fs::OpenOptions::new()
                    .write(true)
                    .open(&procs)
                    .and_then(|mut f| f.write_all(pid.to_string().as_bytes()))
                {
                    Ok(()) => moved += 1,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return moved,
                    // Gone meanwhile, or a kernel thread: nothing to contain.
                    Err(_) => {}
                }
            }
        }
        moved
    }

    /// The processes of `grant`'s open `sessions` that still run outside the
    /// grant's cgroup after [`SessionControl::recontain`] was tried on them
    /// (moved out after they registered: T33); moved back, they end with
    /// the cgroup. What could not be moved is ended as a process tree.
    fn escaped(&self, grant: u64, sessions: &[SessionRecord]) -> Vec<u32> {
        let mut left = Vec::new();
        for s in sessions
            .iter()
            .filter(|s| s.closed_at.is_none() && s.cgroup.is_some())
        {
            let Some(process) = s.started.and_then(|started| Process::find(s.pid, started)) else {
                continue;
            };
            if self.grant_of_process(process.pid) == Some(grant) {
                continue;
            }
            let moved = self.recontain(grant, &process);
            tracing::error!(
                grant,
                pid = process.pid,
                moved,
                "a session's process left its grant's cgroup after it registered \
                 (a PAM session module after pam_jit's: see jitctl status); ending it with the grant"
            );
            if process.is_running() && self.grant_of_process(process.pid) != Some(grant) {
                left.push(process.pid);
            }
        }
        left
    }

    /// Ends and removes session cgroups left over from grants that are no
    /// longer active (jitd was stopped before they ended, or crashed), and
    /// the cgroups of refused processes.
    pub fn sweep(&self, is_active: impl Fn(u64) -> bool) {
        let Some(base) = &self.cgroup_base else {
            return;
        };
        let stale: Vec<PathBuf> = fs::read_dir(base)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| {
                let name = e.file_name();
                let name = name.to_string_lossy();
                name.starts_with("refused-")
                    || grant_of_cgroup(&name).is_some_and(|g| !is_active(g))
            })
            .map(|e| e.path())
            .collect();
        for dir in stale {
            let mut target = Target::Cgroup(dir);
            target.kill();
            target.remove();
        }
    }

    /// Gives `grant`'s recorders `RECORDER_GRACE` to close their recordings
    /// once their sessions are gone, then ends them.
    fn end_recorders(&self, grant: u64) {
        let recorders = self.cgroups_named(&format!("recorder-{grant}-pid-"));
        let deadline = Instant::now() + RECORDER_GRACE;
        while recorders
            .iter()
            .any(|d| !read_pids(&d.join("cgroup.procs")).is_empty())
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        for dir in recorders {
            let mut target = Target::Cgroup(dir);
            target.kill();
            target.remove();
        }
    }

    /// The cgroups `adopt` made for `grant` (earlier versions made one per
    /// session: `grant-G-pid-P`).
    fn cgroups_of(&self, grant: u64) -> Vec<PathBuf> {
        let name = format!("grant-{grant}");
        let per_session = format!("{name}-pid-");
        self.cgroups_where(|n| n == name || n.starts_with(&per_session))
    }

    fn cgroups_named(&self, prefix: &str) -> Vec<PathBuf> {
        self.cgroups_where(|n| n.starts_with(prefix))
    }

    fn cgroups_where(&self, wanted: impl Fn(&str) -> bool) -> Vec<PathBuf> {
        let Some(base) = &self.cgroup_base else {
            return Vec::new();
        };
        fs::read_dir(base)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| wanted(&e.file_name().to_string_lossy()))
            .map(|e| e.path())
            .collect()
    }

    fn clear_sudo_timestamps(&self, user: &str) {
        // The name comes from NSS for the grant's uid; refuse anything that
        // could leave the directory (threat T12).
        if user.is_empty() || user.contains('/') || user.starts_with('.') {
            return;
        }
        for dir in &self.sudo_timestamp_dirs {
            match fs::remove_file(dir.join(user)) {
                Ok(()) => tracing::info!(user, dir = %dir.display(), "cleared sudo timestamp"),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(user, error = %e, "could not clear sudo timestamp"),
            }
        }
    }
}

/// The real uid `pid` runs as (`/proc/PID/status`), if it is running.
pub fn real_uid(pid: u32) -> Option<u32> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_uid_is_its_real_uid_and_a_gone_one_has_none() {
        let control = SessionControl::new(&SessionsConfig::default());
        // SAFETY: getuid has no preconditions.
        let me = unsafe { libc::getuid() };
        assert_eq!(control.uid_of_process(std::process::id()), Some(me));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert_eq!(control.uid_of_process(pid), None);
    }
}
