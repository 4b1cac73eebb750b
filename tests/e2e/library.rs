//! The host as a library: the embedding example runs.

#[test]
fn the_embedding_example_registers_a_component_and_runs_a_workflow() {
    // cargo builds the examples with the tests: target/<profile>/examples/embed.
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let example = profile_dir.join("examples/embed");
    assert!(
        example.exists(),
        "{} is built with the tests",
        example.display()
    );
    let out = std::process::Command::new(&example)
        .arg(copper_wasm::builtin::TESTKIT_PATH)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("hello: success") && stdout.contains("again: success"),
        "{stdout}"
    );
    assert!(
        stdout.contains("echoed: \"hello from an embedded host\""),
        "{stdout}"
    );
}
