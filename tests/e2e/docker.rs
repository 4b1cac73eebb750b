//! Docker services on the real engine of this machine: lambdas, a long-running
//! service, a sidecar, the same action as a component and as a container.
//!
//! The engine can pull nothing: the test image ([`test_image`]) is imported from this
//! machine's own busybox and mosquitto clients (tests/fixtures/shell-image). With no
//! engine these tests fail, in CI and everywhere else: they never skip.

use crate::support::*;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// Containers labelled as ours that are still there.
fn leftover_containers() -> Vec<String> {
    let out = Command::new("docker")
        .args([
            "ps",
            "-a",
            "--filter",
            "label=copper-wasm.owner",
            "--format",
            "{{.ID}} {{.Labels}}",
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Containers and networks of services named `service` (tests run at once, each with its own names).
fn leftovers_of(service: &str) -> Vec<String> {
    let label = format!("copper-wasm.service={service}");
    let mut found: Vec<String> = leftover_containers()
        .into_iter()
        .filter(|line| line.contains(&label))
        .collect();
    let networks = Command::new("docker")
        .args(["network", "ls", "--filter", &format!("label={label}"), "-q"])
        .output()
        .unwrap();
    found.extend(
        String::from_utf8_lossy(&networks.stdout)
            .lines()
            .map(|l| format!("network {l}")),
    );
    found
}

/// Fails if a container or network of `service` is left.
pub(crate) fn assert_clean(service: &str) {
    let left = leftovers_of(service);
    assert!(left.is_empty(), "left behind: {left:?}");
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

/// `copper-wasm call` in `dir`; the finish entry it printed.
fn call(dir: &Path, topic: &str, input: &str, extra: &[&str]) -> (Output, Value) {
    let out = output(
        copper(dir)
            .args(["call", topic, "--input", input])
            .args(extra),
    );
    let finish: Value = serde_json::from_str(&out.stdout).unwrap_or(Value::Null);
    (out, finish[0].clone())
}

#[test]
fn a_lambda_writes_into_web_and_returns_its_output() {
    let dir = tempfile::tempdir().unwrap();
    ServicesFile::new()
        .docker(
            "pages",
            Docker::test_image()
                .script(
                    r#"set -e
echo "building $COPPER_TOPIC"
grep -q '"resource":"site"' /copper/request.json
mkdir -p /web/site
echo "<h1>$GREETING</h1>" > /web/site/index.html
echo '{"pages": 1}' > /copper/output.json
"#,
                )
                .env("GREETING", "${COPPER_TEST_GREETING:-made in a container}"),
            "build:\n  doc: Writes one page into /web\n  output: {type: object, required: [pages]}\n",
        )
        .write(dir.path());
    write(
        dir.path(),
        "site.yaml",
        "- action: pages/build\n  resource: site\n",
    );
    let out = output(copper(dir.path()).args(["run", "site.yaml"]));
    out.assert_success();
    assert!(out.stdout.contains("pages/build"), "{}", out.stdout);
    let page = std::fs::read_to_string(dir.path().join(".copper/web/site/index.html"))
        .expect("the container wrote into /web");
    assert_eq!(page.trim(), "<h1>made in a container</h1>");
    let logs: Vec<_> = std::fs::read_dir(dir.path().join(".copper/logs/pages"))
        .expect("a log folder for the service")
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(logs.len(), 1, "{logs:?}");
    let log = std::fs::read_to_string(&logs[0]).unwrap();
    assert!(log.contains("building pages/build"), "{log}");

    let (out, finish) = call(dir.path(), "pages/build", r#"{"resource":"site"}"#, &[]);
    out.assert_success();
    assert_eq!(finish["status"], "success", "{finish}");
    assert_eq!(finish["pages"], 1, "{finish}");
    assert_eq!(finish["resource"], "site", "{finish}");
    assert_clean("pages");
}

#[test]
fn a_failing_lambda_reports_its_exit_code_and_log_tail() {
    let dir = tempfile::tempdir().unwrap();
    ServicesFile::new()
        .docker(
            "broken",
            Docker::test_image()
                .command("[sh, -c, 'echo starting; echo something went wrong >&2; exit 3']"),
            "[run]",
        )
        .write(dir.path());
    let (out, finish) = call(dir.path(), "broken/run", "{}", &[]);
    out.assert_exit(1);
    assert_eq!(finish["status"], "failed", "{finish}");
    assert_eq!(finish["exit_code"], 3, "{finish}");
    let error = finish["error"].as_str().unwrap_or_default();
    assert!(error.contains("exited with code 3"), "{error}");
    assert!(
        error.contains("something went wrong"),
        "the log tail: {error}"
    );

    // In a workflow: the step fails, the next one is skipped, exit code 1.
    write(
        dir.path(),
        "w.yaml",
        "- action: broken/run\n- action: broken/run\n",
    );
    let out = output(copper(dir.path()).args(["run", "w.yaml"]));
    out.assert_exit(1);
    assert!(out.stdout.contains("skipped"), "{}", out.stdout);
    assert_clean("broken");
}

#[test]
fn a_lambda_past_its_timeout_is_killed_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    ServicesFile::new()
        .docker(
            "sleepy",
            Docker::test_image()
                .command("[sh, -c, 'echo going to sleep; sleep 600']")
                .field("timeout", "1s"),
            "[run]",
        )
        .write(dir.path());
    let (out, finish) = call(dir.path(), "sleepy/run", "{}", &[]);
    out.assert_exit(1);
    assert_eq!(finish["status"], "failed", "{finish}");
    let error = finish["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("timed out") && error.contains("killed"),
        "{error}"
    );
    assert!(error.contains("going to sleep"), "{error}");
    // A step's own `timeout` overrides the service's.
    let (_, finish) = call(dir.path(), "sleepy/run", r#"{"timeout":"2s"}"#, &[]);
    let error = finish["error"].as_str().unwrap_or_default();
    assert!(error.contains("timeout of 2s"), "{error}");
    assert_clean("sleepy");
}

#[test]
fn a_service_container_connects_to_the_broker_and_serves_its_topic() {
    let dir = tempfile::tempdir().unwrap();
    ServicesFile::new()
        .docker(
            "greeter",
            Docker::test_image()
                .service_mode()
                .command("[sh, /serve.sh]"),
            "[hello]",
        )
        .write(dir.path());
    write(
        dir.path(),
        "w.yaml",
        "- action: greeter/hello\n  name: world\n- action: greeter/hello\n  name: again\n",
    );
    let out = output(copper(dir.path()).args(["run", "w.yaml"]));
    out.assert_success();
    assert!(
        out.stdout.contains("2 of 2 steps succeeded"),
        "{}",
        out.stdout
    );

    let (out, finish) = call(dir.path(), "greeter/hello", r#"{"name":"x"}"#, &[]);
    out.assert_success();
    assert_eq!(finish["greeting"], "hello from a container", "{finish}");
    assert_eq!(finish["name"], "x", "{finish}");
    let log = std::fs::read_to_string(dir.path().join(".copper/logs/greeter/service.log"))
        .unwrap_or_default();
    assert!(log.contains("answering"), "service log: {log}");
    assert_clean("greeter");
}

#[test]
fn a_sidecar_is_ready_before_the_service_and_removed_after() {
    let dir = tempfile::tempdir().unwrap();
    let store = Docker::test_image()
        .command("[sh, -c, 'sleep 1; mkdir -p /www; echo sidecar-data > /www/index.html; httpd -f -p 8080 -h /www']")
        .field("ready", "[wget, -q, -O, /dev/null, http://127.0.0.1:8080/]")
        .field("ready_timeout", "20s");
    ServicesFile::new()
        .docker(
            "reader",
            Docker::test_image()
                .command(
                    r#"[sh, -c, 'echo "{\"fetched\": \"$(wget -q -O- http://store:8080/)\"}"']"#,
                )
                .sidecar("store", store),
            "[read]",
        )
        .write(dir.path());
    let (out, finish) = call(dir.path(), "reader/read", "{}", &[]);
    out.assert_success();
    assert_eq!(finish["fetched"], "sidecar-data", "{finish}");
    assert_clean("reader");
}

#[test]
fn the_same_action_as_a_component_and_as_a_container_gives_the_same_results() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join(".copper/fetch/poems");
    std::fs::create_dir_all(&data).unwrap();
    write(
        &data,
        "poem.txt",
        "Copper wire, copper wire,\nthe current runs through\n\nand out again.\n",
    );
    write(
        dir.path(),
        "w.yaml",
        "- action: testkit/wc\n  path: /fetch/poems/poem.txt\n",
    );
    std::fs::create_dir(dir.path().join("containers")).unwrap();
    ServicesFile::new()
        .docker(
            "testkit",
            Docker::test_image().script(
                r#"path=$(sed -n 's/.*"path":"\([^"]*\)".*/\1/p' /copper/request.json)
set -- $(wc -l -w -c < "$path")
echo "{\"lines\":$1,\"words\":$2,\"bytes\":$3}" > /copper/output.json
"#,
            ),
            "[wc]",
        )
        .write(&dir.path().join("containers"));
    let component = ["--component", copper_wasm::builtin::TESTKIT_PATH];
    let container = ["--services", "containers/copper.yaml"];
    for how in [&component[..], &container[..]] {
        let out = output(copper(dir.path()).args(["run", "w.yaml"]).args(how));
        out.assert_success();
    }
    let input = r#"{"path":"/fetch/poems/poem.txt"}"#;
    let (_, by_component) = call(dir.path(), "testkit/wc", input, &component);
    let (_, by_container) = call(dir.path(), "testkit/wc", input, &container);
    assert_eq!(by_component["status"], "success", "{by_component}");
    assert_eq!(by_component["lines"], 4, "{by_component}");
    for field in ["status", "lines", "words", "bytes", "path"] {
        assert_eq!(by_component[field], by_container[field], "{field}");
    }
    assert_clean("testkit");
}

#[test]
fn an_image_that_cannot_be_had_is_an_error_naming_the_step_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    ServicesFile::new()
        .docker(
            "ghost",
            Docker::image("copper-wasm-test/not-there:1").field("pull", "never"),
            "[run]",
        )
        .write(dir.path());
    write(
        dir.path(),
        "w.yaml",
        "- action: fetcher/fetch\n  type: local\n  path: .\n  resource: r\n- action: ghost/run\n",
    );
    let out = output(copper(dir.path()).args(["run", "w.yaml"]));
    out.assert_exit(2);
    assert!(out.stderr.contains("w.yaml:5"), "{}", out.stderr);
    assert!(out.stderr.contains("ghost/run"), "{}", out.stderr);
    assert!(
        out.stderr.contains("copper-wasm-test/not-there:1"),
        "{}",
        out.stderr
    );
    assert!(
        !dir.path().join(".copper/fetch/r").exists(),
        "nothing ran before the error"
    );
}

#[test]
fn leftovers_of_a_crashed_host_are_removed_at_the_next_start() {
    let image = test_image();
    // A container labelled as owned by a process of this machine that no longer runs.
    let hostname = std::fs::read_to_string("/etc/hostname").unwrap();
    let owner = format!("{}:999999999:1", hostname.trim());
    output(Command::new("docker").args([
        "run",
        "-d",
        "--label",
        &format!("copper-wasm.owner={owner}"),
        "--label",
        "copper-wasm.service=crashed",
        image,
        "sleep",
        "600",
    ]))
    .assert_success();
    assert_eq!(leftovers_of("crashed").len(), 1);
    let dir = tempfile::tempdir().unwrap();
    ServicesFile::new()
        .docker("tidy", Docker::test_image().command("[true]"), "[run]")
        .write(dir.path());
    let (out, finish) = call(dir.path(), "tidy/run", "{}", &[]);
    out.assert_success();
    assert_eq!(finish["status"], "success", "{finish}");
    assert_clean("crashed");
}

#[test]
fn an_interrupted_run_kills_and_removes_its_containers() {
    let dir = tempfile::tempdir().unwrap();
    ServicesFile::new()
        .docker(
            "stuck",
            Docker::test_image().command("[sleep, '600']"),
            "[run]",
        )
        .write(dir.path());
    write(dir.path(), "w.yaml", "- action: stuck/run\n");
    let mut run = Process::spawn(
        copper(dir.path()).args(["run", "w.yaml"]),
        "copper-wasm run",
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while leftovers_of("stuck").is_empty() {
        run.assert_running();
        assert!(
            std::time::Instant::now() < deadline,
            "the step's container never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let status = run.terminate();
    assert_eq!(status.code(), Some(130), "{status}");
    assert_clean("stuck");
}

#[test]
fn the_example_workflow_mixes_components_and_a_container() {
    let image = test_image();
    let root = repo_root();
    let site = root.join(".copper/web/copper-wasm-site");
    let _ = std::fs::remove_dir_all(&site);
    let out = output(
        copper(&root)
            .args(["run", "workflows/docs-with-sitemap.yaml"])
            .env("COPPER_SITEMAP_IMAGE", image),
    );
    out.assert_success();
    assert!(out.stdout.contains("sitemap/build"), "{}", out.stdout);
    let sitemap = std::fs::read_to_string(site.join("sitemap.txt")).expect("sitemap.txt");
    assert!(sitemap.contains("./README.html"), "{sitemap}");
    assert!(sitemap.contains("./docs/services.html"), "{sitemap}");
    assert_clean("sitemap");
}

#[test]
fn no_docker_engine_is_an_error_naming_the_step_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    ServicesFile::new()
        .docker("boxed", Docker::image("busybox:1.36"), "[run]")
        .write(dir.path());
    write(
        dir.path(),
        "w.yaml",
        "- action: fetcher/fetch\n  type: local\n  path: .\n  resource: r\n- action: boxed/run\n",
    );
    let out = output(
        copper(dir.path())
            .args(["run", "w.yaml"])
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock"),
    );
    out.assert_exit(2);
    assert!(out.stderr.contains("w.yaml:5"), "{}", out.stderr);
    assert!(out.stderr.contains("boxed/run"), "{}", out.stderr);
    assert!(
        out.stderr.contains("no Docker engine answers"),
        "{}",
        out.stderr
    );
    assert!(!dir.path().join(".copper/fetch/r").exists());
}
