//! jit-session: recorded elevated sessions (PTY relay modelled on sudo's
//! use_pty, asciicast v2 recorder, expiry driven by jitd's signals).

pub mod jitd;
pub mod monitor;
pub mod pty;
pub mod record;
pub mod relay;
pub mod session;
pub mod standalone;
