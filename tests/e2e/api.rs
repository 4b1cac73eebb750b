//! The daemon's HTTP API: the real `copper-wasm serve`, a real HTTP client, the
//! real components on the embedded broker.

use crate::support::*;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::{Duration, Instant};

const TESTKIT: &str = copper_wasm::builtin::TESTKIT_PATH;

/// A running daemon and the base URL of its HTTP API.
pub struct Daemon {
    pub process: Process,
    pub url: String,
    /// Its embedded broker's port.
    pub port: u16,
    /// What it printed.
    pub log: std::path::PathBuf,
}

/// `copper-wasm serve` in `dir` hosting the testkit (and the built-ins; `args` with
/// a `--component` of their own replace the testkit), its embedded broker and its
/// HTTP API on free loopback ports; returns once `/readyz` says ready (the host has
/// started: its services are up).
pub async fn daemon(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Daemon {
    let testkit = !args.contains(&"--component");
    serving(dir, args, env, testkit).await
}

/// [`daemon`] without the testkit: only what `args` and the services file in `dir` say.
pub async fn daemon_without_testkit(dir: &Path, args: &[&str]) -> Daemon {
    serving(dir, args, &[], false).await
}

async fn serving(dir: &Path, args: &[&str], env: &[(&str, &str)], testkit: bool) -> Daemon {
    let (port, http_port) = (free_port(), free_port());
    let (listen, http) = (
        format!("127.0.0.1:{port}"),
        format!("127.0.0.1:{http_port}"),
    );
    let mut command = copper(dir);
    command.args(["serve", "--listen", &listen, "--http", &http]);
    if testkit {
        command.args(["--component", TESTKIT]);
    }
    command.args(args);
    for (key, value) in env {
        command.env(key, value);
    }
    // Beside the tests' credentials, not in `dir`: a daemon may run in the checkout.
    let log = credentials_file()
        .parent()
        .unwrap()
        .join(format!("daemon-{http_port}.log"));
    let mut process = Process::spawn_logged(&mut command, "copper-wasm serve", &log);
    let url = format!("http://{http}");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(status) = process.try_wait() {
            let printed = std::fs::read_to_string(&log).unwrap_or_default();
            panic!("the daemon exited early ({status}):\n{printed}");
        }
        let ready = agent().get(format!("{url}/readyz")).call();
        if ready.is_ok_and(|r| r.status() == 200) {
            break;
        }
        assert!(Instant::now() < deadline, "the HTTP API never got ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Daemon {
        process,
        url,
        port,
        log,
    }
}

/// An HTTP client that reads every status as an answer, not an error.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into()
}

/// An answer: its status, its `Retry-After`, its content type and its body as JSON
/// (Null when it is not JSON).
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<String>,
    pub content_type: String,
    pub body: Value,
}

fn answer(response: ureq::http::Response<ureq::Body>) -> Answer {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let (status, retry_after) = (response.status().as_u16(), header("retry-after"));
    let content_type = header("content-type").unwrap_or_default();
    let text = response.into_body().read_to_string().unwrap_or_default();
    Answer {
        status,
        retry_after,
        content_type,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
    }
}

/// `POST url` with `body`, read.
pub fn post(agent: &ureq::Agent, url: &str, body: &str) -> Answer {
    answer(
        agent
            .post(url)
            .header("content-type", "application/json")
            .send(body)
            .expect("the daemon answers"),
    )
}

/// A daemon in `root/daemon` that ran copper's README workflow
/// (`workflows/website.yaml`, over HTTP) against a loopback copy of its
/// repository, to its success; the git server stays up while it is kept.
pub async fn daemon_after_copper_s_workflow(root: &Path) -> (Daemon, GitServer) {
    let (git, _work) = serve_astro_big_doc(root);
    let dir = root.join("daemon");
    std::fs::create_dir_all(&dir).unwrap();
    let daemon = daemon(&dir, &[], &[("COPPER_GITHUB_URL", &git.github_url())]).await;
    let workflow = std::fs::read_to_string(repo_root().join("workflows/website.yaml")).unwrap();
    let started = post(&agent(), &format!("{}/v1/runs", daemon.url), &workflow);
    assert_eq!(started.status, 201, "{}", started.body);
    let run = format!("{}{}", daemon.url, started.body["url"].as_str().unwrap());
    let ended = run_ended(&run, Duration::from_secs(120)).await;
    assert_eq!(ended["status"], "success", "{ended}");
    (daemon, git)
}

