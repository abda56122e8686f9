//! jitd: the just-in-time privileged access daemon, and the library jitctl shares with it.

pub mod config;
pub mod core;
