//! A service's life while the daemon runs (pause, resume, stop, start, reload, over
//! HTTP and over MQTT), the workers listed and stopped, and SIGTERM draining: the
//! real `copper-wasm serve`, real HTTP and MQTT clients, the real testkit component.

use crate::api::{Daemon, agent, daemon, get, post};
use crate::support::*;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The testkit's version mark, as built; a copy with another mark is a new version.
const MARK: &[u8] = b"+build.0000";

/// A copy of the testkit at `path` whose version ends in `mark` (as long as [`MARK`]).
pub(crate) fn testkit_marked(path: &Path, mark: &str) {
    assert_eq!(mark.len(), MARK.len());
    let mut bytes = std::fs::read(copper_wasm::builtin::TESTKIT_PATH).unwrap();
    let at = bytes
        .windows(MARK.len())
        .position(|w| w == MARK)
        .expect("the testkit carries its version mark");
    assert!(
        bytes[at + 1..].windows(MARK.len()).all(|w| w != MARK),
        "the mark is found once"
    );
    bytes[at..at + MARK.len()].copy_from_slice(mark.as_bytes());
    std::fs::write(path, bytes).unwrap();
}

/// `POST /v1/services/testkit/{command}`.
fn command(daemon: &Daemon, command: &str) -> crate::api::Answer {
    let url = format!("{}/v1/services/testkit/{command}", daemon.url);
    post(&agent(), &url, "")
}

pub(crate) fn testkit_view(daemon: &Daemon) -> Value {
    get(&agent(), &format!("{}/v1/services/testkit", daemon.url)).body
}

/// Calls `testkit/sleep` `count` times from one thread, each with its own `i`, and
/// tries again whatever says "not now" (503 paused or stopped, 429 queue full), as a
/// client is told to; returns how many were answered with their own input.
fn steady_caller(url: String, first: usize, count: usize, refused: Arc<AtomicUsize>) -> usize {
    let http = agent();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut answered = 0;
    for i in first..first + count {
        let body = json!({"ms": 3, "i": i}).to_string();
        loop {
            assert!(Instant::now() < deadline, "request {i} never answered");
            let answer = post(&http, &format!("{url}/v1/actions/testkit/sleep"), &body);
            match answer.status {
                200 => {
                    assert_eq!(answer.body["status"], "success", "{}", answer.body);
                    assert_eq!(answer.body["i"], i, "crossed: {}", answer.body);
                    answered += 1;
                    break;
                }
                503 | 429 => {
                    assert!(answer.retry_after.is_some(), "{}", answer.body);
                    refused.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(20));
                }
                status => panic!("request {i}: {status} {}", answer.body),
            }
        }
    }
    answered
}

/// Four [`steady_caller`]s of 150 requests each, in threads of their own; how many
/// times they were told "not now", counted as they go.
pub(crate) fn steady_callers(url: &str) -> (Vec<std::thread::JoinHandle<usize>>, Arc<AtomicUsize>) {
    let refused = Arc::new(AtomicUsize::new(0));
    let callers = (0..4)
        .map(|n| {
            let (url, refused) = (url.to_string(), refused.clone());
            std::thread::spawn(move || steady_caller(url, n * 1000, 150, refused))
        })
        .collect();
    (callers, refused)
}

/// `copper-wasm call testkit/echo` over the daemon's embedded broker, as a runner
/// would, in a thread of its own.
fn bus_call(dir: &Path, daemon: &Daemon, input: &str) -> std::thread::JoinHandle<Output> {
    let mut command = copper(dir);
    command.args([
        "call",
        "testkit/echo",
        "--no-local-services",
        "--broker",
        &format!("mqtt://127.0.0.1:{}", daemon.port),
        "--input",
        input,
        "--timeout",
        "60s",
    ]);
    std::thread::spawn(move || output(&mut command))
}

