//! jit-recording: what jitd and jit-session must agree on about a session's
//! recording, and nothing else: the asciicast v2 format and its writer, the
//! pipe a recorder sends its events through (both sides, checked line by
//! line), and why a recording ended. jitd depends on this, not on the
//! recorder.

pub mod asciicast;
mod end;
mod json_string;
pub mod pipe;

pub use end::End;
