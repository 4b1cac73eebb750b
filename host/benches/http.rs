//! The daemon's HTTP API under load: a no-op action (`testkit/echo`) called over
//! HTTP by wrk at 1 and at 64 connections, beside a bare handler of the same
//! server crate (axum) measured in the same run (the floor), and beside the same
//! action over MQTT; the daemon's memory idle and with 1,000 requests in flight.
//!
//! `cargo bench -p copper-wasm --bench http` (wrk from Debian's packages;
//! `BENCH_SECONDS` per wrk run, 5 by default).

mod support;

use support::{Running, free_port, rss_mb};

use copper_wasm::access::{Credentials, Grant};
use copper_wasm::bus::{BrokerAddress, Bus};
use copper_wasm::protocol::{Object, Status};
use copper_wasm::runner;
use serde_json::json;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// What one wrk run measured.
struct Load {
    p50_ms: f64,
    p99_ms: f64,
    per_second: f64,
}

/// wrk POSTing `body` to `url` over `connections` for `seconds`.
fn wrk(dir: &Path, url: &str, body: &str, connections: usize, seconds: u64) -> Load {
    let script = dir.join("post.lua");
    std::fs::write(
        &script,
        format!(
            "wrk.method = \"POST\"\nwrk.body = '{body}'\nwrk.headers[\"Content-Type\"] = \"application/json\"\n"
        ),
    )
    .unwrap();
    let threads = connections.clamp(1, 2).to_string();
    let output = Command::new("wrk")
        .args(["--latency", "-t", &threads, "-c", &connections.to_string()])
        .args(["-d", &format!("{seconds}s"), "-s"])
        .arg(&script)
        .arg(url)
        .output()
        .expect("wrk is installed (apt-get install wrk)");
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(output.status.success(), "wrk failed:\n{text}");
    assert!(
        !text.contains("Non-2xx"),
        "wrk saw answers other than 2xx:\n{text}"
    );
    let after = |prefix: &str| -> String {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix).map(|r| r.trim().to_string()))
            .unwrap_or_else(|| panic!("no `{prefix}` in wrk's output:\n{text}"))
    };
    Load {
        p50_ms: milliseconds(&after("50%")),
        p99_ms: milliseconds(&after("99%")),
        per_second: after("Requests/sec:").parse().unwrap(),
    }
}

/// wrk's `85.00us`, `1.20ms`, `2.00s`, in milliseconds.
fn milliseconds(text: &str) -> f64 {
    let split = text.find(|c: char| c.is_ascii_alphabetic()).unwrap();
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().unwrap();
    match unit {
        "us" => number / 1e3,
        "ms" => number,
        "s" => number * 1e3,
        "m" => number * 60e3,
        other => panic!("unit {other}"),
    }
}

