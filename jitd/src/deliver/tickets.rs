//! The ticket validator's protocol between jitd and `jit-deliver --tickets`
//! (W1.11), which `jit-ticket.service` runs as the unprivileged `jit-ticket`
//! user, on its own socket ([`SOCKET_NAME`]) and in the frames of
//! [`super::wire`]: jitd's root daemon neither speaks HTTP nor runs the
//! command, and the command gets none of jit-deliver's secrets.
//!
//! On every connection jitd first sends a [`ToWorker::Hello`] with the
//! validator (the command's argv, or the webhook's URL: a secret, it may
//! carry a token) and the timeout; then a [`ToWorker::Check`] for each
//! ticket to check, several at once, each answered by one [`Answer`] with
//! its id, in any order. jitd reads the answer itself (`core::tickets`); a
//! check unanswered within the timeout, or lost with the connection, is a
//! validator that is down.

use serde::{Deserialize, Serialize};

use super::wire::Hidden;
use crate::core::tickets::TicketAsk;

/// The socket's file name in jitd's runtime directory.
pub const SOCKET_NAME: &str = "tickets.socket";
pub const VERSION: u32 = 1;

/// The system user `jit-deliver --tickets` runs as (sysusers.d): with root,
/// the only one jitd serves on the socket.
pub const USER: &str = "jit-ticket";

/// What the worker runs for each check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ValidatorWire {
    /// An argv, run with the ask as JSON on stdin.
    Command(Vec<String>),
    /// A URL the ask is posted to as JSON.
    Webhook(Hidden),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ToWorker {
    Hello {
        version: u32,
        validator: ValidatorWire,
        timeout_ms: u64,
    },
    Check {
        id: u64,
        ask: TicketAsk,
        /// What is left of the check's time in jitd (which waited for a
        /// turn): the worker gives it no more.
        within_ms: u64,
    },
}

/// What the validator answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Reply {
    /// The command's stdout (it exited 0) or a 2xx response's body: at
    /// most `core::tickets::MAX_ANSWER` bytes and one more, read as UTF-8
    /// with replacement.
    Body(String),
    /// No answer, and why (the URL never in it).
    Failed(String),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    pub id: u64,
    pub reply: Reply,
}
