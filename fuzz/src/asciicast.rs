//! The recording format (asciicast v2 as jit writes it): the writer
//! (`Recorder`), jitd's reader of a login shell's events (`Lines` and
//! `check_line`, then `Recorder::lines`), and the decoding `recordings play`
//! applies to event text (`decode_output`).
//!
//! Input: a header and a script of recorder calls (`arbitrary`), and the
//! same bytes as a line a hostile recorder could send.
//!
//! Properties:
//! - what the writer writes, the readers read back identically: the header's
//!   fields; per stream the exact bytes recorded (split UTF-8, invalid
//!   bytes, escape-range characters); resizes and markers in order; times
//!   that never go back; every event line accepted by jitd's line check
//!   (input events only when input is recorded) and byte for byte what
//!   serde_json writes for it;
//! - the digest is that of the file;
//! - the login-shell path (a sender's events through the pipe, split at any
//!   point, checked and appended by jitd after its header) gives the same
//!   file as writing directly;
//! - on arbitrary bytes the readers never panic, the line splitter loses
//!   and invents nothing and holds at most `MAX_LINE`, and a line the check
//!   accepts is an event `recordings play` can read (serde_json parses it).

use std::time::{Duration, Instant};

use arbitrary::{Arbitrary, Unstructured};
use ring::digest;
use serde_json::{json, Value};

// The recording format (crate jit-recording).
use jit_recording::{
    asciicast::{decode_output, Finished, Header, Recorder, ENCODING},
    pipe::{check_line, Lines, MAX_LINE},
};

pub fn check(data: &[u8]) {
    hostile_line(data);
    if let Ok(script) = Unstructured::new(data).arbitrary::<Script>() {
        write_then_read(&script);
    }
}

#[derive(Arbitrary, Debug)]
struct ArbHeader {
    width: u16,
    height: u16,
    timestamp: i64,
    command: String,
    term: String,
    shell: String,
    jit: Vec<(String, String)>,
    jit_not_an_object: bool,
}

#[derive(Arbitrary, Debug)]
enum Op {
    Output(Vec<u8>),
    Input(Vec<u8>),
    Resize(u16, u16),
    Marker(String),
    /// Microseconds to the next call.
    Wait(u32),
    FlushIfDue,
    Flush,
}

#[derive(Arbitrary, Debug)]
struct Script {
    header: ArbHeader,
    ops: Vec<Op>,
    /// How the pipe delivers the sender's events to jitd.
    pipe_chunk: u16,
}

/// What a script recorded, as the readers should find it.
#[derive(Debug, Default, PartialEq)]
struct Recorded {
    output: Vec<u8>,
    input: Vec<u8>,
    resizes: Vec<String>,
    markers: Vec<String>,
}

fn header_of(h: &ArbHeader) -> Header {
    let map: serde_json::Map<String, Value> = h
        .jit
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    Header {
        width: h.width,
        height: h.height,
        timestamp: h.timestamp,
        command: h.command.clone(),
        term: h.term.clone(),
        shell: h.shell.clone(),
        jit: match h.jit_not_an_object {
            true => Value::Array(map.into_iter().map(|(_, v)| v).collect()),
            false => Value::Object(map),
        },
    }
}

/// Plays `ops` on `rec`; returns what they recorded and when they ended.
fn play<W: std::io::Write>(rec: &mut Recorder<W>, ops: &[Op], t0: Instant) -> (Recorded, Instant) {
    let mut at = t0;
    let mut recorded = Recorded::default();
    for op in ops {
        match op {
            Op::Output(b) => {
                rec.output(at, b).expect("writing to a Vec");
                recorded.output.extend_from_slice(b);
            }
            Op::Input(b) => {
                rec.input(at, b).expect("writing to a Vec");
                recorded.input.extend_from_slice(b);
            }
            Op::Resize(c, r) => {
                rec.resize(at, *c, *r).expect("writing to a Vec");
                recorded.resizes.push(format!("{c}x{r}"));
            }
            Op::Marker(m) => {
                rec.marker(at, m).expect("writing to a Vec");
                recorded.markers.push(m.clone());
            }
            Op::Wait(us) => at += Duration::from_micros(u64::from(*us)),
            Op::FlushIfDue => rec.flush_if_due(at).expect("writing to a Vec"),
            Op::Flush => rec.flush(at).expect("writing to a Vec"),
        }
    }
    (recorded, at)
}

