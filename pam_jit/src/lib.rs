//! pam_jit.so: gates sudo, sshd and other PAM services on an active jit grant.

pub mod args;
pub mod client;
pub mod gate;
mod hooks;
pub mod second_factor;
pub use jit_wire as wire;
