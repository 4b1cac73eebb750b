//! Workflows that start themselves, on the real daemon: a seconds-level schedule,
//! an MQTT message from a plain client (mosquitto_pub), a webhook with and
//! without its token, `workflow_run` on failure only, and each concurrency policy.

use crate::api::{Daemon, agent, daemon, get, post};
use crate::support::*;
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

/// A daemon keeping the workflows `flows` (file name, text) in `root/flows`.
async fn keeping(root: &Path, flows: &[(&str, &str)], env: &[(&str, &str)]) -> Daemon {
    let dir = root.join("flows");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, text) in flows {
        std::fs::write(dir.join(name), text).unwrap();
    }
    daemon(root, &["--workflows", dir.to_str().unwrap()], env).await
}

/// The runs of `workflow` recorded by the daemon.
fn runs_of(daemon: &Daemon, workflow: &str) -> Vec<Value> {
    let all = get(&agent(), &format!("{}/v1/runs", daemon.url)).body;
    all.as_array()
        .unwrap()
        .iter()
        .filter(|r| r["workflow"] == workflow)
        .cloned()
        .collect()
}

/// Waits (at most 30 s) until `workflow` has `count` runs that ended; returns them.
fn ended_runs(daemon: &Daemon, workflow: &str, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let runs: Vec<Value> = runs_of(daemon, workflow)
            .into_iter()
            .filter(|r| r["status"] != "running")
            .collect();
        if runs.len() >= count {
            return runs;
        }
        assert!(
            Instant::now() < deadline,
            "{workflow} has {} runs ended, not {count}",
            runs.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_seconds_schedule_fires_in_the_daemon() {
    let root = tempfile::tempdir().unwrap();
    let flow = "name: tick\non:\n  schedule:\n    - cron: '* * * * * *'\nconcurrency:\n  max: 1\n  when_busy: skip\nsteps:\n  - action: testkit/echo\n    at: ${{ trigger.at }}\n";
    let daemon = keeping(root.path(), &[("tick.yaml", flow)], &[]).await;
    let runs = ended_runs(&daemon, "tick", 2);
    for run in &runs {
        assert_eq!(run["status"], "success", "{run}");
        assert_eq!(run["trigger"]["kind"], "schedule", "{run}");
        assert_eq!(run["trigger"]["cron"], "* * * * * *");
        let at = run["trigger"]["at"].as_str().unwrap();
        assert_eq!(run["steps"]["step1"]["outputs"]["at"], at, "{run}");
    }
    let kept = root.path().join(".copper/triggers/tick.json");
    assert!(kept.exists(), "the last time fired is kept");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_mqtt_message_from_a_plain_client_starts_a_run_with_its_payload() {
    let root = tempfile::tempdir().unwrap();
    let flow = "name: reading\non:\n  mqtt: sensors/+/reading\nconcurrency: 4\nsteps:\n  - action: testkit/echo\n    temperature: ${{ trigger.payload.t }}\n    from: ${{ trigger.topic }}\n";
    let daemon = keeping(root.path(), &[("reading.yaml", flow)], &[]).await;
    let (user, password) = login(&copper_wasm::access::Grant::Host);
    let port = daemon.port.to_string();
    let publish = |body: &str| {
        let mut command = std::process::Command::new("mosquitto_pub");
        command.args(["-h", "127.0.0.1", "-p", &port, "-u", &user, "-P", &password]);
        command.args(["-q", "1", "-t", "sensors/kitchen/reading", "-m", body]);
        output(&mut command).assert_success();
    };
    publish(r#"{"t": 21.5}"#);
    let runs = ended_runs(&daemon, "reading", 1);
    let run = &runs[0];
    assert_eq!(run["status"], "success", "{run}");
    assert_eq!(run["trigger"]["kind"], "mqtt");
    let outputs = &run["steps"]["step1"]["outputs"];
    assert_eq!(outputs["temperature"], 21.5, "{run}");
    assert_eq!(outputs["from"], "sensors/kitchen/reading");
    // Each message is a run of its own.
    publish(r#"{"t": 22}"#);
    let runs = ended_runs(&daemon, "reading", 2);
    let temperatures: Vec<&Value> = runs
        .iter()
        .map(|r| &r["steps"]["step1"]["outputs"]["temperature"])
        .collect();
    assert!(temperatures.contains(&&Value::from(22)), "{temperatures:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_runs_only_with_its_token() {
    let root = tempfile::tempdir().unwrap();
    let flow = "name: hooked\non:\n  webhook:\n    secret: E2E_HOOK_TOKEN\nsteps:\n  - action: testkit/echo\n    ref: ${{ trigger.body.ref }}\n";
    let daemon = keeping(
        root.path(),
        &[("hooked.yaml", flow)],
        &[("E2E_HOOK_TOKEN", "s3cret-hook")],
    )
    .await;
    let http = agent();
    let hook = format!("{}/hooks/hooked", daemon.url);
    let body = r#"{"ref": "refs/heads/main"}"#;
    let none = post(&http, &hook, body);
    assert_eq!(none.status, 401, "{}", none.body);
    let wrong = post(&http, &format!("{hook}?token=guess"), body);
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    let unknown = post(&http, &format!("{}/hooks/nothing", daemon.url), body);
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    assert!(runs_of(&daemon, "hooked").is_empty());
    let taken = post(&http, &format!("{hook}?token=s3cret-hook"), body);
    assert_eq!(taken.status, 202, "{}", taken.body);
    assert_eq!(taken.body["status"], "started");
    let run = get(
        &http,
        &format!("{}{}", daemon.url, taken.body["url"].as_str().unwrap()),
    );
    let id = run.body["id"].as_str().unwrap().to_string();
    let runs = ended_runs(&daemon, "hooked", 1);
    assert_eq!(runs[0]["id"], id.as_str());
    assert_eq!(
        runs[0]["steps"]["step1"]["outputs"]["ref"],
        "refs/heads/main"
    );
    let log = std::fs::read_to_string(&daemon.log).unwrap();
    assert!(
        !log.contains("s3cret-hook"),
        "the hook's token is never logged"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_workflow_run_trigger_follows_failures_only() {
    let root = tempfile::tempdir().unwrap();
    let daemon = keeping(
        root.path(),
        &[
            ("good.yaml", "name: good\nsteps:\n  - action: testkit/echo\n"),
            ("bad.yaml", "name: bad\nsteps:\n  - action: testkit/fail\n"),
            (
                "alarm.yaml",
                "name: alarm\non:\n  workflow_run:\n    workflows: [good, bad]\n    status: [failed]\nsteps:\n  - action: testkit/echo\n    after: ${{ trigger.workflow }}\n    was: ${{ trigger.status }}\n",
            ),
        ],
        &[],
    )
    .await;
    let http = agent();
    let run = |name: &str| {
        let started = post(
            &http,
            &format!("{}/v1/workflows/{name}/runs", daemon.url),
            "",
        );
        assert_eq!(started.status, 201, "{}", started.body);
    };
    run("good");
    ended_runs(&daemon, "good", 1);
    run("bad");
    ended_runs(&daemon, "bad", 1);
    let alarms = ended_runs(&daemon, "alarm", 1);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        runs_of(&daemon, "alarm").len(),
        1,
        "only the failure: {alarms:?}"
    );
    let outputs = &alarms[0]["steps"]["step1"]["outputs"];
    assert_eq!(outputs["after"], "bad", "{outputs}");
    assert_eq!(outputs["was"], "failed");
}

#[tokio::test(flavor = "multi_thread")]
async fn each_concurrency_policy_does_what_it_says() {
    let root = tempfile::tempdir().unwrap();
    let flow = |name: &str, policy: &str| {
        format!(
            "name: {name}\non:\n  webhook:\n    secret: E2E_POLICY_TOKEN\nconcurrency:\n  max: 1\n  when_busy: {policy}\nsteps:\n  - action: testkit/sleep\n    ms: 1500\n"
        )
    };
    let (skip, queue, cancel) = (
        flow("skipper", "skip"),
        flow("queuer", "queue"),
        flow("canceller", "cancel-oldest"),
    );
    let daemon = keeping(
        root.path(),
        &[
            ("skip.yaml", &skip),
            ("queue.yaml", &queue),
            ("cancel.yaml", &cancel),
        ],
        &[("E2E_POLICY_TOKEN", "policy")],
    )
    .await;
    let http = agent();
    let fire = |name: &str| {
        let answer = post(
            &http,
            &format!("{}/hooks/{name}?token=policy", daemon.url),
            "{}",
        );
        assert_eq!(answer.status, 202, "{}", answer.body);
        answer.body["status"].as_str().unwrap().to_string()
    };
    assert_eq!(fire("skipper"), "started");
    assert_eq!(fire("skipper"), "skipped");
    assert_eq!(fire("queuer"), "started");
    assert_eq!(fire("queuer"), "queued");
    assert_eq!(fire("canceller"), "started");
    assert_eq!(fire("canceller"), "started");

    let skipped = ended_runs(&daemon, "skipper", 1);
    let queued = ended_runs(&daemon, "queuer", 2);
    assert!(
        queued.iter().all(|r| r["status"] == "success"),
        "{queued:?}"
    );
    let cancelled = ended_runs(&daemon, "canceller", 2);
    let statuses: Vec<&str> = cancelled
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert!(
        statuses.contains(&"cancelled") && statuses.contains(&"success"),
        "{statuses:?}"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(runs_of(&daemon, "skipper").len(), 1, "{skipped:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_resource_fetched_starts_the_site_build_with_no_runner() {
    let root = tempfile::tempdir().unwrap();
    let site = root.path().join("site");
    std::fs::create_dir_all(&site).unwrap();
    std::fs::write(site.join("index.md"), "# Hello\n\nfrom a resource\n").unwrap();
    commit_tree(&site);
    let flow = "name: build-site\non:\n  resource: fetcher/resources/e2e-site\nsteps:\n  - action: markdown/build\n    resource: ${{ trigger.payload.0.resource }}\n    path: ${{ trigger.payload.0.path }}\n";
    let daemon = keeping(root.path(), &[("build.yaml", flow)], &[]).await;
    // copper's chain: a fetch (here a plain call, no workflow, no runner) produces
    // the resource; the daemon builds the site from it.
    let fetched = post(
        &agent(),
        &format!("{}/v1/actions/fetcher/fetch", daemon.url),
        r#"{"type": "git", "url": "site", "resource": "e2e-site"}"#,
    );
    assert_eq!(fetched.status, 200, "{}", fetched.body);
    assert_eq!(fetched.body["status"], "success", "{}", fetched.body);
    let runs = ended_runs(&daemon, "build-site", 1);
    let run = &runs[0];
    assert_eq!(run["status"], "success", "{run}");
    assert_eq!(run["trigger"]["kind"], "resource");
    assert_eq!(run["trigger"]["service"], "fetcher");
    assert_eq!(run["trigger"]["resource"], "e2e-site");
    let page = root.path().join(".copper/web/e2e-site/index.html");
    let html = std::fs::read_to_string(&page).expect("the site was built");
    assert!(html.contains("from a resource"), "{html}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_examples_fetch_then_build_the_docs_as_they_are() {
    // From the repository root, as docs/triggers.md says to run them.
    // A cache of its own: other tests run the repository's workflows beside it.
    let root = repo_root();
    let cache = tempfile::tempdir().unwrap();
    let examples = root.join("workflows/daemon");
    let args = [
        "--workflows",
        examples.to_str().unwrap(),
        "--cache",
        cache.path().to_str().unwrap(),
    ];
    let daemon = daemon(&root, &args, &[]).await;
    let listed = get(&agent(), &format!("{}/v1/workflows", daemon.url)).body;
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["build-docs", "fetch-docs"]);
    let before = runs_of(&daemon, "build-docs").len();
    let started = post(
        &agent(),
        &format!("{}/v1/workflows/fetch-docs/runs", daemon.url),
        "",
    );
    assert_eq!(started.status, 201, "{}", started.body);
    ended_runs(&daemon, "fetch-docs", 1);
    let built = ended_runs(&daemon, "build-docs", before + 1);
    let last = built
        .iter()
        .max_by_key(|r| r["started"].as_str().unwrap_or_default().to_string())
        .unwrap();
    assert_eq!(last["status"], "success", "{last}");
    assert!(
        cache
            .path()
            .join("web/copper-wasm-docs/index.html")
            .exists()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_change_fires_once_its_changes_stop() {
    let root = tempfile::tempdir().unwrap();
    let notes = root.path().join("notes");
    std::fs::create_dir_all(&notes).unwrap();
    let flow = "name: noted\non:\n  watch:\n    paths: ['notes/*.md']\n    debounce: 300ms\nsteps:\n  - action: testkit/echo\n    changed: ${{ trigger.paths }}\n";
    let daemon = keeping(root.path(), &[("noted.yaml", flow)], &[]).await;
    // Three writes in a row are one change; a file the globs do not match, none.
    for text in ["one", "two", "three"] {
        std::fs::write(notes.join("a.md"), text).unwrap();
        std::thread::sleep(Duration::from_millis(30));
    }
    std::fs::write(notes.join("b.txt"), "not watched").unwrap();
    let runs = ended_runs(&daemon, "noted", 1);
    let run = &runs[0];
    assert_eq!(run["status"], "success", "{run}");
    assert_eq!(run["trigger"]["kind"], "watch");
    assert_eq!(
        run["steps"]["step1"]["outputs"]["changed"],
        serde_json::json!(["notes/a.md"]),
        "{run}"
    );
    std::thread::sleep(Duration::from_millis(900));
    assert_eq!(
        runs_of(&daemon, "noted").len(),
        1,
        "one run for one burst of changes"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_that_reads_the_files_it_watches_does_not_start_itself_again() {
    let root = tempfile::tempdir().unwrap();
    let notes = root.path().join("notes");
    std::fs::create_dir_all(&notes).unwrap();
    std::fs::write(notes.join("a.md"), "# first").unwrap();
    let flow = "name: reader\non:\n  watch:\n    paths: ['notes/*.md']\n    debounce: 200ms\nsteps:\n  - action: fetcher/fetch\n    type: local\n    path: notes\n    resource: notes\n";
    let daemon = keeping(root.path(), &[("reader.yaml", flow)], &[]).await;
    std::fs::write(notes.join("a.md"), "# changed").unwrap();
    let runs = ended_runs(&daemon, "reader", 1);
    assert_eq!(runs[0]["status"], "success", "{}", runs[0]);
    let fetched = root.path().join(".copper/fetch/notes/a.md");
    assert_eq!(std::fs::read_to_string(fetched).unwrap(), "# changed");
    // Its reading opened the files it watches: that is no change.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        runs_of(&daemon, "reader").len(),
        1,
        "the run started itself again"
    );
}
