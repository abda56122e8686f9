//! The D-Bus edge: the `org.jit.Daemon1` interface, caller identification
//! and the mapping of engine outcomes to named errors and signals.

mod callers;
mod errors;
mod interface;

pub use callers::Callers;
pub use errors::BusError;
pub use interface::{emit, Daemon};
