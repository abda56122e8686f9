//! jitd: the just-in-time privileged access daemon, and the library jitctl shares with it.

pub mod admissions;
pub mod api;
pub mod bus;
pub mod cli;
pub mod clock;
pub mod command_line;
pub mod config;
pub mod core;
pub mod daemon;
pub mod deadlines;
pub mod directory;
pub mod effects;
pub mod engine;
pub mod grants;
pub mod notifier;
pub mod pidfd;
pub mod polkit;
pub mod recordings;
pub mod session_ends;
pub mod sessions;
pub mod store;
pub mod sudoers;
#[cfg(test)]
mod test_support;

/// What the fuzz targets (`fuzz/`) drive, whether or not jitd exports it
/// otherwise: the private socket's SASL server, and the polkit helper's
/// reading of the configuration.
#[cfg(feature = "fuzzing")]
pub mod fuzzing {
    pub use crate::bus::peer::{PeerConnection, PeerError};
    pub use crate::config::polkit::load as load_polkit_config;
}