/// The bare handler: axum answering every POST with its body, TCP_NODELAY as the daemon.
async fn bare_server() -> SocketAddr {
    use axum::serve::ListenerExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let listener = listener.tap_io(|s| {
        let _ = s.set_nodelay(true);
    });
    let router = axum::Router::new().route(
        "/echo",
        axum::routing::post(|body: axum::body::Bytes| async move { body }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

/// `count` sequential calls over MQTT through the runner's request, and
/// `clients` clients calling at once: (p50 of the first, calls per second of the second).
async fn over_mqtt(address: &BrokerAddress, count: usize, clients: usize) -> (f64, f64) {
    let connect = |name: String| {
        let address = address.clone();
        async move {
            Bus::connect(&address, &name, None, CancellationToken::new())
                .await
                .unwrap()
        }
    };
    let mut fields = Object::new();
    fields.insert("action".into(), json!("testkit/echo"));
    let bus = connect("bench-http-mqtt-0".into()).await;
    let mut samples = support::echo_samples(&bus, count).await;
    samples.sort();
    let p50 = samples[samples.len() / 2].as_secs_f64() * 1e3;
    bus.close().await;
    let mut buses = Vec::new();
    for c in 0..clients {
        buses.push(connect(format!("bench-http-mqtt-{}", c + 1)).await);
    }
    let started = Instant::now();
    let tasks: Vec<_> = buses
        .into_iter()
        .map(|bus| {
            let fields = fields.clone();
            tokio::spawn(async move {
                for _ in 0..count / clients {
                    let finish = runner::request(
                        &bus,
                        "testkit/echo",
                        &fields,
                        Some(Duration::from_secs(30)),
                        |_| {},
                    )
                    .await
                    .unwrap();
                    assert_eq!(finish.status, Status::Success);
                }
                bus.close().await;
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let rate = (count / clients * clients) as f64 / started.elapsed().as_secs_f64();
    (p50, rate)
}

/// 1,000 requests of `testkit/sleep` (2 s) in flight at once, from 1,000 threads;
/// the daemon's peak resident memory while they run.
fn thousand_in_flight(url: &str, pid: u32) -> f64 {
    let threads: Vec<_> = (0..1000)
        .map(|_| {
            let url = url.to_string();
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .build()
                    .into();
                let answer = agent
                    .post(&url)
                    .header("content-type", "application/json")
                    .send(r#"{"ms": 2000}"#)
                    .unwrap();
                assert_eq!(answer.status(), 200);
            })
        })
        .collect();
    let mut peak: f64 = 0.0;
    let until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < until {
        peak = peak.max(rss_mb(pid));
        std::thread::sleep(Duration::from_millis(50));
    }
    for thread in threads {
        thread.join().unwrap();
    }
    peak
}

fn main() {
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let dir = tempfile::tempdir().unwrap();
    let (port, http) = (free_port(), free_port());
    let cache = dir.path().join("cache");
    let daemon = Command::new(env!("CARGO_BIN_EXE_copper-wasm"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--http", &format!("127.0.0.1:{http}")])
        .args([
            "--no-builtins",
            "--component",
            copper_wasm::builtin::TESTKIT_PATH,
        ])
        .args(["--concurrency", "1000", "--queue", "4096"])
        .arg("--cache")
        .arg(&cache)
        .env("COPPER_COMPILED_CACHE", dir.path().join("compiled"))
        .env_remove("COPPER_CREDENTIALS")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = daemon.id();
    let _daemon = Running(daemon);
    let base = format!("http://127.0.0.1:{http}");
    let until = Instant::now() + Duration::from_secs(120);
    while TcpStream::connect(("127.0.0.1", http)).is_err() {
        assert!(Instant::now() < until, "the daemon did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    let idle = rss_mb(pid);
    let echo = format!("{base}/v1/actions/testkit/echo");

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let bare = runtime.block_on(bare_server());
    let bare_url = format!("http://{bare}/echo");
    let body = r#"{"n": 1}"#;
    println!("no-op action, {seconds} s per wrk run, in one run:");
    for connections in [1, 64] {
        let api = wrk(dir.path(), &echo, body, connections, seconds);
        let floor = wrk(dir.path(), &bare_url, body, connections, seconds);
        println!(
            "{connections:>2} conn  HTTP testkit/echo   p50 {:>7.3} ms  p99 {:>7.3} ms  {:>8.0} /s",
            api.p50_ms, api.p99_ms, api.per_second
        );
        println!(
            "{connections:>2} conn  bare axum handler   p50 {:>7.3} ms  p99 {:>7.3} ms  {:>8.0} /s   daemon/bare: p50 {:.2}x, rate {:.2}x",
            floor.p50_ms,
            floor.p99_ms,
            floor.per_second,
            api.p50_ms / floor.p50_ms,
            api.per_second / floor.per_second
        );
    }
    let credentials = Credentials::read(&cache.join("credentials.yaml")).unwrap();
    let mut address = BrokerAddress::new("127.0.0.1", port);
    address.credentials = credentials.login_for(&Grant::Runner);
    let (mqtt_p50, mqtt_rate) = runtime.block_on(over_mqtt(&address, 4000, 64));
    println!(
        " 1 conn  MQTT testkit/echo   p50 {mqtt_p50:>7.3} ms (sequential, the runner's request)"
    );
    println!("64 conn  MQTT testkit/echo   {mqtt_rate:>8.0} /s (64 clients at once)");
    let busy = thousand_in_flight(&format!("{base}/v1/actions/testkit/sleep"), pid);
    println!(
        "daemon memory: idle {idle:.1} MB, with 1,000 requests in flight {busy:.1} MB (peak RSS)"
    );
}
