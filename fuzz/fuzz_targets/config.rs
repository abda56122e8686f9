#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| jit_fuzz::config::check(data));
