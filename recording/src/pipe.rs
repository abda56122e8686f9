//! A session's recording travels through a pipe to jitd, which owns the file
//! and computes its digest from the bytes it receives: a root session's
//! recorder (which the recorded root shell could tamper with) and a login
//! shell's (run by the user, threat T17) both only send. jitd writes the
//! header; jit-session sends asciicast event lines; jitd checks every line,
//! appends it and hashes the file itself ([`Follower`]). The recording ends
//! when its recorder closes it over the bus (`CloseRecording`, accepted from
//! that process only), when the recorder exits, or when the grant ends.
//! There is no end line in the pipe: a line that is not a valid event ends
//! the recording as terminated.
//!
//! Both sides live here so that they cannot drift apart.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Instant;

use nix::poll::{PollFd, PollFlags, PollTimeout};

use crate::asciicast::{Finished, Recorder};
use crate::json_string;
use crate::End;

/// The longest line accepted. A recorder's event holds at most one relay
/// chunk (64 KiB, each byte at most 6 in JSON), well under this.
pub const MAX_LINE: usize = 1 << 20;
/// Bytes read from the pipe at a time.
const READ_CHUNK: usize = 256 * 1024;
/// The pipe's buffer: room for several of the recorder's writes (64 KiB
/// each), so that the recorder rarely waits for the reader, and the reader
/// takes what came in one read.
const PIPE_SIZE: i32 = 1 << 20;

/// A recording's pipe (read end, write end), close-on-exec, with a buffer
/// of [`PIPE_SIZE`] where the system allows it (the default otherwise).
pub fn recording_pipe() -> io::Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    // Only a matter of speed: above /proc/sys/fs/pipe-max-size for an
    // unprivileged caller, or over its pipe quota, it stays as it is.
    let _ = fcntl(&write, FcntlArg::F_SETPIPE_SZ(PIPE_SIZE));
    Ok((read, write))
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PipeError {
    #[error("a line longer than {MAX_LINE} bytes")]
    TooLong,
    #[error("not an asciicast event line: {0}")]
    Invalid(&'static str),
}

/// Checks one line (without its newline): an asciicast event exactly as
/// jit-session writes it, `[TIME,"CODE","TEXT"]` without spaces, in UTF-8.
/// Input ("i") events are accepted only when the configuration records
/// input. One pass over the line: this runs on every byte of every session.
pub fn check_line(line: &[u8], record_input: bool) -> Result<(), PipeError> {
    let invalid = |why| Err(PipeError::Invalid(why));
    let Some(rest) = line.strip_prefix(b"[") else {
        return invalid("an event is a JSON array");
    };
    let Some(comma) = rest.iter().position(|&b| b == b',') else {
        return invalid("an event has three fields");
    };
    let (time, rest) = rest.split_at(comma);
    // The time is short: serde_json applies JSON's number grammar.
    if !serde_json::from_slice::<f64>(time).is_ok_and(|t| t.is_finite() && t >= 0.0) {
        return invalid("bad event time");
    }
    let (code, text) = match rest {
        [b',', b'"', code, b'"', b',', b'"', text @ ..] => (*code, text),
        _ => return invalid("bad event code"),
    };
    match code {
        b'o' | b'r' | b'm' => {}
        b'i' if record_input => {}
        b'i' => return invalid("input is not recorded"),
        _ => return invalid("unknown event code"),
    }
    let Some(end) = json_string::content_end(text) else {
        return invalid("event data is not a JSON string");
    };
    if &text[end..] != b"\"]" {
        return invalid("an event has three fields");
    }
    if std::str::from_utf8(&text[..end]).is_err() {
        return invalid("event data is not UTF-8");
    }
    Ok(())
}

/// Splits what the pipe delivers into lines, holding at most [`MAX_LINE`]
/// bytes of an incomplete one.
#[derive(Debug, Default)]
pub struct Lines {
    pending: Vec<u8>,
}

impl Lines {
    /// Appends `data`; returns the complete lines (each with its newline),
    /// in one buffer, or an error if a line grew past [`MAX_LINE`].
    pub fn feed(&mut self, data: &[u8]) -> Result<Vec<u8>, PipeError> {
        let Some(last) = memchr::memrchr(b'\n', data) else {
            self.hold(data)?;
            return Ok(Vec::new());
        };
        let mut complete = std::mem::take(&mut self.pending);
        complete.extend_from_slice(&data[..=last]);
        self.hold(&data[last + 1..])?;
        let mut start = 0;
        for newline in memchr::memchr_iter(b'\n', &complete) {
            if newline - start > MAX_LINE {
                return Err(PipeError::TooLong);
            }
            start = newline + 1;
        }
        Ok(complete)
    }

    /// Bytes of an incomplete line left at EOF.
    pub fn has_partial(&self) -> bool {
        !self.pending.is_empty()
    }

    fn hold(&mut self, data: &[u8]) -> Result<(), PipeError> {
        if self.pending.len() + data.len() > MAX_LINE {
            return Err(PipeError::TooLong);
        }
        self.pending.extend_from_slice(data);
        Ok(())
    }
}

/// How many bytes of `complete` (whole lines) are events to append, and
/// the problem with the line after them, if one is not an event.
fn checked_events(complete: &[u8], record_input: bool) -> (usize, Option<PipeError>) {
    let mut start = 0;
    for newline in memchr::memchr_iter(b'\n', complete) {
        if let Err(e) = check_line(&complete[start..newline], record_input) {
            return (start, Some(e));
        }
        start = newline + 1;
    }
    (start, None)
}

/// Why a recording ended otherwise than by its recorder's close.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub end: End,
    pub problem: String,
}

