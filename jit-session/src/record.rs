//! The recorder on a thread of its own. The relay hands it each chunk (with
//! the relay's timestamp) through a bounded channel, so encoding, hashing and
//! writing the recording overlap with relaying instead of delaying the next
//! read of the PTY. The channel's bound is the backpressure: a slow disk
//! slows the relay down rather than growing memory. Small output (an echo)
//! is held in the relay for up to [`HOLD`] and sent with what follows, each
//! event with its own timestamp: waking the thread for every keystroke's
//! echo costs the echo latency on a busy machine.
//!
//! Start it only after every fork (fork in a multi-threaded process is unsafe).

use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;

use jit_recording::asciicast::{Finished, RecordError, Recorder};

/// Messages queued for the thread at most. With the one it encodes and the
/// one the relay fills, at most `QUEUE + 2` output buffers exist.
const QUEUE: usize = 4;
/// How long output may wait in the relay for more to send with it.
pub const HOLD: Duration = Duration::from_millis(5);
/// Held output of this size is sent at once.
const SEND_AT: usize = 16 * 1024;

enum Event {
    /// Output events: their bytes, and where each ends with its timestamp.
    Output(Vec<u8>, Vec<(Instant, usize)>),
    Input(Instant, Vec<u8>),
    Resize(Instant, u16, u16),
    Marker(Instant, String),
}

/// What [`Recorder::finish`] returns.
pub type Finish<W> = Result<(Finished, W), (RecordError, Finished)>;

/// The relay's handle on the recorder thread.
pub struct Recording<W> {
    events: SyncSender<Event>,
    /// Chunk buffers coming back for reuse.
    spare: Receiver<Vec<u8>>,
    /// The first write failure (at most one is sent).
    failure: Receiver<RecordError>,
    /// Readable once a failure was sent: wakes the relay's poll.
    failure_fd: OwnedFd,
    thread: JoinHandle<Finish<W>>,
    /// Output not sent yet, and where each of its events ends.
    held: Vec<u8>,
    held_ends: Vec<(Instant, usize)>,
}

/// The thread's ends.
struct Worker {
    events: Receiver<Event>,
    spare: SyncSender<Vec<u8>>,
    failure: SyncSender<RecordError>,
    failure_fd: OwnedFd,
}

impl<W: Write + Send + 'static> Recording<W> {
    /// Moves `recorder` to a new thread.
    pub fn start(recorder: Recorder<W>) -> Result<Recording<W>, RecordError> {
        let (events_tx, events_rx) = mpsc::sync_channel(QUEUE);
        let (spare_tx, spare_rx) = mpsc::sync_channel(QUEUE + 2);
        let (failure_tx, failure_rx) = mpsc::sync_channel(1);
        let (wake_r, wake_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)
            .map_err(|e| RecordError::Start(e.into()))?;
        let worker = Worker {
            events: events_rx,
            spare: spare_tx,
            failure: failure_tx,
            failure_fd: wake_w,
        };
        let thread = std::thread::Builder::new()
            .name("recorder".into())
            .spawn(move || worker.run(recorder))
            .map_err(RecordError::Start)?;
        Ok(Recording {
            events: events_tx,
            spare: spare_rx,
            failure: failure_rx,
            failure_fd: wake_r,
            thread,
            held: Vec::new(),
            held_ends: Vec::new(),
        })
    }
}

impl<W> Recording<W> {
    /// An empty buffer (a returned one when there is one).
    fn buffer(&self) -> Vec<u8> {
        self.spare.try_recv().unwrap_or_default()
    }

    /// An output event (held until [`SEND_AT`] bytes or [`HOLD`]).
    pub fn output(&mut self, at: Instant, data: &[u8]) -> Result<(), RecordError> {
        if self.held.is_empty() {
            self.held = self.buffer();
        }
        self.held.extend_from_slice(data);
        self.held_ends.push((at, self.held.len()));
        if self.held.len() >= SEND_AT {
            return self.send_held();
        }
        Ok(())
    }

    /// When held output is due (for the relay's poll timeout).
    pub fn held_until(&self) -> Option<Instant> {
        self.held_ends.first().map(|&(at, _)| at + HOLD)
    }

    /// Sends held output that has waited [`HOLD`].
    pub fn send_due(&mut self, now: Instant) -> Result<(), RecordError> {
        match self.held_until() {
            Some(due) if due <= now => self.send_held(),
            _ => Ok(()),
        }
    }

    pub fn input(&mut self, at: Instant, data: &[u8]) -> Result<(), RecordError> {
        let mut buf = self.buffer();
        buf.extend_from_slice(data);
        self.send(Event::Input(at, buf))
    }

