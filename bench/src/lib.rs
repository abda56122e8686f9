//! Measurement helpers shared by `jit-bench` and the end-to-end tests.

pub mod pam;
