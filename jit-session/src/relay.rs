//! The parent's loop: one poll over the user's terminal, the PTY master, a
//! signalfd, the monitor's status pipe, jitd's events and the recorder
//! thread's failure pipe; output goes to the user's terminal and then to the
//! recorder thread, input to the PTY. Standard descriptors of the user's
//! that are not terminals have pipes of their own to the command
//! ([`Pipes`]): input goes there, and output from there, recorded the same.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signalfd::SignalFd;

use jit_recording::asciicast::RecordError;
use jit_recording::End;

use crate::jitd::{Events, OnFailure};
use crate::monitor::{Pipes, Spawned, Status};
use crate::pty;
use crate::record::Recording;
use crate::session::{self, Action, Expiry};

const CHUNK: usize = 64 * 1024;
/// After the command exits: how long output may keep coming before the
/// processes left on the PTY are hung up.
const LINGER: Duration = Duration::from_millis(100);
/// At the end: how many chunks of what is left to read from each source.
const DRAIN_CHUNKS: usize = 16;
/// After SIGKILL: how long to wait for the tree to disappear.
const KILL_WAIT: Duration = Duration::from_secs(1);

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

/// Where output comes from.
#[derive(Debug, Clone, Copy)]
enum Source {
    Master,
    Stdout,
    Stderr,
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    Running,
    /// The command is gone; output may still come.
    Lingering(Instant),
    /// SIGHUP sent; SIGKILL at this time.
    HungUp(Instant),
    /// SIGKILL sent; give up waiting at this time.
    Killed(Instant),
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
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

/// A poll slot for a descriptor that may be absent; an absent one is
/// `placeholder` asked for nothing (poll needs every slot filled).
fn slot<'a>(fd: Option<&'a OwnedFd>, flags: PollFlags, placeholder: BorrowedFd<'a>) -> PollFd<'a> {
    match fd {
        Some(fd) => PollFd::new(fd.as_fd(), flags),
        None => PollFd::new(placeholder, PollFlags::empty()),
    }
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
}

impl<'a, W> State<'a, W> {
    fn say(&mut self, text: &str) {
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

    fn begin_terminate(&mut self, end: End) {
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

    fn record(&mut self, f: impl FnOnce(&mut Recording<W>) -> Result<(), RecordError>) {
        if !self.recording {
            return;
        }
        if let Err(e) = f(&mut self.r.recorder) {
            self.record_failed(e);
        }
    }

    /// The recording stopped (reported by a send or by the thread's pipe).
    fn record_failed(&mut self, e: RecordError) {
        self.recording = false;
        self.record_error = Some(e.to_string());
        match self.r.on_failure {
            OnFailure::Terminate => {
                self.say(&format!(
                    "\r\n[jit] cannot write the session recording ({e}); ending the session\r\n"
                ));
                self.begin_terminate(End::WriteFailed);
            }
            OnFailure::Continue => self.say(&format!(
                "\r\n[jit] cannot write the session recording ({e}); the session continues unrecorded\r\n"
            )),
        }
    }

    fn act(&mut self, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::Banner(text) => self.say(&text),
                Action::Marker(label) => self.record(|r| r.marker(Instant::now(), &label)),
                Action::Terminate { end, message } => {
                    self.say(&message);
                    self.begin_terminate(end);
                }
            }
        }
    }

