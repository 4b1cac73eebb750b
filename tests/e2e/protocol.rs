//! copper's protocol, spoken by clients and services that are not ours.

use crate::support::*;
use copper_wasm::access::Grant;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::{Value, json};
use std::time::Duration;

/// A plain MQTT client (rumqttc, nothing of ours) on a loopback broker, logged in
/// as the tests' user granted `grant`.
pub fn plain_client(
    port: u16,
    id: &str,
    grant: &copper_wasm::access::Grant,
) -> (AsyncClient, rumqttc::EventLoop) {
    let mut options = MqttOptions::new(id, "127.0.0.1", port);
    let (user, password) = login(grant);
    options.set_credentials(user, password);
    options.set_keep_alive(Duration::from_secs(30));
    options.set_max_packet_size(1 << 20, 1 << 20);
    AsyncClient::new(options, 64)
}

/// The next publish on the event loop, within 60 s.
async fn next_publish(events: &mut rumqttc::EventLoop) -> rumqttc::Publish {
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            if let Event::Incoming(Packet::Publish(publish)) =
                events.poll().await.expect("broker connection")
            {
                return publish;
            }
        }
    })
    .await
    .expect("a message within 60 s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_mqtt_client_gets_copper_shaped_start_and_finish() {
    let root = tempfile::tempdir().unwrap();
    let (server, _work) = serve_astro_big_doc(root.path());
    let github = server.github_url();
    let (_serve, port) = serve(
        root.path(),
        &[],
        &[("COPPER_GITHUB_URL", &github)],
        &["fetcher", "markdown"],
    )
    .await;

    let (client, mut events) = plain_client(port, "copper-runner-py", &Grant::Runner);
    client
        .subscribe("fetcher/fetch/+", QoS::AtLeastOnce)
        .await
        .unwrap();
    client
        .subscribe("fetcher/resources/+", QoS::AtLeastOnce)
        .await
        .unwrap();
    // copper's request: the workflow entry, nothing added.
    let request = json!({
        "action": "fetcher/fetch", "type": "github", "repository": "MicroWebStacks/astro-big-doc",
        "ref": "main", "filter": "content/*", "resource": "test-website"
    });
    client
        .publish(
            "fetcher/fetch",
            QoS::AtLeastOnce,
            false,
            request.to_string(),
        )
        .await
        .unwrap();

    let mut seen = std::collections::BTreeMap::new();
    while !(seen.contains_key("fetcher/fetch/finish")
        && seen.contains_key("fetcher/resources/test-website"))
    {
        let publish = next_publish(&mut events).await;
        seen.insert(
            publish.topic.clone(),
            serde_json::from_slice::<Value>(&publish.payload).unwrap(),
        );
    }
    let mut start = seen["fetcher/fetch/start"].clone();
    let taker = start
        .as_object_mut()
        .unwrap()
        .remove(copper_wasm::presence::TAKER_FIELD);
    assert!(
        taker
            .as_ref()
            .and_then(Value::as_str)
            .is_some_and(|t| !t.is_empty()),
        "start names the host that took it: {taker:?}"
    );
    assert_eq!(start, request, "start carries the request");
    let finish = &seen["fetcher/fetch/finish"];
    let entry = &finish.as_array().expect("finish is a list")[0];
    for (key, value) in request.as_object().unwrap() {
        assert_eq!(&entry[key], value, "the finish keeps the request's `{key}`");
    }
    assert_eq!(entry["path"], json!("/fetch/test-website"));
    assert_eq!(entry["status"], json!("success"));
    // Every file but the root README.md is under `content/`.
    assert_eq!(
        entry["total_files"],
        json!(ASTRO_CONTENT_FILES + 1),
        "{entry}"
    );
    assert_eq!(
        entry["filtered_files"],
        json!(ASTRO_CONTENT_FILES),
        "{entry}"
    );
    assert_eq!(entry["size_bytes"], json!(ASTRO_CONTENT_BYTES), "{entry}");
    assert_eq!(entry["size_text"], json!("244 KB 885 B"), "{entry}");
    assert!(
        entry["duration"].as_str().unwrap().starts_with("0:00:"),
        "{entry}"
    );
    assert!(
        entry["duration_text"].as_str().unwrap().ends_with("ms"),
        "{entry}"
    );
    assert_eq!(entry["commit"].as_str().unwrap().len(), 40);
    let resource = &seen["fetcher/resources/test-website"].as_array().unwrap()[0];
    assert_eq!(resource["path"], json!("/fetch/test-website"));
    assert!(
        root.path()
            .join(".copper/fetch/test-website/content/readme.md")
            .exists()
    );
}

