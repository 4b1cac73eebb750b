//! The broker going away and coming back; a clean stop.

use crate::support::*;
use copper_wasm::protocol::{Object, Status};
use copper_wasm::runner::request;
use std::time::Duration;

async fn echo(port: u16) -> Status {
    let bus = client(port).await;
    let mut fields = Object::new();
    fields.insert("n".into(), 1.into());
    let finish = request(
        &bus,
        "testkit/echo",
        &fields,
        Some(Duration::from_secs(30)),
        |_| {},
    )
    .await
    .unwrap();
    bus.close().await;
    finish.status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_serves_again_when_its_broker_comes_back() {
    let root = tempfile::tempdir().unwrap();
    let mosquitto = Mosquitto::start(root.path());
    let port = mosquitto.port;
    let broker = mosquitto.url();
    let testkit = copper_wasm::builtin::TESTKIT_PATH;
    let mut serving = serve_on(
        root.path(),
        port,
        &["--broker", &broker, "--component", testkit],
        &[],
        &["testkit"],
    )
    .await;
    assert_eq!(echo(port).await, Status::Success);

    drop(mosquitto);
    tokio::time::sleep(Duration::from_millis(500)).await;
    serving.assert_running();
    // A new broker with nothing retained: the host reconnects, subscribes and says `up` again.
    let _mosquitto = Mosquitto::start_on(root.path(), port);
    wait_up(port, &["testkit"]).await;
    assert_eq!(echo(port).await, Status::Success);
    serving.assert_running();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_stop_says_down() {
    let root = tempfile::tempdir().unwrap();
    let mosquitto = Mosquitto::start(root.path());
    let testkit = copper_wasm::builtin::TESTKIT_PATH;
    let args = [
        "--broker",
        &mosquitto.url(),
        "--component",
        testkit,
        "--no-local-services",
    ];
    // --no-local-services hosts nothing: a host with no service still starts and stops.
    let mut idle = serve_on(root.path(), mosquitto.port, &args, &[], &[]).await;
    assert!(idle.terminate().success());
    let mut serving = serve_on(
        root.path(),
        mosquitto.port,
        &["--broker", &mosquitto.url(), "--component", testkit],
        &[],
        &["testkit"],
    )
    .await;
    let status = serving.terminate();
    assert!(status.success(), "SIGTERM is a clean stop: {status}");
    let bus = client(mosquitto.port).await;
    let up = copper_wasm::runner::services_up(&bus, Duration::from_millis(500))
        .await
        .unwrap();
    assert!(up.is_empty(), "every service said down: {up:?}");
    let mut statuses = bus.subscribe("+/status").await.unwrap();
    let mut down = Vec::new();
    while let Ok(Some(message)) =
        tokio::time::timeout(Duration::from_millis(500), statuses.recv()).await
    {
        assert_eq!(
            &message.payload[..],
            b"down",
            "{} is not down",
            message.topic
        );
        down.push(message.topic);
    }
    down.sort();
    assert_eq!(
        down,
        ["fetcher/status", "markdown/status", "testkit/status"]
    );
}

#[test]
fn a_tls_broker_is_reached_over_mqtts_and_its_certificate_is_checked() {
    let root = tempfile::tempdir().unwrap();
    let (mosquitto, ca) = Mosquitto::start_tls(root.path());
    let url = format!("mqtts://localhost:{}", mosquitto.port);
    std::fs::create_dir_all(root.path().join("notes")).unwrap();
    std::fs::write(root.path().join("notes/a.md"), "# A\n").unwrap();
    let call = |ca: Option<&std::path::Path>| {
        let mut command = copper(root.path());
        command.args([
            "call",
            "fetcher/fetch",
            "--broker",
            &url,
            "--input",
            r#"{"type":"local","path":"notes","resource":"n"}"#,
        ]);
        match ca {
            Some(ca) => command.env("COPPER_MQTT_CA", ca),
            None => command.env_remove("COPPER_MQTT_CA"),
        };
        output(&mut command)
    };
    // A bundle: another authority first, then the broker's; every one is trusted.
    output(
        std::process::Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-days",
                "2",
                "-subj",
                "/CN=another authority",
            ])
            .args([
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
            ])
            .args(["-keyout", "other.key", "-out", "other.pem"])
            .current_dir(root.path()),
    )
    .assert_success();
    let bundle = root.path().join("bundle.pem");
    let mut pem = std::fs::read(root.path().join("other.pem")).unwrap();
    pem.extend(std::fs::read(&ca).unwrap());
    std::fs::write(&bundle, pem).unwrap();
    // The listener speaks only TLS: an answer means the whole exchange went over it.
    let out = call(Some(&bundle));
    out.assert_success();
    let finish: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(finish[0]["filtered_files"], serde_json::json!(1));
    // Without the authority the certificate is refused: a host error naming the broker.
    let out = call(None);
    out.assert_exit(3);
    assert!(
        out.stderr
            .contains("cannot connect to the MQTT broker at mqtts://")
            && out
                .stderr
                .contains(&format!("@localhost:{}", url.rsplit(':').next().unwrap()))
            && out.stderr.contains("certificate"),
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_host_with_the_same_id_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let mosquitto = Mosquitto::start(root.path());
    let testkit = copper_wasm::builtin::TESTKIT_PATH;
    let args = [
        "--broker",
        &mosquitto.url(),
        "--component",
        testkit,
        "--no-builtins",
        "--host-id",
        "twin",
    ];
    let mut first = serve_on(root.path(), mosquitto.port, &args, &[], &["testkit"]).await;
    let mut second = copper(root.path());
    second.arg("serve").args(args);
    let output = output_async(second).await;
    output.assert_exit(3);
    assert!(
        output.stderr.contains("host id `twin` is in use"),
        "{}",
        output.stderr
    );
    first.assert_running();
    // Stopped, its id is free again.
    assert!(first.terminate().success());
    let mut again = serve_on(root.path(), mosquitto.port, &args, &[], &["testkit"]).await;
    assert!(again.terminate().success());
}

/// Another host joins a host's embedded broker (rumqttd) over TCP: they split the
/// requests, and the joining host acknowledges them in the order they came, as
/// rumqttd insists (it drops a client that does not, which then gets them again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_joining_an_embedded_broker_splits_the_work_once() {
    let root = tempfile::tempdir().unwrap();
    let testkit = copper_wasm::builtin::TESTKIT_PATH;
    let first = [
        "--component",
        testkit,
        "--no-builtins",
        "--host-id",
        "first",
    ];
    let (mut embedded, port) = serve(root.path(), &first, &[], &["testkit"]).await;
    let url = format!("mqtt://127.0.0.1:{port}");
    let log = root.path().join("second.log");
    let mut command = copper(root.path());
    command.args([
        "serve",
        "--broker",
        &url,
        "--component",
        testkit,
        "--no-builtins",
    ]);
    command.args(["--host-id", "second", "--cache", "second"]);
    command.env("RUST_LOG", "info,rumqttd=off");
    let mut second = Process::spawn_logged(&mut command, "copper-wasm serve", &log);
    let bus = client(port).await;
    let hosts = copper_wasm::presence::Hosts::watch(&bus).await.unwrap();
    let until = std::time::Instant::now() + Duration::from_secs(60);
    while hosts.live().len() < 2 {
        second.assert_running();
        assert!(
            std::time::Instant::now() < until,
            "the second host is not up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut finishes = bus.subscribe("testkit/sleep/finish").await.unwrap();
    let mut starts = bus.subscribe("testkit/sleep/start").await.unwrap();
    for k in 0..200 {
        let request = serde_json::json!({"ms": 20, "correlation_id": format!("j{k}")});
        bus.publish("testkit/sleep", request.to_string(), false)
            .await
            .unwrap();
    }
    let mut answered = std::collections::BTreeMap::new();
    while answered.len() < 200 {
        let message = tokio::time::timeout(Duration::from_secs(30), finishes.recv())
            .await
            .expect("all answered within 30 s")
            .unwrap();
        let finish = copper_wasm::protocol::parse_finish(&message.payload);
        *answered.entry(finish.correlation_id.unwrap()).or_insert(0) += 1;
    }
    // Late repeats, if any, would come now.
    while let Ok(Some(message)) =
        tokio::time::timeout(Duration::from_millis(500), finishes.recv()).await
    {
        let finish = copper_wasm::protocol::parse_finish(&message.payload);
        *answered.entry(finish.correlation_id.unwrap()).or_insert(0) += 1;
    }
    assert!(
        answered.values().all(|n| *n == 1),
        "answered twice: {answered:?}"
    );
    let mut takers = std::collections::BTreeSet::new();
    while let Some(message) = starts.try_recv() {
        let start: serde_json::Value = serde_json::from_slice(&message.payload).unwrap();
        takers.insert(
            start[copper_wasm::presence::TAKER_FIELD]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(takers, ["first".to_string(), "second".to_string()].into());
    let said = std::fs::read_to_string(&log).unwrap();
    assert!(!said.contains("lost the broker"), "{said}");
    embedded.assert_running();
}
