//! Output: what the command writes (the PTY, or its own stdout and stderr
//! pipes) goes to the user first, then to the recorder; and jit-session's
//! own notices.

use std::os::fd::{AsFd, BorrowedFd};
use std::time::Instant;

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};

use jit_recording::End;

use super::{Sink, State};

/// At the end: how many chunks of what is left to read from each source.
const DRAIN_CHUNKS: usize = 16;

/// Where output comes from.
#[derive(Debug, Clone, Copy)]
pub(super) enum Source {
    Master,
    Stdout,
    Stderr,
}

/// Writes everything to a blocking-or-not descriptor.
fn write_all(fd: BorrowedFd<'_>, mut data: &[u8]) -> Result<(), Errno> {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(0) => return Err(Errno::EIO),
            Ok(n) => data = &data[n..],
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => {
                let mut fds = [PollFd::new(fd, PollFlags::POLLOUT)];
                let _ = nix::poll::poll(&mut fds, PollTimeout::from(1000u16));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

impl<W> State<'_, W> {
    pub(super) fn say(&mut self, text: &str) {
        self.show(self.r.notices, text.as_bytes());
    }

    fn sink_of(&self, from: Source) -> Sink {
        match from {
            Source::Master if self.r.terminal.is_some() => Sink::Terminal,
            Source::Master | Source::Stdout => Sink::Stdout,
            Source::Stderr => Sink::Stderr,
        }
    }

    /// Writes output to the user. A stdout or terminal that is gone ends
    /// the session (as a terminal hung up would); a stderr that is gone is
    /// left alone.
    fn show(&mut self, to: Sink, data: &[u8]) {
        let (stdout, stderr) = (std::io::stdout(), std::io::stderr());
        let (fd, ok) = match to {
            Sink::Stdout => (stdout.as_fd(), &mut self.stdout_ok),
            Sink::Stderr => (stderr.as_fd(), &mut self.stderr_ok),
            Sink::Terminal => match &self.r.terminal {
                Some(t) => (t.as_fd(), &mut self.terminal_ok),
                None => return,
            },
        };
        let failed = *ok && write_all(fd, data).is_err();
        if failed {
            *ok = false;
            if to != Sink::Stderr {
                self.begin_terminate(End::Terminated);
            }
        }
    }

    fn source(&self, from: Source) -> Option<BorrowedFd<'_>> {
        match from {
            Source::Master => self.master_open.then(|| self.r.master.as_fd()),
            Source::Stdout => self.r.pipes.stdout.as_ref().map(AsFd::as_fd),
            Source::Stderr => self.r.pipes.stderr.as_ref().map(AsFd::as_fd),
        }
    }

    fn close(&mut self, from: Source) {
        match from {
            Source::Master => self.master_open = false,
            Source::Stdout => self.r.pipes.stdout = None,
            Source::Stderr => self.r.pipes.stderr = None,
        }
    }

    /// Relays what `from` has (up to one chunk) to the user, read by read,
    /// then records the chunk; whether anything came. A master read returns
    /// at most 4 KB (the line discipline's buffer): writing each at once
    /// keeps the program, this loop and the terminal busy at the same time
    /// instead of taking turns.
    pub(super) fn pump(&mut self, from: Source, buf: &mut [u8]) -> bool {
        let mut filled = 0;
        // When the chunk's first bytes arrived.
        let mut at = None;
        while filled < buf.len() {
            let Some(fd) = self.source(from) else {
                break;
            };
            match nix::unistd::read(fd, &mut buf[filled..]) {
                Ok(0) | Err(Errno::EIO) => {
                    self.close(from);
                    break;
                }
                Ok(n) => {
                    at.get_or_insert_with(Instant::now);
                    // The user first: they (and the program) need not wait
                    // for the recorder.
                    self.show(self.sink_of(from), &buf[filled..filled + n]);
                    filled += n;
                }
                Err(Errno::EINTR) => {}
                Err(_) => break, // EAGAIN
            }
        }
        if let Some(at) = at {
            self.record(|r| r.output(at, &buf[..filled]));
        }
        at.is_some()
    }

    /// Last output still buffered in the PTY and the pipes: their writers
    /// are gone, unless one outlived its SIGKILL (then not forever).
    pub(super) fn drain(&mut self, buf: &mut [u8]) {
        for from in [Source::Master, Source::Stdout, Source::Stderr] {
            for _ in 0..DRAIN_CHUNKS {
                if !self.pump(from, buf) {
                    break;
                }
            }
        }
    }
}
