//! The `copper-wasm` command; see `copper-wasm --help`.
//!
//! It is the library's first embedder: `cli/` uses only `copper_wasm`'s public API.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
