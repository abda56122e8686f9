//! The domain core: policy, risk and the request state machine.
//!
//! Nothing in here performs I/O or reads a clock; every fact (identity,
//! time, history) is passed in, so each rule is testable by table.

#![forbid(unsafe_code)]

pub(crate) mod break_glass;
pub mod changes;
pub(crate) mod custody;
pub(crate) mod denials;
pub(crate) mod feed;
pub(crate) mod membership;
pub(crate) mod mfa;
pub mod model;
// What a notification says and its renderers: also jit-deliver's.
pub mod notify;
// Shift files: also jit-bench's.
pub mod oncall;
pub(crate) mod pam_stack;
pub(crate) mod password;
pub mod policy;
pub(crate) mod rate;
pub(crate) mod replay;
// The reports' documents: also jitctl's.
pub mod reports;
pub mod risk;
pub(crate) mod routing;
pub mod sanitize;
pub(crate) mod schedule;
pub(crate) mod segments;
pub mod standing;
pub(crate) mod sudoers;
// Ticket checks are in the API (show, list).
pub mod tickets;
pub(crate) mod vendor;
pub(crate) mod workflow;

/// Lower-case hex of `bytes` (digests and MACs as people and SIEMs see them).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}
