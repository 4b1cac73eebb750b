//! What seeing costs: the per-action latency with the pub/sub trace and the
//! Prometheus metrics on, against the same host with both off, measured in the
//! same run in alternating rounds; and the console's first load on loopback,
//! against a bare `GET /healthz` on the same server.
//!
//! `cargo bench -p copper-wasm --bench console` (`BENCH_N` requests a round, 1000
//! by default; 6 rounds each way).

use copper_wasm::bus::Bus;
use copper_wasm::protocol::{Object, Status};
use copper_wasm::{Host, HostConfig, runner, telemetry};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use serde_json::json;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const ROUNDS: usize = 6;

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap());
    values[values.len() / 2]
}

/// p50 and p99 of `n` sequential `testkit/echo` requests, in ms.
async fn round(bus: &Bus, n: usize) -> (f64, f64) {
    let mut fields = Object::new();
    fields.insert("action".into(), json!("testkit/echo"));
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let finish = runner::request(
            bus,
            "testkit/echo",
            &fields,
            Some(Duration::from_secs(10)),
            |_| {},
        )
        .await
        .unwrap();
        assert_eq!(finish.status, Status::Success);
        samples.push(t.elapsed().as_secs_f64() * 1e3);
    }
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    (at(0.5), at(0.99))
}

async fn host(dir: &std::path::Path, name: &str, trace: bool) -> Host {
    let config = HostConfig {
        cache: dir.join(name),
        workspace: dir.to_path_buf(),
        compiled_cache: dir.join("compiled"),
        builtins: false,
        components: vec![copper_wasm::builtin::TESTKIT_PATH.into()],
        trace,
        ..HostConfig::default()
    };
    Host::start(config, CancellationToken::new()).await.unwrap()
}

fn show(what: &str, off: f64, on: f64) {
    println!(
        "{what:<46} off {off:>7.3} ms   on {on:>7.3} ms   ratio {:.3} ({:+.1} %)",
        on / off,
        (on / off - 1.0) * 100.0
    );
}

/// The trace's own cost per message, with no bus around it.
fn trace_alone(n: usize) -> (f64, f64) {
    let trace = copper_wasm::trace::Trace::new();
    let payload = br#"{"action":"fetcher/fetch","resource":"test-website","correlation_id":"abc"}"#;
    let start = Instant::now();
    for i in 0..n {
        trace.published("copper-wasm-runner-docs", "fetcher/fetch", payload);
        trace.published(
            "copper-wasm-h1-fetcher",
            "fetcher/fetch/finish",
            &payload[..(i % 8) + 8],
        );
    }
    let traced = start.elapsed().as_secs_f64() * 1e9 / (2 * n) as f64;
    // The reference: a mutex and a lookup in a map of the same size, nothing else.
    let map = std::sync::Mutex::new(std::collections::HashMap::from([
        ("fetcher/fetch".to_string(), 0u64),
        ("fetcher/fetch/finish".to_string(), 0u64),
    ]));
    let start = Instant::now();
    for i in 0..n {
        let topic = if i % 2 == 0 {
            "fetcher/fetch"
        } else {
            "fetcher/fetch/finish"
        };
        *map.lock()
            .unwrap()
            .get_mut(std::hint::black_box(topic))
            .unwrap() += 1;
        *map.lock()
            .unwrap()
            .get_mut(std::hint::black_box(topic))
            .unwrap() += 1;
    }
    let reference = start.elapsed().as_secs_f64() * 1e9 / (2 * n) as f64;
    (traced, reference)
}

/// The console's four files fetched in turn on one connection, and `/healthz`,
/// each as medians of `n` (in ms), with the bytes of the first.
fn console_load(url: &str, n: usize) -> (usize, f64, f64, f64) {
    let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
    let files = [
        "/console/",
        "/console/console.js",
        "/console/console.css",
        "/console/icon.svg",
    ];
    let mut bytes = 0;
    let mut loads = Vec::new();
    let mut first = 0.0;
    for round in 0..n {
        // A fresh agent: a new connection, as a first visit makes.
        let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
        let start = Instant::now();
        let mut total = 0;
        for file in files {
            let body = agent
                .get(format!("{url}{file}"))
                .call()
                .unwrap()
                .into_body()
                .read_to_vec()
                .unwrap();
            total += body.len();
        }
        let took = start.elapsed().as_secs_f64() * 1e3;
        if round == 0 {
            first = took;
        }
        loads.push(took);
        bytes = total;
    }
    let mut health = Vec::new();
    for _ in 0..n {
        let start = Instant::now();
        agent
            .get(format!("{url}/healthz"))
            .call()
            .unwrap()
            .into_body()
            .read_to_vec()
            .unwrap();
        health.push(start.elapsed().as_secs_f64() * 1e3);
    }
    (bytes, first, median(loads), median(health))
}

