//! Fuzz target `fetcher_paths`: see `copper_wasm_fuzz::fetcher_paths` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| copper_wasm_fuzz::fetcher_paths(data));
