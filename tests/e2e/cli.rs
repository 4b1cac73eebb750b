//! The command line as a user meets it: the README's command, errors, listings.

use crate::support::*;

#[test]
fn readme_main_command_builds_this_repositorys_docs() {
    // The README's command is `cargo run -- run workflows/docs.yaml` from the repository root.
    let root = repo_root();
    let site = root.join(".copper/web/copper-wasm-docs");
    let _ = std::fs::remove_dir_all(&site);
    let out = output(copper(&root).args(["run", "workflows/docs.yaml"]));
    out.assert_success();
    assert!(
        out.stdout.contains("fetcher/fetch") && out.stdout.contains("success"),
        "{}",
        out.stdout
    );
    let readme = std::fs::read_to_string(site.join("README.html")).expect("README.html built");
    assert!(
        readme.contains("<h1 id=\"copper-wasm\">copper-wasm</h1>"),
        "{readme}"
    );
    assert!(
        readme.contains("href=\"docs/architecture.html\""),
        "links to docs are rewritten: {readme}"
    );
    let architecture =
        std::fs::read_to_string(site.join("docs/architecture.html")).expect("docs built");
    assert!(architecture.contains("scheduler"), "{architecture}");
    assert!(
        std::fs::read_to_string(site.join("index.html"))
            .unwrap()
            .contains("docs/protocol.html")
    );
}

#[test]
fn malformed_yaml_is_reported_with_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("broken.yaml"),
        "- action: fetcher/fetch\n  filter: [content/*\n- action: markdown/build\n",
    )
    .unwrap();
    let out = output(copper(dir.path()).args(["run", "broken.yaml"]));
    out.assert_exit(2);
    let first = out.stderr.lines().next().unwrap_or_default();
    assert!(first.starts_with("error: broken.yaml:"), "{}", out.stderr);
    let location: Vec<&str> = first
        .trim_start_matches("error: broken.yaml:")
        .splitn(3, ':')
        .collect();
    assert!(
        location[0].parse::<u32>().is_ok() && location[1].parse::<u32>().is_ok(),
        "line and column in `{first}`"
    );
    assert!(
        !dir.path()
            .join(".copper/fetch")
            .read_dir()
            .map(|mut d| d.next().is_some())
            .unwrap_or(false),
        "nothing ran"
    );
}

#[test]
fn unknown_action_names_the_entry_its_line_and_the_known_actions() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("typo.yaml"),
        "- action: fetcher/fetch\n  type: local\n  path: .\n  resource: r\n- action: markdown/biuld\n  path: /fetch/r\n",
    )
    .unwrap();
    let out = output(copper(dir.path()).args(["run", "typo.yaml"]));
    out.assert_exit(2);
    assert!(
        out.stderr.contains("typo.yaml:5: field `action`"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("markdown/biuld") && out.stderr.contains("markdown/build"),
        "{}",
        out.stderr
    );
    assert!(
        !dir.path().join(".copper/fetch/r").exists(),
        "nothing ran before the check"
    );
}

#[test]
fn a_missing_workflow_and_bad_flags_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = output(copper(dir.path()).args(["run", "nope.yaml"]));
    out.assert_exit(2);
    assert!(
        out.stderr.contains("nope.yaml") && out.stderr.contains("cannot read"),
        "{}",
        out.stderr
    );
    let out = output(copper(dir.path()).args(["call", "fetcher/fetch", "--input", "[1]"]));
    out.assert_exit(2);
    assert!(out.stderr.contains("JSON object"), "{}", out.stderr);
    let out = output(copper(dir.path()).args([
        "run",
        "x.yaml",
        "--broker",
        "mqtt://me:hunter2@127.0.0.1:1",
    ]));
    // The workflow is checked before the broker is reached.
    out.assert_exit(2);
    // With a valid workflow the unreachable broker is exit 3, its password hidden:
    // see each_exit_code_comes_with_its_error_printed_once_as_a_chain.
}

#[test]
fn services_lists_actions_and_schemas() {
    let dir = tempfile::tempdir().unwrap();
    let out = output(copper(dir.path()).args(["services"]));
    out.assert_success();
    assert!(
        out.stdout.contains("fetcher/fetch") && out.stdout.contains("markdown/build"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("resource*"),
        "required fields are marked: {}",
        out.stdout
    );
    let out = output(copper(dir.path()).args(["services", "--json"]));
    let services: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let fetcher = services
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "fetcher")
        .unwrap();
    assert_eq!(
        fetcher["capabilities"],
        serde_json::json!(["git", "workspace"])
    );
    assert_eq!(
        fetcher["actions"][0]["input_schema"]["required"],
        serde_json::json!(["resource"])
    );
}

