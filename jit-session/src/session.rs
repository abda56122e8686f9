//! Ending a session: what jitd's lifecycle events mean for this session
//! (pure, table-tested), and killing the session's process tree.

use std::collections::{HashMap, HashSet};
use std::os::fd::{AsRawFd, BorrowedFd};

use jit_recording::End;
use nix::unistd::Pid;

/// A lifecycle signal from jitd, for any grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantSignal {
    Expiring { id: u64, expires_at: i64 },
    Extended { id: u64, expires_at: i64 },
    Ended { id: u64, reason: String },
}

/// What the relay should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// A line for the user's terminal (never into the PTY input).
    Banner(String),
    /// An "m" event in the recording.
    Marker(String),
    /// End the session with this final message.
    Terminate { end: End, message: String },
}

/// Follows our grant's expiry.
#[derive(Debug, Clone)]
pub struct Expiry {
    grant: u64,
    expires_at: Option<i64>,
    ended: bool,
}

impl Expiry {
    pub fn new(grant: u64, expires_at: Option<i64>) -> Expiry {
        Expiry {
            grant,
            expires_at,
            ended: false,
        }
    }

    /// The local backup deadline (Unix seconds).
    pub fn deadline(&self) -> Option<i64> {
        self.expires_at.filter(|_| !self.ended)
    }

    pub fn on_signal(&mut self, signal: &GrantSignal, now: i64) -> Vec<Action> {
        if self.ended {
            return vec![];
        }
        match signal {
            GrantSignal::Expiring { id, expires_at } if *id == self.grant => {
                self.expires_at = Some(*expires_at);
                vec![
                    Action::Banner(self.banner(*expires_at, now)),
                    Action::Marker(format!("expiring at {}", utc(*expires_at))),
                ]
            }
            GrantSignal::Extended { id, expires_at } if *id == self.grant => {
                self.expires_at = Some(*expires_at);
                vec![
                    Action::Banner(format!(
                        "\r\n[jit] grant {} extended: this session now ends at {} ({})\r\n",
                        self.grant,
                        utc(*expires_at),
                        until(*expires_at, now)
                    )),
                    Action::Marker(format!("extended to {}", utc(*expires_at))),
                ]
            }
            GrantSignal::Ended { id, reason } if *id == self.grant => {
                self.ended = true;
                let end = match reason.as_str() {
                    "expired" => End::Expired,
                    "revoked" => End::Revoked,
                    _ => End::Terminated,
                };
                vec![
                    Action::Marker(format!("grant {reason}")),
                    Action::Terminate {
                        end,
                        message: format!(
                            "\r\n[jit] grant {} {}: ending the session\r\n",
                            self.grant,
                            printable(reason)
                        ),
                    },
                ]
            }
            _ => vec![],
        }
    }

    /// The backup timer, in case jitd's signal is missed.
    pub fn on_tick(&mut self, now: i64) -> Vec<Action> {
        match self.deadline() {
            Some(at) if now >= at => self.on_signal(
                &GrantSignal::Ended {
                    id: self.grant,
                    reason: "expired".into(),
                },
                now,
            ),
            _ => vec![],
        }
    }

    fn banner(&self, expires_at: i64, now: i64) -> String {
        format!(
            "\r\n[jit] this session ends at {} ({}); more time: jitctl extend {} --for 30m --reason \"...\"\r\n",
            utc(expires_at),
            until(expires_at, now),
            self.grant
        )
    }
}

/// `14:05:00 UTC`.
pub fn utc(unix: i64) -> String {
    let s = unix.rem_euclid(86_400);
    format!("{:02}:{:02}:{:02} UTC", s / 3600, s / 60 % 60, s % 60)
}

/// `in 15 min`, `in 40 s`, `now`.
fn until(at: i64, now: i64) -> String {
    let left = at - now;
    if left <= 0 {
        "now".into()
    } else if left < 60 {
        format!("in {left} s")
    } else {
        format!("in {} min", (left + 30) / 60)
    }
}

/// Text from the bus shown on a terminal: no control characters.
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(200)
        .collect()
}

/// Sends a signal through a pidfd (safe against pid reuse).
pub fn pidfd_signal(pidfd: BorrowedFd<'_>, sig: i32) -> bool {
    // SAFETY: pidfd_send_signal with a valid fd, a signal number, a null
    // siginfo (meaning: as kill(2)) and no flags.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    rc == 0
}

#[derive(Debug, Clone, Copy)]
struct Proc {
    ppid: i32,
    session: i32,
}

fn read_stat(pid: i32) -> Option<Proc> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields follow the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut f = rest.split(' ');
    let _state = f.next()?;
    let ppid = f.next()?.parse().ok()?;
    let _pgrp: i32 = f.next()?.parse().ok()?;
    let session = f.next()?.parse().ok()?;
    Some(Proc { ppid, session })
}

fn all_procs() -> HashMap<i32, Proc> {
    let mut map = HashMap::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            if let Some(pid) = e.file_name().to_str().and_then(|n| n.parse().ok()) {
                if let Some(p) = read_stat(pid) {
                    map.insert(pid, p);
                }
            }
        }
    }
    map
}

fn belongs(pid: i32, p: &Proc, monitor: i32, procs: &HashMap<i32, Proc>) -> bool {
    if p.session == monitor {
        return true;
    }
    let mut at = p.ppid;
    let mut seen = HashSet::from([pid]);
    while at > 1 && seen.insert(at) {
        if at == monitor {
            return true;
        }
        match procs.get(&at) {
            Some(q) => at = q.ppid,
            None => return false,
        }
    }
    false
}

