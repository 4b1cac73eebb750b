//! Workflows that start themselves, measured on the real daemon:
//! - from a trigger (an MQTT message, a webhook) to its run's first step starting
//!   (its `runner/start` seen on the broker), p50 and p99 over `BENCH_TRIGGERS`
//!   (1,000) triggers one after the other, beside the same client's bare MQTT
//!   round trip and HTTP round trip (`/healthz`) measured in the same run;
//! - the daemon idle with 100 scheduled workflows, beside the same daemon with
//!   none: CPU time over 10 s and resident memory;
//! - a component reloaded while a client calls it: each call's time while the
//!   file is rewritten every 500 ms, beside the same client's calls before.
//!
//! `cargo bench -p copper-wasm --bench triggers`

mod support;

use support::{Running, free_port, rss_mb};

use copper_wasm::access::{Credentials, Grant};
use copper_wasm::bus::{BrokerAddress, Bus};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// A daemon started for a measurement.
struct Daemon {
    process: Running,
    pid: u32,
    port: u16,
    http: String,
    cache: PathBuf,
}

/// `copper-wasm serve` with the testkit from `component`, keeping `workflows` (if any).
fn daemon(dir: &Path, component: &Path, workflows: Option<&Path>) -> Daemon {
    let (port, http) = (free_port(), free_port());
    let cache = dir.join("cache");
    let mut command = Command::new(env!("CARGO_BIN_EXE_copper-wasm"));
    command
        .current_dir(dir)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--http", &format!("127.0.0.1:{http}")])
        .arg("--no-builtins")
        .arg("--component")
        .arg(component)
        .arg("--cache")
        .arg(&cache)
        .env("COPPER_COMPILED_CACHE", dir.join("compiled"))
        .env("BENCH_HOOK_TOKEN", "bench-token")
        .env_remove("COPPER_CREDENTIALS")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(folder) = workflows {
        command.arg("--workflows").arg(folder);
    }
    let child = command.spawn().unwrap();
    let pid = child.id();
    let process = Running(child);
    let until = Instant::now() + Duration::from_secs(120);
    let base = format!("http://127.0.0.1:{http}");
    loop {
        let ready = ureq::get(&format!("{base}/readyz")).call();
        if ready.is_ok_and(|r| r.status() == 200) {
            break;
        }
        assert!(Instant::now() < until, "the daemon did not get ready");
        std::thread::sleep(Duration::from_millis(20));
    }
    Daemon {
        process,
        pid,
        port,
        http: base,
        cache,
    }
}

/// p50, p99 and the largest of `samples`, in milliseconds.
fn spread(samples: &mut [Duration]) -> (f64, f64, f64) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    (ms(at(0.5)), ms(at(0.99)), ms(*samples.last().unwrap()))
}

/// A client of the daemon's broker with the host's grant (it reads `runner/start`).
async fn client(daemon: &Daemon, name: &str) -> Bus {
    let credentials = Credentials::read(&daemon.cache.join("credentials.yaml")).unwrap();
    let mut address = BrokerAddress::new("127.0.0.1", daemon.port);
    address.credentials = credentials.login_for(&Grant::Host);
    Bus::connect(&address, name, None, CancellationToken::new())
        .await
        .unwrap()
}

/// Waits (at most 5 s) for the `runner/start` whose input carries `n`; false when
/// it never came.
async fn started(starts: &mut copper_wasm::bus::Subscription, n: usize) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let Ok(message) = tokio::time::timeout_at(deadline, starts.recv()).await else {
            return false;
        };
        let message = message.expect("subscribed");
        let input: serde_json::Value = serde_json::from_slice(&message.payload).unwrap_or_default();
        if input["n"] == n {
            return true;
        }
    }
}

