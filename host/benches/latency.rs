//! Per-action latency through the embedded broker, against a bare MQTT echo
//! measured in the same run, and the instantiate cost alone.
//!
//! `cargo bench -p copper-wasm --bench latency` (N=2000 by default, `BENCH_N` to change).

use copper_wasm::bus::{Bus, Will};
use copper_wasm::capability::git::GitConfig;
use copper_wasm::component::{Limits, Runtime};
use copper_wasm::job::Job;
use copper_wasm::protocol::{Object, Status};
use copper_wasm::sandbox::Sandbox;
use copper_wasm::{BrokerChoice, Host, HostConfig, runner};
use serde_json::json;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

struct Stats {
    samples: usize,
    p50: Duration,
    p99: Duration,
    per_second: f64,
}

fn stats(mut samples: Vec<Duration>, total: Duration) -> Stats {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    Stats {
        samples: samples.len(),
        p50: at(0.50),
        p99: at(0.99),
        per_second: samples.len() as f64 / total.as_secs_f64(),
    }
}

fn show(name: &str, s: &Stats) {
    println!(
        "{name:<44} p50 {:>8.3} ms  p99 {:>8.3} ms  {:>9.0} /s",
        s.p50.as_secs_f64() * 1e3,
        s.p99.as_secs_f64() * 1e3,
        s.per_second
    );
}

/// Sequential requests on `topic` through the runner's `request` (the whole host for `testkit/echo`).
async fn host_echo(bus: &Bus, n: usize) -> Stats {
    runner_to(bus, "testkit/echo", n).await
}

async fn runner_to(bus: &Bus, topic: &str, n: usize) -> Stats {
    let mut fields = Object::new();
    fields.insert("action".into(), json!(topic));
    let mut samples = Vec::with_capacity(n);
    let start = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        let finish = runner::request(bus, topic, &fields, Some(Duration::from_secs(10)), |_| {})
            .await
            .unwrap();
        assert_eq!(finish.status, Status::Success);
        samples.push(t.elapsed());
    }
    stats(samples, start.elapsed())
}

/// What the bare echo does besides publishing the reply, to see what each costs.
#[derive(Clone, Copy)]
enum Echo {
    /// Publishes the reply: the floor.
    Bare,
    /// Publishes a `start` first, as every copper service does.
    WithStart,
    /// Answers in a task of its own, as the scheduler does.
    Spawned,
    /// Subscribes through a shared subscription, as the scheduler does.
    Shared,
}

