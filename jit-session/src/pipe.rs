//! A login shell's recording travels through a pipe to jitd, which owns the
//! file (threat T17: the user owns jit-session, so jit-session never holds a
//! writable descriptor of the recording). jitd writes the header; jit-session
//! sends asciicast event lines, then one end line (`{"end":"exit"}`). jitd
//! checks every line, appends the events and hashes the file itself. A pipe
//! that closes without an end line (jit-session killed) is an abnormal end.
//!
//! Both sides live here so that they cannot drift apart.

use serde_json::Value;

use crate::session::End;

/// The longest line accepted. A recorder's event holds at most one relay
/// chunk (64 KiB, each byte at most 6 in JSON), well under this.
pub const MAX_LINE: usize = 1 << 20;

/// The line that ends a recording cleanly.
pub fn end_line(end: End) -> Vec<u8> {
    let mut line = serde_json::json!({ "end": end.as_str() })
        .to_string()
        .into_bytes();
    line.push(b'\n');
    line
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// An asciicast event, to append as it is.
    Event,
    /// The end line: the recording is complete.
    End(End),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PipeError {
    #[error("a line longer than {MAX_LINE} bytes")]
    TooLong,
    #[error("not an asciicast event or end line: {0}")]
    Invalid(&'static str),
}

/// Checks one line (without its newline). Input ("i") events are accepted
/// only when the configuration records input.
pub fn check_line(line: &[u8], record_input: bool) -> Result<Line, PipeError> {
    let value: Value = serde_json::from_slice(line).map_err(|_| PipeError::Invalid("not JSON"))?;
    match value {
        Value::Array(event) => check_event(&event, record_input).map(|()| Line::Event),
        Value::Object(map) if map.len() == 1 => match map.get("end").and_then(Value::as_str) {
            Some(end) => End::parse(end)
                .map(Line::End)
                .ok_or(PipeError::Invalid("unknown end")),
            None => Err(PipeError::Invalid("an object other than the end line")),
        },
        _ => Err(PipeError::Invalid("neither an event nor the end line")),
    }
}

fn check_event(event: &[Value], record_input: bool) -> Result<(), PipeError> {
    let [time, code, data] = event else {
        return Err(PipeError::Invalid("an event has three fields"));
    };
    if !time.as_f64().is_some_and(|t| t.is_finite() && t >= 0.0) {
        return Err(PipeError::Invalid("bad event time"));
    }
    match code.as_str() {
        Some("o" | "r" | "m") => {}
        Some("i") if record_input => {}
        Some("i") => return Err(PipeError::Invalid("input is not recorded")),
        _ => return Err(PipeError::Invalid("unknown event code")),
    }
    if !data.is_string() {
        return Err(PipeError::Invalid("event data is not a string"));
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
        let Some(last) = data.iter().rposition(|&b| b == b'\n') else {
            self.hold(data)?;
            return Ok(Vec::new());
        };
        let mut complete = std::mem::take(&mut self.pending);
        complete.extend_from_slice(&data[..=last]);
        self.hold(&data[last + 1..])?;
        let longest = complete
            .split(|&b| b == b'\n')
            .map(<[u8]>::len)
            .max()
            .unwrap_or(0);
        if longest > MAX_LINE {
            return Err(PipeError::TooLong);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_and_the_end_line_are_recognized() {
        assert_eq!(check_line(br#"[0.5,"o","hi\r\n"]"#, false), Ok(Line::Event));
        assert_eq!(check_line(br#"[1,"r","80x24"]"#, false), Ok(Line::Event));
        assert_eq!(
            check_line(br#"[2.0,"m","end: exit"]"#, false),
            Ok(Line::Event)
        );
        assert_eq!(check_line(br#"[2.0,"i","ls"]"#, true), Ok(Line::Event));
        let end = end_line(End::Expired);
        assert_eq!(end.last(), Some(&b'\n'));
        assert_eq!(
            check_line(&end[..end.len() - 1], false),
            Ok(Line::End(End::Expired))
        );
    }

    #[test]
    fn anything_else_is_refused() {
        for line in [
            &br#"[2.0,"i","ls"]"#[..],
            br#"{"version":2}"#,
            br#"{"end":"exit","more":1}"#,
            br#"{"end":"sideways"}"#,
            br#"[-1,"o","x"]"#,
            br#"["1","o","x"]"#,
            br#"[1,"x","x"]"#,
            br#"[1,"o",3]"#,
            br#"[1,"o"]"#,
            br#"[1,"o","x",4]"#,
            b"",
            b"not json",
            b"\"just a string\"",
        ] {
            assert!(
                check_line(line, false).is_err(),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
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
}