    pub fn resize(&mut self, at: Instant, cols: u16, rows: u16) -> Result<(), RecordError> {
        self.send(Event::Resize(at, cols, rows))
    }

    pub fn marker(&mut self, at: Instant, label: &str) -> Result<(), RecordError> {
        self.send(Event::Marker(at, label.to_string()))
    }

    fn send_held(&mut self) -> Result<(), RecordError> {
        if self.held_ends.is_empty() {
            return Ok(());
        }
        let data = std::mem::take(&mut self.held);
        let ends = std::mem::take(&mut self.held_ends);
        self.send_now(Event::Output(data, ends))
    }

    /// Any other event goes after the output held before it.
    fn send(&mut self, event: Event) -> Result<(), RecordError> {
        self.send_held()?;
        self.send_now(event)
    }

    fn send_now(&self, event: Event) -> Result<(), RecordError> {
        // The thread only leaves its loop when this sender is dropped, so a
        // closed channel means it panicked.
        self.events.send(event).map_err(|_| RecordError::Stopped)
    }

    /// Polled by the relay: readable when the recording has failed.
    pub fn failure_fd(&self) -> BorrowedFd<'_> {
        self.failure_fd.as_fd()
    }

    /// The failure that made `failure_fd` readable, if any.
    pub fn take_failure(&self) -> Option<RecordError> {
        let mut b = [0u8; 8];
        let _ = nix::unistd::read(&self.failure_fd, &mut b);
        self.failure.try_recv().ok()
    }

    /// Lets the thread write what is queued and held back, and returns what
    /// [`Recorder::finish`] returned. A failure the relay did not take is
    /// reported instead of the later "already failed"; a thread that
    /// panicked leaves no digest (empty).
    pub fn finish(mut self) -> Finish<W> {
        // A failure here is the thread's, and it reports it below.
        let _ = self.send_held();
        let Recording {
            events,
            failure,
            thread,
            ..
        } = self;
        drop(events);
        let result = thread.join().unwrap_or_else(|_| {
            Err((
                RecordError::Stopped,
                Finished {
                    sha256: String::new(),
                    bytes: 0,
                },
            ))
        });
        match (result, failure.try_recv()) {
            (Err((_, finished)), Ok(first)) => Err((first, finished)),
            (result, _) => result,
        }
    }
}

impl Worker {
    fn run<W: Write>(self, mut rec: Recorder<W>) -> Finish<W> {
        let mut failed = false;
        loop {
            // Wake up for the next flush that is due, so buffered data waits
            // at most a second even when the session is idle.
            let due = rec.next_flush().filter(|_| !failed);
            let event = match due {
                Some(at) => match self
                    .events
                    .recv_timeout(at.saturating_duration_since(Instant::now()))
                {
                    Ok(e) => Some(e),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => break,
                },
                None => match self.events.recv() {
                    Ok(e) => Some(e),
                    Err(_) => break,
                },
            };
            if failed {
                // Keep draining so the relay never blocks on a full queue.
                if let Some(e) = event {
                    self.recycle(e);
                }
                continue;
            }
            let result = match event {
                Some(e) => {
                    let r = apply(&mut rec, &e);
                    self.recycle(e);
                    r.and_then(|()| rec.flush_if_due(Instant::now()))
                }
                None => rec.flush_if_due(Instant::now()),
            };
            if let Err(e) = result {
                failed = true;
                let _ = self.failure.try_send(e);
                let _ = nix::unistd::write(&self.failure_fd, &[1]);
            }
        }
        rec.finish(Instant::now())
    }

    fn recycle(&self, event: Event) {
        if let Event::Output(mut buf, _) | Event::Input(_, mut buf) = event {
            buf.clear();
            let _ = self.spare.try_send(buf);
        }
    }
}