/// A service written as copper's were: no correlation ids, `up` not retained, errors on
/// `<service>/error` before the finish. It answers `greeter/hello` and counts requests.
async fn copper_style_service(
    port: u16,
    ready: tokio::sync::oneshot::Sender<()>,
    served: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    let (client, mut events) = plain_client(port, "greeter-py", &Grant::Serve("greeter".into()));
    let mut ready = Some(ready);
    loop {
        let event = match events.poll().await {
            Ok(event) => event,
            // A broker under load may refuse the first connection: rumqttc tries again on
            // the next poll (and subscribes again, the session being clean).
            Err(error) if ready.is_some() => {
                eprintln!("greeter: {error}; connecting again");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
            Err(_) => return,
        };
        match event {
            // Subscribe on every connection: a broker under load may refuse the first one.
            Event::Incoming(Packet::ConnAck(_)) => {
                client
                    .subscribe("greeter/hello", QoS::AtLeastOnce)
                    .await
                    .unwrap();
                client
                    .publish("greeter/status", QoS::AtLeastOnce, false, "up")
                    .await
                    .unwrap();
            }
            Event::Incoming(Packet::SubAck(_)) => {
                if let Some(ready) = ready.take() {
                    let _ = ready.send(());
                }
            }
            Event::Incoming(Packet::Publish(publish)) if publish.topic == "greeter/hello" => {
                served.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let request: Value = serde_json::from_slice(&publish.payload).unwrap();
                client
                    .publish(
                        "greeter/hello/start",
                        QoS::AtLeastOnce,
                        false,
                        publish.payload.to_vec(),
                    )
                    .await
                    .unwrap();
                // A fresh entry, as a service that rebuilds it would send: no correlation id.
                let mut entry = json!({"action": "greeter/hello", "name": request["name"]});
                if request["name"] == json!("nobody") {
                    let error = json!({"error": "nobody to greet"});
                    client
                        .publish("greeter/error", QoS::AtLeastOnce, false, error.to_string())
                        .await
                        .unwrap();
                } else {
                    entry["greeting"] =
                        json!(format!("hello {}", request["name"].as_str().unwrap_or("?")));
                }
                let finish = Value::Array(vec![entry]).to_string();
                client
                    .publish("greeter/hello/finish", QoS::AtLeastOnce, false, finish)
                    .await
                    .unwrap();
            }
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_runner_drives_a_service_that_speaks_only_copper() {
    let root = tempfile::tempdir().unwrap();
    let (_serve, port) = serve(root.path(), &[], &[], &["fetcher"]).await;
    let served = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let service = tokio::spawn(copper_style_service(port, ready_tx, served.clone()));
    tokio::time::timeout(Duration::from_secs(60), ready_rx)
        .await
        .expect("the copper-style service subscribed within 60 s")
        .expect("the copper-style service connected");

    let good = root.path().join("greet.yaml");
    std::fs::write(
        &good,
        "- action: greeter/hello\n  name: ada\n- action: greeter/hello\n  name: grace\n",
    )
    .unwrap();
    let broker = format!("mqtt://127.0.0.1:{port}");
    let run = |workflow: &std::path::Path| {
        let mut command = copper(root.path());
        command.arg("run").arg(workflow).args([
            "--broker",
            &broker,
            "--no-local-services",
            "--external",
            "greeter",
        ]);
        command
    };
    let out = output_async(run(&good)).await;
    out.assert_success();
    assert!(
        out.stdout.contains("2 of 2 steps succeeded"),
        "{}",
        out.stdout
    );
    assert_eq!(served.load(std::sync::atomic::Ordering::SeqCst), 2);

    // copper's error convention: <service>/error, then a finish.
    let bad = root.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "- action: greeter/hello\n  name: nobody\n- action: greeter/hello\n  name: never\n",
    )
    .unwrap();
    let out = output_async(run(&bad)).await;
    out.assert_exit(1);
    assert!(out.stderr.contains("nobody to greet"), "{}", out.stderr);
    assert!(
        out.stdout.contains("skipped"),
        "the step after a failure is skipped:\n{}",
        out.stdout
    );
    assert_eq!(
        served.load(std::sync::atomic::Ordering::SeqCst),
        3,
        "the run stopped at the failure"
    );

    // Without --external the runner refuses: a copper service's `up` is not retained.
    let mut command = copper(root.path());
    command
        .arg("run")
        .arg(&good)
        .args(["--broker", &broker, "--no-local-services"]);
    let out = output_async(command).await;
    out.assert_exit(2);
    assert!(
        out.stderr.contains("greeter/hello") && out.stderr.contains("fetcher/fetch"),
        "{}",
        out.stderr
    );
    service.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_calls_each_get_their_own_result() {
    let root = tempfile::tempdir().unwrap();
    let testkit = copper_wasm::builtin::TESTKIT_PATH;
    let (_serve, port) = serve(root.path(), &["--component", testkit], &[], &["testkit"]).await;
    let broker = format!("mqtt://127.0.0.1:{port}");
    let children: Vec<_> = (0..50)
        .map(|n| {
            copper(root.path())
                .args([
                    "call",
                    "testkit/echo",
                    "--input",
                    &json!({"n": n}).to_string(),
                ])
                .args([
                    "--broker",
                    &broker,
                    "--no-local-services",
                    "--timeout",
                    "60s",
                ])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (n, child) in children.into_iter().enumerate() {
        let out = Output::new(format!("call {n}"), child.wait_with_output().unwrap());
        out.assert_success();
        let finish: Value = serde_json::from_str(&out.stdout).unwrap();
        let entry = &finish[0];
        assert_eq!(
            entry["n"],
            json!(n),
            "call {n} got someone else's result: {entry}"
        );
        assert_eq!(entry["status"], json!("success"));
        assert_eq!(
            entry["echo_id"], entry["correlation_id"],
            "the component saw the caller's id"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_without_correlation_ids_gets_one_finish_per_request() {
    // copper's runner takes the first message on `<action>/finish` as its answer: a
    // duplicate would pass for the next request's finish.
    let root = tempfile::tempdir().unwrap();
    let testkit = copper_wasm::builtin::TESTKIT_PATH;
    let (_serve, port) = serve(root.path(), &["--component", testkit], &[], &["testkit"]).await;
    let (client, mut events) = plain_client(port, "copper-runner-py", &Grant::Runner);
    client
        .subscribe("testkit/echo/finish", QoS::AtLeastOnce)
        .await
        .unwrap();
    const REQUESTS: u64 = 1000;
    let mut answers = Vec::new();
    for n in 0..REQUESTS {
        client
            .publish(
                "testkit/echo",
                QoS::AtLeastOnce,
                false,
                json!({"action": "testkit/echo", "n": n}).to_string(),
            )
            .await
            .unwrap();
        let finish = next_publish(&mut events).await;
        let finish: Value = serde_json::from_slice(&finish.payload).unwrap();
        answers.push(finish[0]["n"].as_u64().unwrap());
    }
    // Anything more within a second is a duplicate.
    let more = tokio::time::timeout(Duration::from_secs(1), next_publish(&mut events)).await;
    assert!(more.is_err(), "a finish more than the requests: {more:?}");
    let expected: Vec<u64> = (0..REQUESTS).collect();
    assert_eq!(
        answers, expected,
        "every finish answers its own request, in order"
    );
}