impl Failure {
    fn terminated(problem: impl Into<String>) -> Failure {
        Failure {
            end: End::Terminated,
            problem: problem.into(),
        }
    }
}

/// What stopped [`Follower::follow`].
#[derive(Debug, PartialEq, Eq)]
pub enum Stop {
    /// Every writer closed the pipe.
    Eof,
    /// `wake[i]` polled readable.
    Woken(usize),
    /// A line that is not an event, a read error, or a failed write (full
    /// disk): the recording cannot go on. The caller closes the pipe, so
    /// the recorder's next write fails and its session ends.
    Failed(Failure),
}

/// The reading side of a recording's pipe: appends the checked events to
/// a recorder whose header is written, hashing what it writes.
pub struct Follower<W: Write> {
    recorder: Recorder<W>,
    pipe: File,
    lines: Lines,
    buf: Vec<u8>,
    record_input: bool,
}

impl<W: Write> Follower<W> {
    pub fn new(recorder: Recorder<W>, pipe: File, record_input: bool) -> Follower<W> {
        Follower {
            recorder,
            pipe,
            lines: Lines::default(),
            buf: vec![0; READ_CHUNK],
            record_input,
        }
    }

    /// Copies events until the pipe ends, a descriptor of `wake` polls
    /// readable (checked first: what the pipe still holds is for
    /// [`Follower::drain`]), or a problem.
    pub fn follow(&mut self, wake: &[BorrowedFd]) -> Stop {
        loop {
            match ready(self.pipe.as_fd(), wake, PollTimeout::NONE) {
                Ready::Woken(i) => return Stop::Woken(i),
                Ready::Pipe => {}
                Ready::Nothing => continue,
            }
            match self.read_once() {
                Ok(true) => {}
                Ok(false) => return Stop::Eof,
                Err(failure) => return Stop::Failed(failure),
            }
        }
    }

    /// Copies what the pipe holds now, at most `reads` reads: the last
    /// events of a recorder that asked to close (it wrote them first),
    /// bounded, so that another writer of the pipe cannot hold the close up.
    pub fn drain(&mut self, reads: usize) -> Result<(), Failure> {
        for _ in 0..reads {
            if ready(self.pipe.as_fd(), &[], PollTimeout::ZERO) != Ready::Pipe
                || !self.read_once()?
            {
                break;
            }
        }
        Ok(())
    }

    /// Flushes and returns the digest and size of what reached the file,
    /// and the failure that ended it early, if any. An incomplete last line
    /// is not appended: it is not an event.
    pub fn finish(self) -> (Finished, Option<Failure>) {
        let partial = self.lines.has_partial();
        match self.recorder.finish(Instant::now()) {
            Ok((finished, _)) => (
                finished,
                partial.then(|| Failure::terminated("the pipe ended inside a line")),
            ),
            Err((e, finished)) => (
                finished,
                Some(Failure {
                    end: End::WriteFailed,
                    problem: e.to_string(),
                }),
            ),
        }
    }