#[test]
fn call_without_a_broker_hosts_the_services_itself() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("notes")).unwrap();
    std::fs::write(dir.path().join("notes/a.md"), "# A\n").unwrap();
    let out = output(copper(dir.path()).args([
        "call",
        "fetcher/fetch",
        "--input",
        r#"{"type":"local","path":"notes","resource":"n"}"#,
    ]));
    out.assert_success();
    let finish: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(finish[0]["filtered_files"], serde_json::json!(1));
    let out = output(copper(dir.path()).args([
        "call",
        "markdown/build",
        "--input",
        r#"{"resource":"n","path":"/nowhere"}"#,
    ]));
    // A failed action exits 1.
    out.assert_exit(1);
    assert!(
        out.stdout.contains("\"status\": \"failed\""),
        "{}",
        out.stdout
    );
    let out = output(copper(dir.path()).args(["call", "markdown/biuld", "--input", "{}"]));
    // An action nobody answers is a usage error.
    out.assert_exit(2);
    assert!(
        out.stderr.contains("no service answers `markdown/biuld`")
            && out.stderr.contains("markdown/build"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_component_importing_an_undeclared_capability_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = output(copper(dir.path()).args([
        "services",
        "--component",
        copper_wasm::builtin::UNDECLARED_PATH,
    ]));
    out.assert_exit(3);
    assert!(
        out.stderr.contains("undeclared.wasm"),
        "names the file: {}",
        out.stderr
    );
    assert!(out.stderr.contains("does not grant"), "{}", out.stderr);
    assert!(
        out.stderr.contains("copper:service/git"),
        "names the import: {}",
        out.stderr
    );
}

#[test]
fn components_are_compiled_once() {
    let dir = tempfile::tempdir().unwrap();
    let compiled = dir.path().join("compiled");
    let cached = || -> Vec<(std::path::PathBuf, std::time::SystemTime)> {
        let mut files: Vec<_> = std::fs::read_dir(&compiled)
            .unwrap()
            .map(|e| e.unwrap().path())
            .map(|p| {
                (
                    p.clone(),
                    std::fs::metadata(&p).unwrap().modified().unwrap(),
                )
            })
            .collect();
        files.sort();
        files
    };
    let out = output(
        copper(dir.path())
            .env("COPPER_COMPILED_CACHE", &compiled)
            .arg("services"),
    );
    out.assert_success();
    let first = cached();
    let named = |end: &str| {
        first
            .iter()
            .filter(|(p, _)| p.to_string_lossy().ends_with(end))
            .count()
    };
    assert_eq!(
        (named(".cwasm"), named(".describe.json"), first.len()),
        (2, 2, 4),
        "one artifact and what it said of itself per built-in component: {first:?}"
    );
    let out = output(
        copper(dir.path())
            .env("COPPER_COMPILED_CACHE", &compiled)
            .arg("services"),
    );
    out.assert_success();
    assert_eq!(
        cached(),
        first,
        "the second run reuses the artifacts as they are"
    );
}

/// The `error:` lines of a command's standard error.
fn error_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.starts_with("error:")).collect()
}

#[test]
fn each_exit_code_comes_with_its_error_printed_once_as_a_chain() {
    let dir = tempfile::tempdir().unwrap();
    // 2: bad input, the parser's reason after it.
    let out = output(copper(dir.path()).args(["call", "fetcher/fetch", "--input", "{nope"]));
    out.assert_exit(2);
    assert_eq!(
        error_lines(&out.stderr),
        ["error: --input is not JSON: key must be a string at line 1 column 2"],
        "{}",
        out.stderr
    );
    // 3: a broker nobody answers on; its password never shows, each cause once.
    std::fs::write(dir.path().join("x.yaml"), "- action: a/b\n").unwrap();
    let out = output(copper(dir.path()).args([
        "run",
        "x.yaml",
        "--broker",
        "mqtt://me:hunter2@127.0.0.1:1",
    ]));
    out.assert_exit(3);
    let errors = error_lines(&out.stderr);
    assert_eq!(errors.len(), 1, "{}", out.stderr);
    assert!(
        errors[0].starts_with(
            "error: cannot start the host: cannot connect to the MQTT broker at mqtt://me:***@127.0.0.1:1: "
        ),
        "{}",
        out.stderr
    );
    assert_eq!(
        errors[0].matches("os error").count(),
        1,
        "the cause shows once: {}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("hunter2"),
        "the password never shows: {}",
        out.stderr
    );
    // 1: a failed step, named after the run's summary.
    std::fs::write(
        dir.path().join("w.yaml"),
        "- id: broken\n  action: testkit/fail\n- id: after\n  action: testkit/echo\n",
    )
    .unwrap();
    let testkit = copper_wasm::builtin::TESTKIT_PATH;
    let out = output(copper(dir.path()).args(["run", "w.yaml", "--component", testkit]));
    out.assert_exit(1);
    assert_eq!(
        error_lines(&out.stderr),
        ["error: 1 of 2 steps failed: `broken`"],
        "{}",
        out.stderr
    );
    // 1: a called action that failed: its finish on standard output, why on standard error.
    let out = output(copper(dir.path()).args(["call", "testkit/fail", "--component", testkit]));
    out.assert_exit(1);
    assert!(
        out.stdout.contains("\"status\": \"failed\""),
        "{}",
        out.stdout
    );
    assert_eq!(
        error_lines(&out.stderr),
        ["error: `testkit/fail`: failed: asked to fail"],
        "{}",
        out.stderr
    );
}
