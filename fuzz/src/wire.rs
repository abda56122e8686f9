//! `jit-wire`, the D-Bus codec of pam_jit and jitd's private socket.
//!
//! Properties, for every input:
//! - hostile bytes: `frame_len` and `decode` never panic; the heap they use
//!   is bounded by the input, not by any length field in it; a message
//!   they accept only covers `frame_len` bytes, and re-encoding it (where
//!   the encoder can express it) gives back the same message;
//! - the same bytes read as a message to encode (call, return or error):
//!   `decode(encode(m)) == m` exactly when `m` is expressible (no NUL in a
//!   string, at most 255 body values, within `MAX_MESSAGE`), and an error
//!   otherwise; no strict prefix of an encoding decodes.

use arbitrary::{Arbitrary, Unstructured};
use jit_wire::{self as wire, Call, Kind, Message, Value, WireError, MAX_MESSAGE};

use crate::alloc;

pub fn check(data: &[u8]) {
    hostile(data);
    if let Ok(encodable) = Unstructured::new(data).arbitrary::<Encodable>() {
        round_trip(&encodable, data.len());
    }
    auth_lines(data);
}

/// Heap a decode may use beyond the input's size: the body's `Value`s (at
/// most 255, 32 bytes each, in a `Vec` that may double) and small strings.
const DECODE_SLACK: usize = 2 * 255 * 32 + 4096;

fn hostile(data: &[u8]) {
    let (decoded, heap) = alloc::peak(|| wire::decode(data));
    assert!(
        heap <= 2 * data.len() + DECODE_SLACK,
        "decode of {} bytes held {heap} bytes of heap",
        data.len()
    );
    let framed = wire::frame_len(data);
    match &framed {
        Ok(len) => assert!((16..=MAX_MESSAGE).contains(len), "frame_len {len}"),
        Err(WireError::Incomplete) => assert!(data.len() < 16),
        Err(WireError::TooLarge(n)) => assert!(*n > MAX_MESSAGE),
        Err(WireError::Malformed(_)) => {}
    }
    let Ok(msg) = decoded else { return };
    let len = framed.expect("a decoded message has a frame length");
    assert!(len <= data.len());
    // Only the frame counts: what follows belongs to the next message.
    assert_eq!(wire::decode(&data[..len]).as_ref(), Ok(&msg));
    if let Some(bytes) = re_encode(&msg) {
        let mut canonical = msg;
        canonical.flags = 0;
        assert_eq!(wire::decode(&bytes), Ok(canonical), "re-encoded {bytes:?}");
    }
}

/// The encoding of `msg` by the encoder, where it can express it: the
/// types it writes (`s u t x b`; `i`, `y`, `o` and `g` bodies decode to the
/// same `Value`s as `u` and `s`), and the header fields of its three kinds.
fn re_encode(msg: &Message) -> Option<Vec<u8>> {
    if !msg.signature.bytes().all(|t| b"sutxb".contains(&t)) || msg.sender.is_some() {
        return None;
    }
    match (msg.kind, &msg.path, &msg.interface, &msg.member) {
        (Kind::MethodCall, Some(path), Some(interface), Some(member))
            if msg.reply_serial.is_none() && msg.error_name.is_none() =>
        {
            Some(wire::encode(&Call {
                serial: msg.serial,
                destination: None,
                path,
                interface,
                member,
                args: &msg.body,
            }))
        }
        (Kind::MethodReturn, None, None, None) if msg.error_name.is_none() => Some(
            wire::encode_return(msg.serial, msg.reply_serial?, &msg.body),
        ),
        (Kind::Error, None, None, None) => match msg.body.as_slice() {
            [Value::Str(text)] => Some(wire::encode_error(
                msg.serial,
                msg.reply_serial?,
                msg.error_name.as_deref()?,
                text,
            )),
            _ => None,
        },
        _ => None,
    }
}

#[derive(Arbitrary, Debug)]
enum ArbValue {
    Str(String),
    U32(u32),
    U64(u64),
    I64(i64),
    Bool(bool),
}