    /// One read; false at EOF.
    fn read_once(&mut self) -> Result<bool, Failure> {
        let n = loop {
            match self.pipe.read(&mut self.buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Failure::terminated(format!("reading the pipe: {e}"))),
            }
        };
        if n == 0 {
            return Ok(false);
        }
        let complete = self
            .lines
            .feed(&self.buf[..n])
            .map_err(|e| Failure::terminated(e.to_string()))?;
        let (events, problem) = checked_events(&complete, self.record_input);
        self.recorder
            .lines(Instant::now(), &complete[..events])
            .map_err(|e| Failure {
                end: End::WriteFailed,
                problem: e.to_string(),
            })?;
        match problem {
            Some(e) => Err(Failure::terminated(e.to_string())),
            None => Ok(true),
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Ready {
    Pipe,
    Woken(usize),
    Nothing,
}

/// Polls `pipe` and `wake`; a readable `wake` descriptor comes first.
fn ready(pipe: BorrowedFd, wake: &[BorrowedFd], timeout: PollTimeout) -> Ready {
    let mut fds: Vec<PollFd> = std::iter::once(pipe)
        .chain(wake.iter().copied())
        .map(|fd| PollFd::new(fd, PollFlags::POLLIN))
        .collect();
    match nix::poll::poll(&mut fds, timeout) {
        Ok(_) => {}
        Err(nix::Error::EINTR) => return Ready::Nothing,
        // Let the read report it.
        Err(_) => return Ready::Pipe,
    }
    let is_ready = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
    if let Some(i) = fds[1..].iter().position(is_ready) {
        return Ready::Woken(i);
    }
    if is_ready(&fds[0]) {
        Ready::Pipe
    } else {
        Ready::Nothing
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Seek;

    /// What serde_json makes of a line, for the checks to agree with.
    fn serde_accepts(line: &[u8], record_input: bool) -> bool {
        let Ok(serde_json::Value::Array(event)) = serde_json::from_slice(line) else {
            return false;
        };
        let [time, code, data] = &event[..] else {
            return false;
        };
        time.as_f64().is_some_and(|t| t.is_finite() && t >= 0.0)
            && match code.as_str() {
                Some("o" | "r" | "m") => true,
                Some("i") => record_input,
                _ => false,
            }
            && data.is_string()
    }

    #[test]
    fn events_are_accepted() {
        for line in [
            &br#"[0.5,"o","hi\r\n"]"#[..],
            br#"[1,"r","80x24"]"#,
            br#"[2.0,"m","end: exit"]"#,
            br#"[0.0,"o",""]"#,
            br#"[1e3,"o","\"\\\/\b\f\n\r\t\u00e9\uD83D\uDE00"]"#,
            "[3.25,\"o\",\"caf\u{e9} \u{10FF41}\"]".as_bytes(),
        ] {
            assert_eq!(
                check_line(line, false),
                Ok(()),
                "{}",
                String::from_utf8_lossy(line)
            );
            assert!(
                serde_accepts(line, false),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
        assert_eq!(check_line(br#"[2.0,"i","ls"]"#, true), Ok(()));
    }

    #[test]
    fn anything_else_is_refused() {
        for line in [
            &br#"[2.0,"i","ls"]"#[..],
            br#"{"version":2}"#,
            br#"{"end":"exit"}"#,
            br#"[-1,"o","x"]"#,
            br#"["1","o","x"]"#,
            br#"[1,"x","x"]"#,
            br#"[1,"oo","x"]"#,
            br#"[1,"o",3]"#,
            br#"[1,"o"]"#,
            br#"[1,"o","x",4]"#,
            br#"[1,"o","x"] "#,
            br#"[1,"o","x"]]"#,
            br#"[1,"o","x"#,
            br#"[1,"o","x\"]"#,
            br#"[1,"o","\x"]"#,
            br#"[1,"o","\u12"]"#,
            br#"[1,"o","\u12g4"]"#,
            br#"[01,"o","x"]"#,
            br#"[1.,"o","x"]"#,
            br#"[NaN,"o","x"]"#,
            br#"[1e999,"o","x"]"#,
            b"[1,\"o\",\"tab\tinside\"]",
            b"[1,\"o\",\"\xff\"]",
            b"",
            b"not json",
            b"\"just a string\"",
        ] {
            assert!(
                check_line(line, false).is_err(),
                "{}",
                String::from_utf8_lossy(line)
            );
            assert!(!serde_accepts(line, false) || line.ends_with(b" "));
        }
    }

    /// Every line jit-session's recorder writes passes, whatever the bytes.
    #[test]
    fn the_recorders_own_lines_pass() {
        let mut rec = Recorder::events_only(Vec::new(), Instant::now());
        let all: Vec<u8> = (0..=255u8).collect();
        for chunk in all
            .chunks(7)
            .chain([&b"\xe2\x82"[..], b"\xac\xf4\x8f\xbc\x81"])
        {
            rec.output(Instant::now(), chunk).unwrap();
        }
        rec.marker(Instant::now(), "end: \"exit\"").unwrap();
        rec.resize(Instant::now(), 80, 24).unwrap();
        let (_, out) = rec.finish(Instant::now()).map_err(|(e, _)| e).unwrap();
        let (n, problem) = checked_events(&out, false);
        assert_eq!((n, problem), (out.len(), None));
    }

    #[test]
    fn lines_are_split_across_reads_and_bounded() {
        let mut lines = Lines::default();
        assert_eq!(lines.feed(b"[1,\"o\"").unwrap(), b"");
        assert!(lines.has_partial());
        assert_eq!(lines.feed(b",\"a\"]\n[2,").unwrap(), b"[1,\"o\",\"a\"]\n");
        assert_eq!(lines.feed(b"\"o\",\"b\"]\n").unwrap(), b"[2,\"o\",\"b\"]\n");
        assert!(!lines.has_partial());

        let mut lines = Lines::default();
        let chunk = vec![b'x'; 64 * 1024];
        let mut refused = false;
        for _ in 0..(MAX_LINE / chunk.len() + 2) {
            if lines.feed(&chunk).is_err() {
                refused = true;
                break;
            }
        }
        assert!(refused, "an endless line is refused");
        assert!(lines.pending.len() <= MAX_LINE);

        let mut big = vec![b'y'; MAX_LINE + 1];
        big.push(b'\n');
        assert_eq!(Lines::default().feed(&big), Err(PipeError::TooLong));
    }

    #[test]
    fn events_up_to_a_bad_line_are_appended() {
        let text = b"[0.1,\"o\",\"a\"]\n{\"version\":2}\n[0.2,\"o\",\"b\"]\n";
        let (n, problem) = checked_events(text, false);
        assert_eq!(&text[..n], b"[0.1,\"o\",\"a\"]\n");
        assert!(problem.is_some());
        let (n, problem) = checked_events(b"[0.1,\"i\",\"pw\"]\n", false);
        assert_eq!((n, problem.is_some()), (0, true));
    }

    fn follower() -> (Follower<File>, File, File) {
        let file = tempfile::tempfile().unwrap();
        let reader = file.try_clone().unwrap();
        let (read, write) = nix::unistd::pipe().unwrap();
        let rec = Recorder::events_only(file, Instant::now());
        (
            Follower::new(rec, File::from(read), false),
            File::from(write),
            reader,
        )
    }

    fn contents(mut file: File) -> String {
        let mut text = String::new();
        file.rewind().unwrap();
        file.read_to_string(&mut text).unwrap();
        text
    }

    #[test]
    fn events_are_copied_until_the_pipe_ends() {
        let (mut f, mut write, file) = follower();
        write
            .write_all(b"[0.1,\"o\",\"a\"]\n[0.2,\"o\",\"b\"]\n")
            .unwrap();
        drop(write);
        assert_eq!(f.follow(&[]), Stop::Eof);
        let (finished, failure) = f.finish();
        assert_eq!(failure, None);
        assert_eq!(finished.bytes, 28);
        assert_eq!(contents(file), "[0.1,\"o\",\"a\"]\n[0.2,\"o\",\"b\"]\n");
    }

    #[test]
    fn a_wake_stops_the_copy_and_a_drain_takes_what_is_left() {
        let (mut f, mut write, file) = follower();
        let (wake_r, wake_w) = nix::unistd::pipe().unwrap();
        write.write_all(b"[0.1,\"o\",\"a\"]\n").unwrap();
        drop(wake_w);
        // A writer that keeps the pipe open does not hold the close up.
        assert_eq!(f.follow(&[wake_r.as_fd()]), Stop::Woken(0));
        f.drain(16).unwrap();
        let (_, failure) = f.finish();
        assert_eq!(failure, None);
        assert_eq!(contents(file), "[0.1,\"o\",\"a\"]\n");
        drop(write);
    }

    #[test]
    fn a_line_that_is_no_event_fails_after_the_good_ones() {
        let (mut f, mut write, file) = follower();
        write
            .write_all(b"[0.1,\"o\",\"a\"]\n{\"end\":\"exit\"}\n[0.2,\"o\",\"b\"]\n")
            .unwrap();
        let Stop::Failed(failure) = f.follow(&[]) else {
            panic!("a bad line was accepted");
        };
        assert_eq!(failure.end, End::Terminated);
        drop(f);
        assert_eq!(contents(file), "[0.1,\"o\",\"a\"]\n");
        // The read end is closed: the writer learns at once.
        assert!(write.write_all(b"[1,\"o\",\"c\"]\n").is_err());
    }

    #[test]
    fn a_pipe_ending_inside_a_line_is_terminated() {
        let (mut f, mut write, _file) = follower();
        write.write_all(b"[0.1,\"o\",\"a\"]\n[0.2,\"o\"").unwrap();
        drop(write);
        assert_eq!(f.follow(&[]), Stop::Eof);
        let (finished, failure) = f.finish();
        assert_eq!(finished.bytes, 14);
        assert_eq!(failure.map(|f| f.end), Some(End::Terminated));
    }
}
