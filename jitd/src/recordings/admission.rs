//! Which session a recorder records, from its process alone (never from
//! what it says): the grant is the one whose cgroup, made by jitd, holds the
//! process; the session is the grant's open session whose PAM process (sudo,
//! or sshd's) is one of the recorder's ancestors. One recorder per session
//! is the engine's to enforce.

use crate::engine::{Engine, EngineError};
use crate::sessions::pidfd::{parent_of, start_time, Process};
use crate::sessions::SessionControl;
use crate::store::SessionRecord;

/// How far up a recorder's ancestors the session's process may be (sudo's
/// monitor, sshd's two processes and a few more, with room to spare).
const MAX_DEPTH: usize = 16;

/// The session a recorder runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admitted {
    pub grant: u64,
    pub session: u64,
}

/// The grant and session `recorder`, running as `uid`, is in; else
/// [`EngineError::NotInSession`]. /proc is read by pid: the answers are the
/// held process's because it still runs once they are read.
pub fn session_of_recorder(
    control: &SessionControl,
    engine: &mut Engine,
    recorder: &Process,
    uid: u32,
) -> Result<Admitted, EngineError> {
    let grant = control
        .grant_of_process(recorder.pid)
        .ok_or(EngineError::NotInSession)?;
    if control.uid_of_process(recorder.pid) != Some(uid) {
        return Err(EngineError::NotInSession);
    }
    if !out_of_reach(recorder.pid) {
        tracing::warn!(
            pid = recorder.pid,
            uid,
            "refused a recorder that is traced or dumpable"
        );
        return Err(EngineError::NotInSession);
    }
    let sessions = engine.sessions_of(grant)?;
    let session =
        session_among(ancestors(recorder.pid), &sessions).ok_or(EngineError::NotInSession)?;
    if !recorder.is_running() {
        return Err(EngineError::NotInSession);
    }
    Ok(Admitted { grant, session })
}

/// Whether nobody can be tracing the recorder or reach into it: no tracer
/// attached (`TracerPid`), and non-dumpable, which the kernel shows by
/// giving the files in `/proc/PID` to root. A login shell's recorder runs as its user,
/// whose other processes could otherwise take it over before it makes
/// itself non-dumpable (yama `ptrace_scope` 0, the kernel's default).
fn out_of_reach(pid: u32) -> bool {
    use std::os::unix::fs::MetadataExt;
    let untraced = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("TracerPid:"))
                .map(|t| t.trim() == "0")
        })
        .unwrap_or(false);
    let undumpable = std::fs::metadata(format!("/proc/{pid}/status")).is_ok_and(|m| m.uid() == 0);
    untraced && undumpable
}

/// `pid` and its ancestors, nearest first, as (pid, start time), up to
/// [`MAX_DEPTH`] and short of init.
fn ancestors(pid: u32) -> impl Iterator<Item = (u32, u64)> {
    let mut next = Some(pid);
    std::iter::from_fn(move || {
        let pid = next.filter(|p| *p > 1)?;
        let started = start_time(pid).ok()?;
        next = parent_of(pid).ok();
        Some((pid, started))
    })
    .take(MAX_DEPTH)
}

/// The first open session whose process is in `lineage`.
fn session_among(
    lineage: impl IntoIterator<Item = (u32, u64)>,
    sessions: &[SessionRecord],
) -> Option<u64> {
    lineage.into_iter().find_map(|(pid, started)| {
        sessions
            .iter()
            .find(|s| s.closed_at.is_none() && s.pid == pid && s.started == Some(started))
            .map(|s| s.id)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dumpable_process_of_a_user_is_within_reach() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root to start a process as another user");
            return;
        }
        // Root's own, untraced: out of the user's reach.
        assert!(out_of_reach(std::process::id()));
        let mut child = std::process::Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "sleep",
                "5",
            ])
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(!out_of_reach(child.id()), "a user's dumpable process");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    fn session(id: u64, pid: u32, started: u64, closed: bool) -> SessionRecord {
        SessionRecord {
            id,
            grant: 7,
            uid: 0,
            service: "sudo".into(),
            tty: String::new(),
            rhost: String::new(),
            pid,
            started: Some(started),
            cgroup: None,
            opened_at: 0,
            closed_at: closed.then_some(1),
        }
    }

    #[test]
    fn the_nearest_open_session_among_the_ancestors_is_the_recorders() {
        let sessions = [
            session(1, 100, 5, false),
            session(2, 200, 6, false),
            session(3, 300, 7, true),
        ];
        let lineage = [(400, 9), (300, 7), (200, 6), (100, 5)];
        // Session 3 has ended; 2 is nearer than 1.
        assert_eq!(session_among(lineage, &sessions), Some(2));
        // The same pid started at another time is another process.
        assert_eq!(session_among([(400, 9), (200, 8)], &sessions), None);
        assert_eq!(session_among([(400, 9)], &sessions), None);
    }

    #[test]
    fn a_process_has_its_parent_among_its_ancestors() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let lineage: Vec<(u32, u64)> = ancestors(child.id()).collect();
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(lineage[0].0, child.id());
        assert_eq!(lineage[1].0, std::process::id());
        assert!(lineage.len() <= MAX_DEPTH);
    }
}