impl From<&ArbValue> for Value {
    fn from(v: &ArbValue) -> Value {
        match v {
            ArbValue::Str(s) => Value::Str(s.clone()),
            ArbValue::U32(n) => Value::U32(*n),
            ArbValue::U64(n) => Value::U64(*n),
            ArbValue::I64(n) => Value::I64(*n),
            ArbValue::Bool(b) => Value::Bool(*b),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Encodable {
    Call {
        serial: u32,
        destination: Option<String>,
        path: String,
        interface: String,
        member: String,
        args: Vec<ArbValue>,
    },
    Return {
        serial: u32,
        reply_serial: u32,
        body: Vec<ArbValue>,
    },
    Error {
        serial: u32,
        reply_serial: u32,
        name: String,
        message: String,
    },
}

fn round_trip(m: &Encodable, cut_seed: usize) {
    let values = |v: &[ArbValue]| v.iter().map(Value::from).collect::<Vec<_>>();
    let (bytes, expected, strings) = match m {
        Encodable::Call {
            serial,
            destination,
            path,
            interface,
            member,
            args,
        } => {
            let args = values(args);
            let bytes = wire::encode(&Call {
                serial: *serial,
                destination: destination.as_deref(),
                path,
                interface,
                member,
                args: &args,
            });
            let mut strings = vec![path.as_str(), interface, member];
            strings.extend(destination.as_deref());
            let expected = Message {
                kind: Kind::MethodCall,
                serial: *serial,
                path: Some(path.clone()),
                interface: Some(interface.clone()),
                member: Some(member.clone()),
                signature: signature(&args),
                body: args,
                ..Message::default()
            };
            (bytes, expected, strings)
        }
        Encodable::Return {
            serial,
            reply_serial,
            body,
        } => {
            let body = values(body);
            let expected = Message {
                kind: Kind::MethodReturn,
                serial: *serial,
                reply_serial: Some(*reply_serial),
                signature: signature(&body),
                body: body.clone(),
                ..Message::default()
            };
            (
                wire::encode_return(*serial, *reply_serial, &body),
                expected,
                vec![],
            )
        }
        Encodable::Error {
            serial,
            reply_serial,
            name,
            message,
        } => {
            let expected = Message {
                kind: Kind::Error,
                serial: *serial,
                reply_serial: Some(*reply_serial),
                error_name: Some(name.clone()),
                signature: "s".into(),
                body: vec![Value::Str(message.clone())],
                ..Message::default()
            };
            let bytes = wire::encode_error(*serial, *reply_serial, name, message);
            (bytes, expected, vec![name.as_str()])
        }
    };
    let body_strings = expected.body.iter().filter_map(|v| match v {
        Value::Str(s) => Some(s.as_str()),
        _ => None,
    });
    let nul_free = strings
        .into_iter()
        .chain(body_strings)
        .all(|s| !s.contains('\0'));
    let expressible = nul_free && expected.body.len() <= 255 && bytes.len() <= MAX_MESSAGE;
    let decoded = wire::decode(&bytes);
    if expressible {
        assert_eq!(wire::frame_len(&bytes), Ok(bytes.len()));
        assert_eq!(decoded, Ok(expected));
        // A few strict prefixes (all of them would be quadratic).
        for cut in [cut_seed % bytes.len(), bytes.len() / 2, bytes.len() - 1] {
            assert!(
                wire::decode(&bytes[..cut]).is_err(),
                "prefix of {cut} bytes"
            );
        }
    } else {
        assert!(
            decoded.is_err(),
            "inexpressible {m:?} decoded as {decoded:?}"
        );
    }
}

fn signature(values: &[Value]) -> String {
    values
        .iter()
        .map(|v| match v {
            Value::Str(_) => 's',
            Value::U32(_) => 'u',
            Value::U64(_) => 't',
            Value::I64(_) => 'x',
            Value::Bool(_) => 'b',
        })
        .collect()
}

/// `take_auth_line` takes exactly the text before the first CRLF.
fn auth_lines(data: &[u8]) {
    let mut buf = data.to_vec();
    let first = data.windows(2).position(|w| w == b"\r\n");
    let line = wire::take_auth_line(&mut buf);
    match first {
        Some(end) => {
            assert_eq!(
                line.as_deref(),
                Some(&*String::from_utf8_lossy(&data[..end]))
            );
            assert_eq!(buf, &data[end + 2..]);
        }
        None => assert!(line.is_none() && buf == data),
    }
}
