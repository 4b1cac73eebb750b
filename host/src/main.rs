//! The `copper-wasm` command; see `copper-wasm --help`.

fn main() -> std::process::ExitCode {
    copper_wasm::cli::main()
}
