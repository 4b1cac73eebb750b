//! Sharing the cores: a CPU-bound component yields to the other requests, and a
//! request's deadline counts from its arrival, time in the queue included.

use crate::support::*;
use serde_json::{Value, json};
use std::time::Duration;

const TESTKIT: &str = copper_wasm::builtin::TESTKIT_PATH;

/// The next finish on `finishes` within 60 s, as JSON (its first entry).
async fn next_finish(finishes: &mut copper_wasm::bus::Subscription) -> Value {
    let message = tokio::time::timeout(Duration::from_secs(60), finishes.recv())
        .await
        .expect("a finish within 60 s")
        .expect("the subscription is open");
    let finish: Value = serde_json::from_slice(&message.payload).unwrap();
    finish[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_that_never_stop_computing_leave_the_cores_to_the_others() {
    let root = tempfile::tempdir().unwrap();
    let (_serve, port) = serve(root.path(), &["--component", TESTKIT], &[], &["testkit"]).await;
    let bus = client(port).await;
    let mut starts = bus.subscribe("testkit/spin/start").await.unwrap();
    let mut spins = bus.subscribe("testkit/spin/finish").await.unwrap();
    let mut echoes = bus.subscribe("testkit/echo/finish").await.unwrap();
    // Twice as many loops as this machine has cores, each until its deadline.
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    for n in 0..cores * 2 {
        let request = json!({"timeout": "30s", "correlation_id": format!("spin-{n}")});
        bus.publish("testkit/spin", request.to_string(), false)
            .await
            .unwrap();
    }
    for _ in 0..cores * 2 {
        tokio::time::timeout(Duration::from_secs(60), starts.recv())
            .await
            .expect("every loop started")
            .unwrap();
    }
    // Give the loops the cores, then ask for something else.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let request = json!({"said": "hello", "correlation_id": "echo-1"});
    bus.publish("testkit/echo", request.to_string(), false)
        .await
        .unwrap();
    let echo = next_finish(&mut echoes).await;
    assert_eq!(echo["status"], "success", "{echo}");
    assert_eq!(echo["said"], "hello", "{echo}");
    assert!(
        spins.try_recv().is_none(),
        "the echo was answered only once a loop ended"
    );
    bus.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_waiting_for_a_worker_counts_against_the_deadline() {
    let root = tempfile::tempdir().unwrap();
    let (_serve, port) = serve(
        root.path(),
        &["--component", TESTKIT, "--concurrency", "1"],
        &[],
        &["testkit"],
    )
    .await;
    let bus = client(port).await;
    let mut spins = bus.subscribe("testkit/spin/finish").await.unwrap();
    let mut echoes = bus.subscribe("testkit/echo/finish").await.unwrap();
    let mut starts = bus.subscribe("testkit/spin/start").await.unwrap();
    let spin = json!({"timeout": "3s", "correlation_id": "spin-1"});
    bus.publish("testkit/spin", spin.to_string(), false)
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(60), starts.recv())
        .await
        .expect("the loop started")
        .unwrap();
    // One worker, busy for 3 s: a request with 1 s to live expires in the queue.
    let echo = json!({"timeout": "1s", "correlation_id": "echo-1"});
    bus.publish("testkit/echo", echo.to_string(), false)
        .await
        .unwrap();
    let spun = next_finish(&mut spins).await;
    assert_eq!(spun["status"], "failed", "{spun}");
    let echoed = next_finish(&mut echoes).await;
    assert_eq!(echoed["status"], "failed", "{echoed}");
    let error = echoed["error"].as_str().unwrap();
    assert!(
        error.contains("for a free worker, past its timeout of 1s"),
        "{error}"
    );
    bus.close().await;
}