/// Trigger → first step, over MQTT and over a webhook, beside the bare round trips.
async fn trigger_latency(dir: &Path, component: &Path, count: usize) {
    let flows = dir.join("flows");
    std::fs::create_dir_all(&flows).unwrap();
    let concurrency = "concurrency: {max: 64, when_busy: queue}\n";
    let step = "steps:\n  - action: testkit/echo\n";
    std::fs::write(
        flows.join("on-mqtt.yaml"),
        format!("name: on-mqtt\non:\n  mqtt: bench/trigger\n{concurrency}{step}    n: ${{{{ trigger.payload.n }}}}\n"),
    )
    .unwrap();
    std::fs::write(
        flows.join("on-hook.yaml"),
        format!("name: on-hook\non:\n  webhook:\n    secret: BENCH_HOOK_TOKEN\n{concurrency}{step}    n: ${{{{ trigger.body.n }}}}\n"),
    )
    .unwrap();
    let daemon = daemon(dir, component, Some(&flows));
    let bus = client(&daemon, "bench-triggers").await;
    let mut starts = bus.subscribe("runner/start").await.unwrap();
    let mut echoes = bus.subscribe("bench/echo").await.unwrap();

    // The floor: the same client's message through the same broker and back.
    let mut bare = Vec::with_capacity(count);
    for n in 0..count {
        let t = Instant::now();
        bus.publish("bench/echo", format!("{{\"n\":{n}}}"), false)
            .await
            .unwrap();
        echoes.recv().await.unwrap();
        bare.push(t.elapsed());
    }
    let (mut lost_mqtt, mut lost_hook) = (0, 0);
    let mut mqtt = Vec::with_capacity(count);
    for n in 0..count {
        let t = Instant::now();
        bus.publish("bench/trigger", format!("{{\"n\":{n}}}"), false)
            .await
            .unwrap();
        match started(&mut starts, n).await {
            true => mqtt.push(t.elapsed()),
            false => lost_mqtt += 1,
        }
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let health = format!("{}/healthz", daemon.http);
    let mut http = Vec::with_capacity(count);
    for _ in 0..count {
        let t = Instant::now();
        let answer = agent.get(&health).call().unwrap();
        assert_eq!(answer.status(), 200);
        http.push(t.elapsed());
    }
    let hook = format!("{}/hooks/on-hook?token=bench-token", daemon.http);
    let mut hooked = Vec::with_capacity(count);
    for n in count..2 * count {
        let t = Instant::now();
        let answer = agent
            .post(&hook)
            .header("content-type", "application/json")
            .send(format!("{{\"n\":{n}}}"))
            .unwrap();
        assert_eq!(answer.status(), 202);
        match started(&mut starts, n).await {
            true => hooked.push(t.elapsed()),
            false => lost_hook += 1,
        }
    }
    let runs = ureq::get(&format!("{}/v1/runs", daemon.http))
        .call()
        .unwrap()
        .into_body()
        .read_to_string()
        .unwrap();
    let ran = serde_json::from_str::<serde_json::Value>(&runs)
        .unwrap()
        .as_array()
        .map_or(0, Vec::len);
    bus.close().await;
    drop(daemon.process);
    let (bare, mqtt) = (spread(&mut bare), spread(&mut mqtt));
    let (http, hooked) = (spread(&mut http), spread(&mut hooked));
    println!("trigger -> first step started, {count} triggers one after the other:");
    println!(
        "  first steps never seen within 5 s: MQTT {lost_mqtt}, webhook {lost_hook}; runs the daemon recorded: {ran} of {}",
        2 * count
    );
    println!(
        "  MQTT message   p50 {:>7.3} ms  p99 {:>7.3} ms   bare MQTT round trip p50 {:>7.3} ms  p99 {:>7.3} ms   ratio p50 {:.1}x",
        mqtt.0,
        mqtt.1,
        bare.0,
        bare.1,
        mqtt.0 / bare.0
    );
    println!(
        "  webhook        p50 {:>7.3} ms  p99 {:>7.3} ms   bare GET /healthz    p50 {:>7.3} ms  p99 {:>7.3} ms   ratio p50 {:.1}x",
        hooked.0,
        hooked.1,
        http.0,
        http.1,
        hooked.0 / http.0
    );
}

/// The CPU time (user and system) `pid` used so far, and its resident memory in MB.
fn usage(pid: u32) -> (Duration, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // Linux counts in USER_HZ, 100 a second on every platform it runs on here.
    (Duration::from_millis(ticks * 10), rss_mb(pid))
}

/// The daemon idle for `seconds` with 100 scheduled workflows, beside none.
fn idle_cost(dir: &Path, component: &Path, seconds: u64) {
    let measure = |folder: Option<&Path>, at: &Path| {
        std::fs::create_dir_all(at).unwrap();
        let daemon = daemon(at, component, folder);
        std::thread::sleep(Duration::from_secs(1));
        let (before, _) = usage(daemon.pid);
        std::thread::sleep(Duration::from_secs(seconds));
        let (after, rss) = usage(daemon.pid);
        (after - before, rss)
    };
    let none = measure(None, &dir.join("idle-none"));
    let flows = dir.join("idle-flows");
    std::fs::create_dir_all(&flows).unwrap();
    for n in 0..100 {
        let minute = n % 60;
        let text = format!(
            "name: scheduled-{n}\non:\n  schedule:\n    - cron: '{minute} 3 * * *'\nsteps:\n  - action: testkit/echo\n"
        );
        std::fs::write(flows.join(format!("scheduled-{n}.yaml")), text).unwrap();
    }
    let hundred = measure(Some(&flows), &dir.join("idle-hundred"));
    let share = |cpu: Duration| cpu.as_secs_f64() / seconds as f64 * 100.0;
    println!("daemon idle for {seconds} s:");
    println!(
        "  100 scheduled workflows  CPU {:>6.1} ms ({:.3} % of a core)  memory {:>6.1} MB",
        hundred.0.as_secs_f64() * 1e3,
        share(hundred.0),
        hundred.1
    );
    println!(
        "  no workflows             CPU {:>6.1} ms ({:.3} % of a core)  memory {:>6.1} MB   memory ratio {:.2}x",
        none.0.as_secs_f64() * 1e3,
        share(none.0),
        none.1,
        hundred.1 / none.1
    );
}

/// Calls `testkit/echo` one after the other for `duration`; each call's time.
fn calls(url: &str, duration: Duration) -> Vec<Duration> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let until = Instant::now() + duration;
    let mut samples = Vec::new();
    while Instant::now() < until && samples.len() < 200_000 {
        let t = Instant::now();
        let answer = agent
            .post(url)
            .header("content-type", "application/json")
            .send(r#"{"n": 1}"#)
            .unwrap();
        assert_eq!(answer.status(), 200);
        samples.push(t.elapsed());
    }
    samples
}

/// A component rewritten every 500 ms while a client calls it, beside the calls before.
fn reload_pause(dir: &Path, seconds: u64) {
    let kit = dir.join("reload").join("kit.wasm");
    std::fs::create_dir_all(kit.parent().unwrap()).unwrap();
    let bytes = std::fs::read(copper_wasm::builtin::TESTKIT_PATH).unwrap();
    std::fs::write(&kit, &bytes).unwrap();
    let daemon = daemon(&dir.join("reload"), &kit, None);
    let url = format!("{}/v1/actions/testkit/echo", daemon.http);
    let mut before = calls(&url, Duration::from_secs(seconds));
    let writer = {
        let kit = kit.clone();
        std::thread::spawn(move || {
            let mut rewrites = 0;
            let until = Instant::now() + Duration::from_secs(seconds);
            while Instant::now() < until {
                std::thread::sleep(Duration::from_millis(500));
                std::fs::write(&kit, &bytes).unwrap();
                rewrites += 1;
            }
            rewrites
        })
    };
    let mut during = calls(&url, Duration::from_secs(seconds));
    let rewrites = writer.join().unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let reloads = ureq::get(&format!("{}/v1/reloads", daemon.http))
        .call()
        .unwrap()
        .into_body()
        .read_to_string()
        .unwrap();
    let done = reloads.matches("\"ok\":true").count();
    let (b, d) = (spread(&mut before), spread(&mut during));
    println!("a component reloaded while called ({rewrites} rewrites, {done} reloads done):");
    println!(
        "  while reloading  {:>6} calls  p50 {:>7.3} ms  p99 {:>7.3} ms  longest {:>7.3} ms",
        during.len(),
        d.0,
        d.1,
        d.2
    );
    println!(
        "  before           {:>6} calls  p50 {:>7.3} ms  p99 {:>7.3} ms  longest {:>7.3} ms   longest beyond usual (p99 before): {:.3} ms",
        before.len(),
        b.0,
        b.1,
        b.2,
        d.2 - b.1
    );
}

fn main() {
    let count: usize = std::env::var("BENCH_TRIGGERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let dir = tempfile::tempdir().unwrap();
    let component = PathBuf::from(copper_wasm::builtin::TESTKIT_PATH);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(trigger_latency(
        &dir.path().join("latency"),
        &component,
        count,
    ));
    idle_cost(dir.path(), &component, 10);
    reload_pause(dir.path(), 5);
}
