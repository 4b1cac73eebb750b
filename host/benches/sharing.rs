//! Sharing the cores: how long a `testkit/echo` takes while requests that never
//! stop computing (`testkit/spin`, twice as many as the cores) run on the same
//! host, beside the same echo on an idle host, measured in the same run.
//!
//! `cargo bench -p copper-wasm --bench sharing` (N=200 echoes each, `BENCH_N` to change).

use copper_wasm::protocol::{Object, Status};
use copper_wasm::{Host, HostConfig, runner};
use serde_json::json;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The p50 and p99 of `n` sequential echoes.
async fn echoes(bus: &copper_wasm::bus::Bus, n: usize) -> (Duration, Duration) {
    let mut fields = Object::new();
    fields.insert("action".into(), json!("testkit/echo"));
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        let finish = runner::request(
            bus,
            "testkit/echo",
            &fields,
            Some(Duration::from_secs(120)),
            |_| {},
        )
        .await
        .unwrap();
        assert_eq!(finish.status, Status::Success);
        samples.push(started.elapsed());
    }
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    (at(0.5), at(0.99))
}

fn main() {
    let n: usize = std::env::var("BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let config = HostConfig {
            cache: dir.path().join("cache"),
            workspace: dir.path().to_path_buf(),
            compiled_cache: dir.path().join("compiled"),
            builtins: false,
            components: vec![copper_wasm::builtin::TESTKIT_PATH.into()],
            ..HostConfig::default()
        };
        let host = Host::start(config, CancellationToken::new()).await.unwrap();
        let bus = host.connect("bench-sharing", None).await.unwrap();
        echoes(&bus, 20).await;
        let idle = echoes(&bus, n).await;

        let cores = std::thread::available_parallelism().map_or(2, |c| c.get());
        let spinners = cores * 2;
        let mut starts = bus.subscribe("testkit/spin/start").await.unwrap();
        for k in 0..spinners {
            let request = json!({"timeout": "600s", "correlation_id": format!("spin-{k}")});
            bus.publish("testkit/spin", request.to_string(), false)
                .await
                .unwrap();
        }
        for _ in 0..spinners {
            starts.recv().await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let loaded = echoes(&bus, n).await;

        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!("{cores} cores, {spinners} spinning requests, {n} echoes each");
        println!(
            "echo, idle host (reference)          p50 {:>8.3} ms  p99 {:>8.3} ms",
            ms(idle.0),
            ms(idle.1)
        );
        println!(
            "echo, beside {spinners} spinning requests     p50 {:>8.3} ms  p99 {:>8.3} ms",
            ms(loaded.0),
            ms(loaded.1)
        );
        println!(
            "ratio (loaded / idle)                p50 {:>8.2}x     p99 {:>8.2}x",
            ms(loaded.0) / ms(idle.0),
            ms(loaded.1) / ms(idle.1)
        );
        // The spinning requests run until the process ends.
        std::process::exit(0);
    });
}
