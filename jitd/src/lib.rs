//! jitd: the just-in-time privileged access daemon, and the library jitctl shares with it.
//!
//! Exported: what jitd's binaries, the benchmarks (`jit-bench`), the
//! man pages (`jit-docgen`) and the notification worker (`jit-deliver`:
//! `deliver`'s protocol, `core::notify`'s renderers) use; the rest is the
//! daemon's own.

pub mod api;
pub mod cli;
// The time source: also jit-bench's (the on-call rosters).
pub mod clock;
pub mod command_line;
pub mod config;
pub mod core;
pub mod daemon;
pub mod deliver;
pub mod directory;
// On-call schedules on the host: also jit-bench's.
pub mod oncall;
// Snapshots of the persistence places: also jit-bench's.
pub mod persistence;
pub mod polkit;
pub mod store;

mod accounts;
mod admissions;
mod bus;
mod deadlines;
mod denials;
mod engine;
mod feed;
mod grants;
mod notifier;
mod pam_stacks;
mod recordings;
mod sessions;
mod socket_file;
mod standing;
mod sudoers;
#[cfg(test)]
mod test_support;
mod tickets;

/// What the fuzz targets (`fuzz/`) drive, whether or not jitd exports it
/// otherwise: the private socket's SASL server, and the polkit helper's
/// reading of the configuration.
#[cfg(feature = "fuzzing")]
pub mod fuzzing {
    pub use crate::bus::peer::{PeerConnection, PeerError};
    pub use crate::config::polkit::load as load_polkit_config;
}
