//! The fuzzers' findings, kept: every file under `fuzz/regressions/<target>/` goes
//! through the same check as its fuzz target (`fuzz/src/lib.rs`, included here),
//! which must neither panic nor break the target's invariant.
//!
//! No fuzzing happens here: these are plain tests of the inputs the fuzzers found
//! (crashes, minimized) and of a few chosen inputs (deep nesting, huge numbers,
//! paths with `..`). See FUZZING.md.

#[allow(dead_code)]
#[path = "../fuzz/src/lib.rs"]
mod checks;

use std::path::{Path, PathBuf};

fn regressions() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions")
}

/// Feeds every input of `fuzz/regressions/<target>/` to the target's check.
fn replay(target: &str) {
    let dir = regressions().join(target);
    assert!(
        dir.is_dir(),
        "{} is missing: the regressions of `{target}` would silently pass",
        dir.display()
    );
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    inputs.sort();
    assert!(
        !inputs.is_empty(),
        "{} holds no input: the regressions of `{target}` would silently pass",
        dir.display()
    );
    let mut failed = Vec::new();
    for input in &inputs {
        let data = std::fs::read(input).expect("a regression input");
        let outcome = std::panic::catch_unwind(|| {
            assert!(checks::run(target, &data), "unknown target {target}");
        });
        if let Err(panic) = outcome {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failed.push(format!("{}: {message}", input.display()));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} inputs of `{target}` fail:\n{}",
        failed.len(),
        inputs.len(),
        failed.join("\n")
    );
}

#[test]
fn every_target_has_its_folder() {
    for target in checks::TARGETS {
        assert!(
            regressions().join(target).is_dir(),
            "fuzz/regressions/{target} is missing"
        );
    }
}

#[test]
fn workflow() {
    replay("workflow");
}

#[test]
fn services_file() {
    replay("services_file");
}

#[test]
fn expression() {
    replay("expression");
}

#[test]
fn protocol() {
    replay("protocol");
}

#[test]
fn fetcher_paths() {
    replay("fetcher_paths");
}

#[test]
fn markdown() {
    replay("markdown");
}