    /// Relays what `from` has (up to one chunk) to the user, read by read,
    /// then records the chunk; whether anything came. A master read returns
    /// at most 4 KB (the line discipline's buffer): writing each at once
    /// keeps the program, this loop and the terminal busy at the same time
    /// instead of taking turns.
    fn pump(&mut self, from: Source, buf: &mut [u8]) -> bool {
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

    fn on_signal(&mut self, signo: i32) {
        match signo {
            libc::SIGWINCH => {
                if let Some(ws) = pty::user_winsize() {
                    let _ = pty::set_winsize(self.r.master.as_fd(), &ws);
                    self.record(|r| r.resize(Instant::now(), ws.ws_col, ws.ws_row));
                }
            }
            libc::SIGTERM | libc::SIGHUP => {
                if signo == libc::SIGTERM {
                    self.say("\r\n[jit] jit-session was told to stop: ending the session\r\n");
                }
                self.record(|r| r.marker(Instant::now(), "terminated"));
                self.begin_terminate(End::Terminated);
            }
            libc::SIGINT | libc::SIGQUIT | libc::SIGUSR1 | libc::SIGUSR2 => {
                // Sent to us, not typed (the terminal is raw): the monitor
                // passes it on to the command, as sudo passes on what its
                // user sends it (`kill -USR1` for dd's progress).
                session::pidfd_signal(self.r.spawned.pidfd.as_fd(), signo);
            }
            _ => {}
        }
    }

    fn check_recording(&mut self) {
        if self.recording {
            if let Some(e) = self.r.recorder.take_failure() {
                self.record_failed(e);
            }
        }
    }

    fn command_gone(&mut self) {
        if let Phase::Running = self.phase {
            self.phase = Phase::Lingering(Instant::now() + LINGER);
        }
    }
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
    let mut inbuf: Vec<u8> = Vec::new();
    let mut stdin_open = true;
    let stdin = std::io::stdin();

    loop {
        let now = Instant::now();
        // Time-driven transitions of the ending.
        let tree_empty = || session::tree(st.r.spawned.monitor).is_empty();
        match st.phase {
            Phase::Running => {}
            Phase::Lingering(until) => {
                if !st.master_open && tree_empty() {
                    break;
                }
                if now >= until {
                    st.begin_terminate(End::Exit);
                }
            }
            Phase::HungUp(kill_at) => {
                if tree_empty() {
                    break;
                }
                if now >= kill_at {
                    session::signal_tree(st.r.spawned.monitor, libc::SIGKILL);
                    st.phase = Phase::Killed(now + KILL_WAIT);
                }
            }
            Phase::Killed(give_up) => {
                if tree_empty() || now >= give_up {
                    break;
                }
            }
        }
        if let Some(exp) = st.r.expiry.as_mut() {
            let actions = exp.on_tick(now_unix());
            st.act(actions);
        }
        st.record(|r| r.send_due(now));

        // The recorder thread flushes on its own; this is for expiry ticks
        // and output held for the recorder.
        let mut timeout = Duration::from_secs(1);
        if let Some(at) = st.r.recorder.held_until().filter(|_| st.recording) {
            timeout = timeout.min(at.saturating_duration_since(now));
        }
        if !matches!(st.phase, Phase::Running) {
            timeout = timeout.min(Duration::from_millis(20));
        }

        let want_stdin = stdin_open && inbuf.len() < CHUNK && matches!(st.phase, Phase::Running);
        let mut master_flags = PollFlags::POLLIN;
        let input_flags = if inbuf.is_empty() {
            PollFlags::empty()
        } else {
            PollFlags::POLLOUT
        };
        if st.r.pipes.stdin.is_none() {
            master_flags |= input_flags;
        }
        let events_fd = st.r.events.fd();
        // Fixed slots; unused ones get an invalid fd (ignored by poll).
        let none = PollFlags::empty();
        let optional = |fd, flags| slot(fd, flags, st.r.signals.as_fd());
        let mut fds = [
            PollFd::new(
                st.r.master.as_fd(),
                if st.master_open { master_flags } else { none },
            ),
            PollFd::new(
                stdin.as_fd(),
                if want_stdin { PollFlags::POLLIN } else { none },
            ),
            PollFd::new(st.r.signals.as_fd(), PollFlags::POLLIN),
            PollFd::new(
                st.r.spawned.status.as_fd(),
                if st.status_open {
                    PollFlags::POLLIN
                } else {
                    none
                },
            ),
            PollFd::new(
                events_fd.unwrap_or(st.r.signals.as_fd()),
                if events_fd.is_some() {
                    PollFlags::POLLIN
                } else {
                    none
                },
            ),
            PollFd::new(
                st.r.recorder.failure_fd(),
                if st.recording {
                    PollFlags::POLLIN
                } else {
                    none
                },
            ),
            // No events asked: POLLERR is reported regardless.
            optional(st.r.pipe.as_ref(), none),
            optional(st.r.pipes.stdin.as_ref(), input_flags),
            optional(st.r.pipes.stdout.as_ref(), PollFlags::POLLIN),
            optional(st.r.pipes.stderr.as_ref(), PollFlags::POLLIN),
        ];
        // Rounded up: woken early, the loop would spin until the time came.
        let ms = u16::try_from(timeout.as_micros().div_ceil(1000)).unwrap_or(1000);
        match nix::poll::poll(&mut fds, PollTimeout::from(ms)) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => break,
        }
        let ready = |i: usize| {
            fds[i]
                .revents()
                .is_some_and(|r| !r.is_empty() && !fds[i].events().is_empty())
        };
        let (r_master, r_stdin, r_sig, r_status, r_events, r_record) =
            (ready(0), ready(1), ready(2), ready(3), ready(4), ready(5));
        let master_writable = fds[0]
            .revents()
            .is_some_and(|r| r.contains(PollFlags::POLLOUT));
        let pipe_closed = st.r.pipe.is_some()
            && fds[6]
                .revents()
                .is_some_and(|r| r.intersects(PollFlags::POLLERR | PollFlags::POLLHUP));
        let (input_writable, r_out, r_err) = (ready(7), ready(8), ready(9));

        if r_record {
            st.check_recording();
        }
        if pipe_closed {
            // Heard once: a session that continues unrecorded stops watching.
            st.r.pipe = None;
            if st.recording {
                st.record_failed(RecordError::Closed(Errno::EPIPE.into()));
            }
        }
        if r_out {
            st.pump(Source::Stdout, &mut buf);
        }
        if r_err {
            st.pump(Source::Stderr, &mut buf);
        }
        if r_master {
            st.pump(Source::Master, &mut buf);
            if master_writable && !inbuf.is_empty() {
                match nix::unistd::write(&st.r.master, &inbuf) {
                    Ok(n) => {
                        inbuf.drain(..n);
                    }
                    Err(Errno::EAGAIN | Errno::EINTR) => {}
                    Err(_) => inbuf.clear(),
                }
            }
        }
        if input_writable {
            if let Some(input) = &st.r.pipes.stdin {
                match nix::unistd::write(input, &inbuf) {
                    Ok(n) => {
                        inbuf.drain(..n);
                    }
                    Err(Errno::EAGAIN | Errno::EINTR) => {}
                    Err(_) => {
                        // The command closed its input: nothing more to pass on.
                        inbuf.clear();
                        stdin_open = false;
                    }
                }
            }
        }
        if r_stdin {
            let mut tmp = [0u8; 4096];
            match nix::unistd::read(stdin.as_fd(), &mut tmp) {
                Ok(0) => stdin_open = false,
                Ok(n) => {
                    if st.r.record_input {
                        st.record(|r| r.input(Instant::now(), &tmp[..n]));
                    }
                    inbuf.extend_from_slice(&tmp[..n]);
                }
                Err(Errno::EINTR | Errno::EAGAIN) => {}
                Err(_) => stdin_open = false,
            }
        }
        if !stdin_open && inbuf.is_empty() {
            // The end of stdin reaches the command.
            st.r.pipes.stdin = None;
        }
        if r_sig {
            while let Ok(Some(info)) = st.r.signals.read_signal() {
                st.on_signal(info.ssi_signo as i32);
            }
        }
        if r_status {
            let mut b = [0u8; 8];
            match nix::unistd::read(&st.r.spawned.status, &mut b) {
                Ok(8) => {
                    st.status = Some(Status::decode(&b));
                    st.command_gone();
                }
                Ok(_) | Err(_) => {
                    // The monitor is gone without a report (killed).
                    st.status_open = false;
                    st.begin_terminate(End::Terminated);
                }
            }
        }
        if r_events {
            let signals = st.r.events.take();
            let now = now_unix();
            for s in signals {
                if let Some(exp) = st.r.expiry.as_mut() {
                    let actions = exp.on_signal(&s, now);
                    st.act(actions);
                }
            }
        }
        if !st.master_open && st.status.is_none() && !st.status_open {
            break;
        }
    }

