//! The services file's components: a local file, a URL pinned by sha256 (served
//! on loopback), a download that does not match its pin, a misnamed component.

use crate::support::*;
use copper_wasm::component_url::sha256_hex;
use std::io::{Read, Write};
use std::net::TcpListener;

/// Serves `bytes` to every GET on a loopback port; returns the URL and how many were served.
fn serve_over_http(bytes: Vec<u8>) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/testkit.wasm", listener.local_addr().unwrap());
    let served = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = served.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/wasm\r\nConnection: close\r\n\r\n",
                bytes.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&bytes);
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    (url, served)
}

#[test]
fn a_component_from_a_url_pinned_by_sha256_is_downloaded_once_and_served() {
    let bytes = std::fs::read(copper_wasm::builtin::TESTKIT_PATH).unwrap();
    let (url, served) = serve_over_http(bytes.clone());
    let dir = tempfile::tempdir().unwrap();
    let compiled = dir.path().join("compiled");
    ServicesFile::new()
        .component_url("testkit", &url, &sha256_hex(&bytes))
        .write(dir.path());
    for _ in 0..2 {
        let out = output(
            copper(dir.path())
                .env("COPPER_COMPILED_CACHE", &compiled)
                .args(["call", "testkit/echo", "--input", r#"{"x":1}"#]),
        );
        out.assert_success();
        assert!(out.stdout.contains(r#""x": 1"#), "{}", out.stdout);
    }
    assert_eq!(
        served.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the second run uses the kept copy"
    );
}

#[test]
fn a_download_that_does_not_match_its_pin_is_refused() {
    let bytes = std::fs::read(copper_wasm::builtin::TESTKIT_PATH).unwrap();
    let (url, _served) = serve_over_http(bytes.clone());
    let dir = tempfile::tempdir().unwrap();
    let wrong = "0".repeat(64);
    ServicesFile::new()
        .component_url("testkit", &url, &wrong)
        .write(dir.path());
    std::fs::write(dir.path().join("w.yaml"), "- action: testkit/echo\n").unwrap();
    let out = output(
        copper(dir.path())
            .env("COPPER_COMPILED_CACHE", dir.path().join("compiled"))
            .args(["run", "w.yaml"]),
    );
    out.assert_exit(2);
    assert!(out.stderr.contains("w.yaml:1"), "{}", out.stderr);
    assert!(out.stderr.contains("refused"), "{}", out.stderr);
    assert!(out.stderr.contains(&sha256_hex(&bytes)), "{}", out.stderr);
    assert!(out.stderr.contains(&wrong), "{}", out.stderr);
}

#[test]
fn a_component_file_must_describe_the_service_it_is_named_for() {
    let dir = tempfile::tempdir().unwrap();
    ServicesFile::new()
        .component("words", copper_wasm::builtin::TESTKIT_PATH)
        .write(dir.path());
    std::fs::write(dir.path().join("w.yaml"), "- action: words/echo\n").unwrap();
    let out = output(copper(dir.path()).args(["run", "w.yaml"]));
    out.assert_exit(2);
    assert!(
        out.stderr.contains("names `words`") && out.stderr.contains("`testkit`"),
        "{}",
        out.stderr
    );

    ServicesFile::new()
        .component("testkit", copper_wasm::builtin::TESTKIT_PATH)
        .write(dir.path());
    std::fs::write(dir.path().join("w.yaml"), "- action: testkit/echo\n").unwrap();
    let out = output(copper(dir.path()).args(["run", "w.yaml"]));
    out.assert_success();
}

#[test]
fn a_services_file_error_names_its_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let services = ServicesFile::new().docker(
        "boxed",
        Docker::image("busybox:1.36").field("memory", "plenty"),
        "[run]",
    );
    services.write(dir.path());
    std::fs::write(dir.path().join("w.yaml"), "- action: boxed/run\n").unwrap();
    let out = output(copper(dir.path()).args(["run", "w.yaml"]));
    out.assert_exit(2);
    let at = format!(
        "copper.yaml:{}: field `services.boxed.docker.memory`",
        services.line_of("memory:")
    );
    assert!(out.stderr.contains(&at), "{at}: {}", out.stderr);
}

#[test]
fn an_external_service_that_is_not_up_is_an_error_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let services = ServicesFile::new().external("legacy", "[render]");
    services.write(dir.path());
    let declared = format!(
        "external service `legacy` (./copper.yaml:{})",
        services.line_of("external: true")
    );
    std::fs::write(
        dir.path().join("uses-legacy.yaml"),
        "- action: fetcher/fetch\n  type: local\n  path: .\n  resource: r\n- action: legacy/render\n",
    )
    .unwrap();
    // Hosting nothing here changes nothing about services served elsewhere.
    for flags in [&[][..], &["--no-local-services"]] {
        let out = output(
            copper(dir.path())
                .args(["run", "uses-legacy.yaml"])
                .args(flags),
        );
        out.assert_exit(2);
        assert!(
            out.stderr.contains("uses-legacy.yaml:5: field `action`")
                && out.stderr.contains(&declared)
                && out.stderr.contains("not up on the broker"),
            "{flags:?}: {}",
            out.stderr
        );
    }
    assert!(
        !dir.path().join(".copper/runs").exists(),
        "the check comes before the run's folder"
    );
}

/// The outputs of step `step` in the events `run --events json` printed.
fn outputs_of(stdout: &str, step: &str) -> serde_json::Value {
    stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|e| e["event"] == "step.finished" && e["step"] == step)
        .unwrap_or_else(|| panic!("{step} did not finish: {stdout}"))["outputs"]
        .clone()
}

#[test]
fn a_component_gets_only_what_its_entry_grants() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    std::fs::write(dir.join("fetcher.wasm"), copper_wasm::builtin::FETCHER).unwrap();
    std::fs::create_dir(dir.join("content")).unwrap();
    std::fs::write(dir.join("content/a.txt"), "granted\n").unwrap();
    std::fs::write(
        dir.join("fetch.yaml"),
        "- {id: f, action: fetcher/fetch, type: local, path: content, resource: r}\n",
    )
    .unwrap();
    let run = |workflow: &str| {
        output(
            copper(dir)
                .args(["run", workflow, "--no-builtins", "--events", "json"])
                .env("GREETING", "hello"),
        )
    };

    // The fetcher declares `git` and `workspace`: from a file, it needs them granted.
    std::fs::write(
        dir.join("copper.yaml"),
        "services:\n  fetcher:\n    component: fetcher.wasm\n",
    )
    .unwrap();
    let out = run("fetch.yaml");
    out.assert_exit(3);
    assert!(
        out.stderr
            .contains("asks for the capability `git`, which is not granted to it"),
        "{}",
        out.stderr
    );
    std::fs::write(
        dir.join("copper.yaml"),
        "services:\n  fetcher:\n    component: fetcher.wasm\n    grants: {capabilities: [git, workspace]}\n",
    )
    .unwrap();
    run("fetch.yaml").assert_success();

    // A folder and a variable, only when granted.
    std::fs::write(
        dir.join("read.yaml"),
        "steps:\n  - {id: granted, action: testkit/read, path: /content/a.txt, variable: GREETING}\n  - {id: other, action: testkit/read, path: /etc/hostname, variable: PATH}\n",
    )
    .unwrap();
    // testkit served with `grants` (YAML lines under its entry).
    let testkit_with = |grants: &str| {
        let entry = format!(
            "services:\n  testkit:\n    component: {}\n{grants}",
            copper_wasm::builtin::TESTKIT_PATH
        );
        std::fs::write(dir.join("copper.yaml"), entry).unwrap();
    };
    testkit_with(
        "    grants:\n      folders: [{host: content, guest: /content}]\n      env: [GREETING]\n",
    );
    let out = run("read.yaml");
    out.assert_success();
    let granted = outputs_of(&out.stdout, "granted");
    assert_eq!(granted["file"], "granted\n", "{granted}");
    assert_eq!(granted["env"], "hello", "{granted}");
    let other = outputs_of(&out.stdout, "other");
    assert!(other["file"]["error"].is_string(), "{other}");
    assert!(other["env"].is_null(), "{other}");
    testkit_with("");
    let out = run("read.yaml");
    out.assert_success();
    let granted = outputs_of(&out.stdout, "granted");
    assert!(granted["file"]["error"].is_string(), "{granted}");
    assert!(granted["env"].is_null(), "{granted}");

    // A grant that would shadow the host's own folders is refused, with its line.
    testkit_with("    grants:\n      folders: [{host: content, guest: /fetch/x}]\n");
    let out = run("read.yaml");
    out.assert_exit(2);
    assert!(
        out.stderr.contains("copper.yaml:5")
            && out
                .stderr
                .contains("services.testkit.grants.folders[0].guest"),
        "{}",
        out.stderr
    );
}

