//! The SIEM feed's protocol between jitd and `jit-deliver`, on its own
//! socket ([`SOCKET_NAME`]) and in the frames of [`super::wire`].
//!
//! On every connection jitd first sends a [`FromJitd::Hello`] naming every
//! sink. The worker keeps one connection per sink: it answers
//! [`FromWorker::Take`] with the sink's name, and from then on jitd sends
//! one [`FromJitd::Batch`] at a time, in audit order, each answered by one
//! [`FromWorker::Sent`] saying how many of its records, from the first,
//! the sink took. jitd commits the sink's cursor past those, and sends the
//! rest again: at least once and in order, each event with its audit id.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::config::{Facility, SinkKind};

/// The socket's file name in jitd's runtime directory.
pub const SOCKET_NAME: &str = "siem.socket";
pub const VERSION: u32 = 1;

/// One audit event, as every sink receives it (the JSON lines format is
/// this, documented in docs/design.md "SIEM feed").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecord {
    pub id: u64,
    /// Unix seconds.
    pub at: i64,
    pub event: String,
    pub actor: String,
    pub actor_uid: Option<u32>,
    pub request: Option<u64>,
    /// The request's requester and resource, when the event is about one.
    pub user: Option<String>,
    pub resource: Option<String>,
    pub detail: serde_json::Value,
    /// The row's chain MAC, hex: with the anchors, what lets the SIEM side
    /// tell a rewritten or rolled-back database.
    pub mac: String,
}

/// The chain's head as it stood when sent: the newest row the sink has,
/// with its MAC.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    pub last_id: u64,
    pub mac: String,
    /// When it was sent (unix seconds).
    pub at: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Record {
    Event(EventRecord),
    Anchor(Anchor),
}

/// How the RFC 5424 sinks label what they send.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Labels {
    /// This host's name, in every record.
    pub host: String,
    pub facility: Facility,
    /// Bound on connecting, and on each read or write, in milliseconds.
    pub timeout_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum FromJitd {
    Hello {
        version: u32,
        labels: Labels,
        sinks: BTreeMap<String, SinkKind>,
    },
    Batch(Vec<Record>),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum FromWorker {
    /// This connection serves the named sink.
    Take { sink: String },
    /// The first `taken` records of the batch reached the sink; `error`
    /// says why the others did not.
    Sent { taken: u32, error: Option<String> },
}
