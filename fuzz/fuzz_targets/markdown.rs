//! Fuzz target `markdown`: see `copper_wasm_fuzz::markdown` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| copper_wasm_fuzz::markdown(data));