fn apply<W: Write>(rec: &mut Recorder<W>, event: &Event) -> Result<(), RecordError> {
    match event {
        Event::Output(data, ends) => {
            let mut start = 0;
            for &(at, end) in ends {
                rec.output(at, &data[start..end])?;
                start = end;
            }
            Ok(())
        }
        Event::Input(at, data) => rec.input(*at, data),
        Event::Resize(at, cols, rows) => rec.resize(*at, *cols, *rows),
        Event::Marker(at, label) => rec.marker(*at, label),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jit_recording::asciicast::test_support::{header, Full, Shared};
    use jit_recording::asciicast::FLUSH_INTERVAL;
    use std::time::Duration;

    #[test]
    fn same_file_and_digest_as_the_recorder_itself() {
        let t0 = Instant::now();
        let mut direct = Recorder::new(Vec::new(), &header(), t0).unwrap();
        let mut rec = Recording::start(Recorder::new(Vec::new(), &header(), t0).unwrap()).unwrap();
        let euro = "€".as_bytes();
        // Ends on a whole character: finish() writes nothing held back.
        for i in 0..=3000u32 {
            let at = t0 + Duration::from_micros(u64::from(i));
            let chunk = [b"line ".as_slice(), &euro[..(i % 3) as usize]].concat();
            direct.output(at, &chunk).unwrap();
            rec.output(at, &chunk).unwrap();
        }
        direct.resize(t0, 100, 40).unwrap();
        rec.resize(t0, 100, 40).unwrap();
        direct.input(t0, b"ls\r").unwrap();
        rec.input(t0, b"ls\r").unwrap();
        direct.marker(t0, "end: exit").unwrap();
        rec.marker(t0, "end: exit").unwrap();
        let (want, want_file) = direct.finish(t0).map_err(|(e, _)| e).unwrap();
        let (got, got_file) = rec.finish().map_err(|(e, _)| e).unwrap();
        assert_eq!(got, want);
        assert_eq!(got_file, want_file);
    }

    #[test]
    fn small_output_is_held_until_due_or_another_event() {
        let t0 = Instant::now();
        let sink = Shared::default();
        let mut rec =
            Recording::start(Recorder::new(sink.clone(), &header(), t0).unwrap()).unwrap();
        rec.output(t0, b"a").unwrap();
        rec.output(t0 + Duration::from_millis(1), b"b").unwrap();
        assert_eq!(rec.held_until(), Some(t0 + HOLD));
        rec.send_due(t0 + HOLD - Duration::from_micros(1)).unwrap();
        assert_eq!(rec.held_until(), Some(t0 + HOLD));
        rec.send_due(t0 + HOLD).unwrap();
        assert_eq!(rec.held_until(), None);
        rec.output(t0 + Duration::from_millis(7), b"c").unwrap();
        // Sent before the marker, so the file keeps the order.
        rec.marker(t0 + Duration::from_millis(8), "m").unwrap();
        assert_eq!(rec.held_until(), None);
        let (_, out) = rec.finish().map_err(|(e, _)| e).unwrap();
        let text = String::from_utf8(out.contents()).unwrap();
        let events: Vec<&str> = text.lines().skip(1).collect();
        assert_eq!(
            events,
            [
                r#"[0.0,"o","a"]"#,
                r#"[0.001,"o","b"]"#,
                r#"[0.007,"o","c"]"#,
                r#"[0.008,"m","m"]"#
            ]
        );
    }

    #[test]
    fn flushes_within_the_interval_when_idle() {
        let t0 = Instant::now();
        let sink = Shared::default();
        let mut rec =
            Recording::start(Recorder::new(sink.clone(), &header(), t0).unwrap()).unwrap();
        rec.marker(Instant::now(), "x").unwrap();
        std::thread::sleep(FLUSH_INTERVAL);
        // No further event: only the thread's own timer writes it (a loaded
        // machine may run the thread late, hence the wait).
        let deadline = Instant::now() + Duration::from_secs(5);
        while sink.contents().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!sink.contents().is_empty());
        rec.finish().map_err(|(e, _)| e).unwrap();
    }

    /// Takes so many bytes, then the disk is full.
    #[test]
    fn a_full_disk_wakes_the_relay_and_the_relay_never_blocks() {
        let t0 = Instant::now();
        let mut rec = Recording::start(Recorder::new(Full(100), &header(), t0).unwrap()).unwrap();
        // Far more than the queue holds: sends keep going after the failure.
        let chunk = vec![b'a'; 64 * 1024];
        for _ in 0..64 {
            rec.output(t0, &chunk).unwrap();
        }
        let mut fds = [nix::poll::PollFd::new(
            rec.failure_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        assert_eq!(
            nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(5000u16)).unwrap(),
            1
        );
        assert!(matches!(rec.take_failure(), Some(RecordError::NoSpace(_))));
        let (err, fin) = rec.finish().unwrap_err();
        assert!(matches!(err, RecordError::Failed), "{err:?}");
        assert_eq!(fin.bytes, 100);
    }

    #[test]
    fn an_untaken_failure_is_what_finish_reports() {
        let t0 = Instant::now();
        let rec = Recording::start(Recorder::new(Full(10), &header(), t0).unwrap()).unwrap();
        let (err, _) = rec.finish().unwrap_err();
        assert!(matches!(err, RecordError::NoSpace(_)), "{err:?}");
    }
}
