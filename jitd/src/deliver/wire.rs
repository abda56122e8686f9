//! The delivery protocol between jitd and `jit-deliver`.
//!
//! Frames are a 4-byte big-endian length and that many bytes of JSON, at
//! most [`MAX_FRAME`]. On connecting, jitd sends one [`ToWorker::Hello`]
//! with the transports (including the SMTP password and webhook URLs: the
//! worker gets its secrets from jitd over this socket only, never from
//! argv, the environment or a file of its own), then one
//! [`ToWorker::Deliver`] at a time, each answered by one [`Ack`] for the
//! same id. A delivery handed out and not acknowledged (the worker died or
//! overran its lease) is handed out again: at least once.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Read, Write};

use crate::config::{HookKind, SmtpTls};
use crate::core::notify::{Channel, Notice};

/// Largest frame either side reads or writes.
pub const MAX_FRAME: usize = 1 << 20;
/// Longest failure reason jitd keeps from an acknowledgement.
pub const MAX_REASON: usize = 1000;
pub const VERSION: u32 = 1;

/// A password or webhook URL: never printed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Hidden(pub String);

impl fmt::Debug for Hidden {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmtpWire {
    pub server: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub from: String,
    pub username: Option<String>,
    pub password: Option<Hidden>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookWire {
    pub kind: HookKind,
    pub url: Hidden,
}

/// Everything the worker needs to send: `[notify]`'s channels.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transports {
    pub smtp: Option<SmtpWire>,
    pub hooks: BTreeMap<String, HookWire>,
    pub timeout_ms: u64,
}

/// One delivery to attempt: rendered by the worker from the notice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub id: u64,
    pub channel: Channel,
    /// An email address or a webhook name.
    pub target: String,
    pub notice: Notice,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ToWorker {
    Hello {
        version: u32,
        transports: Transports,
    },
    Deliver(Job),
}

/// What became of one delivery.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Outcome {
    /// The endpoint acknowledged it (SMTP 250 after DATA, HTTP 2xx).
    Delivered,
    /// Not delivered; jitd decides whether and when to retry.
    Failed(String),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ack {
    pub id: u64,
    pub outcome: Outcome,
}

fn invalid(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

/// Writes one frame.
pub fn write<T: Serialize>(w: &mut impl Write, msg: &T) -> io::Result<()> {
    let body = serde_json::to_vec(msg).map_err(|e| invalid(e.to_string()))?;
    if body.len() > MAX_FRAME {
        return Err(invalid(format!("frame of {} bytes", body.len())));
    }
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&body);
    w.write_all(&frame)?;
    w.flush()
}

/// Reads one frame; end of stream before its first byte is `UnexpectedEof`.
pub fn read<T: for<'de> Deserialize<'de>>(r: &mut impl Read) -> io::Result<T> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(invalid(format!(
            "frame of {len} bytes (at most {MAX_FRAME})"
        )));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    serde_json::from_slice(&body).map_err(|e| invalid(format!("bad frame: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_oversized_ones_are_refused() {
        let ack = Ack {
            id: 7,
            outcome: Outcome::Failed("refused".into()),
        };
        let mut buf = Vec::new();
        write(&mut buf, &ack).unwrap();
        assert_eq!(read::<Ack>(&mut buf.as_slice()).unwrap(), ack);

        let mut huge = ((MAX_FRAME + 1) as u32).to_be_bytes().to_vec();
        huge.extend_from_slice(b"{}");
        let err = read::<Ack>(&mut huge.as_slice()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);

        let mut extra = Vec::new();
        write(
            &mut extra,
            &serde_json::json!({"id": 1, "outcome": "delivered", "x": 1}),
        )
        .unwrap();
        assert!(read::<Ack>(&mut extra.as_slice()).is_err());
    }

    #[test]
    fn secrets_are_not_printed() {
        let hook = HookWire {
            kind: HookKind::Json,
            url: Hidden("https://hooks.example/token".into()),
        };
        assert!(!format!("{hook:?}").contains("token"));
    }
}
