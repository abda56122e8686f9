//! The ticket webhook's protocol between jitd and `jit-deliver` (W1.11),
//! on its own socket ([`SOCKET_NAME`]) and in the frames of
//! [`super::wire`]: jitd's root daemon never speaks HTTP.
//!
//! On every connection jitd first sends a [`ToWorker::Hello`] with the
//! webhook's URL (a secret: it may carry a token) and the timeout; then a
//! [`ToWorker::Check`] for each ticket to check, several at once, each
//! answered by one [`Answer`] with its id, in any order. jitd reads the
//! answer's body itself (`core::tickets`); a check unanswered within the
//! timeout, or lost with the connection, is a validator that is down.

use serde::{Deserialize, Serialize};

use super::wire::Hidden;
use crate::core::tickets::TicketAsk;

/// The socket's file name in jitd's runtime directory.
pub const SOCKET_NAME: &str = "tickets.socket";
pub const VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ToWorker {
    Hello {
        version: u32,
        url: Hidden,
        timeout_ms: u64,
    },
    Check {
        id: u64,
        ask: TicketAsk,
    },
}

/// What the webhook answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Reply {
    /// A 2xx response's body (at most `core::tickets::MAX_ANSWER` bytes
    /// and one more, read as UTF-8 with replacement).
    Body(String),
    /// No 2xx response, and why (the URL never in it).
    Failed(String),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    pub id: u64,
    pub reply: Reply,
}
