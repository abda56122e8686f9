//! Processes a holder left running as a managed account (W3, T34): of the
//! account's uid, started while it was checked out, outside jit's session
//! cgroups (whatever runs in a grant's cgroup ends with the grant), and
//! not by one of the account's own older processes (a database server
//! forking a backend is the account's business). A job `at now` ran, or a
//! crontab removed once its job started, leaves such a process and no
//! file: the grant's end snapshot reports them. They are not ended: the
//! account's processes are its own, and jitd cannot tell a server's
//! worker from a holder's.

use std::collections::HashMap;
use std::fs;

use crate::sessions::pidfd::{parent_of, running_pids, start_time};
use crate::sessions::real_uid;

/// A process as `/proc` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub pid: u32,
    pub parent: u32,
    /// Real uid.
    pub uid: u32,
    /// Clock ticks after boot.
    pub started: u64,
}

/// Every process running now (those that exit while being read are left out).
pub fn running() -> Vec<Seen> {
    running_pids()
        .filter_map(|pid| {
            Some(Seen {
                pid,
                parent: parent_of(pid).ok()?,
                uid: real_uid(pid)?,
                started: start_time(pid).ok()?,
            })
        })
        .collect()
}

/// The pids of `processes` that `uid` left running: started at `since`
/// (clock ticks after boot) or later, not `in_session`, and with no
/// ancestor of `uid` that started before `since`.
pub fn left_running(
    processes: &[Seen],
    uid: u32,
    since: u64,
    in_session: impl Fn(u32) -> bool,
) -> Vec<u32> {
    let by_pid: HashMap<u32, &Seen> = processes.iter().map(|p| (p.pid, p)).collect();
    let older_of_the_account = |p: &Seen| p.uid == uid && p.started < since;
    let spawned_by_the_account = |p: &Seen| {
        let mut next = by_pid.get(&p.parent);
        // A parent chain is at most as long as the table (a loop cannot
        // happen in /proc, but a table read over time could show one).
        for _ in 0..processes.len() {
            match next {
                Some(parent) if older_of_the_account(parent) => return true,
                Some(parent) if parent.pid != parent.parent => {
                    next = by_pid.get(&parent.parent);
                }
                _ => return false,
            }
        }
        false
    };
    let mut left: Vec<u32> = processes
        .iter()
        .filter(|p| p.uid == uid && p.started >= since)
        .filter(|p| !spawned_by_the_account(p) && !in_session(p.pid))
        .map(|p| p.pid)
        .collect();
    left.sort_unstable();
    left
}

/// `pid`'s command name, for the report (anybody's bytes: sanitized).
pub fn command_of(pid: u32) -> String {
    let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    crate::core::sanitize::for_terminal(comm.trim()).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCOUNT: u32 = 109;

    fn seen(pid: u32, parent: u32, uid: u32, started: u64) -> Seen {
        Seen {
            pid,
            parent,
            uid,
            started,
        }
    }

    #[test]
    fn what_the_account_runs_on_its_own_is_not_left_by_the_holder() {
        let since = 1000;
        let table = [
            seen(1, 0, 0, 0),
            // atd (root, from boot) ran the holder's `at now` job.
            seen(50, 1, 0, 10),
            seen(200, 50, ACCOUNT, 1200),
            // The job forked away and was reparented to init.
            seen(201, 1, ACCOUNT, 1300),
            // The account's server (older than the checkout) and a backend
            // it forked during it, and what that backend ran.
            seen(60, 1, ACCOUNT, 20),
            seen(300, 60, ACCOUNT, 1500),
            seen(301, 300, ACCOUNT, 1501),
            // The holder's own session, in the grant's cgroup.
            seen(400, 1, ACCOUNT, 1100),
            // Someone else's process, and the account's, started before.
            seen(500, 1, 1000, 1600),
            seen(70, 1, ACCOUNT, 999),
        ];
        let left = left_running(&table, ACCOUNT, since, |pid| pid == 400);
        assert_eq!(left, [200, 201]);
    }

    #[test]
    fn a_parent_loop_in_a_torn_read_ends() {
        let table = [seen(10, 11, ACCOUNT, 2000), seen(11, 10, 0, 5)];
        assert_eq!(left_running(&table, ACCOUNT, 1000, |_| false), [10]);
    }

    #[test]
    fn this_process_is_in_the_table() {
        let me = std::process::id();
        assert!(running().iter().any(|p| p.pid == me));
    }
}
