//! `copper-wasm plugin check` and `plugin run`, as a plugin author meets them.

use crate::support::*;

fn check(dir: &std::path::Path, file: &str) -> Output {
    output(copper(dir).args(["plugin", "check", file]))
}

#[test]
fn plugin_check_accepts_a_good_component_and_explains_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let out = check(dir.path(), copper_wasm::builtin::TESTKIT_PATH);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("service `testkit`"), "{}", out.stdout);
    assert!(
        out.stdout.contains("testkit/echo")
            && out.stdout.starts_with(copper_wasm::builtin::TESTKIT_PATH)
    );
    assert!(
        out.stdout.lines().last().unwrap().starts_with("ok:"),
        "{}",
        out.stdout
    );

    // A component with no `service` export (an empty component).
    std::fs::write(dir.path().join("empty.wasm"), b"\0asm\x0d\0\x01\0").unwrap();
    let out = check(dir.path(), "empty.wasm");
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("copper:service/service"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("must export"), "{}", out.stderr);

    // A core module, not a component.
    std::fs::write(dir.path().join("core.wasm"), b"\0asm\x01\0\0\0").unwrap();
    let out = check(dir.path(), "core.wasm");
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("core WebAssembly module, not a component"),
        "{}",
        out.stderr
    );

    // Not WebAssembly at all.
    std::fs::write(dir.path().join("notes.txt"), "hello\n").unwrap();
    let out = check(dir.path(), "notes.txt");
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("not WebAssembly"), "{}", out.stderr);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);

    // A capability imported without being declared.
    let out = check(dir.path(), copper_wasm::builtin::UNDECLARED_PATH);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("copper:service/git"), "{}", out.stderr);
}

#[test]
fn plugin_run_calls_one_action_of_a_local_component() {
    let dir = tempfile::tempdir().unwrap();
    // A services file in the folder is not read: only the component is hosted.
    std::fs::write(dir.path().join("copper.yaml"), "services: {broken: yes}\n").unwrap();
    let out = output(copper(dir.path()).args([
        "plugin",
        "run",
        copper_wasm::builtin::TESTKIT_PATH,
        "testkit/echo",
        "--input",
        r#"{"greeting":"hi"}"#,
    ]));
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let finish: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(finish[0]["greeting"], "hi");
    assert_eq!(finish[0]["status"], "success");
    let out = output(copper(dir.path()).args([
        "plugin",
        "run",
        copper_wasm::builtin::TESTKIT_PATH,
        "fetcher/fetch",
    ]));
    assert_ne!(
        out.code, 0,
        "the built-in components are not hosted: {}",
        out.stdout
    );
}