    // Last output still buffered in the PTY and the pipes: their writers
    // are gone, unless one outlived its SIGKILL (then not forever).
    for from in [Source::Master, Source::Stdout, Source::Stderr] {
        for _ in 0..DRAIN_CHUNKS {
            if !st.pump(from, &mut buf) {
                break;
            }
        }
    }
    // A failure the poll has not seen yet still gets its message and its end.
    st.check_recording();
    if st.status.is_none() && st.status_open {
        let mut fds = [PollFd::new(st.r.spawned.status.as_fd(), PollFlags::POLLIN)];
        if matches!(nix::poll::poll(&mut fds, PollTimeout::from(300u16)), Ok(n) if n > 0) {
            let mut b = [0u8; 8];
            if let Ok(8) = nix::unistd::read(&st.r.spawned.status, &mut b) {
                st.status = Some(Status::decode(&b));
            }
        }
    }
    let end = st.end.unwrap_or(End::Exit);
    let at = Instant::now();
    if st.recording {
        let label = format!("end: {}", end.as_str());
        st.record(|r| r.marker(at, &label));
    }
    let State {
        r,
        status,
        record_error,
        ..
    } = st;
    let Relay {
        recorder, spawned, ..
    } = r;
    // Finishing (the digest) is the caller's business.
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