/// The session's processes other than the monitor: everything in its
/// session (all processes on the PTY) or below it (the monitor is a
/// subreaper, so orphans, `setsid` ones included, stay below it).
pub fn tree(monitor: Pid) -> Vec<Pid> {
    let m = monitor.as_raw();
    let procs = all_procs();
    let mut out: Vec<Pid> = procs
        .iter()
        .filter(|(&pid, p)| pid != m && belongs(pid, p, m, &procs))
        .map(|(&pid, _)| Pid::from_raw(pid))
        .collect();
    out.sort();
    out
}

/// Signals the session's processes (not the monitor); returns how many.
/// Each target is pinned with a pidfd and re-checked before signalling.
pub fn signal_tree(monitor: Pid, sig: i32) -> usize {
    let mut sent = 0;
    for pid in tree(monitor) {
        let Ok(fd) = crate::monitor::pidfd_open(pid) else {
            continue;
        };
        let procs = all_procs();
        let still = procs
            .get(&pid.as_raw())
            .is_some_and(|p| belongs(pid.as_raw(), p, monitor.as_raw(), &procs));
        if still && pidfd_signal(std::os::fd::AsFd::as_fd(&fd), sig) {
            sent += 1;
        }
    }
    sent
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000; // 22:13:20 UTC

    #[test]
    fn warning_shows_banner_and_marker() {
        let mut e = Expiry::new(7, Some(NOW + 900));
        let a = e.on_signal(
            &GrantSignal::Expiring {
                id: 7,
                expires_at: NOW + 900,
            },
            NOW,
        );
        assert_eq!(
            a,
            vec![
                Action::Banner(
                    "\r\n[jit] this session ends at 22:28:20 UTC (in 15 min); more time: jitctl extend 7 --for 30m --reason \"...\"\r\n".into()
                ),
                Action::Marker("expiring at 22:28:20 UTC".into()),
            ]
        );
    }

    #[test]
    fn other_grants_are_ignored() {
        let mut e = Expiry::new(7, Some(NOW + 900));
        for s in [
            GrantSignal::Expiring {
                id: 8,
                expires_at: NOW,
            },
            GrantSignal::Extended {
                id: 8,
                expires_at: NOW,
            },
            GrantSignal::Ended {
                id: 8,
                reason: "revoked".into(),
            },
        ] {
            assert!(e.on_signal(&s, NOW).is_empty());
        }
        assert_eq!(e.deadline(), Some(NOW + 900));
    }

    #[test]
    fn extension_moves_the_backup_deadline() {
        let mut e = Expiry::new(7, Some(NOW + 60));
        let a = e.on_signal(
            &GrantSignal::Extended {
                id: 7,
                expires_at: NOW + 1860,
            },
            NOW,
        );
        assert!(
            matches!(&a[0], Action::Banner(b) if b.contains("now ends at 22:44:20 UTC (in 31 min)"))
        );
        assert_eq!(a[1], Action::Marker("extended to 22:44:20 UTC".into()));
        assert!(e.on_tick(NOW + 61).is_empty());
        assert_eq!(e.deadline(), Some(NOW + 1860));
    }

    #[test]
    fn ended_terminates_once_with_the_reason() {
        for (reason, end) in [
            ("expired", End::Expired),
            ("revoked", End::Revoked),
            ("terminated", End::Terminated),
            ("x\x1b]52;c;", End::Terminated),
        ] {
            let mut e = Expiry::new(7, Some(NOW + 60));
            let a = e.on_signal(
                &GrantSignal::Ended {
                    id: 7,
                    reason: reason.into(),
                },
                NOW,
            );
            let Action::Terminate { end: got, message } = &a[1] else {
                panic!("{a:?}")
            };
            assert_eq!(*got, end);
            assert!(message.starts_with("\r\n[jit] grant 7 "));
            assert!(message.ends_with(": ending the session\r\n"));
            assert!(!message.contains('\x1b'));
            assert!(e.on_tick(NOW + 100).is_empty());
            assert_eq!(e.deadline(), None);
        }
    }

    #[test]
    fn backup_timer_expires_the_session() {
        let mut e = Expiry::new(7, Some(NOW + 60));
        assert!(e.on_tick(NOW + 59).is_empty());
        let a = e.on_tick(NOW + 60);
        assert!(matches!(
            &a[1],
            Action::Terminate {
                end: End::Expired,
                ..
            }
        ));
    }

    #[test]
    fn utc_and_until() {
        assert_eq!(utc(0), "00:00:00 UTC");
        assert_eq!(utc(NOW), "22:13:20 UTC");
        assert_eq!(until(NOW + 40, NOW), "in 40 s");
        assert_eq!(until(NOW - 1, NOW), "now");
    }

    #[test]
    fn tree_finds_setsid_descendants() {
        // We are not a subreaper here: a direct child that calls setsid
        // stays our child, so the tree below us holds it.
        let mut child = std::process::Command::new("setsid")
            .args(["sleep", "30"])
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(100));
        let me = nix::unistd::getpid();
        let pid = Pid::from_raw(child.id() as i32);
        assert!(tree(me).contains(&pid));
        // (signal_tree is exercised by the relay tests: here it would also
        // hit the children of tests running in parallel.)
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
