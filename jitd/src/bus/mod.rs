//! The D-Bus edge: the `org.jit.Daemon1` interface, caller identification
//! and the mapping of engine outcomes to named errors and signals.

mod callers;
mod errors;
mod gate;
mod interface;
mod limits;
#[cfg(not(feature = "fuzzing"))]
mod peer;
/// Exported for the fuzz targets only (`crate::fuzzing`).
#[cfg(feature = "fuzzing")]
pub mod peer;
pub mod private;
mod recording;

pub use callers::Callers;
pub use errors::BusError;
pub use gate::Gate;
pub use interface::{emit, Daemon};
pub use limits::CallLimits;
