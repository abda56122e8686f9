//! The parent's loop: one poll over the user's terminal, the PTY master, a
//! signalfd, the monitor's status pipe, jitd's events and the recorder
//! thread's failure pipe; output goes to the user's terminal and then to the
//! recorder thread, input to the PTY. Standard descriptors of the user's
//! that are not terminals have pipes of their own to the command
//! ([`Pipes`]): input goes there, and output from there, recorded the same.
//!
//! As in sudo-rs's `exec/use_pty`, the loop only waits and dispatches: each
//! descriptor that woke it has a handler of its own (`input.rs`,
//! `output.rs`, `signals.rs`, `expiry.rs`, `recording.rs`, and `ending.rs`
//! for the status pipe and the steps of the end).

use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::sys::signalfd::SignalFd;

use jit_recording::End;

use crate::jitd::{Events, OnFailure};
use crate::monitor::{Pipes, Spawned, Status};
use crate::pty;
use crate::record::Recording;
use crate::session::Expiry;

mod ending;
mod expiry;
mod input;
mod output;
mod poll;
mod recording;
mod signals;

use ending::Phase;
use output::Source;
use poll::Ready;

const CHUNK: usize = 64 * 1024;

pub struct Relay<'a, W> {
    pub master: OwnedFd,
    pub spawned: Spawned,
    pub recorder: Recording<W>,
    pub record_input: bool,
    pub on_failure: OnFailure,
    pub expiry: Option<Expiry>,
    pub events: &'a mut dyn Events,
    pub grace: Duration,
    /// The command's pipes (stdin's write end is closed once stdin ends,
    /// so the command sees its end).
    pub pipes: Pipes,
    /// The user's terminal (`/dev/tty`) when stdin is one but stdout is
    /// not: what the command writes to the PTY (echoes, prompts) goes there,
    /// as with sudo, not into the redirected output.
    pub terminal: Option<OwnedFd>,
    /// Where jit-session's own notices go: the user's terminal if there is
    /// one, else stderr; never into output redirected to a file.
    pub notices: Sink,
    pub signals: SignalFd,
    /// A login shell's recording pipe (another descriptor of it): poll
    /// reports POLLERR once jitd closed its end (it stopped, or its disk is
    /// full), so the session hears of it at once, not at its next output.
    pub pipe: Option<OwnedFd>,
}

pub struct Outcome {
    pub status: Option<Status>,
    pub end: End,
    /// Why the recording stopped early, if it did.
    pub record_error: Option<String>,
}

/// Where output goes to the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sink {
    Stdout,
    Stderr,
    /// [`Relay::terminal`].
    Terminal,
}

struct State<'a, W> {
    r: Relay<'a, W>,
    phase: Phase,
    end: Option<End>,
    status: Option<Status>,
    status_open: bool,
    master_open: bool,
    stdout_ok: bool,
    stderr_ok: bool,
    terminal_ok: bool,
    recording: bool,
    record_error: Option<String>,
    /// The user's input not yet written to the command.
    input: Vec<u8>,
    stdin_open: bool,
}

/// Runs the session to its end. The command must have been started (`go`).
pub fn run<W>(relay: Relay<'_, W>) -> (Outcome, Recording<W>, Spawned) {
    let mut st = State {
        r: relay,
        phase: Phase::Running,
        end: None,
        status: None,
        status_open: true,
        master_open: true,
        stdout_ok: true,
        stderr_ok: true,
        terminal_ok: true,
        recording: true,
        record_error: None,
        input: Vec::new(),
        stdin_open: true,
    };
    let _ = pty::set_nonblocking(st.r.master.as_fd());
    let Pipes {
        stdin: input,
        stdout,
        stderr,
    } = &st.r.pipes;
    for fd in [input, stdout, stderr].into_iter().flatten() {
        let _ = pty::set_nonblocking(fd.as_fd());
    }
    let mut buf = vec![0u8; CHUNK];

    loop {
        let now = Instant::now();
        if st.ended(now) {
            break;
        }
        st.on_expiry_tick();
        st.record(|r| r.send_due(now));
        let Some(ready) = st.wait(st.poll_timeout(now)) else {
            break;
        };
        st.on_wake(&ready, &mut buf);
        if !st.master_open && st.status.is_none() && !st.status_open {
            break;
        }
    }
    st.finish(&mut buf)
}

impl<W> State<'_, W> {
    /// Hands what woke the poll to its handlers, in this order: the
    /// recording's failures first, output before input, the command's end
    /// after its last output.
    fn on_wake(&mut self, ready: &Ready, buf: &mut [u8]) {
        if ready.recorder {
            self.check_recording();
        }
        if ready.pipe_closed {
            self.on_pipe_closed();
        }
        if ready.stdout {
            self.pump(Source::Stdout, buf);
        }
        if ready.stderr {
            self.pump(Source::Stderr, buf);
        }
        if ready.master {
            self.pump(Source::Master, buf);
            if ready.master_writable {
                self.write_input_to_master();
            }
        }
        if ready.input_writable {
            self.write_input_to_pipe();
        }
        if ready.stdin {
            self.read_stdin();
        }
        self.pass_on_end_of_input();
        if ready.signals {
            self.on_signals();
        }
        if ready.status {
            self.on_status();
        }
        if ready.jitd {
            self.on_jitd_events();
        }
    }

    /// The session is over: what is left to relay and record, and the
    /// outcome. Finishing the recording (the digest) is the caller's business.
    fn finish(mut self, buf: &mut [u8]) -> (Outcome, Recording<W>, Spawned) {
        self.drain(buf);
        // A failure the poll has not seen yet still gets its message and its end.
        self.check_recording();
        self.wait_for_status();
        let end = self.end.unwrap_or(End::Exit);
        let at = Instant::now();
        if self.recording {
            let label = format!("end: {}", end.as_str());
            self.record(|r| r.marker(at, &label));
        }
        let State {
            r,
            status,
            record_error,
            ..
        } = self;
        let Relay {
            recorder, spawned, ..
        } = r;
        (
            Outcome {
                status,
                end,
                record_error,
            },
            recorder,
            spawned,
        )
    }
}
