//! jitd: the just-in-time privileged access daemon, and the library jitctl shares with it.

pub mod config;
pub mod core;
pub mod api;
pub mod clock;
pub mod deadlines;
pub mod directory;
pub mod engine;
pub mod grants;
pub mod store;
pub mod bus;
pub mod daemon;
pub mod cli;