fn main() {
    let n: usize = std::env::var("BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    // One thread: the metrics recorder is set for it alone, round by round.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let plain = host(dir.path(), "plain", false).await;
        let seen = host(dir.path(), "seen", true).await;
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full(telemetry::REQUEST_SECONDS.into()),
                &telemetry::LATENCY_BUCKETS,
            )
            .unwrap()
            .build_recorder();
        let handle = recorder.handle();
        let plain_bus = plain.connect("bench-plain", None).await.unwrap();
        let seen_bus = seen.connect("bench-seen", None).await.unwrap();
        // Over TCP, through the embedded broker's relay (which traces what passes).
        let plain_tcp = Bus::connect(&plain.address(), "bench-plain-tcp", None, CancellationToken::new())
            .await
            .unwrap();
        let seen_tcp = Bus::connect(&seen.address(), "bench-seen-tcp", None, CancellationToken::new())
            .await
            .unwrap();
        for bus in [&plain_bus, &seen_bus, &plain_tcp, &seen_tcp] {
            round(bus, 200).await;
        }
        let (mut off, mut on, mut off_tcp, mut on_tcp) = (vec![], vec![], vec![], vec![]);
        let (mut off99, mut on99) = (vec![], vec![]);
        for _ in 0..ROUNDS {
            let (p50, p99) = round(&plain_bus, n).await;
            off.push(p50);
            off99.push(p99);
            off_tcp.push(round(&plain_tcp, n).await.0);
            let guard = metrics::set_default_local_recorder(&recorder);
            let (p50, p99) = round(&seen_bus, n).await;
            on.push(p50);
            on99.push(p99);
            on_tcp.push(round(&seen_tcp, n).await.0);
            drop(guard);
        }
        let scraped = handle.render();
        assert!(
            scraped.contains("copper_requests_total"),
            "the metrics were recorded:\n{scraped}"
        );
        let traced = seen.trace();
        assert!(
            traced.clients.iter().any(|c| c.client == "bench-seen-tcp"),
            "the relay traced the TCP client"
        );
        println!(
            "copper-wasm: what seeing costs, {ROUNDS} alternating rounds of {n} sequential testkit/echo"
        );
        println!("(off: trace and metrics off; on: the trace on, Prometheus' recorder recording)");
        show("testkit/echo in process, p50 (median of rounds)", median(off.clone()), median(on.clone()));
        show("testkit/echo in process, p99 (median of rounds)", median(off99), median(on99));
        show("testkit/echo over TCP (relay), p50", median(off_tcp), median(on_tcp));
        let (trace_ns, map_ns) = trace_alone(1_000_000);
        println!(
            "{:<46} {trace_ns:>7.0} ns   a mutex + map lookup alone {map_ns:>5.0} ns   ratio {:.1}x",
            "one message traced, alone",
            trace_ns / map_ns
        );

        let serving = copper_wasm::api::serve(
            std::sync::Arc::new(seen),
            copper_wasm::api::ApiConfig {
                listen: "127.0.0.1:0".parse().unwrap(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let url = format!("http://{}", serving.address());
        let (bytes, first, load, health) =
            tokio::task::spawn_blocking(move || console_load(&url, 50)).await.unwrap();
        println!(
            "console first load: {bytes} bytes ({:.1} KB) in 4 files, uncompressed; {} bytes in the binary",
            bytes as f64 / 1024.0,
            copper_wasm::console::first_load_bytes()
        );
        println!(
            "  on a new connection: first {first:.3} ms, median of 50 {load:.3} ms; GET /healthz {health:.3} ms (ratio {:.1}x)",
            load / health
        );
        serving.stop(Duration::from_secs(1)).await;
        plain.stop().await;
    });
}