/// The state of the run at `url` (`…/v1/runs/<id>`) once it is no longer
/// running; fails past `bound`.
pub async fn run_ended(url: &str, bound: Duration) -> Value {
    let deadline = Instant::now() + bound;
    loop {
        let state = get(&agent(), url).body;
        if state["status"] != "running" {
            return state;
        }
        assert!(Instant::now() < deadline, "the run at {url} never ended");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `GET url`, read.
pub fn get(agent: &ureq::Agent, url: &str) -> Answer {
    answer(agent.get(url).call().expect("the daemon answers"))
}

#[tokio::test(flavor = "multi_thread")]
async fn every_call_answers_with_its_result_or_the_problem_that_says_what_failed() {
    let root = tempfile::tempdir().unwrap();
    let daemon = daemon(root.path(), &[], &[]).await;
    let (api, http) = (&daemon.url, agent());
    let action = |path: &str| format!("{api}/v1/actions/{path}");

    let echoed = post(
        &http,
        &action("testkit/echo"),
        r#"{"greeting": "hi", "n": 3}"#,
    );
    assert_eq!(echoed.status, 200, "{}", echoed.body);
    assert_eq!(echoed.body["greeting"], "hi");
    assert_eq!(echoed.body["n"], 3);
    assert_eq!(echoed.body["status"], "success");

    // The action's own failure is a result, not a server error.
    let failed = post(&http, &action("testkit/fail"), "{}");
    assert_eq!(failed.status, 200, "{}", failed.body);
    assert_eq!(failed.body["status"], "failed");
    assert!(
        failed.body["error"]
            .as_str()
            .unwrap()
            .contains("asked to fail")
    );
    let trapped = post(&http, &action("testkit/trap"), "{}");
    assert_eq!(
        (trapped.status, &trapped.body["status"]),
        (200, &json!("failed"))
    );

    // The input against the action's schema: the error names the field.
    let invalid = post(&http, &action("markdown/build"), r#"{"out": "/web/x"}"#);
    assert_eq!(invalid.status, 422, "{}", invalid.body);
    assert_eq!(invalid.content_type, "application/problem+json");
    assert_eq!(invalid.body["status"], 422);
    assert!(
        invalid.body["detail"].as_str().unwrap().contains("path"),
        "{}",
        invalid.body
    );

    let unknown = post(&http, &action("nobody/answers"), "{}");
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    let known: Vec<&str> = unknown.body["known"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(known.contains(&"testkit/echo") && known.contains(&"markdown/build"));
    let reserved = post(&http, &action("testkit/status"), "{}");
    assert_eq!(reserved.status, 404, "{}", reserved.body);

    for body in ["not json", "[1, 2]"] {
        let bad = post(&http, &action("testkit/echo"), body);
        assert_eq!(bad.status, 400, "{body}: {}", bad.body);
        assert_eq!(bad.body["type"], "urn:copper-wasm:problem:bad-request");
    }

    let late = post(&http, &action("testkit/spin"), r#"{"timeout": "300ms"}"#);
    assert_eq!(late.status, 504, "{}", late.body);
    assert_eq!(late.body["type"], "urn:copper-wasm:problem:deadline");

    let missing = get(&http, &format!("{api}/v1/nothing/here"));
    assert_eq!(missing.status, 404);
    assert_eq!(missing.content_type, "application/problem+json");

    let health = get(&http, &format!("{api}/healthz"));
    assert_eq!(health.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn services_are_listed_with_their_actions_schemas_backend_load_and_hosts() {
    let root = tempfile::tempdir().unwrap();
    let daemon = daemon(root.path(), &["--host-id", "daemon-a"], &[]).await;
    let http = agent();
    let listed = get(&http, &format!("{}/v1/services", daemon.url));
    assert_eq!(listed.status, 200);
    let services = listed.body.as_array().unwrap();
    let names: Vec<&str> = services.iter().filter_map(|s| s["name"].as_str()).collect();
    assert_eq!(names, ["fetcher", "markdown", "testkit"], "{}", listed.body);
    let testkit = get(&http, &format!("{}/v1/services/testkit", daemon.url)).body;
    assert_eq!(testkit["backend"], "component");
    assert_eq!(testkit["status"], "up");
    assert_eq!(testkit["hosts"], json!(["daemon-a"]));
    assert_eq!(testkit["load"]["in_flight"], 0);
    assert_eq!(testkit["load"]["concurrency"], 16);
    let echo = testkit["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["topic"] == "testkit/echo")
        .expect("testkit/echo listed");
    assert_eq!(echo["input_schema"]["type"], "object");
    let markdown = get(&http, &format!("{}/v1/services/markdown", daemon.url)).body;
    let build = &markdown["actions"][0];
    assert_eq!(
        build["input_schema"]["required"],
        json!(["path"]),
        "{markdown}"
    );

    let nobody = get(&http, &format!("{}/v1/services/nobody", daemon.url));
    assert_eq!(nobody.status, 404);

    // The document describes the API as served.
    let document = get(&http, &format!("{}/openapi.json", daemon.url)).body;
    assert_eq!(document["openapi"], "3.1.0");
    assert!(document["paths"]["/v1/actions/{service}/{action}"]["post"].is_object());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_calls_from_64_connections_are_each_answered_once_with_their_own_result() {
    let root = tempfile::tempdir().unwrap();
    let daemon = daemon(root.path(), &["--concurrency", "64"], &[]).await;
    let url = format!("{}/v1/actions/testkit/echo", daemon.url);
    let (connections, per_connection) = (64, 1000 / 64 + 1);
    let threads: Vec<_> = (0..connections)
        .map(|c| {
            let url = url.clone();
            std::thread::spawn(move || {
                let http = agent();
                let mut answered = Vec::new();
                for n in 0..per_connection {
                    let call = c * per_connection + n;
                    if call >= 1000 {
                        break;
                    }
                    let answer = post(&http, &url, &json!({ "call": call }).to_string());
                    answered.push((call, answer.status, answer.body));
                }
                answered
            })
        })
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    for thread in threads {
        for (call, status, body) in thread.join().unwrap() {
            assert_eq!(status, 200, "call {call}: {body}");
            assert_eq!(
                body["call"], call,
                "call {call} got another's answer: {body}"
            );
            assert_eq!(body["status"], "success");
            assert!(seen.insert(call), "call {call} answered twice");
        }
    }
    assert_eq!(seen.len(), 1000);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_queue_answers_429_and_every_request_it_took_finishes() {
    let root = tempfile::tempdir().unwrap();
    let daemon = daemon(root.path(), &["--concurrency", "2", "--queue", "2"], &[]).await;
    let url = format!("{}/v1/actions/testkit/sleep", daemon.url);
    let threads: Vec<_> = (0..12)
        .map(|n| {
            let url = url.clone();
            std::thread::spawn(move || {
                let http = agent();
                let first = post(&http, &url, &json!({"ms": 400, "n": n}).to_string());
                let refused = first.status == 429;
                if refused {
                    assert_eq!(first.retry_after.as_deref(), Some("1"), "{}", first.body);
                    assert_eq!(first.body["type"], "urn:copper-wasm:problem:queue-full");
                }
                // Refused, it comes back later: nothing is lost, only deferred.
                let mut last = first;
                let deadline = Instant::now() + Duration::from_secs(60);
                while last.status == 429 && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(200));
                    last = post(&http, &url, &json!({"ms": 400, "n": n}).to_string());
                }
                (n, refused, last)
            })
        })
        .collect();
    let mut refused = 0;
    for thread in threads {
        let (n, was_refused, last) = thread.join().unwrap();
        refused += usize::from(was_refused);
        assert_eq!(last.status, 200, "request {n}: {}", last.body);
        assert_eq!(
            (&last.body["n"], &last.body["status"]),
            (&json!(n), &json!("success"))
        );
    }
    // 12 at once against 2 running and 2 waiting: at most 4 taken at first.
    assert!(refused >= 8, "only {refused} of 12 refused at first");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_queue_holds_requests_from_the_bus_at_the_broker_and_answers_each() {
    let root = tempfile::tempdir().unwrap();
    let daemon = daemon(root.path(), &["--concurrency", "1", "--queue", "1"], &[]).await;
    let bus = client(daemon.port).await;
    let mut finishes = bus.subscribe("testkit/sleep/finish").await.unwrap();
    for n in 0..10 {
        let request = json!({"ms": 200, "correlation_id": format!("held-{n}")});
        bus.publish("testkit/sleep", request.to_string(), false)
            .await
            .unwrap();
    }
    // While they wait, the HTTP side finds the queue full.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let refused = post(
        &agent(),
        &format!("{}/v1/actions/testkit/sleep", daemon.url),
        r#"{"ms": 1}"#,
    );
    assert_eq!(refused.status, 429, "{}", refused.body);
    let mut answered = std::collections::BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while answered.len() < 10 && Instant::now() < deadline {
        let Ok(Some(message)) = tokio::time::timeout(Duration::from_secs(5), finishes.recv()).await
        else {
            continue;
        };
        let finish = copper_wasm::protocol::parse_finish(&message.payload);
        let id = finish.correlation_id.clone().unwrap_or_default();
        assert_eq!(
            finish.status,
            copper_wasm::protocol::Status::Success,
            "{id}: {:?}",
            finish.error
        );
        assert!(
            answered.insert(id.clone(), ()).is_none(),
            "{id} answered twice"
        );
    }
    assert_eq!(answered.len(), 10, "answered only {answered:?}");
    bus.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_posted_is_streamed_from_its_start_to_its_end_and_recorded() {
    let root = tempfile::tempdir().unwrap();
    let daemon = daemon(root.path(), &[], &[]).await;
    let http = agent();
    let workflow = "name: three\nsteps:\n  - id: one\n    action: testkit/sleep\n    ms: 100\n  - id: two\n    action: testkit/echo\n    needs: [one]\n    said: ${{ steps.one.outputs.ms }}\n  - id: three\n    action: testkit/fail\n    needs: [two]\n";
    let started = answer(
        http.post(format!("{}/v1/runs", daemon.url))
            .header("content-type", "application/yaml")
            .send(workflow)
            .unwrap(),
    );
    assert_eq!(started.status, 201, "{}", started.body);
    let id = started.body["id"].as_str().unwrap().to_string();
    assert_eq!(started.body["events"], format!("/v1/runs/{id}/events"));

    let stream = http
        .get(format!(
            "{}{}",
            daemon.url,
            started.body["events"].as_str().unwrap()
        ))
        .call()
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert!(
        stream.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut names = Vec::new();
    let mut finished = Value::Null;
    for line in BufReader::new(stream.into_body().into_reader()).lines() {
        let line = line.unwrap();
        if let Some(name) = line.strip_prefix("event: ") {
            names.push(name.to_string());
        }
        if let Some(data) = line.strip_prefix("data: ") {
            let event: Value = serde_json::from_str(data).unwrap();
            if event["event"] == "run.finished" {
                finished = event;
            }
        }
    }
    assert_eq!(names.first().map(String::as_str), Some("run.started"));
    assert_eq!(names.last().map(String::as_str), Some("run.finished"));
    let count = |name: &str| names.iter().filter(|n| *n == name).count();
    assert_eq!(
        (count("step.started"), count("step.finished")),
        (3, 3),
        "{names:?}"
    );
    assert_eq!(finished["success"], false);

    let state = get(&http, &format!("{}/v1/runs/{id}", daemon.url)).body;
    assert_eq!(state["status"], "failed", "{state}");
    assert_eq!(state["steps"]["one"]["status"], "success");
    assert_eq!(state["steps"]["two"]["outputs"]["said"], 100);
    assert_eq!(state["steps"]["three"]["status"], "failed");
    let runs = get(&http, &format!("{}/v1/runs", daemon.url)).body;
    assert!(
        runs.as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == id.as_str())
    );

    // The history of a run that ended is streamed the same way, and a client
    // coming back with Last-Event-ID gets only what came after.
    let again = http
        .get(format!("{}/v1/runs/{id}/events", daemon.url))
        .header("last-event-id", "2")
        .call()
        .unwrap();
    let text = again.into_body().read_to_string().unwrap();
    assert!(
        !text.contains("run.started") && text.contains("run.finished"),
        "{text}"
    );
    assert!(text.contains("id: 3\n"), "{text}");

    let invalid = answer(
        http.post(format!("{}/v1/runs", daemon.url))
            .send("- action: testkit/echo\n  needs: [nowhere]\n")
            .unwrap(),
    );
    assert_eq!(invalid.status, 422, "{}", invalid.body);
    assert!(
        invalid.body["detail"]
            .as_str()
            .unwrap()
            .contains("request-body.yaml:2"),
        "{}",
        invalid.body
    );
    let unserved = answer(
        http.post(format!("{}/v1/runs", daemon.url))
            .send("- action: nobody/answers\n")
            .unwrap(),
    );
    assert_eq!(unserved.status, 422, "{}", unserved.body);
    for id in ["../../etc", "nope"] {
        let missing = get(&http, &format!("{}/v1/runs/{id}", daemon.url));
        assert_eq!(missing.status, 404, "{id}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn beyond_loopback_the_daemon_wants_a_token_and_every_request_must_carry_it() {
    let root = tempfile::tempdir().unwrap();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let open = format!("0.0.0.0:{}", free_port());
    let refused = output(copper(root.path()).args([
        "serve",
        "--listen",
        &listen,
        "--http",
        &open,
        "--no-builtins",
    ]));
    refused.assert_exit(2);
    assert!(
        refused.stderr.contains("COPPER_HTTP_TOKEN"),
        "{}",
        refused.stderr
    );

    let token = "a-token-for-this-test-only-5f1c";
    let daemon = daemon(root.path(), &["-v"], &[("COPPER_HTTP_TOKEN", token)]).await;
    let http = agent();
    let services = format!("{}/v1/services", daemon.url);
    let bare = get(&http, &services);
    assert_eq!(bare.status, 401);
    let wrong = answer(
        http.get(&services)
            .header("authorization", "Bearer not-the-token")
            .call()
            .unwrap(),
    );
    assert_eq!(wrong.status, 401);
    let right = answer(
        http.get(&services)
            .header("authorization", format!("Bearer {token}"))
            .call()
            .unwrap(),
    );
    assert_eq!(right.status, 200);
    // Supervisors' endpoints need none.
    assert_eq!(get(&http, &format!("{}/readyz", daemon.url)).status, 200);

    let big = format!("{{\"pad\": \"{}\"}}", "x".repeat(2 << 20));
    // The daemon answers 413 from the headers alone and closes: a client still
    // sending may see the connection reset before it reads the answer. A few tries.
    let too_big = (0..5)
        .find_map(|_| {
            http.post(format!("{}/v1/actions/testkit/echo", daemon.url))
                .header("authorization", format!("Bearer {token}"))
                .send(&big)
                .ok()
        })
        .map(answer)
        .expect("one of five tries reads the daemon's answer");
    assert_eq!(too_big.status, 413);

    let mut process = daemon.process;
    let status = process.terminate();
    assert!(status.success(), "{status}");
    let log = std::fs::read_to_string(&daemon.log).unwrap();
    assert!(log.contains("HTTP API"), "{log}");
    assert!(!log.contains(token), "the token is in the log:\n{log}");
}

/// schemathesis (PyPI; `./test.sh` installs it), or a loud failure naming it.
fn schemathesis() -> std::process::Command {
    let found = std::process::Command::new("schemathesis")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "schemathesis is not installed: ./test.sh installs it (pip install schemathesis==4.32.5)"
    );
    std::process::Command::new("schemathesis")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_keeps_to_its_openapi_document_whatever_it_is_sent() {
    let root = tempfile::tempdir().unwrap();
    let daemon = daemon(root.path(), &[], &[]).await;
    // Every check schemathesis has is on by default; tests/api/schemathesis.toml
    // says which does not apply where, and why.
    let config = repo_root().join("tests/api/schemathesis.toml");
    let mut command = schemathesis();
    command
        .arg("--config-file")
        .arg(&config)
        .args(["run", &format!("{}/openapi.json", daemon.url)])
        .args(["--max-examples", "40", "--seed", "1"])
        .args([
            "--max-time",
            "90",
            "--request-timeout",
            "60",
            "--workers",
            "4",
        ])
        .env("NO_COLOR", "1")
        .env("SCHEMATHESIS_TELEMETRY", "false")
        .current_dir(root.path());
    let tested = output(&mut command);
    assert_eq!(
        tested.code, 0,
        "schemathesis found failures:\n{}\n{}",
        tested.stdout, tested.stderr
    );
    assert!(
        tested.stdout.contains(" passed") && !tested.stdout.contains("failed"),
        "{}",
        tested.stdout
    );
}
