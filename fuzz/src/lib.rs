//! Property checks behind the fuzz targets (`fuzz_targets/`): each takes
//! the fuzzer's bytes and panics when a property fails. See README.md.

pub mod alloc;
pub mod asciicast;
pub mod config;
pub mod sasl;
pub mod wire;

#[global_allocator]
static ALLOC: alloc::Counting = alloc::Counting;