/// The floor: a bare MQTT echo (subscribe, publish back) on the same broker, same client code.
async fn bare_echo(requester: &Bus, responder: Bus, n: usize, shape: Echo) -> Stats {
    let topic = format!("bench/echo{}", shape as u8);
    let filter = match shape {
        Echo::Shared => format!("$share/bench/{topic}"),
        _ => topic.clone(),
    };
    let mut requests = responder.subscribe(&filter).await.unwrap();
    let reply_topic = format!("{topic}/finish");
    let start_topic = format!("{topic}/start");
    tokio::spawn(async move {
        while let Some(message) = requests.recv().await {
            let (responder, reply_topic, start_topic) =
                (responder.clone(), reply_topic.clone(), start_topic.clone());
            let answer = async move {
                if matches!(shape, Echo::WithStart) {
                    responder
                        .publish(&start_topic, message.payload.to_vec(), false)
                        .await
                        .unwrap();
                }
                responder
                    .publish(&reply_topic, message.payload.to_vec(), false)
                    .await
                    .unwrap();
            };
            if matches!(shape, Echo::Spawned) {
                tokio::spawn(answer);
            } else {
                answer.await;
            }
        }
    });
    let mut replies = requester
        .subscribe(&format!("{topic}/finish"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut samples = Vec::with_capacity(n);
    let start = Instant::now();
    for i in 0..n {
        let t = Instant::now();
        requester
            .publish_at_most_once(&topic, format!("{{\"n\":{i}}}"))
            .await
            .unwrap();
        replies.recv().await.unwrap();
        samples.push(t.elapsed());
    }
    stats(samples, start.elapsed())
}

/// A bare requester (publish, await the finish) against the host: the service side
/// alone; requests at QoS 0 (as the runner sent them before issue 11) or QoS 1
/// (acknowledged by the host once answered, as now).
async fn bare_request(requester: &Bus, topic: &str, n: usize, at_least_once: bool) -> Stats {
    let (samples, total) = bare_samples(requester, topic, n, at_least_once).await;
    stats(samples, total)
}

/// [`bare_request`]'s latencies, and the time they took in all.
async fn bare_samples(
    requester: &Bus,
    topic: &str,
    n: usize,
    at_least_once: bool,
) -> (Vec<Duration>, Duration) {
    let mut replies = requester
        .subscribe(&format!("{topic}/finish"))
        .await
        .unwrap();
    let mut samples = Vec::with_capacity(n);
    let start = Instant::now();
    for i in 0..n {
        let t = Instant::now();
        let request = format!("{{\"n\":{i}}}");
        match at_least_once {
            true => requester.publish(topic, request, false).await.unwrap(),
            false => requester
                .publish_at_most_once(topic, request)
                .await
                .unwrap(),
        }
        replies.recv().await.unwrap();
        samples.push(t.elapsed());
    }
    (samples, start.elapsed())
}

/// [`bare_request`] at QoS 0 and at QoS 1, alternating in ten rounds so that both
/// see the same machine.
async fn qos_rounds(requester: &Bus, topic: &str, n: usize) -> (Stats, Stats) {
    let mut samples = [Vec::new(), Vec::new()];
    let mut totals = [Duration::ZERO; 2];
    for _ in 0..10 {
        for (k, at_least_once) in [false, true].into_iter().enumerate() {
            let (round, took) =
                bare_samples(requester, topic, (n / 10).max(1), at_least_once).await;
            samples[k].extend(round);
            totals[k] += took;
        }
    }
    let [qos0, qos1] = samples;
    (stats(qos0, totals[0]), stats(qos1, totals[1]))
}

/// A fresh store + instance + `handle` call, no bus.
async fn instantiate_only(n: usize, cache: &std::path::Path) -> Stats {
    let bytes = std::fs::read(copper_wasm::builtin::TESTKIT_PATH).unwrap();
    instantiate_component(n, cache, &bytes, "testkit/echo").await
}

/// The same for any component and topic (`BENCH_COMPONENT`, `BENCH_TOPIC`): a Python one, say.
async fn instantiate_component(
    n: usize,
    cache: &std::path::Path,
    bytes: &[u8],
    topic: &str,
) -> Stats {
    let sandbox = Sandbox::new(&cache.join("work"), cache).unwrap();
    let runtime = Runtime::new(
        sandbox,
        cache.join("compiled"),
        GitConfig::default(),
        Limits::default(),
    )
    .unwrap();
    let component = runtime
        .load(bytes, copper_wasm::capability::grants::Grants::trusted())
        .await
        .unwrap();
    let mut input = Object::new();
    input.insert("path".into(), json!("/fetch/none"));
    let mut samples = Vec::with_capacity(n);
    let start = Instant::now();
    for _ in 0..n {
        let (events, _rx) = tokio::sync::mpsc::channel(4);
        let t = Instant::now();
        let job = Job {
            id: "",
            topic,
            input: &input,
            timeout: Duration::from_secs(10),
            left: Duration::from_secs(10),
            events,
            secrets: &[],
        };
        component.handle(job).await.unwrap();
        samples.push(t.elapsed());
    }
    stats(samples, start.elapsed())
}

fn main() {
    let n: usize = std::env::var("BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    // BENCH_RUNTIME=current runs everything on one thread (fewer cross-thread wake-ups).
    let runtime = match std::env::var("BENCH_RUNTIME").as_deref() {
        Ok("current") => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap(),
        _ => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap(),
    };
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let config = HostConfig {
            broker: match std::env::var("BENCH_BROKER") {
                Ok(url) => {
                    BrokerChoice::External(copper_wasm::bus::BrokerAddress::parse(&url).unwrap())
                }
                Err(_) => BrokerChoice::Embedded(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))),
            },
            cache: dir.path().join("cache"),
            workspace: dir.path().to_path_buf(),
            compiled_cache: dir.path().join("compiled"),
            builtins: false,
            components: vec![copper_wasm::builtin::TESTKIT_PATH.into()],
            ..HostConfig::default()
        };
        let shutdown = CancellationToken::new();
        let host = Host::start(config, shutdown.clone()).await.unwrap();
        let requester = host.connect("bench-requester", None).await.unwrap();
        let responder = host
            .connect(
                "bench-responder",
                Some(Will {
                    topic: "bench/status".into(),
                    payload: "down".into(),
                }),
            )
            .await
            .unwrap();

        // A client of the broker from outside the process (TCP), for comparison.
        let outside = copper_wasm::bus::Bus::connect(
            &host.address(),
            "bench-tcp",
            None,
            CancellationToken::new(),
        )
        .await
        .unwrap();

        // Warm up both paths.
        host_echo(&requester, 200).await;
        let bare = bare_echo(&requester, responder.clone(), n, Echo::Bare).await;
        let with_start = bare_echo(&requester, responder.clone(), n, Echo::WithStart).await;
        let spawned = bare_echo(&requester, responder.clone(), n, Echo::Spawned).await;
        let shared = bare_echo(&requester, responder, n, Echo::Shared).await;
        // The bare echo of `Echo::Bare` still answers on bench/echo0.
        let runner_bare = runner_to(&requester, "bench/echo0", n).await;
        let service_side = bare_request(&requester, "testkit/echo", n, false).await;
        let full = host_echo(&requester, n).await;
        // Last: its kept subscriptions would add a TCP subscriber to every finish above.
        host_echo(&outside, 200).await;
        let tcp = host_echo(&outside, n).await;
        let (tcp_qos0, tcp_qos1) = qos_rounds(&outside, "testkit/echo", n).await;
        let inst = instantiate_only(n, dir.path()).await;
        let other = match (
            std::env::var("BENCH_COMPONENT"),
            std::env::var("BENCH_TOPIC"),
        ) {
            (Ok(path), Ok(topic)) => {
                let bytes = std::fs::read(&path).unwrap();
                let started = Instant::now();
                let stats = instantiate_component(n.min(200), dir.path(), &bytes, &topic).await;
                Some((path, bytes.len(), started.elapsed(), stats))
            }
            _ => None,
        };

        println!(
            "copper-wasm latency, {n} sequential actions, broker: {}",
            std::env::var("BENCH_BROKER")
                .unwrap_or_else(|_| "embedded (rumqttd) on loopback".into())
        );
        show("bare MQTT echo (reference, same run)", &bare);
        show("bare echo that publishes a start first", &with_start);
        show("bare echo answering in a task of its own", &spawned);
        show("bare echo behind a shared subscription", &shared);
        show("the runner's request against the bare echo", &runner_bare);
        show("a bare request to testkit/echo (host side)", &service_side);
        show("testkit/echo through the host", &full);
        show("store + instantiate + handle (no bus)", &inst);
        show("testkit/echo from a TCP client", &tcp);
        show("  a bare request over TCP at QoS 0", &tcp_qos0);
        show("  a bare request over TCP at QoS 1", &tcp_qos1);
        println!(
            "  at least once costs {:.2}x at p50 ({:.2}x at p99) against QoS 0",
            tcp_qos1.p50.as_secs_f64() / tcp_qos0.p50.as_secs_f64(),
            tcp_qos1.p99.as_secs_f64() / tcp_qos0.p99.as_secs_f64()
        );
        if let Some((path, size, total, stats)) = &other {
            println!(
                "{path}: {:.1} MB; compile + {} requests {:.1} s",
                *size as f64 / 1e6,
                stats.samples,
                total.as_secs_f64()
            );
            show("  store + instantiate + handle (no bus)", stats);
        }
        println!(
            "ratio host/bare p50: {:.2}x   host overhead over bare MQTT p50: {:.3} ms",
            full.p50.as_secs_f64() / bare.p50.as_secs_f64(),
            (full.p50.as_secs_f64() - bare.p50.as_secs_f64()) * 1e3
        );
        host.stop().await;
    });
}