/// `grants.reuse`: one instance answers the requests in turn, up to its count; a
/// failure drops it, and the next request gets a fresh one. Without it, every
/// request gets a fresh instance.
#[test]
fn a_component_granted_reuse_answers_in_one_instance_until_it_fails_or_is_used_up() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    // Each step after the one before it, whatever became of that one.
    let order = ["c1", "c2", "t", "c3", "c4", "c5", "c6"];
    let mut steps = String::from("steps:\n");
    for (at, id) in order.iter().enumerate() {
        let action = if *id == "t" { "trap" } else { "count" };
        let needs = if at == 0 {
            "[]".to_string()
        } else {
            format!("[{}]", order[at - 1])
        };
        steps.push_str(&format!(
            "  - {{id: {id}, action: testkit/{action}, needs: {needs}, if: always(), continue_on_error: true}}\n"
        ));
    }
    std::fs::write(dir.join("count.yaml"), steps).unwrap();
    let testkit_with = |grants: &str| {
        let entry = format!(
            "services:\n  testkit:\n    component: {}\n{grants}",
            copper_wasm::builtin::TESTKIT_PATH
        );
        std::fs::write(dir.join("copper.yaml"), entry).unwrap();
    };
    let answered = |stdout: &str| -> Vec<u64> {
        ["c1", "c2", "c3", "c4", "c5", "c6"]
            .iter()
            .map(|step| outputs_of(stdout, step)["answered"].as_u64().unwrap())
            .collect()
    };
    let run =
        || output(copper(dir).args(["run", "count.yaml", "--no-builtins", "--events", "json"]));

    testkit_with("    grants: {reuse: 3}\n");
    let out = run();
    out.assert_success();
    // c1 and c2 in one instance; the trap drops it; c3 to c5 in a fresh one, used
    // up after its third; c6 in a fresh one again.
    assert_eq!(answered(&out.stdout), [1, 2, 1, 2, 3, 1], "{}", out.stdout);

    testkit_with("");
    let out = run();
    out.assert_success();
    assert_eq!(answered(&out.stdout), [1, 1, 1, 1, 1, 1], "{}", out.stdout);

    // Not for a component that clones: each clone has a /scratch of its own.
    testkit_with("    grants: {capabilities: [git], reuse: 2}\n");
    let out = run();
    out.assert_exit(2);
    assert!(
        out.stderr.contains("copper.yaml:4")
            && out.stderr.contains("services.testkit.grants.reuse"),
        "{}",
        out.stderr
    );
}
