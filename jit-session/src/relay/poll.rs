//! The loop's one wait: a poll over every descriptor that can move the
//! session on, each in a fixed slot, and what woke it.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};

use super::ending::Phase;
use super::{State, CHUNK};

/// Which descriptors are ready, each for what was asked of it.
pub(super) struct Ready {
    pub(super) master: bool,
    /// The master takes input (asked for only when input waits for it).
    pub(super) master_writable: bool,
    pub(super) stdin: bool,
    pub(super) signals: bool,
    pub(super) status: bool,
    /// jitd's lifecycle signals.
    pub(super) jitd: bool,
    /// The recorder thread's failure pipe.
    pub(super) recorder: bool,
    /// jitd closed its end of the recording pipe.
    pub(super) pipe_closed: bool,
    /// The command's stdin pipe takes input.
    pub(super) input_writable: bool,
    pub(super) stdout: bool,
    pub(super) stderr: bool,
}

/// A poll slot for a descriptor that may be absent; an absent one is
/// `placeholder` asked for nothing (poll needs every slot filled).
fn slot<'a>(fd: Option<&'a OwnedFd>, flags: PollFlags, placeholder: BorrowedFd<'a>) -> PollFd<'a> {
    match fd {
        Some(fd) => PollFd::new(fd.as_fd(), flags),
        None => PollFd::new(placeholder, PollFlags::empty()),
    }
}

impl<W> State<'_, W> {
    /// How long the wait may last: the recorder thread flushes on its own;
    /// this is for expiry ticks and output held for the recorder.
    pub(super) fn poll_timeout(&self, now: Instant) -> Duration {
        let mut timeout = Duration::from_secs(1);
        if let Some(at) = self.r.recorder.held_until().filter(|_| self.recording) {
            timeout = timeout.min(at.saturating_duration_since(now));
        }
        if !matches!(self.phase, Phase::Running) {
            timeout = timeout.min(Duration::from_millis(20));
        }
        timeout
    }

    /// Waits up to `timeout` for any descriptor; None if poll failed.
    pub(super) fn wait(&self, timeout: Duration) -> Option<Ready> {
        let stdin = std::io::stdin();
        let want_stdin =
            self.stdin_open && self.input.len() < CHUNK && matches!(self.phase, Phase::Running);
        let mut master_flags = PollFlags::POLLIN;
        let input_flags = if self.input.is_empty() {
            PollFlags::empty()
        } else {
            PollFlags::POLLOUT
        };
        if self.r.pipes.stdin.is_none() {
            master_flags |= input_flags;
        }
        let events_fd = self.r.events.fd();
        // Fixed slots; unused ones get an invalid fd (ignored by poll).
        let none = PollFlags::empty();
        let optional = |fd, flags| slot(fd, flags, self.r.signals.as_fd());
        let mut fds = [
            PollFd::new(
                self.r.master.as_fd(),
                if self.master_open { master_flags } else { none },
            ),
            PollFd::new(
                stdin.as_fd(),
                if want_stdin { PollFlags::POLLIN } else { none },
            ),
            PollFd::new(self.r.signals.as_fd(), PollFlags::POLLIN),
            PollFd::new(
                self.r.spawned.status.as_fd(),
                if self.status_open {
                    PollFlags::POLLIN
                } else {
                    none
                },
            ),
            PollFd::new(
                events_fd.unwrap_or(self.r.signals.as_fd()),
                if events_fd.is_some() {
                    PollFlags::POLLIN
                } else {
                    none
                },
            ),
            PollFd::new(
                self.r.recorder.failure_fd(),
                if self.recording {
                    PollFlags::POLLIN
                } else {
                    none
                },
            ),
            // No events asked: POLLERR is reported regardless.
            optional(self.r.pipe.as_ref(), none),
            optional(self.r.pipes.stdin.as_ref(), input_flags),
            optional(self.r.pipes.stdout.as_ref(), PollFlags::POLLIN),
            optional(self.r.pipes.stderr.as_ref(), PollFlags::POLLIN),
        ];
        // Rounded up: woken early, the loop would spin until the time came.
        let ms = u16::try_from(timeout.as_micros().div_ceil(1000)).unwrap_or(1000);
        match nix::poll::poll(&mut fds, PollTimeout::from(ms)) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => return None,
        }
        let ready = |i: usize| {
            fds[i]
                .revents()
                .is_some_and(|r| !r.is_empty() && !fds[i].events().is_empty())
        };
        Some(Ready {
            master: ready(0),
            master_writable: fds[0]
                .revents()
                .is_some_and(|r| r.contains(PollFlags::POLLOUT)),
            stdin: ready(1),
            signals: ready(2),
            status: ready(3),
            jitd: ready(4),
            recorder: ready(5),
            pipe_closed: self.r.pipe.is_some()
                && fds[6]
                    .revents()
                    .is_some_and(|r| r.intersects(PollFlags::POLLERR | PollFlags::POLLHUP)),
            input_writable: ready(7),
            stdout: ready(8),
            stderr: ready(9),
        })
    }
}
