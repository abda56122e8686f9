//! The session recorder: asciicast v2, buffered, hashed as it is written.
//!
//! Pure: no PTY, no clock of its own (callers pass `Instant`s), any `Write`.
//!
//! Text encoding of "o" and "i" events: the bytes are UTF-8 text, except
//! that each byte `b` of a sequence that is not valid UTF-8 — and each byte
//! of a character in U+10FF00..=U+10FFFF, so that the mapping stays
//! reversible — is recorded as the character U+10FF00+b (plane 16, private
//! use). [`decode_output`] restores the exact bytes. A UTF-8 sequence cut
//! by the end of a read is held back and completed by the next read.

use std::io::{self, Write};
use std::time::{Duration, Instant};

use ring::digest;
use serde_json::{json, Value};

use crate::json_string;

/// Documented in every header (`jit.encoding`).
pub const ENCODING: &str =
    "utf-8; each byte b of invalid UTF-8 or of U+10FF00..U+10FFFF recorded as U+10FF00+b";

/// First character of the escape range.
const ESCAPE_BASE: u32 = 0x10_FF00;
/// Buffered bytes that trigger a write regardless of time.
const BUFFER_LIMIT: usize = 64 * 1024;
/// Data is never held longer than this: a live watcher (`jitctl
/// recordings watch`) sees output within it, and a busy session still
/// writes at most ten times a second between full buffers.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(100);

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("no space left for the recording: {0}")]
    NoSpace(#[source] io::Error),
    #[error("cannot write the recording: {0}")]
    Write(#[source] io::Error),
    /// A login shell's recording: jitd closed the pipe (its disk is full, or
    /// it stopped).
    #[error("jitd stopped taking the recording (its disk may be full, or it stopped)")]
    Closed(#[source] io::Error),
    #[error("the recording already failed")]
    Failed,
    #[error("cannot start the recorder: {0}")]
    Start(#[source] io::Error),
    #[error("the recorder stopped unexpectedly")]
    Stopped,
}

impl RecordError {
    fn from_io(e: io::Error) -> RecordError {
        if e.raw_os_error() == Some(libc::ENOSPC) || e.raw_os_error() == Some(libc::EDQUOT) {
            RecordError::NoSpace(e)
        } else if e.raw_os_error() == Some(libc::EPIPE) {
            RecordError::Closed(e)
        } else {
            RecordError::Write(e)
        }
    }
}

/// What goes into the header line.
#[derive(Debug, Clone)]
pub struct Header {
    pub width: u16,
    pub height: u16,
    /// Unix seconds.
    pub timestamp: i64,
    pub command: String,
    pub term: String,
    pub shell: String,
    /// The `jit` object (grant, user, resource, ...); `encoding` is added.
    pub jit: Value,
}

/// What the file ended up as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub sha256: String,
    pub bytes: u64,
}

impl Finished {
    /// Nothing written: the digest of no bytes.
    pub fn empty() -> Finished {
        Finished {
            sha256: hex(digest::digest(&digest::SHA256, b"").as_ref()),
            bytes: 0,
        }
    }

    /// The digest and size of what `file` holds: a recording checked
    /// against the audit trail, or one jitd seals because its writer is gone.
    pub fn of(mut file: impl io::Read) -> io::Result<Finished> {
        let mut hash = digest::Context::new(&digest::SHA256);
        let mut bytes = 0u64;
        let mut buf = vec![0u8; BUFFER_LIMIT];
        loop {
            match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    hash.update(&buf[..n]);
                    bytes += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Finished {
            sha256: hex(hash.finish().as_ref()),
            bytes,
        })
    }
}

/// Which stream an event belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stream {
    Output,
    Input,
}

pub struct Recorder<W: Write> {
    out: W,
    start: Instant,
    buf: Vec<u8>,
    last_flush: Instant,
    /// None for a sender ([`Recorder::sender`]): only the reader's digest counts.
    hash: Option<digest::Context>,
    written: u64,
    /// Incomplete UTF-8 at the end of the last read, per stream.
    tail_out: Vec<u8>,
    tail_in: Vec<u8>,
    failed: bool,
}

impl<W: Write> Recorder<W> {
    /// Writes the header (buffered) and starts the clock at `start`.
    pub fn new(out: W, header: &Header, start: Instant) -> Result<Recorder<W>, RecordError> {
        let mut rec = Recorder::events_only(out, start);
        serde_json::to_writer(&mut rec.buf, &header_line(header)).map_err(json_error)?;
        rec.buf.push(b'\n');
        Ok(rec)
    }

    /// Writes events only, hashed, starting the clock at `start`.
    pub fn events_only(out: W, start: Instant) -> Recorder<W> {
        Recorder {
            hash: Some(digest::Context::new(&digest::SHA256)),
            ..Recorder::sender(out, start)
        }
    }

    /// Writes events only and hashes nothing: a session's recorder sending
    /// them through a pipe to jitd, which writes the header and computes
    /// the digest of what it receives (see [`crate::pipe`]). Its
    /// [`Finished::sha256`] is empty.
    pub fn sender(out: W, start: Instant) -> Recorder<W> {
        Recorder {
            out,
            start,
            buf: Vec::with_capacity(BUFFER_LIMIT + 8192),
            last_flush: start,
            hash: None,
            written: 0,
            tail_out: Vec::new(),
            tail_in: Vec::new(),
            failed: false,
        }
    }

    /// Event lines already encoded (and checked by the caller), written at
    /// once: jitd appending what a login shell's recorder sent.
    pub fn lines(&mut self, at: Instant, lines: &[u8]) -> Result<(), RecordError> {
        if self.failed {
            return Err(RecordError::Failed);
        }
        self.buf.extend_from_slice(lines);
        self.flush(at)
    }

    /// Output bytes from the session.
    pub fn output(&mut self, at: Instant, bytes: &[u8]) -> Result<(), RecordError> {
        self.data(at, Stream::Output, bytes)
    }

    /// Input bytes (keystrokes); only called when input recording is on.
    pub fn input(&mut self, at: Instant, bytes: &[u8]) -> Result<(), RecordError> {
        self.data(at, Stream::Input, bytes)
    }

    /// A terminal resize.
    pub fn resize(&mut self, at: Instant, cols: u16, rows: u16) -> Result<(), RecordError> {
        self.event(at, "r", &format!("{cols}x{rows}"))
    }

    /// A marker (warnings, extensions, the end).
    pub fn marker(&mut self, at: Instant, label: &str) -> Result<(), RecordError> {
        self.event(at, "m", label)
    }

    /// Writes buffered data if some has waited for [`FLUSH_INTERVAL`].
    pub fn flush_if_due(&mut self, now: Instant) -> Result<(), RecordError> {
        if now.saturating_duration_since(self.last_flush) >= FLUSH_INTERVAL {
            self.flush(now)?;
        }
        Ok(())
    }

    /// When `flush_if_due` next has something to do (for poll timeouts).
    pub fn next_flush(&self) -> Option<Instant> {
        (!self.buf.is_empty()).then(|| self.last_flush + FLUSH_INTERVAL)
    }

    /// Writes all buffered data to the underlying writer.
    pub fn flush(&mut self, now: Instant) -> Result<(), RecordError> {
        self.last_flush = now;
        if self.failed {
            return Err(RecordError::Failed);
        }
        if self.buf.is_empty() {
            return Ok(());
        }
        let mut done = 0;
        let result = loop {
            if done == self.buf.len() {
                break self.out.flush();
            }
            match self.out.write(&self.buf[done..]) {
                Ok(0) => break Err(io::Error::from_raw_os_error(libc::ENOSPC)),
                Ok(n) => {
                    if let Some(hash) = &mut self.hash {
                        hash.update(&self.buf[done..done + n]);
                    }
                    self.written += n as u64;
                    done += n;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        self.buf.drain(..done);
        result.map_err(|e| {
            self.failed = true;
            RecordError::from_io(e)
        })
    }

    /// The digest and size of what reached the writer so far (buffered
    /// bytes not included).
    pub fn written_so_far(&self) -> Finished {
        Finished {
            sha256: self.digest(),
            bytes: self.written,
        }
    }

    fn digest(&self) -> String {
        self.hash
            .clone()
            .map(|h| hex(h.finish().as_ref()))
            .unwrap_or_default()
    }

    /// Writes what is held back, flushes and returns the digest of the bytes
    /// that reached the writer, and the writer.
    pub fn finish(mut self, at: Instant) -> Result<(Finished, W), (RecordError, Finished)> {
        let mut result = Ok(());
        for stream in [Stream::Output, Stream::Input] {
            let tail = std::mem::take(self.tail_mut(stream));
            if !tail.is_empty() {
                let text = escape_all(&tail);
                result = result.and(self.event(at, stream.code(), &text));
            }
        }
        let result = result.and_then(|()| self.flush(at));
        let finished = Finished {
            sha256: self.digest(),
            bytes: self.written,
        };
        match result {
            Ok(()) => Ok((finished, self.out)),
            Err(e) => Err((e, finished)),
        }
    }

    fn tail_mut(&mut self, stream: Stream) -> &mut Vec<u8> {
        match stream {
            Stream::Output => &mut self.tail_out,
            Stream::Input => &mut self.tail_in,
        }
    }

    fn data(&mut self, at: Instant, stream: Stream, bytes: &[u8]) -> Result<(), RecordError> {
        let tail = std::mem::take(self.tail_mut(stream));
        let text = if tail.is_empty() {
            let (text, rest) = encode(bytes);
            *self.tail_mut(stream) = rest.to_vec();
            text
        } else {
            let mut joined = tail;
            joined.extend_from_slice(bytes);
            let (text, rest) = encode(&joined);
            let rest = rest.to_vec();
            *self.tail_mut(stream) = rest;
            text
        };
        if text.is_empty() {
            return Ok(());
        }
        self.event(at, stream.code(), &text)
    }

    fn event(&mut self, at: Instant, code: &str, text: &str) -> Result<(), RecordError> {
        if self.failed {
            return Err(RecordError::Failed);
        }
        let micros = at.saturating_duration_since(self.start).as_micros();
        let secs = micros as f64 / 1e6;
        // `[secs,"code","text"]`, as serde_json writes the tuple.
        self.buf.push(b'[');
        serde_json::to_writer(&mut self.buf, &secs).map_err(json_error)?;
        self.buf.push(b',');
        json_string::push(&mut self.buf, code);
        self.buf.push(b',');
        json_string::push(&mut self.buf, text);
        self.buf.extend_from_slice(b"]\n");
        if self.buf.len() >= BUFFER_LIMIT {
            self.flush(at)?;
        }
        Ok(())
    }
}

/// The header line's JSON (the `jit` object gets `encoding`).
fn header_line(header: &Header) -> Value {
    let mut jit = header.jit.clone();
    if let Value::Object(map) = &mut jit {
        map.insert("encoding".into(), Value::String(ENCODING.into()));
    } else {
        jit = json!({ "value": jit, "encoding": ENCODING });
    }
    json!({
        "version": 2,
        "width": header.width,
        "height": header.height,
        "timestamp": header.timestamp,
        "command": header.command,
        "env": { "TERM": header.term, "SHELL": header.shell },
        "jit": jit,
    })
}

/// Serializing into a `Vec` fails only on a non-string map key, which these
/// values never have; typed anyway rather than a panic.
fn json_error(e: serde_json::Error) -> RecordError {
    RecordError::Write(io::Error::other(e))
}

impl Stream {
    fn code(self) -> &'static str {
        match self {
            Stream::Output => "o",
            Stream::Input => "i",
        }
    }
}

/// Encodes `bytes` as event text; returns the text and an incomplete UTF-8
/// sequence at the end to be completed by the next read.
pub fn encode(bytes: &[u8]) -> (String, &[u8]) {
    let mut text = String::with_capacity(bytes.len());
    let mut rest = bytes;
    loop {
        match std::str::from_utf8(rest) {
            Ok(valid) => {
                push_valid(&mut text, valid);
                return (text, &[]);
            }
            Err(e) => {
                let (valid, after) = rest.split_at(e.valid_up_to());
                // from_utf8 vouched for this prefix.
                push_valid(&mut text, std::str::from_utf8(valid).unwrap_or_default());
                match e.error_len() {
                    Some(n) => {
                        for &b in &after[..n] {
                            text.push(escape(b));
                        }
                        rest = &after[n..];
                    }
                    None => return (text, after),
                }
            }
        }
    }
}

/// Every byte escaped (a tail that never got completed).
fn escape_all(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| escape(b)).collect()
}

fn escape(b: u8) -> char {
    // U+10FF00..=U+10FFFF are all scalar values: the fallback never happens.
    char::from_u32(ESCAPE_BASE + u32::from(b)).unwrap_or(char::REPLACEMENT_CHARACTER)
}

fn push_valid(text: &mut String, valid: &str) {
    // Characters of the escape range are encoded F4 8F BC..BF xx.
    if !valid.as_bytes().contains(&0xF4) {
        text.push_str(valid);
        return;
    }
    for c in valid.chars() {
        if u32::from(c) >= ESCAPE_BASE {
            let mut utf8 = [0; 4];
            for &b in c.encode_utf8(&mut utf8).as_bytes() {
                text.push(escape(b));
            }
        } else {
            text.push(c);
        }
    }
}

/// Restores the exact bytes of an "o" or "i" event's text.
pub fn decode_output(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        let u = u32::from(c);
        if u >= ESCAPE_BASE {
            out.push((u - ESCAPE_BASE) as u8);
        } else {
            let mut utf8 = [0; 4];
            out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
        }
    }
    out
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Fixtures for the recorder's tests and jit-session's recording thread's
/// (feature `test-support`).
#[cfg(any(test, feature = "test-support"))]
pub mod test_support {
    use super::Header;
    use std::io::{self, Write};
    use std::sync::{Arc, Mutex};

    pub fn header() -> Header {
        Header {
            width: 80,
            height: 24,
            timestamp: 1_700_000_000,
            command: "/bin/bash".into(),
            term: "xterm-256color".into(),
            shell: "/bin/bash".into(),
            jit: serde_json::json!({ "grant": 7, "user": "alice" }),
        }
    }

    /// A writer whose contents the test can see while a recorder owns it.
    #[derive(Clone, Default)]
    pub struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Shared {
        pub fn contents(&self) -> Vec<u8> {
            self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
        }
    }

    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A disk with room for this many more bytes, then ENOSPC.
    #[derive(Debug)]
    pub struct Full(pub usize);

    impl Write for Full {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            if self.0 == 0 {
                return Err(io::Error::from_raw_os_error(libc::ENOSPC));
            }
            let n = b.len().min(self.0);
            self.0 -= n;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{header, Full, Shared};
    use super::*;

    fn lines(bytes: &[u8]) -> Vec<Value> {
        std::str::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn finish(rec: Recorder<Vec<u8>>, at: Instant) -> (Finished, Vec<u8>) {
        rec.finish(at).map_err(|(e, _)| e).unwrap()
    }

    #[test]
    fn header_fields() {
        let t0 = Instant::now();
        let rec = Recorder::new(Vec::new(), &header(), t0).unwrap();
        let (_, out) = finish(rec, t0);
        let l = lines(&out);
        assert_eq!(l.len(), 1);
        let h = &l[0];
        assert_eq!(h["version"], 2);
        assert_eq!(h["width"], 80);
        assert_eq!(h["height"], 24);
        assert_eq!(h["timestamp"], 1_700_000_000);
        assert_eq!(h["command"], "/bin/bash");
        assert_eq!(h["env"]["TERM"], "xterm-256color");
        assert_eq!(h["env"]["SHELL"], "/bin/bash");
        assert_eq!(h["jit"]["grant"], 7);
        assert_eq!(h["jit"]["user"], "alice");
        assert_eq!(h["jit"]["encoding"], ENCODING);
    }

    #[test]
    fn events_of_each_kind() {
        let t0 = Instant::now();
        let mut rec = Recorder::new(Vec::new(), &header(), t0).unwrap();
        rec.output(t0 + Duration::from_millis(1500), b"hello\x1b[0m\r\n")
            .unwrap();
        rec.resize(t0 + Duration::from_secs(2), 120, 40).unwrap();
        rec.marker(t0 + Duration::from_secs(3), "expiring").unwrap();
        rec.input(t0 + Duration::from_micros(3_000_001), b"ls\r")
            .unwrap();
        let (_, out) = finish(rec, t0 + Duration::from_secs(4));
        let l = lines(&out);
        assert_eq!(l[1], json!([1.5, "o", "hello\u{1b}[0m\r\n"]));
        assert_eq!(l[2], json!([2.0, "r", "120x40"]));
        assert_eq!(l[3], json!([3.0, "m", "expiring"]));
        assert_eq!(l[4], json!([3.000001, "i", "ls\r"]));
        assert_eq!(l.len(), 5);
    }

    #[test]
    fn utf8_split_across_reads_is_intact() {
        let t0 = Instant::now();
        let mut rec = Recorder::new(Vec::new(), &header(), t0).unwrap();
        let euro = "€".as_bytes(); // E2 82 AC
        rec.output(t0, &[b'a', euro[0]]).unwrap();
        rec.output(t0, &[euro[1]]).unwrap();
        rec.output(t0, &[euro[2], b'b']).unwrap();
        let (_, out) = finish(rec, t0);
        let l = lines(&out);
        assert_eq!(l[1], json!([0.0, "o", "a"]));
        assert_eq!(l[2], json!([0.0, "o", "€b"]));
        assert_eq!(l.len(), 3);
    }

    #[test]
    fn cut_sequence_that_never_completes_is_escaped() {
        let t0 = Instant::now();
        let mut rec = Recorder::new(Vec::new(), &header(), t0).unwrap();
        rec.output(t0, &[b'a', 0xE2, 0x82]).unwrap();
        rec.output(t0, b"z").unwrap();
        rec.output(t0, &[0xF0, 0x9F]).unwrap();
        let (_, out) = finish(rec, t0);
        let l = lines(&out);
        let texts: Vec<u8> = l[1..]
            .iter()
            .flat_map(|e| decode_output(e[2].as_str().unwrap()))
            .collect();
        assert_eq!(texts, [b'a', 0xE2, 0x82, b'z', 0xF0, 0x9F]);
    }

    #[test]
    fn escape_range_characters_round_trip() {
        let s = "x\u{10FF41}\u{10FFFF}y";
        let (text, rest) = encode(s.as_bytes());
        assert!(rest.is_empty());
        assert_eq!(decode_output(&text), s.as_bytes());
        let (text, _) = encode(&[0xFF, 0x80, b'q']);
        assert_eq!(text, "\u{10FFFF}\u{10FF80}q");
    }

    /// xorshift64*: deterministic random bytes without a dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[test]
    fn random_bytes_split_at_random_points_round_trip() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let pieces: [&[u8]; 6] = [
            "é".as_bytes(),
            "€".as_bytes(),
            "😀".as_bytes(),
            "\u{10FF80}".as_bytes(),
            b"\x1b[31m",
            b"plain text ",
        ];
        for _ in 0..2000 {
            let len = rng.below(200);
            let mut data = Vec::with_capacity(len);
            while data.len() < len {
                if rng.below(3) == 0 {
                    data.extend_from_slice(pieces[rng.below(pieces.len())]);
                } else {
                    data.push(rng.next() as u8);
                }
            }
            let t0 = Instant::now();
            let mut rec = Recorder::new(Vec::new(), &header(), t0).unwrap();
            let mut at = 0;
            while at < data.len() {
                let n = 1 + rng.below(data.len() - at);
                rec.output(t0, &data[at..at + n]).unwrap();
                at += n;
            }
            let (_, out) = finish(rec, t0);
            let restored: Vec<u8> = lines(&out)[1..]
                .iter()
                .flat_map(|e| decode_output(e[2].as_str().unwrap()))
                .collect();
            assert_eq!(restored, data);
        }
    }

    #[test]
    fn valid_utf8_is_recorded_as_is() {
        let (text, rest) = encode("héllo wörld ✓".as_bytes());
        assert_eq!(text, "héllo wörld ✓");
        assert!(rest.is_empty());
    }

    #[test]
    fn flushes_when_due_and_not_before() {
        let t0 = Instant::now();
        let sink = Shared::default();
        let mut rec = Recorder::new(sink.clone(), &header(), t0).unwrap();
        let almost = FLUSH_INTERVAL - Duration::from_millis(1);
        rec.output(t0 + Duration::from_millis(10), b"x").unwrap();
        rec.flush_if_due(t0 + almost).unwrap();
        assert!(sink.contents().is_empty());
        assert_eq!(rec.next_flush(), Some(t0 + FLUSH_INTERVAL));
        rec.flush_if_due(t0 + FLUSH_INTERVAL).unwrap();
        assert_eq!(lines(&sink.contents()).len(), 2);
        assert_eq!(rec.next_flush(), None);
        // Big bursts are written without waiting.
        let big = vec![b'a'; BUFFER_LIMIT];
        rec.output(t0 + FLUSH_INTERVAL + Duration::from_millis(1), &big)
            .unwrap();
        assert_eq!(lines(&sink.contents()).len(), 3);
    }

    #[test]
    fn digest_is_that_of_the_file() {
        let t0 = Instant::now();
        let mut rec = Recorder::new(Vec::new(), &header(), t0).unwrap();
        for i in 0..5000u32 {
            rec.output(t0, format!("line {i}\r\n").as_bytes()).unwrap();
        }
        let (fin, out) = finish(rec, t0);
        assert_eq!(fin.bytes, out.len() as u64);
        let expect = hex(digest::digest(&digest::SHA256, &out).as_ref());
        assert_eq!(fin.sha256, expect);
    }

    #[test]
    fn the_digest_of_a_file_is_the_recorders() {
        let t0 = Instant::now();
        let mut rec = Recorder::new(Vec::new(), &header(), t0).unwrap();
        // More than one read of `of`'s buffer.
        for _ in 0..2000 {
            rec.output(t0, &[b'x'; 100]).unwrap();
        }
        let (fin, out) = finish(rec, t0);
        assert!(out.len() > BUFFER_LIMIT);
        assert_eq!(Finished::of(out.as_slice()).unwrap(), fin);
        assert_eq!(Finished::of(&b""[..]).unwrap(), Finished::empty());
    }

    #[test]
    fn written_so_far_is_the_digest_of_what_reached_the_writer() {
        let t0 = Instant::now();
        let before = Finished::empty();
        let mut rec = Recorder::new(Vec::new(), &header(), t0).unwrap();
        assert_eq!(rec.written_so_far(), before);
        rec.flush(t0).unwrap();
        let so_far = rec.written_so_far();
        let (finished, out) = finish(rec, t0);
        assert_eq!(so_far, finished);
        assert_eq!(so_far.bytes, out.len() as u64);
    }

    #[test]
    fn enospc_is_a_typed_error() {
        let t0 = Instant::now();
        let mut rec = Recorder::new(Full(1000), &header(), t0).unwrap();
        let big = vec![b'a'; 2 * BUFFER_LIMIT];
        let err = rec.output(t0, &big).unwrap_err();
        assert!(matches!(err, RecordError::NoSpace(_)), "{err:?}");
        assert!(matches!(
            rec.output(t0, b"more").unwrap_err(),
            RecordError::Failed
        ));
        let (err, fin) = rec.finish(t0).unwrap_err();
        assert!(matches!(err, RecordError::Failed));
        assert_eq!(fin.bytes, 1000);
    }
}
