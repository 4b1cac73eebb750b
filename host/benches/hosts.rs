//! Several hosts on one mosquitto (Debian's, on loopback, `set_tcp_nodelay true`):
//! the same burst served by 1, 2 and 3 hosts (ratio to one host), and the latency
//! of sequential calls while one of 3 hosts is killed, against the same calls
//! with none killed, in the same run.
//!
//! `cargo bench -p copper-wasm --bench hosts` (`BENCH_BURST`, 600 by default, of
//! `testkit/sleep` of `BENCH_MS`, 50 by default; `BENCH_CALLS`, 300, calls of 20 ms).

mod support;

use support::{Running, free_port};

use copper_wasm::bus::{BrokerAddress, Bus};
use copper_wasm::protocol::Object;
use copper_wasm::runner::{self, Pending};
use serde_json::json;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

fn number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `copper-wasm serve` of testkit as host `id`.
fn host(dir: &Path, port: u16, id: &str, compiled: &Path) -> Running {
    let cache: PathBuf = dir.join(id);
    let child = Command::new(env!("CARGO_BIN_EXE_copper-wasm"))
        .args(["serve", "--broker", &format!("mqtt://127.0.0.1:{port}")])
        .args([
            "--no-builtins",
            "--component",
            copper_wasm::builtin::TESTKIT_PATH,
        ])
        .args(["--host-id", id])
        .arg("--cache")
        .arg(&cache)
        .env("COPPER_COMPILED_CACHE", compiled)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Running(child)
}

async fn client(port: u16, name: &str) -> Bus {
    let address = BrokerAddress::new("127.0.0.1", port);
    Bus::connect(&address, name, None, CancellationToken::new())
        .await
        .unwrap()
}

/// Waits until hosts `ids` are up.
async fn wait_hosts(bus: &Bus, ids: &[String]) {
    let hosts = copper_wasm::presence::Hosts::watch(bus).await.unwrap();
    let until = Instant::now() + Duration::from_secs(120);
    while !ids
        .iter()
        .all(|id| hosts.live().iter().any(|h| &h.id == id))
    {
        assert!(Instant::now() < until, "hosts {ids:?} not up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `count` requests of `ms` sent at once by a plain client; the time until each is answered.
async fn burst(bus: &Bus, count: usize, ms: u64, tag: &str) -> Duration {
    let mut finishes = bus.subscribe("testkit/sleep/finish").await.unwrap();
    let started = Instant::now();
    for k in 0..count {
        let request = json!({"ms": ms, "correlation_id": format!("{tag}-{k}")});
        bus.publish("testkit/sleep", request.to_string(), false)
            .await
            .unwrap();
    }
    let mut answered = BTreeSet::new();
    let until = started + Duration::from_secs(300);
    while answered.len() < count && Instant::now() < until {
        let Ok(Some(message)) = tokio::time::timeout(Duration::from_secs(5), finishes.recv()).await
        else {
            continue;
        };
        let finish = copper_wasm::protocol::parse_finish(&message.payload);
        if let Some(id) = finish.correlation_id.filter(|id| id.starts_with(tag)) {
            answered.insert(id);
        }
    }
    assert_eq!(answered.len(), count, "requests of {tag} lost");
    started.elapsed()
}

/// `count` sequential calls of 20 ms through the runner's request; `kill` runs
/// before call `count / 3`. Their latencies, sorted.
async fn calls(bus: &Bus, count: usize, mut kill: Option<&mut Running>) -> Vec<Duration> {
    let pending = Pending::default();
    let mut fields = Object::new();
    fields.insert("action".into(), json!("testkit/sleep"));
    fields.insert("ms".into(), json!(20));
    let mut samples = Vec::with_capacity(count);
    for k in 0..count {
        if k == count / 3
            && let Some(host) = kill.take()
        {
            let _ = host.0.kill();
        }
        let t = Instant::now();
        let wait = Some(Duration::from_secs(60));
        runner::request_among(bus, "testkit/sleep", &fields, wait, |_| {}, &pending)
            .await
            .unwrap();
        samples.push(t.elapsed());
    }
    samples.sort();
    samples
}

fn at(samples: &[Duration], q: f64) -> f64 {
    samples[((samples.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1e3
}

fn main() {
    let count = number("BENCH_BURST", 600);
    let ms = number("BENCH_MS", 50) as u64;
    let n_calls = number("BENCH_CALLS", 300);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let compiled = dir.path().join("compiled");
        let port = free_port();
        let _broker = support::mosquitto(dir.path(), port, "persistence false\nset_tcp_nodelay true\n")
            .expect("mosquitto is installed (./test.sh installs it)");
        let bus = client(port, "bench-hosts").await;
        let ids: Vec<String> = (0..3).map(|k| format!("b{k}")).collect();
        let mut hosts = Vec::new();
        let mut times = Vec::new();
        for (k, id) in ids.iter().enumerate() {
            hosts.push(host(dir.path(), port, id, &compiled));
            wait_hosts(&bus, &ids[..=k]).await;
            burst(&bus, 60, ms, &format!("warm{k}")).await;
            times.push(burst(&bus, count, ms, &format!("burst{k}")).await);
        }
        println!("copper-wasm several hosts, mosquitto on loopback, {count} testkit/sleep of {ms} ms sent at once");
        for (k, time) in times.iter().enumerate() {
            println!(
                "{} host{}: {:>7.0} ms, {:>6.0} /s, {:.2}x one host",
                k + 1,
                if k == 0 { " " } else { "s" },
                time.as_secs_f64() * 1e3,
                count as f64 / time.as_secs_f64(),
                times[0].as_secs_f64() / time.as_secs_f64()
            );
        }
        let reference = calls(&bus, n_calls, None).await;
        let killed = calls(&bus, n_calls, hosts.get_mut(1)).await;
        println!("{n_calls} sequential calls of 20 ms on 3 hosts (the runner's request):");
        for (name, samples) in [("none killed (reference)", &reference), ("one host killed at call 1/3", &killed)] {
            println!(
                "  {name:<28} p50 {:>7.1} ms  p99 {:>7.1} ms  max {:>7.1} ms",
                at(samples, 0.5),
                at(samples, 0.99),
                at(samples, 1.0)
            );
        }
        println!(
            "  p99 with a host killed: {:.2}x the reference",
            at(&killed, 0.99) / at(&reference, 0.99)
        );
        bus.close().await;
    });
}
