//! Sessions from their registration to their end (W1.7). A registered PAM
//! process is moved into its grant's cgroup ([`SessionControl`]) and held by
//! a pidfd ([`pidfd`]) until it exits, when its end is recorded
//! ([`SessionEnds`]); when a grant ends, what follows the commit
//! ([`Effects`]) tells the bus and terminates the grant's sessions.

mod cgroups;
mod control;
mod effects;
mod ends;
pub mod pidfd;
mod targets;

pub use control::{real_uid, ContainError, SessionControl};
pub use effects::Effects;
pub use ends::SessionEnds;
