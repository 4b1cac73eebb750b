//! `copper-wasm plugin check` and `plugin run`, as a plugin author meets them.

use crate::support::*;

fn check(dir: &std::path::Path, file: &str) -> Output {
    output(copper(dir).args(["plugin", "check", file]))
}

#[test]
fn plugin_check_accepts_a_good_component_and_explains_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let out = check(dir.path(), copper_wasm::builtin::TESTKIT_PATH);
    out.assert_success();
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
    out.assert_exit(2);
    assert!(
        out.stderr.contains("copper:service/service"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("must export"), "{}", out.stderr);

    // A core module, not a component.
    std::fs::write(dir.path().join("core.wasm"), b"\0asm\x01\0\0\0").unwrap();
    let out = check(dir.path(), "core.wasm");
    out.assert_exit(2);
    assert!(
        out.stderr
            .contains("core WebAssembly module, not a component"),
        "{}",
        out.stderr
    );

    // Not WebAssembly at all.
    std::fs::write(dir.path().join("notes.txt"), "hello\n").unwrap();
    let out = check(dir.path(), "notes.txt");
    out.assert_exit(2);
    assert!(out.stderr.contains("not WebAssembly"), "{}", out.stderr);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);

    // A capability imported without being declared.
    let out = check(dir.path(), copper_wasm::builtin::UNDECLARED_PATH);
    out.assert_exit(2);
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
    out.assert_success();
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

#[test]
fn a_scaffolded_rust_plugin_builds_checks_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let out = output(copper(dir.path()).args(["plugin", "new", "greeter"]));
    out.assert_success();
    let project = dir.path().join("greeter");
    assert!(project.join("wit/service.wit").exists() && project.join("README.md").exists());
    // Built as its README says, with the build folder of this test run kept between runs.
    let target = std::env::temp_dir().join("copper-wasm-e2e-scaffold-target");
    output(
        std::process::Command::new(env!("CARGO"))
            .current_dir(&project)
            .args(["build", "--release", "--target", "wasm32-wasip2"])
            .env("CARGO_TARGET_DIR", &target)
            .env_remove("RUSTFLAGS"),
    )
    .assert_success();
    let wasm = target.join("wasm32-wasip2/release/greeter.wasm");
    let wasm = wasm.to_str().unwrap();
    let out = check(dir.path(), wasm);
    out.assert_success();
    assert!(out.stdout.contains("greeter/hello"), "{}", out.stdout);
    let out = output(copper(dir.path()).args([
        "plugin",
        "run",
        wasm,
        "greeter/hello",
        "--input",
        r#"{"name":"copper"}"#,
    ]));
    out.assert_success();
    assert!(out.stdout.contains("hello, copper"), "{}", out.stdout);
    // Its input schema is enforced by the host.
    let out = output(copper(dir.path()).args(["plugin", "run", wasm, "greeter/hello"]));
    out.assert_exit(1);
    assert!(out.stdout.contains("name"), "{}", out.stdout);

    let out = output(copper(dir.path()).args(["plugin", "new", "greeter"]));
    // An existing folder is not overwritten.
    out.assert_exit(2);
    let out = output(copper(dir.path()).args(["plugin", "new", "words", "--lang", "python"]));
    out.assert_success();
    let app = std::fs::read_to_string(dir.path().join("words/app.py")).unwrap();
    assert!(app.contains("name=\"words\""), "{app}");
}

#[test]
fn a_python_plugin_runs_in_a_workflow_next_to_the_rust_components() {
    let dir = tempfile::tempdir().unwrap();
    let build = dir.path().join("words");
    std::fs::create_dir_all(build.join("wit")).unwrap();
    std::fs::copy(
        repo_root().join("wit/service.wit"),
        build.join("wit/service.wit"),
    )
    .unwrap();
    std::fs::copy(
        repo_root().join("tests/fixtures/python-plugin/app.py"),
        build.join("app.py"),
    )
    .unwrap();
    let built = std::process::Command::new("componentize-py")
        .current_dir(&build)
        .args([
            "-d",
            "wit",
            "-w",
            "plugin",
            "componentize",
            "app",
            "-o",
            "words.wasm",
        ])
        .output()
        .expect("componentize-py (from PyPI; ./test.sh installs it) runs");
    Output::new("componentize-py componentize app", built).assert_success();
    let out = check(dir.path(), "words/words.wasm");
    out.assert_success();

    let site = dir.path().join("site");
    std::fs::create_dir_all(&site).unwrap();
    std::fs::write(site.join("one.md"), "# One\n\nthree more words\n").unwrap();
    std::fs::write(site.join("two.md"), "two words\n").unwrap();
    commit_tree(&site);
    ServicesFile::new()
        .component("words", "words/words.wasm")
        .write(dir.path());
    std::fs::write(
        dir.path().join("w.yaml"),
        "\
steps:
  - {id: fetch, action: fetcher/fetch, type: git, url: site, resource: site}
  - {id: count, action: words/count, needs: fetch, path: '${{ steps.fetch.outputs.path }}'}
  - {id: build, action: markdown/build, needs: fetch, resource: site, path: '${{ steps.fetch.outputs.path }}'}
",
    )
    .unwrap();
    let out = output(copper(dir.path()).args(["run", "w.yaml", "--events", "json"]));
    out.assert_success();
    let counted = out
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["event"] == "step.finished" && e["step"] == "count")
        .expect("the count finished");
    assert_eq!(counted["outputs"]["words"], 7, "{counted}");
    assert_eq!(counted["outputs"]["files"], 2, "{counted}");
    assert!(dir.path().join(".copper/web/site/one.html").exists());
}
