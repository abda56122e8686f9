//! The small part of the D-Bus wire format that pam_jit and jitd's private
//! socket speak: method calls, their returns and errors, little-endian,
//! basic types only. pam_jit encodes calls and decodes replies (it may not
//! start the threads zbus's connections need); jitd's private socket does
//! the reverse for pam_jit's two methods.
//!
//! Everything here is pure and bounded, so it can be fuzzed (`fuzz/`,
//! target `wire`): a hostile or broken peer gets an error, never a panic or
//! an unbounded allocation.

#![forbid(unsafe_code)]

use std::fmt;

/// Messages larger than this are refused (the largest we expect is ~1 KiB).
pub const MAX_MESSAGE: usize = 64 * 1024;
/// The header flag of a call whose caller wants no reply.
pub const NO_REPLY_EXPECTED: u8 = 0x1;

const HEADER_FIXED: usize = 16;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Kind {
    #[default]
    MethodCall = 1,
    MethodReturn = 2,
    Error = 3,
    Signal = 4,
}

/// A basic value in a message body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Str(String),
    U32(u32),
    U64(u64),
    I64(i64),
    Bool(bool),
}

impl Value {
    fn signature(&self) -> u8 {
        match self {
            Value::Str(_) => b's',
            Value::U32(_) => b'u',
            Value::U64(_) => b't',
            Value::I64(_) => b'x',
            Value::Bool(_) => b'b',
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WireError {
    /// More bytes are needed.
    Incomplete,
    TooLarge(usize),
    Malformed(&'static str),
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Incomplete => f.write_str("truncated message"),
            WireError::TooLarge(n) => write!(f, "message of {n} bytes exceeds {MAX_MESSAGE}"),
            WireError::Malformed(what) => write!(f, "malformed message: {what}"),
        }
    }
}

impl std::error::Error for WireError {}

/// Lines of the authentication protocol longer than this are refused.
pub const MAX_AUTH_LINE: usize = 512;

/// Takes one `\r\n`-terminated line of the authentication protocol off the
/// front of `buf`, if a whole one is there.
pub fn take_auth_line(buf: &mut Vec<u8>) -> Option<String> {
    let end = buf.windows(2).position(|w| w == b"\r\n")?;
    let line = String::from_utf8_lossy(&buf[..end]).into_owned();
    buf.drain(..end + 2);
    Some(line)
}

/// A method call to encode.
pub struct Call<'a> {
    pub serial: u32,
    /// None on a peer-to-peer connection.
    pub destination: Option<&'a str>,
    pub path: &'a str,
    pub interface: &'a str,
    pub member: &'a str,
    pub args: &'a [Value],
}

struct Writer(Vec<u8>);

impl Writer {
    fn pad(&mut self, align: usize) {
        while !self.0.len().is_multiple_of(align) {
            self.0.push(0);
        }
    }
    fn u32(&mut self, v: u32) {
        self.pad(4);
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn str(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.0.extend_from_slice(s.as_bytes());
        self.0.push(0);
    }
    fn sig(&mut self, s: &[u8]) {
        self.0.push(s.len() as u8);
        self.0.extend_from_slice(s);
        self.0.push(0);
    }
    fn value(&mut self, v: &Value) {
        match v {
            Value::Str(s) => self.str(s),
            Value::U32(n) => self.u32(*n),
            Value::Bool(b) => self.u32(u32::from(*b)),
            Value::U64(n) => {
                self.pad(8);
                self.0.extend_from_slice(&n.to_le_bytes());
            }
            Value::I64(n) => {
                self.pad(8);
                self.0.extend_from_slice(&n.to_le_bytes());
            }
        }
    }
    /// The REPLY_SERIAL header field.
    fn reply_serial(&mut self, serial: u32) {
        self.pad(8);
        self.0.push(5);
        self.sig(b"u");
        self.u32(serial);
    }
    /// One `(yv)` header field holding a string-like value.
    fn field(&mut self, code: u8, sig: u8, text: &str) {
        self.pad(8);
        self.0.push(code);
        self.sig(&[sig]);
        if sig == b'g' {
            self.sig(text.as_bytes());
        } else {
            self.str(text);
        }
    }
}

/// Encodes a method call.
pub fn encode(call: &Call<'_>) -> Vec<u8> {
    let mut fields = Writer(Vec::with_capacity(128));
    fields.field(1, b'o', call.path);
    fields.field(2, b's', call.interface);
    fields.field(3, b's', call.member);
    if let Some(destination) = call.destination {
        fields.field(6, b's', destination);
    }
    frame(Kind::MethodCall, call.serial, fields, call.args)
}

/// Encodes the return of call `reply_serial` on a peer-to-peer connection
/// (no sender, no destination).
pub fn encode_return(serial: u32, reply_serial: u32, body: &[Value]) -> Vec<u8> {
    let mut fields = Writer(Vec::with_capacity(32));
    fields.reply_serial(reply_serial);
    frame(Kind::MethodReturn, serial, fields, body)
}

/// Encodes the error `name` (with its message) answering call `reply_serial`
/// on a peer-to-peer connection.
pub fn encode_error(serial: u32, reply_serial: u32, name: &str, message: &str) -> Vec<u8> {
    let mut fields = Writer(Vec::with_capacity(96));
    fields.field(4, b's', name);
    fields.reply_serial(reply_serial);
    frame(Kind::Error, serial, fields, &[Value::Str(message.into())])
}

/// The fixed header, the header `fields` plus the body's signature, the body.
fn frame(kind: Kind, serial: u32, mut fields: Writer, body: &[Value]) -> Vec<u8> {
    let signature: Vec<u8> = body.iter().map(Value::signature).collect();
    if !signature.is_empty() {
        fields.pad(8);
        fields.0.push(8);
        fields.sig(b"g");
        fields.sig(&signature);
    }
    let mut encoded = Writer(Vec::new());
    for value in body {
        encoded.value(value);
    }
    let mut out = Writer(Vec::with_capacity(
        HEADER_FIXED + fields.0.len() + encoded.0.len() + 8,
    ));
    out.0.extend_from_slice(&[b'l', kind as u8, 0, 1]);
    out.0
        .extend_from_slice(&(encoded.0.len() as u32).to_le_bytes());
    out.0.extend_from_slice(&serial.to_le_bytes());
    out.0
        .extend_from_slice(&(fields.0.len() as u32).to_le_bytes());
    // Header fields are aligned relative to the message start; the array
    // starts at offset 16, itself 8-aligned, so offsets carry over.
    out.0.extend_from_slice(&fields.0);
    out.pad(8);
    out.0.extend_from_slice(&encoded.0);
    out.0
}

/// A decoded message: its header fields (those of basic types) and body.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Message {
    pub kind: Kind,
    pub flags: u8,
    pub serial: u32,
    pub path: Option<String>,
    pub interface: Option<String>,
    pub member: Option<String>,
    pub reply_serial: Option<u32>,
    pub sender: Option<String>,
    pub error_name: Option<String>,
    /// The body's signature ("" for none).
    pub signature: String,
    pub body: Vec<Value>,
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn align(&mut self, n: usize) -> Result<(), WireError> {
        let aligned = self.pos.div_ceil(n) * n;
        if aligned > self.buf.len() {
            return Err(WireError::Malformed("padding past end"));
        }
        if self.buf[self.pos..aligned].iter().any(|b| *b != 0) {
            return Err(WireError::Malformed("non-zero padding"));
        }
        self.pos = aligned;
        Ok(())
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or(WireError::Malformed("length overflow"))?;
        let slice = self
            .buf
            .get(self.pos..end)
            .ok_or(WireError::Malformed("value past end"))?;
        self.pos = end;
        Ok(slice)
    }
    fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, WireError> {
        self.align(4)?;
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, WireError> {
        self.align(8)?;
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    fn text(&mut self, len: usize) -> Result<String, WireError> {
        let bytes = self.take(len)?;
        if self.u8()? != 0 {
            return Err(WireError::Malformed("string without terminating NUL"));
        }
        let s =
            std::str::from_utf8(bytes).map_err(|_| WireError::Malformed("string is not UTF-8"))?;
        if s.contains('\0') {
            return Err(WireError::Malformed("NUL inside string"));
        }
        Ok(s.to_owned())
    }
    fn str(&mut self) -> Result<String, WireError> {
        let len = self.u32()? as usize;
        self.text(len)
    }
    fn sig(&mut self) -> Result<String, WireError> {
        let len = usize::from(self.u8()?);
        self.text(len)
    }
    fn value(&mut self, sig: u8) -> Result<Value, WireError> {
        Ok(match sig {
            b's' | b'o' => Value::Str(self.str()?),
            b'g' => Value::Str(self.sig()?),
            b'u' => Value::U32(self.u32()?),
            b'i' => Value::U32(self.u32()?),
            b'b' => match self.u32()? {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                _ => return Err(WireError::Malformed("boolean is neither 0 nor 1")),
            },
            b'y' => Value::U32(u32::from(self.u8()?)),
            b't' => Value::U64(self.u64()?),
            b'x' => Value::I64(self.u64()? as i64),
            _ => return Err(WireError::Malformed("unsupported type in signature")),
        })
    }
}

/// Total length of the message at the start of `buf`, once its fixed header
/// is there; errors for a bad header or an oversized message.
pub fn frame_len(buf: &[u8]) -> Result<usize, WireError> {
    if buf.len() < HEADER_FIXED {
        return Err(WireError::Incomplete);
    }
    if buf[0] != b'l' {
        return Err(WireError::Malformed("not little-endian"));
    }
    if buf[3] != 1 {
        return Err(WireError::Malformed("unknown protocol version"));
    }
    let body = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]) as usize;
    let fields = u32::from_le_bytes([buf[12], buf[13], buf[14], buf[15]]) as usize;
    let total = HEADER_FIXED
        .checked_add(fields)
        .map(|n| n.div_ceil(8) * 8)
        .and_then(|n| n.checked_add(body))
        .ok_or(WireError::TooLarge(usize::MAX))?;
    if total > MAX_MESSAGE {
        return Err(WireError::TooLarge(total));
    }
    Ok(total)
}

/// Decodes one complete message (`buf` is exactly `frame_len` bytes).
pub fn decode(buf: &[u8]) -> Result<Message, WireError> {
    let total = frame_len(buf)?;
    if buf.len() < total {
        return Err(WireError::Incomplete);
    }
    let buf = &buf[..total];
    let kind = match buf[1] {
        1 => Kind::MethodCall,
        2 => Kind::MethodReturn,
        3 => Kind::Error,
        4 => Kind::Signal,
        _ => return Err(WireError::Malformed("unknown message type")),
    };
    let body_len = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]) as usize;
    let serial = u32::from_le_bytes([buf[8], buf[9], buf[10], buf[11]]);
    let fields_len = u32::from_le_bytes([buf[12], buf[13], buf[14], buf[15]]) as usize;
    let fields_end = HEADER_FIXED + fields_len;
    let mut r = Reader {
        buf: &buf[..fields_end],
        pos: HEADER_FIXED,
    };
    let mut msg = Message {
        kind,
        flags: buf[2],
        serial,
        ..Message::default()
    };
    while r.pos < fields_end {
        r.align(8)?;
        let code = r.u8()?;
        let sig = r.sig()?;
        let &[t] = sig.as_bytes() else {
            return Err(WireError::Malformed("header field is not a basic type"));
        };
        let value = r.value(t)?;
        match (code, t, value) {
            (1, b'o', Value::Str(s)) => msg.path = Some(s),
            (2, b's', Value::Str(s)) => msg.interface = Some(s),
            (3, b's', Value::Str(s)) => msg.member = Some(s),
            (4, b's', Value::Str(s)) => msg.error_name = Some(s),
            (5, b'u', Value::U32(n)) => msg.reply_serial = Some(n),
            (7, b's', Value::Str(s)) => msg.sender = Some(s),
            (8, b'g', Value::Str(s)) => msg.signature = s,
            (1..=5 | 7 | 8, _, _) => {
                return Err(WireError::Malformed("header field of the wrong type"))
            }
            _ => {}
        }
    }
    let body_start = fields_end.div_ceil(8) * 8;
    if buf[fields_end..body_start].iter().any(|b| *b != 0) {
        return Err(WireError::Malformed("non-zero padding"));
    }
    let mut body = Reader {
        buf: &buf[body_start..body_start + body_len],
        pos: 0,
    };
    for t in msg.signature.bytes() {
        msg.body.push(body.value(t)?);
    }
    if body.pos != body_len {
        return Err(WireError::Malformed("body longer than its signature"));
    }
    Ok(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A method return as dbus-daemon would send it.
    fn reply(reply_serial: u32, sender: &str, body: &[Value]) -> Vec<u8> {
        let mut fields = Writer(Vec::new());
        fields.reply_serial(reply_serial);
        fields.field(7, b's', sender);
        frame(Kind::MethodReturn, 77, fields, body)
    }

    #[test]
    fn check_grant_reply_round_trips() {
        let body = [Value::Bool(true), Value::U64(42), Value::I64(-5)];
        let bytes = reply(3, ":1.7", &body);
        assert_eq!(frame_len(&bytes), Ok(bytes.len()));
        let msg = decode(&bytes).unwrap();
        assert_eq!(msg.kind, Kind::MethodReturn);
        assert_eq!(msg.reply_serial, Some(3));
        assert_eq!(msg.sender.as_deref(), Some(":1.7"));
        assert_eq!(msg.body, body);
    }

    #[test]
    fn encoded_call_is_well_formed() {
        let args = [Value::U32(1000), Value::Str("sudo".into())];
        let bytes = encode(&Call {
            serial: 9,
            destination: Some(":1.3"),
            path: "/org/jit/Daemon1",
            interface: "org.jit.Daemon1",
            member: "CheckGrant",
            args: &args,
        });
        assert_eq!(frame_len(&bytes), Ok(bytes.len()));
        let msg = decode(&bytes).unwrap();
        assert_eq!(msg.kind, Kind::MethodCall);
        assert_eq!(msg.serial, 9);
        assert_eq!(msg.path.as_deref(), Some("/org/jit/Daemon1"));
        assert_eq!(msg.interface.as_deref(), Some("org.jit.Daemon1"));
        assert_eq!(msg.member.as_deref(), Some("CheckGrant"));
        assert_eq!(msg.signature, "us");
        assert_eq!(msg.body, args);
    }

    #[test]
    fn returns_and_errors_round_trip() {
        let body = [Value::U64(5), Value::U64(7), Value::I64(-1)];
        let msg = decode(&encode_return(2, 9, &body)).unwrap();
        assert_eq!(
            (msg.kind, msg.serial, msg.reply_serial, msg.sender),
            (Kind::MethodReturn, 2, Some(9), None)
        );
        assert_eq!((msg.signature.as_str(), msg.body), ("ttx", body.to_vec()));
        let msg = decode(&encode_return(3, 1, &[])).unwrap();
        assert_eq!((msg.signature.as_str(), msg.body), ("", vec![]));
        let name = "org.jit.Daemon1.Error.NotAuthorized";
        let msg = decode(&encode_error(4, 9, name, "no grant")).unwrap();
        assert_eq!(
            (msg.kind, msg.reply_serial, msg.error_name.as_deref()),
            (Kind::Error, Some(9), Some(name))
        );
        assert_eq!(msg.body, [Value::Str("no grant".into())]);
    }

    #[test]
    fn truncation_anywhere_is_an_error_not_a_panic() {
        let bytes = reply(
            3,
            ":1.7",
            &[Value::Bool(true), Value::U64(1), Value::I64(2)],
        );
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn every_single_byte_corruption_is_handled() {
        let bytes = reply(3, ":1.7", &[Value::Str("x".into()), Value::Bool(false)]);
        for i in 0..bytes.len() {
            for v in [0u8, 1, 0x7f, 0xff] {
                let mut m = bytes.clone();
                m[i] = v;
                let _ = decode(&m);
            }
        }
    }

    #[test]
    fn oversized_and_hostile_headers_are_refused() {
        let mut bytes = reply(3, ":1.7", &[Value::Bool(true)]);
        bytes[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(frame_len(&bytes), Err(WireError::TooLarge(_))));
        let mut big_endian = reply(3, ":1.7", &[Value::Bool(true)]);
        big_endian[0] = b'B';
        assert!(decode(&big_endian).is_err());
        let bad_bool = reply(3, ":1.7", &[Value::U32(2)]);
        let mut as_bool = bad_bool.clone();
        let sig_pos = as_bool.windows(2).position(|w| w == [1, b'u']).unwrap();
        as_bool[sig_pos + 1] = b'b';
        assert_eq!(
            decode(&as_bool),
            Err(WireError::Malformed("boolean is neither 0 nor 1"))
        );
    }

    /// A tiny deterministic fuzz pass over random mutations (the
    /// coverage-guided `wire` target in `fuzz/` runs the decoder for longer,
    /// briefly in every CI run; this keeps the property in `cargo test`).
    #[test]
    fn random_mutations_never_panic() {
        let seed = reply(
            9,
            ":1.42",
            &[Value::Bool(true), Value::U64(7), Value::I64(9)],
        );
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let mut m = seed.clone();
            for _ in 0..(next() % 6 + 1) {
                let i = (next() as usize) % m.len();
                m[i] = next() as u8;
            }
            if next() % 4 == 0 {
                m.truncate((next() as usize) % (m.len() + 1));
            }
            let _ = frame_len(&m).and_then(|_| decode(&m));
        }
    }
}
