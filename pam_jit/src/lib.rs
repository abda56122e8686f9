pub mod client;
pub mod wire;
