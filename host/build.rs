//! Builds the plugins in plugins/ for wasm32-wasip2 and puts the components in
//! OUT_DIR, where src/builtin.rs embeds them. A user never builds them by hand.
//!
//! rustup on these machines does not install targets by itself, so the target is
//! added here when the toolchain lacks it.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";
const PLUGINS: [&str; 4] = [
    "copper-fetcher",
    "copper-markdown",
    "copper-testkit",
    "copper-undeclared",
];

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let root = manifest_dir
        .parent()
        .expect("the host is in the workspace")
        .to_path_buf();
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    // Relative to this package, so that two checkouts sharing a target folder
    // (CI's clones) each watch their own plugins, not the other's.
    for watched in ["plugins", "wit", "Cargo.lock"] {
        println!("cargo:rerun-if-changed=../{watched}");
    }
    println!("cargo:rerun-if-env-changed=COPPER_PLUGINS_TARGET_DIR");

    ensure_target();

    // A target folder of its own: the outer cargo holds the lock on the main one.
    let target_dir = env::var_os("COPPER_PLUGINS_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            // OUT_DIR is <target>/<profile>/build/<pkg>/out: keep the plugins beside <profile>.
            out_dir
                .ancestors()
                .nth(4)
                .map(|t| t.join("plugins"))
                .unwrap_or_else(|| out_dir.join("plugins"))
        });
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(&root)
        .args(["build", "--locked", "--profile", "wasm", "--target", TARGET]);
    for plugin in PLUGINS {
        command.args(["-p", plugin]);
    }
    command.arg("--target-dir").arg(&target_dir);
    // Flags meant for the host must not leak into the wasm build.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "RUSTC_WORKSPACE_WRAPPER",
    ] {
        command.env_remove(var);
    }
    // Our stdout is read by cargo for `cargo:` lines: the inner build reports on stderr.
    command.stdout(std::io::stderr());
    let status = command
        .status()
        .expect("cannot run cargo to build the plugins");
    assert!(
        status.success(),
        "building the plugins for {TARGET} failed (see above)"
    );

    let built = target_dir.join(TARGET).join("wasm");
    for plugin in PLUGINS {
        let file = format!("{}.wasm", plugin.replace('-', "_"));
        let from = built.join(&file);
        let to = out_dir.join(&file);
        std::fs::copy(&from, &to).unwrap_or_else(|e| panic!("cannot copy {}: {e}", from.display()));
        // The component's digest, the key of its compiled artifact: a start that
        // hashed 5 MB of built-in components took ~8 ms.
        use sha2::Digest;
        let bytes = std::fs::read(&to).expect("the component just copied");
        let digest = sha2::Sha256::digest(&bytes);
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        let var = format!("{}_SHA256", plugin.replace('-', "_").to_uppercase());
        println!("cargo:rustc-env={var}={hex}");
    }
    // Test components, not embedded: the tests and benches load them from these paths.
    for (var, file) in [
        ("COPPER_TESTKIT_WASM", "copper_testkit.wasm"),
        ("COPPER_UNDECLARED_WASM", "copper_undeclared.wasm"),
    ] {
        println!("cargo:rustc-env={var}={}", out_dir.join(file).display());
    }
}

/// Adds the wasm32-wasip2 target to the active toolchain when it is missing.
fn ensure_target() {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .expect("cannot run rustc");
    let sysroot = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim());
    if Path::new(&sysroot)
        .join("lib/rustlib")
        .join(TARGET)
        .exists()
    {
        return;
    }
    let mut command = Command::new("rustup");
    command.args(["target", "add", TARGET]);
    if let Ok(toolchain) = env::var("RUSTUP_TOOLCHAIN") {
        command.args(["--toolchain", &toolchain]);
    }
    // Our stdout is read by cargo for `cargo:` lines: the inner build reports on stderr.
    command.stdout(std::io::stderr());
    let status = command.status().unwrap_or_else(|e| {
        panic!("the {TARGET} target is missing and rustup cannot be run to add it ({e}): run `rustup target add {TARGET}`")
    });
    assert!(
        status.success(),
        "`rustup target add {TARGET}` failed: the plugins cannot be built"
    );
}
