//! `copper-wasm run` as a user runs it, each figure beside its reference measured
//! in the same run, and the ratio (issue 17's table):
//!
//! - a sequential list of `testkit/echo` steps, per step: the whole command on N
//!   steps less a 10-step run (so that the start cancels), median of 3 each, on
//!   the embedded broker and on two mosquitto (as installed, and with
//!   `set_tcp_nodelay true`) that the bench starts. References: a bare MQTT echo
//!   on the same broker (the bus's floor), and on mosquitto copper's own loop (a
//!   copper-style runner and service in Python on paho-mqtt, `support/copper_style`);
//! - N independent steps (`--max-parallel 64`), steps per second, against a bare
//!   echo with 64 requests in flight on the same broker;
//! - a 1-step run, whole process, median of 20, and its peak memory, against
//!   `docker run --rm` of a local image and a bare process start;
//! - a Python component (componentize-py) per request, fresh and with
//!   `grants.reuse`, against the Rust `testkit/echo`.
//!
//! ```text
//! cargo bench -p copper-wasm --bench run       # BENCH_STEPS=1000 by default
//! ```
//!
//! mosquitto, Python 3 with paho-mqtt (installed in a virtual environment under
//! /var/tmp/copper-wasm-tools when missing), componentize-py and Docker are
//! used where present; a row whose part is missing says so instead of a figure.

#[path = "support/mod.rs"]
mod support;

use copper_wasm::bus::Bus;
use copper_wasm::protocol::Object;
use copper_wasm::{Host, HostConfig};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{Running, free_port, measure};
use tokio_util::sync::CancellationToken;

/// Where the bench keeps the Python it installs.
const TOOLS: &str = "/var/tmp/copper-wasm-tools";

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Prints one row: the figure, its reference, and their ratio.
fn row(name: &str, ours: f64, reference_name: &str, reference: f64, unit: &str) {
    println!(
        "{name:<46} {ours:>9.3} {unit:<8} | {reference_name:<34} {reference:>9.3} {unit:<8} | {:>7.2}x",
        ours / reference
    );
}

/// A workflow of `n` `testkit/echo` steps, as a list, or all independent.
fn steps(dir: &Path, n: usize, independent: bool) -> PathBuf {
    let path = dir.join(format!("w{n}{}.yaml", if independent { "i" } else { "" }));
    let text: String = if independent {
        let mut text = String::from("steps:\n");
        for i in 0..n {
            text.push_str(&format!(
                "  - {{id: s{i}, action: testkit/echo, needs: []}}\n"
            ));
        }
        text
    } else {
        (0..n).map(|_| "- action: testkit/echo\n").collect()
    };
    std::fs::write(&path, text).unwrap();
    path
}

/// Per step: the median of `make(big)` less the median of `make(10)`, over `big - 10`.
fn per_step(big: usize, mut make: impl FnMut(usize) -> Command) -> Duration {
    let (mut long, mut short) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        long.push(measure(&mut make(big)).0);
        short.push(measure(&mut make(10)).0);
    }
    (median(long).saturating_sub(median(short))) / (big - 10) as u32
}

/// A mosquitto on loopback, as installed or with `set_tcp_nodelay true`.
fn mosquitto(dir: &Path, tuned: bool) -> Option<(Running, u16)> {
    let port = free_port();
    let extra = if tuned { "set_tcp_nodelay true\n" } else { "" };
    support::mosquitto(dir, port, extra).map(|running| (running, port))
}

