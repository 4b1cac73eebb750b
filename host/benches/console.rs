//! What seeing costs: the per-action latency with the pub/sub trace and the
//! Prometheus metrics on, against the same host with both off, measured in the
//! same run in alternating rounds; and the console's first load on loopback,
//! against a bare `GET /healthz` on the same server, over HTTP and in Debian's
//! headless Chromium (when it is installed: `./test.sh --setup-only`).
//!
//! `cargo bench -p copper-wasm --bench console` (`BENCH_N` requests a round, 1000
//! by default; 10 rounds each way).

mod support;

use copper_wasm::bus::Bus;
use copper_wasm::{Host, HostConfig, telemetry};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use serde_json::json;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const ROUNDS: usize = 10;

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap());
    values[values.len() / 2]
}

/// p50 and p99 of `n` sequential `testkit/echo` requests, in ms.
async fn round(bus: &Bus, n: usize) -> (f64, f64) {
    let mut samples: Vec<f64> = support::echo_samples(bus, n)
        .await
        .iter()
        .map(|d| d.as_secs_f64() * 1e3)
        .collect();
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
        // One host, the trace paused and taken up again round by round.
        let seen = host(dir.path(), "seen", true).await;
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full(telemetry::REQUEST_SECONDS.into()),
                &telemetry::LATENCY_BUCKETS,
            )
            .unwrap()
            .build_recorder();
        let handle = recorder.handle();
        let bus = seen.connect("bench-seen", None).await.unwrap();
        // Over TCP, through the embedded broker's relay (which traces what passes).
        let tcp = Bus::connect(&seen.address(), "bench-seen-tcp", None, CancellationToken::new())
            .await
            .unwrap();
        round(&bus, 200).await;
        round(&tcp, 200).await;
        let (mut off, mut on, mut off_tcp, mut on_tcp) = (vec![], vec![], vec![], vec![]);
        let (mut off99, mut on99) = (vec![], vec![]);
        for _ in 0..ROUNDS {
            seen.tracer().set_recording(false);
            let (p50, p99) = round(&bus, n).await;
            off.push(p50);
            off99.push(p99);
            off_tcp.push(round(&tcp, n).await.0);
            seen.tracer().set_recording(true);
            let guard = metrics::set_default_local_recorder(&recorder);
            let (p50, p99) = round(&bus, n).await;
            on.push(p50);
            on99.push(p99);
            on_tcp.push(round(&tcp, n).await.0);
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
            "copper-wasm: what seeing costs, {ROUNDS} alternating rounds of {n} sequential testkit/echo on one host"
        );
        println!("(off: the trace paused, no metrics recorder; on: the trace recording, Prometheus' recorder recording)");
        show("testkit/echo in process, p50 (median of rounds)", median(off.clone()), median(on.clone()));
        show("testkit/echo in process, p99 (median of rounds)", median(off99), median(on99));
        show("testkit/echo over TCP (relay), p50", median(off_tcp), median(on_tcp));
        println!(
            "  rounds, in process p50 off/on: {:?} / {:?}",
            off.iter().map(|v| (v * 1000.0).round() / 1000.0).collect::<Vec<_>>(),
            on.iter().map(|v| (v * 1000.0).round() / 1000.0).collect::<Vec<_>>()
        );
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
        match browser_load(&format!("http://{}", serving.address())).await {
            Some((page, services, blank)) => println!(
                "  in headless Chromium, opened 10 times from about:blank (median): page loaded {page:.1} ms, services table drawn {services:.1} ms; about:blank {blank:.1} ms"
            ),
            None => println!("  (no Chromium here: ./test.sh --setup-only installs it)"),
        }
        serving.stop(Duration::from_secs(1)).await;
    });
}

/// The console's first load in Chromium: the page's load event and the moment
/// its services table is drawn (its first API answers in), against opening
/// `about:blank`, each a median of 10 loads, in ms.
async fn browser_load(url: &str) -> Option<(f64, f64, f64)> {
    let (chromium, driver) = ("/usr/bin/chromium", "/usr/bin/chromedriver");
    if !std::path::Path::new(chromium).exists() || !std::path::Path::new(driver).exists() {
        return None;
    }
    let port = support::free_port();
    let _driver = support::Running(
        std::process::Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .ok()?,
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {"binary": chromium, "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"]},
    });
    let serde_json::Value::Object(capabilities) = capabilities else {
        unreachable!()
    };
    let client =
        fantoccini::ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .ok()?;
    // Timed in the page: from navigation start to the load event, and to the
    // first row of the services table.
    let measure = "const done = arguments[0]; \
        const wait = () => { const drawn = performance.getEntriesByName('copper:services-drawn')[0]; \
        const nav = performance.getEntriesByType('navigation')[0]; \
        if (drawn && nav && nav.loadEventEnd > 0) done([nav.loadEventEnd, drawn.startTime]); \
        else setTimeout(wait, 5); }; wait();";
    let (mut pages, mut tables, mut blanks) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..10 {
        let start = Instant::now();
        client.goto("about:blank").await.ok()?;
        blanks.push(start.elapsed().as_secs_f64() * 1e3);
        client
            .goto(&format!("{url}/console/#/services"))
            .await
            .ok()?;
        let times = client.execute_async(measure, vec![]).await.ok()?;
        pages.push(times[0].as_f64()?);
        tables.push(times[1].as_f64()?);
    }
    let _ = client.close().await;
    Some((median(pages), median(tables), median(blanks)))
}