#[tokio::test(flavor = "multi_thread")]
async fn pause_stop_start_and_reload_under_load_lose_no_request() {
    let root = tempfile::tempdir().unwrap();
    let kit: PathBuf = root.path().join("kit.wasm");
    testkit_marked(&kit, "+build.0000");
    let kit_arg = kit.to_str().unwrap();
    let daemon = daemon(root.path(), &["--component", kit_arg], &[]).await;
    let (callers, refused) = steady_callers(&daemon.url);
    std::thread::sleep(Duration::from_millis(150));

    // Paused: calls are told to come back; a request on the bus waits at the broker.
    let paused = command(&daemon, "pause");
    assert_eq!(paused.status, 200, "{}", paused.body);
    assert_eq!(paused.body["state"], "paused");
    assert_eq!(testkit_view(&daemon)["status"], "paused");
    let not_now = post(
        &agent(),
        &format!("{}/v1/actions/testkit/echo", daemon.url),
        "{}",
    );
    assert_eq!(not_now.status, 503, "{}", not_now.body);
    assert_eq!(not_now.retry_after.as_deref(), Some("1"));
    assert!(not_now.body["detail"].as_str().unwrap().contains("paused"));
    let waiting = bus_call(root.path(), &daemon, r#"{"held": "at the broker"}"#);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        !waiting.is_finished(),
        "a request on the bus is answered only once resumed"
    );
    let resumed = command(&daemon, "resume");
    assert_eq!(resumed.body["state"], "up", "{}", resumed.body);
    let held = waiting.join().unwrap();
    held.assert_success();
    assert!(held.stdout.contains("at the broker"), "{}", held.stdout);

    // Stopped: not served here (its presence says so), started again.
    let stopped = command(&daemon, "stop");
    assert_eq!(stopped.body["state"], "stopped", "{}", stopped.body);
    let view = testkit_view(&daemon);
    assert_eq!(view["status"], "stopped");
    assert_eq!(view["hosts"], json!([]), "{view}");
    std::thread::sleep(Duration::from_millis(300));
    let started = command(&daemon, "start");
    assert_eq!(started.body["state"], "up", "{}", started.body);
    assert_eq!(testkit_view(&daemon)["hosts"].as_array().unwrap().len(), 1);

    // Reloaded from its file: a new version, while the callers go on.
    testkit_marked(&kit, "+build.0001");
    let reloaded = command(&daemon, "reload");
    assert_eq!(reloaded.status, 200, "{}", reloaded.body);
    let version = reloaded.body["version"].as_str().unwrap().to_string();
    assert!(version.ends_with("+build.0001"), "{version}");
    assert_eq!(testkit_view(&daemon)["version"], version.as_str());

    // A broken file: the old version goes on serving, and the answer says why.
    std::fs::write(&kit, b"\0asm but not really a component").unwrap();
    let broken = command(&daemon, "reload");
    assert_eq!(broken.status, 422, "{}", broken.body);
    let detail = broken.body["detail"].as_str().unwrap();
    assert!(detail.contains("cannot be reloaded"), "{detail}");
    assert_eq!(testkit_view(&daemon)["version"], version.as_str());
    let still = post(
        &agent(),
        &format!("{}/v1/actions/testkit/echo", daemon.url),
        r#"{"after": "a broken reload"}"#,
    );
    assert_eq!(still.status, 200, "{}", still.body);
    assert_eq!(still.body["after"], "a broken reload");

    let answered: usize = callers.into_iter().map(|c| c.join().unwrap()).sum();
    assert_eq!(answered, 600, "every request answered, none lost");
    assert!(
        refused.load(Ordering::Relaxed) > 0,
        "the pause and the stop were felt by the callers"
    );
    let unknown = command(&daemon, "restart");
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    let log = std::fs::read_to_string(&daemon.log).unwrap();
    assert!(log.contains("reloaded"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_lifecycle_is_reachable_over_mqtt() {
    let root = tempfile::tempdir().unwrap();
    let daemon = daemon(root.path(), &[], &[]).await;
    let bus = client(daemon.port).await;
    let mut answers = bus
        .subscribe("copper-wasm/services/testkit/+/finish")
        .await
        .unwrap();
    let mut ask = async |command: &str| -> Value {
        let topic = format!("copper-wasm/services/testkit/{command}");
        let id = format!("ask-{command}");
        let body = json!({"correlation_id": id}).to_string();
        bus.publish(&topic, body, false).await.unwrap();
        let message = tokio::time::timeout(Duration::from_secs(30), answers.recv())
            .await
            .expect("an answer")
            .unwrap();
        assert_eq!(message.topic, format!("{topic}/finish"));
        let answer: Value = serde_json::from_slice(&message.payload).unwrap();
        assert_eq!(answer["correlation_id"], id.as_str());
        answer
    };
    let paused = ask("pause").await;
    assert_eq!(paused["status"], "success", "{paused}");
    assert_eq!(paused["state"], "paused");
    assert_eq!(testkit_view(&daemon)["status"], "paused");
    let refused = ask("start").await;
    assert_eq!(refused["state"], "paused", "{refused}");
    let resumed = ask("resume").await;
    assert_eq!(resumed["state"], "up", "{resumed}");
    let nonsense = ask("explode").await;
    assert_eq!(nonsense["status"], "failed", "{nonsense}");
    assert!(
        nonsense["error"]
            .as_str()
            .unwrap()
            .contains("not a command")
    );
    assert_eq!(testkit_view(&daemon)["status"], "up");
    bus.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn workers_are_listed_and_one_is_stopped_where_it_runs() {
    let root = tempfile::tempdir().unwrap();
    let daemon = daemon(root.path(), &[], &[]).await;
    let sleeper = |n: usize| {
        let url = format!("{}/v1/actions/testkit/sleep", daemon.url);
        std::thread::spawn(move || {
            post(
                &agent(),
                &url,
                &json!({"ms": 60_000, "n": n, "timeout": "90s"}).to_string(),
            )
        })
    };
    let calls: Vec<_> = (0..3).map(sleeper).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    let workers = loop {
        let listed = get(&agent(), &format!("{}/v1/workers", daemon.url)).body;
        let running = listed.as_array().unwrap().iter();
        if running.filter(|w| w["state"] == "running").count() == 3 {
            break listed;
        }
        assert!(Instant::now() < deadline, "never 3 running: {listed}");
        std::thread::sleep(Duration::from_millis(20));
    };
    for worker in workers.as_array().unwrap() {
        assert_eq!(worker["service"], "testkit", "{worker}");
        assert_eq!(worker["action"], "testkit/sleep");
        assert_eq!(worker["via"], "call");
        assert!(worker["since"].as_str().unwrap().ends_with('Z'), "{worker}");
    }

    // The command lists them too, and stops them one by one.
    let listed = output(copper(root.path()).args(["workers", "--daemon", &daemon.url]));
    listed.assert_success();
    assert_eq!(
        listed.stdout.matches("testkit/sleep").count(),
        3,
        "{}",
        listed.stdout
    );
    for worker in workers.as_array().unwrap() {
        let id = worker["id"].to_string();
        let killed =
            output(copper(root.path()).args(["workers", "kill", &id, "--daemon", &daemon.url]));
        killed.assert_success();
    }
    for call in calls {
        let answer = call.join().unwrap();
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.body["status"], "failed", "{}", answer.body);
        let error = answer.body["error"].as_str().unwrap();
        assert!(error.contains("stopped by an operator"), "{error}");
    }
    let again = output(copper(root.path()).args([
        "workers",
        "kill",
        &workers[0]["id"].to_string(),
        "--daemon",
        &daemon.url,
    ]));
    again.assert_exit(2);
    assert!(again.stderr.contains("no request"), "{}", again.stderr);
    let empty = get(&agent(), &format!("{}/v1/workers", daemon.url)).body;
    assert_eq!(empty, json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_finishes_the_100_requests_in_flight_then_exits() {
    let root = tempfile::tempdir().unwrap();
    let mut daemon = daemon(
        root.path(),
        &["--concurrency", "128", "--grace", "60s"],
        &[],
    )
    .await;
    let calls: Vec<_> = (0..100)
        .map(|n| {
            let url = format!("{}/v1/actions/testkit/sleep", daemon.url);
            std::thread::spawn(move || {
                post(&agent(), &url, &json!({"ms": 2_000, "n": n}).to_string())
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let listed = get(&agent(), &format!("{}/v1/workers", daemon.url)).body;
        let running = listed.as_array().unwrap().len();
        if running == 100 {
            break;
        }
        assert!(Instant::now() < deadline, "only {running} in flight");
        std::thread::sleep(Duration::from_millis(10));
    }
    let status = daemon.process.terminate();
    assert!(status.success(), "the daemon exits cleanly: {status}");
    for (n, call) in calls.into_iter().enumerate() {
        let answer = call.join().unwrap();
        assert_eq!(answer.status, 200, "request {n}: {}", answer.body);
        assert_eq!(answer.body["status"], "success", "{}", answer.body);
        assert_eq!(answer.body["n"], n);
    }
    let after = agent().get(format!("{}/healthz", daemon.url)).call();
    assert!(after.is_err(), "nothing listens once it exited");
}

/// Containers of service `service` that are still there (running or not).
fn containers_of(service: &str) -> Vec<String> {
    let out = std::process::Command::new("docker")
        .args([
            "ps",
            "-aq",
            "--filter",
            &format!("label=copper-wasm.service={service}"),
        ])
        .output()
        .expect("docker ps");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// The events of a run streamed until it ends, by their names.
fn streamed_events(url: &str) -> Vec<Value> {
    use std::io::BufRead;
    let response = agent().get(url).call().expect("the events stream");
    let reader = std::io::BufReader::new(response.into_body().into_reader());
    reader
        .lines()
        .map_while(Result::ok)
        .filter_map(|line| {
            let data = line.strip_prefix("data:")?;
            serde_json::from_str::<Value>(data.trim()).ok()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_cancelled_over_http_stops_its_container_and_one_resumed_goes_on() {
    let root = tempfile::tempdir().unwrap();
    ServicesFile::new()
        .docker(
            "stuckapi",
            Docker::test_image().command("[sleep, '600']"),
            "[run]",
        )
        .write(root.path());
    let daemon = daemon(root.path(), &[], &[]).await;
    let http = agent();
    let workflow = "name: cancel-me\nsteps:\n  - id: first\n    action: testkit/progress\n    resource: r\n  - id: stuck\n    action: stuckapi/run\n    needs: [first]\n  - id: never\n    action: testkit/echo\n    needs: [stuck]\n";
    let started = post(&http, &format!("{}/v1/runs", daemon.url), workflow);
    assert_eq!(started.status, 201, "{}", started.body);
    let run = format!("{}{}", daemon.url, started.body["url"].as_str().unwrap());
    let deadline = Instant::now() + Duration::from_secs(60);
    while containers_of("stuckapi").is_empty() {
        assert!(
            Instant::now() < deadline,
            "the step's container never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let cancelled = post(&http, &format!("{run}/cancel"), "");
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    assert_eq!(cancelled.body["status"], "cancelled");
    let steps = &cancelled.body["steps"];
    assert_eq!(steps["first"]["status"], "success", "{steps}");
    assert_eq!(steps["stuck"]["status"], "cancelled", "{steps}");
    assert_eq!(steps["never"]["status"], "cancelled", "{steps}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !containers_of("stuckapi").is_empty() {
        assert!(Instant::now() < deadline, "the container was left behind");
        std::thread::sleep(Duration::from_millis(100));
    }
    let events = streamed_events(&format!("{run}/events"));
    assert_eq!(
        events.last().unwrap()["event"],
        "run.cancelled",
        "{events:?}"
    );
    let again = post(&http, &format!("{run}/cancel"), "");
    assert_eq!(again.status, 409, "{}", again.body);

    // The first step's log: what it reported.
    let log = agent()
        .get(format!("{run}/steps/first/log"))
        .call()
        .unwrap()
        .into_body()
        .read_to_string()
        .unwrap();
    assert!(log.contains("half way"), "{log}");
    let none = get(&http, &format!("{run}/steps/..%2F..%2Fstate/log"));
    assert_eq!(none.status, 404, "{}", none.body);

    // A run that failed, resumed: what succeeded is kept, the rest runs again.
    let flaky = "name: flaky\nsteps:\n  - id: once\n    action: testkit/echo\n  - id: twice\n    action: testkit/flaky\n    needs: [once]\n    counter: /fetch/lifecycle/counter\n    fail_times: 1\n";
    let started = post(&http, &format!("{}/v1/runs", daemon.url), flaky);
    let run = format!("{}{}", daemon.url, started.body["url"].as_str().unwrap());
    let events = streamed_events(&format!("{run}/events"));
    assert_eq!(events.last().unwrap()["success"], false, "{events:?}");
    let resumed = post(&http, &format!("{run}/resume"), "");
    assert_eq!(resumed.status, 201, "{}", resumed.body);
    let events = streamed_events(&format!("{run}/events"));
    let last = events.last().unwrap();
    assert_eq!(last["event"], "run.finished");
    assert_eq!(last["success"], true, "{events:?}");
    let state = get(&http, &run).body;
    assert_eq!(state["status"], "success", "{state}");
    // Kept from the first run, not run again.
    assert_eq!(state["steps"]["once"]["status"], "cached", "{state}");
    assert_eq!(state["steps"]["twice"]["outputs"]["tries"], 2, "{state}");
    assert_eq!(state["steps"]["twice"]["status"], "success", "{state}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_long_running_container_is_stopped_and_started_by_the_same_calls() {
    let root = tempfile::tempdir().unwrap();
    ServicesFile::new()
        .docker(
            "lifeguard",
            Docker::test_image()
                .service_mode()
                .command("[sh, /serve.sh]"),
            "[hello]",
        )
        .write(root.path());
    let daemon = daemon(root.path(), &[], &[]).await;
    let http = agent();
    let hello = |name: &str| {
        post(
            &agent(),
            &format!("{}/v1/actions/lifeguard/hello", daemon.url),
            &json!({"name": name, "timeout": "30s"}).to_string(),
        )
    };
    let first = hello("before");
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.body["greeting"], "hello from a container");
    assert_eq!(containers_of("lifeguard").len(), 1);
    let view = |name: &str| get(&http, &format!("{}/v1/services/{name}", daemon.url)).body;
    assert_eq!(view("lifeguard")["backend"], "container-service");

    let stop = post(
        &http,
        &format!("{}/v1/services/lifeguard/stop", daemon.url),
        "",
    );
    assert_eq!(stop.status, 200, "{}", stop.body);
    assert_eq!(stop.body["state"], "stopped");
    assert!(containers_of("lifeguard").is_empty(), "stopped and removed");
    assert_eq!(view("lifeguard")["status"], "stopped");
    let pause = post(
        &http,
        &format!("{}/v1/services/lifeguard/pause", daemon.url),
        "",
    );
    assert_eq!(pause.status, 409, "{}", pause.body);

    let start = post(
        &http,
        &format!("{}/v1/services/lifeguard/start", daemon.url),
        "",
    );
    assert_eq!(start.status, 200, "{}", start.body);
    assert_eq!(start.body["state"], "up");
    assert_eq!(containers_of("lifeguard").len(), 1);
    let again = hello("after");
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body["name"], "after");
}