/// A Python 3 that has paho-mqtt: the system's, else a virtual environment of the
/// bench's own (made once).
fn python_with_paho() -> Option<PathBuf> {
    let has = |python: &Path| {
        Command::new(python)
            .args(["-c", "import paho.mqtt.client"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let system = PathBuf::from("python3");
    if has(&system) {
        return Some(system);
    }
    let venv = Path::new(TOOLS).join("bench-python");
    let python = venv.join("bin/python");
    if !has(&python) {
        let made = Command::new("python3")
            .arg("-m")
            .arg("venv")
            .arg(&venv)
            .status();
        let pip = venv.join("bin/pip");
        let installed = made.is_ok_and(|s| s.success())
            && Command::new(&pip)
                .args(["install", "-q", "paho-mqtt==2.1.0"])
                .status()
                .is_ok_and(|s| s.success());
        if !installed {
            return None;
        }
    }
    has(&python).then_some(python)
}

/// copper's loop on `port`: per step, the copper-style runner on `big` entries
/// less on 10, against the copper-style service.
fn copper_per_step(python: &Path, dir: &Path, port: u16, big: usize) -> Duration {
    let style = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/support/copper_style");
    let service = Command::new(python)
        .arg(style.join("service.py"))
        .arg(port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _service = Running(service);
    std::thread::sleep(Duration::from_millis(500));
    for n in [10, big] {
        let entries: Vec<serde_json::Value> = (0..n)
            .map(|i| serde_json::json!({"action": "testkit/echo", "n": i}))
            .collect();
        std::fs::write(
            dir.join(format!("copper{n}.json")),
            serde_json::to_string(&entries).unwrap(),
        )
        .unwrap();
    }
    per_step(big, |n| {
        let mut command = Command::new(python);
        command
            .arg(style.join("runner.py"))
            .arg(port.to_string())
            .arg(dir.join(format!("copper{n}.json")));
        command
    })
}

/// A bare echo on `broker` (the bus's floor): `responder` answers every request
/// with its payload; `requester` keeps `in_flight` requests under way until `n`
/// were answered. Returns the median round trip (one in flight) or the time of
/// them all.
async fn bare_echo(requester: &Bus, responder: Bus, n: usize, in_flight: usize) -> Duration {
    let topic = format!("bench/echo{in_flight}");
    let mut requests = responder.subscribe(&topic).await.unwrap();
    let reply = format!("{topic}/finish");
    let answering = tokio::spawn(async move {
        while let Some(message) = requests.recv().await {
            responder
                .publish(&reply, message.payload.to_vec(), false)
                .await
                .unwrap();
        }
    });
    let mut replies = requester
        .subscribe(&format!("{topic}/finish"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut samples = Vec::with_capacity(n);
    let started = Instant::now();
    let mut sent = 0;
    while sent < in_flight.min(n) {
        requester
            .publish(&topic, format!("{sent}"), false)
            .await
            .unwrap();
        sent += 1;
    }
    for _ in 0..n {
        let at = Instant::now();
        let reply = tokio::time::timeout(Duration::from_secs(10), replies.recv());
        reply.await.expect("an echo within 10 s").unwrap();
        samples.push(at.elapsed());
        if sent < n {
            requester
                .publish(&topic, format!("{sent}"), false)
                .await
                .unwrap();
            sent += 1;
        }
    }
    let all = started.elapsed();
    answering.abort();
    if in_flight == 1 { median(samples) } else { all }
}

/// A host on `broker` (none: the embedded one) serving `services` and `components`.
async fn host(
    dir: &Path,
    broker: Option<String>,
    services: &str,
    components: Vec<PathBuf>,
) -> Host {
    let path = dir.join("copper.yaml");
    std::fs::write(&path, services).unwrap();
    let file = copper_wasm::services_file::ServicesFile::load(&path).unwrap();
    let mut config = HostConfig {
        cache: dir.join("cache"),
        workspace: dir.to_path_buf(),
        compiled_cache: copper_wasm::component::default_compiled_cache(),
        builtins: false,
        components,
        services: file.services,
        ..HostConfig::default()
    };
    if let Some(broker) = broker {
        config.broker = copper_wasm::BrokerChoice::External(
            copper_wasm::bus::BrokerAddress::parse(&broker).unwrap(),
        );
    }
    Host::start(config, CancellationToken::new()).await.unwrap()
}

/// The median time of `n` requests to `topic` with `fields`, one after another.
async fn per_request(host: &Host, topic: &str, fields: &Object, n: usize) -> Duration {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let at = Instant::now();
        let finish = host
            .call(topic, fields, Some(Duration::from_secs(30)))
            .await
            .unwrap();
        assert_eq!(
            finish.status,
            copper_wasm::protocol::Status::Success,
            "{finish:?}"
        );
        samples.push(at.elapsed());
    }
    median(samples)
}

/// The Python `words` component of the tests, built with componentize-py (kept
/// beside the build); `BENCH_PYTHON_COMPONENT` names one built already.
fn python_component() -> Option<PathBuf> {
    if let Some(given) = std::env::var_os("BENCH_PYTHON_COMPONENT") {
        return Some(given.into());
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = PathBuf::from(std::env::var("CARGO_TARGET_DIR").unwrap_or("target".into()))
        .join("bench-words");
    let wasm = out.join("words.wasm");
    if wasm.is_file() {
        return Some(wasm);
    }
    std::fs::create_dir_all(out.join("wit")).unwrap();
    std::fs::copy(root.join("wit/service.wit"), out.join("wit/service.wit")).unwrap();
    std::fs::copy(
        root.join("tests/fixtures/python-plugin/app.py"),
        out.join("app.py"),
    )
    .unwrap();
    let built = Command::new("componentize-py")
        .current_dir(&out)
        .args([
            "-d",
            "wit",
            "-w",
            "plugin",
            "componentize",
            "app",
            "-o",
            "words.wasm",
        ])
        .status();
    built.is_ok_and(|s| s.success()).then_some(wasm)
}

fn main() {
    let big: usize = std::env::var("BENCH_STEPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let copper = PathBuf::from(env!("CARGO_BIN_EXE_copper-wasm"));
    let testkit = PathBuf::from(copper_wasm::builtin::TESTKIT_PATH);
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path();
    for n in [1, 10, big] {
        steps(work, n, false);
        steps(work, n, true);
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let run = |n: usize, independent: bool, broker: Option<u16>| {
        let mut command = Command::new(&copper);
        command
            .current_dir(work)
            .arg("run")
            .arg(steps(work, n, independent))
            .arg("--component")
            .arg(&testkit);
        if independent {
            command.args(["--max-parallel", "64"]);
        }
        if let Some(port) = broker {
            command.args(["--broker", &format!("mqtt://127.0.0.1:{port}")]);
        }
        command
    };
    // Warm the compiled-component cache.
    measure(&mut run(1, false, None));

    println!("copper-wasm run, {big} steps (10 for the start), one run of the bench\n");
    println!("sequential list of testkit/echo, ms per step (whole `copper-wasm run`):");
    let embedded = per_step(big, |n| run(n, false, None));
    let floor = runtime.block_on(async {
        let host = host(work, None, "services: {}\n", vec![]).await;
        let a = host.connect("bench-a", None).await.unwrap();
        let b = host.connect("bench-b", None).await.unwrap();
        bare_echo(&a, b, 2000, 1).await
    });
    row(
        "embedded broker",
        ms(embedded),
        "bare echo, in-process links",
        ms(floor),
        "ms",
    );

    let python = python_with_paho();
    for tuned in [false, true] {
        let name = if tuned {
            "mosquitto set_tcp_nodelay"
        } else {
            "mosquitto as installed"
        };
        let Some((_broker, port)) = mosquitto(work, tuned) else {
            println!("{name}: not measured (no mosquitto; ./test.sh installs it)");
            continue;
        };
        let ours = per_step(big, |n| run(n, false, Some(port)));
        let floor = runtime.block_on(async {
            let address =
                copper_wasm::bus::BrokerAddress::parse(&format!("mqtt://127.0.0.1:{port}"))
                    .unwrap();
            let stop = CancellationToken::new();
            let a = Bus::connect(&address, "bench-echo-a", None, stop.clone())
                .await
                .unwrap();
            let b = Bus::connect(&address, "bench-echo-b", None, stop.clone())
                .await
                .unwrap();
            bare_echo(&a, b, 500, 1).await
        });
        row(
            name,
            ms(ours),
            "bare echo, same broker, our bus",
            ms(floor),
            "ms",
        );
        match &python {
            Some(python) => {
                let copper = copper_per_step(python, work, port, big / 10);
                row(
                    name,
                    ms(ours),
                    "copper's loop (Python, paho)",
                    ms(copper),
                    "ms",
                );
            }
            None => println!("{name}: copper's loop not measured (no python3 with paho-mqtt)"),
        }
    }

    println!("\n{big} independent steps, --max-parallel 64, embedded broker, steps/s:");
    let wide = per_step(big, |n| run(n, true, None));
    let echoes = runtime.block_on(async {
        let host = host(work, None, "services: {}\n", vec![]).await;
        let a = host.connect("bench-a", None).await.unwrap();
        let b = host.connect("bench-b", None).await.unwrap();
        bare_echo(&a, b, big * 4, 64).await
    });
    row(
        "independent steps",
        1.0 / wide.as_secs_f64(),
        "bare echo, 64 in flight",
        (big * 4) as f64 / echoes.as_secs_f64(),
        "/s",
    );

    println!("\na 1-step run, whole process, median of 20:");
    let mut times = Vec::new();
    let mut peak: f64 = 0.0;
    for _ in 0..20 {
        let (took, memory) = measure(&mut run(1, false, None));
        times.push(took);
        peak = peak.max(memory);
    }
    let one = median(times);
    let spawn = median(
        (0..20)
            .map(|_| measure(Command::new("busybox").arg("true")).0)
            .collect(),
    );
    row(
        "1-step run",
        ms(one),
        "start of `busybox true`",
        ms(spawn),
        "ms",
    );
    println!("{:<46} {peak:>9.1} MB peak", "");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let image = Command::new("bash")
        .arg(root.join("tests/fixtures/shell-image/build.sh"))
        .arg("bench")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if image {
        let docker = median(
            (0..5)
                .map(|_| {
                    let mut command = Command::new("docker");
                    command.args(["run", "--rm", "copper-wasm-test/shell:bench", "true"]);
                    measure(&mut command).0
                })
                .collect(),
        );
        row(
            "1-step run",
            ms(one),
            "docker run --rm of a local image",
            ms(docker),
            "ms",
        );
    } else {
        println!("docker run: not measured (no Docker engine)");
    }

    println!("\na request to a component, through the host, median of 500:");
    let Some(words) = python_component() else {
        println!("Python component: not measured (no componentize-py; ./test.sh installs it)");
        return;
    };
    let data = work.join("cache/fetch/bench");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("a.md"), "three small words\n").unwrap();
    let mut count = Object::new();
    count.insert("path".into(), "/fetch/bench".into());
    let (rust, fresh, reused) = runtime.block_on(async {
        let words = words.display();
        let rust = {
            let host = host(work, None, "services: {}\n", vec![testkit.clone()]).await;
            per_request(&host, "testkit/echo", &Object::new(), 500).await
        };
        let fresh = {
            let services = format!("services:\n  words:\n    component: {words}\n");
            let host = host(work, None, &services, vec![]).await;
            per_request(&host, "words/count", &count, 500).await
        };
        let reused = {
            let services = format!(
                "services:\n  words:\n    component: {words}\n    grants: {{reuse: 1000}}\n"
            );
            let host = host(work, None, &services, vec![]).await;
            per_request(&host, "words/count", &count, 500).await
        };
        (rust, fresh, reused)
    });
    row(
        "Python, a fresh instance each",
        ms(fresh),
        "Rust testkit/echo, fresh",
        ms(rust),
        "ms",
    );
    row(
        "Python, grants.reuse: 1000",
        ms(reused),
        "Rust testkit/echo, fresh",
        ms(rust),
        "ms",
    );
    row(
        "Python, grants.reuse: 1000",
        ms(reused),
        "Python, a fresh instance each",
        ms(fresh),
        "ms",
    );
}
