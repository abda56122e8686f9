//! The end of a session, in steps: the command's exit (reported on the
//! monitor's status pipe) lets output linger, then the processes left on
//! the PTY are hung up, then killed; an end from outside (jitd, a signal, a
//! failed recording) starts at the hang-up.

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout};

use jit_recording::End;

use super::expiry::now_unix;
use super::State;
use crate::monitor::Status;
use crate::session;

/// After the command exits: how long output may keep coming before the
/// processes left on the PTY are hung up.
const LINGER: Duration = Duration::from_millis(100);
/// After SIGKILL: how long to wait for the tree to disappear.
const KILL_WAIT: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy)]
pub(super) enum Phase {
    Running,
    /// The command is gone; output may still come.
    Lingering(Instant),
    /// SIGHUP sent; SIGKILL at this time.
    HungUp(Instant),
    /// SIGKILL sent; give up waiting at this time.
    Killed(Instant),
}

impl<W> State<'_, W> {
    /// The time-driven steps of the ending; true once the session is over.
    pub(super) fn ended(&mut self, now: Instant) -> bool {
        let tree_empty = || session::tree(self.r.spawned.monitor).is_empty();
        match self.phase {
            Phase::Running => {}
            Phase::Lingering(until) => {
                if !self.master_open && tree_empty() {
                    return true;
                }
                if now >= until {
                    self.begin_terminate(End::Exit);
                }
            }
            Phase::HungUp(kill_at) => {
                if tree_empty() {
                    return true;
                }
                if now >= kill_at {
                    session::signal_tree(self.r.spawned.monitor, libc::SIGKILL);
                    self.phase = Phase::Killed(now + KILL_WAIT);
                }
            }
            Phase::Killed(give_up) => {
                if tree_empty() || now >= give_up {
                    return true;
                }
            }
        }
        false
    }

    pub(super) fn begin_terminate(&mut self, end: End) {
        // Killed from outside (jitd ends a grant's sessions itself) just as
        // the grant ran out: that is an expiry, with its message, whichever
        // of the kill and the GrantEnded signal arrived first.
        if end == End::Terminated && self.end.is_none() {
            let due = self
                .r
                .expiry
                .as_mut()
                .map(|e| e.on_tick(now_unix()))
                .unwrap_or_default();
            self.act(due);
            if self.end.is_some() {
                return;
            }
        }
        if self.end.is_none() {
            self.end = Some(end);
        }
        if matches!(self.phase, Phase::Running | Phase::Lingering(_)) {
            session::signal_tree(self.r.spawned.monitor, libc::SIGHUP);
            self.phase = Phase::HungUp(Instant::now() + self.r.grace);
        }
    }

    /// The monitor's report: the command's exit status, or, without one,
    /// the monitor is gone (killed).
    pub(super) fn on_status(&mut self) {
        let mut b = [0u8; 8];
        match nix::unistd::read(&self.r.spawned.status, &mut b) {
            Ok(8) => {
                self.status = Some(Status::decode(&b));
                self.command_gone();
            }
            Ok(_) | Err(_) => {
                // The monitor is gone without a report (killed).
                self.status_open = false;
                self.begin_terminate(End::Terminated);
            }
        }
    }

    fn command_gone(&mut self) {
        if let Phase::Running = self.phase {
            self.phase = Phase::Lingering(Instant::now() + LINGER);
        }
    }

    /// At the end: the command's status if the monitor reports it soon.
    pub(super) fn wait_for_status(&mut self) {
        if self.status.is_some() || !self.status_open {
            return;
        }
        let mut fds = [PollFd::new(
            self.r.spawned.status.as_fd(),
            PollFlags::POLLIN,
        )];
        if matches!(nix::poll::poll(&mut fds, PollTimeout::from(300u16)), Ok(n) if n > 0) {
            let mut b = [0u8; 8];
            if let Ok(8) = nix::unistd::read(&self.r.spawned.status, &mut b) {
                self.status = Some(Status::decode(&b));
            }
        }
    }
}
