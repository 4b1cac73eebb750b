//! The `copper-wasm` command; see `copper-wasm --help`.
//!
//! It is the library's first embedder: `cli/` uses only `copper_wasm`'s public API.

mod cli;

use std::process::ExitCode;

/// Runs the command; prints its error once, as a chain, and leaves with its exit code.
fn main() -> ExitCode {
    match cli::main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", error.report());
            ExitCode::from(error.exit_code())
        }
    }
}
