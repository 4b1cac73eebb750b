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