fn write_then_read(script: &Script) {
    let t0 = Instant::now();
    let header = header_of(&script.header);
    let mut rec = Recorder::new(Vec::new(), &header, t0).expect("a header");
    let (recorded, end) = play(&mut rec, &script.ops, t0);
    let (finished, file) = rec.finish(end).map_err(|(e, _)| e).expect("finishing");

    // The digest is that of the file.
    assert_eq!(finished.bytes, file.len() as u64);
    let sha = digest::digest(&digest::SHA256, &file);
    let hex: String = sha.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(finished.sha256, hex);
    assert_eq!(
        Finished::of(file.as_slice()).expect("reading a slice"),
        finished
    );

    // The header reads back.
    assert_eq!(file.last(), Some(&b'\n'));
    let mut lines = file[..file.len() - 1].split(|&b| b == b'\n');
    let head: Value = serde_json::from_slice(lines.next().expect("a header")).expect("JSON");
    let h = &script.header;
    assert_eq!(head["version"], 2);
    assert_eq!(
        (&head["width"], &head["height"]),
        (&json!(h.width), &json!(h.height))
    );
    assert_eq!(head["timestamp"], json!(h.timestamp));
    assert_eq!(head["command"], json!(h.command));
    assert_eq!(head["env"], json!({ "TERM": h.term, "SHELL": h.shell }));
    let mut jit = head["jit"].clone();
    assert_eq!(jit["encoding"], ENCODING);
    let jit = jit.as_object_mut().expect("jit is an object");
    jit.remove("encoding");
    match &header.jit {
        Value::Object(map) if !map.contains_key("encoding") => assert_eq!(jit, map),
        Value::Object(_) => {} // the recorder's "encoding" wins
        other => assert_eq!(jit["value"], *other),
    }

    // The events read back.
    let total = end.duration_since(t0).as_secs_f64();
    let mut read = Recorded::default();
    let mut last = 0.0f64;
    for line in lines {
        let (time, code, text): (f64, String, String) =
            serde_json::from_slice(line).expect("an event play can read");
        assert_eq!(
            serde_json::to_vec(&(time, &code, &text)).expect("JSON"),
            line,
            "not as serde_json writes it"
        );
        assert_eq!(check_line(line, true), Ok(()), "jitd refuses {line:?}");
        assert_eq!(check_line(line, false).is_ok(), code != "i");
        assert!(
            time >= last && time <= total + 1e-6,
            "{time} after {last}, end {total}"
        );
        last = time;
        match code.as_str() {
            "o" => read.output.extend(decode_output(&text)),
            "i" => read.input.extend(decode_output(&text)),
            "r" => read.resizes.push(text),
            "m" => read.markers.push(text),
            other => panic!("event code {other:?}"),
        }
    }
    assert_eq!(read, recorded);

    // A login shell's: its recorder sends the events through the pipe; jitd
    // splits, checks and appends them after the header it wrote.
    let mut sender = Recorder::sender(Vec::new(), t0);
    play(&mut sender, &script.ops, t0);
    let (_, events) = sender.finish(end).map_err(|(e, _)| e).expect("finishing");
    let mut jitd = Recorder::new(Vec::new(), &header, t0).expect("a header");
    let mut splitter = Lines::default();
    for piece in events.chunks(usize::from(script.pipe_chunk).max(1)) {
        let complete = splitter.feed(piece).expect("lines under MAX_LINE");
        for line in complete.split_inclusive(|&b| b == b'\n') {
            assert_eq!(check_line(&line[..line.len() - 1], true), Ok(()));
        }
        jitd.lines(end, &complete).expect("writing to a Vec");
    }
    assert!(!splitter.has_partial());
    let (jitd_finished, jitd_file) = jitd.finish(end).map_err(|(e, _)| e).expect("finishing");
    assert_eq!(
        jitd_file, file,
        "the pipe's file differs from the direct one"
    );
    assert_eq!(jitd_finished, finished);
}

/// `data` as what a hostile recorder sends through the pipe.
fn hostile_line(data: &[u8]) {
    for record_input in [false, true] {
        if check_line(data, record_input).is_err() {
            continue;
        }
        // Accepted: `recordings play` must be able to read it.
        let (time, code, text): (f64, String, String) = serde_json::from_slice(data)
            .unwrap_or_else(|e| panic!("jitd accepts {data:?}, play cannot read it: {e}"));
        assert!(time.is_finite() && time >= 0.0);
        assert!(matches!(code.as_str(), "o" | "r" | "m") || (record_input && code == "i"));
        decode_output(&text);
    }
    // The splitter, fed the bytes in two pieces.
    let mut splitter = Lines::default();
    let cut = data
        .first()
        .map_or(0, |&b| usize::from(b) % (data.len() + 1));
    let mut seen = Vec::new();
    for piece in [&data[..cut], &data[cut..]] {
        let complete = splitter.feed(piece).expect("short input");
        assert!(complete.is_empty() || complete.ends_with(b"\n"));
        seen.extend(complete);
    }
    assert!(data.starts_with(&seen));
    assert_eq!(splitter.has_partial(), seen.len() < data.len());
    assert!(data.len() - seen.len() <= MAX_LINE);
}
