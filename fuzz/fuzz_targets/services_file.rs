//! Fuzz target `services_file`: see `copper_wasm_fuzz::services_file` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| copper_wasm_fuzz::services_file(data));
