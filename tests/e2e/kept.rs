//! The workflows a daemon keeps (`serve --workflows DIR`): read and checked at
//! start, listed, shown and run by name over HTTP; a bad one keeps it from starting.

use crate::api::{agent, daemon, get, post};
use crate::support::*;
use serde_json::Value;
use std::io::BufRead;

#[tokio::test(flavor = "multi_thread")]
async fn kept_workflows_are_listed_and_run_by_name() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("flows");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("greet.yaml"),
        "name: greet\non:\n  schedule:\n    - cron: '0 0 1 1 *'\nconcurrency: 2\nsteps:\n  - id: hello\n    action: testkit/echo\n    greeting: hi\n  - id: again\n    action: testkit/echo\n    needs: [hello]\n    said: ${{ steps.hello.outputs.greeting }}\n",
    )
    .unwrap();
    std::fs::write(dir.join("plain.yml"), "- action: testkit/echo\n").unwrap();
    let flows = dir.to_str().unwrap();
    let daemon = daemon(root.path(), &["--workflows", flows], &[]).await;
    let http = agent();

    let listed = get(&http, &format!("{}/v1/workflows", daemon.url));
    assert_eq!(listed.status, 200, "{}", listed.body);
    let names: Vec<&str> = listed
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["greet", "plain"]);
    let greet = get(&http, &format!("{}/v1/workflows/greet", daemon.url)).body;
    assert_eq!(
        greet["triggers"],
        serde_json::json!(["schedule"]),
        "{greet}"
    );
    assert_eq!(greet["concurrency"], 2);
    assert_eq!(greet["steps"][1]["needs"], serde_json::json!(["hello"]));
    let missing = get(&http, &format!("{}/v1/workflows/nope", daemon.url));
    assert_eq!(missing.status, 404, "{}", missing.body);

    let started = post(
        &http,
        &format!("{}/v1/workflows/greet/runs", daemon.url),
        "",
    );
    assert_eq!(started.status, 201, "{}", started.body);
    let run = format!("{}{}", daemon.url, started.body["url"].as_str().unwrap());
    let response = agent().get(format!("{run}/events")).call().unwrap();
    let last: Value = std::io::BufReader::new(response.into_body().into_reader())
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| serde_json::from_str(l.strip_prefix("data:")?.trim()).ok())
        .last()
        .unwrap();
    assert_eq!(last["event"], "run.finished");
    assert_eq!(last["success"], true, "{last}");
    let state = get(&http, &run).body;
    assert_eq!(state["workflow"], "greet");
    assert_eq!(state["steps"]["again"]["outputs"]["said"], "hi", "{state}");
}

#[test]
fn a_kept_workflow_that_does_not_check_keeps_the_daemon_from_starting() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("flows");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("bad.yaml"),
        "name: bad\non:\n  mqtt: 'a/#/b'\nsteps:\n  - action: testkit/echo\n",
    )
    .unwrap();
    let out = output(copper(root.path()).args([
        "serve",
        "--listen",
        &format!("127.0.0.1:{}", free_port()),
        "--workflows",
        dir.to_str().unwrap(),
    ]));
    out.assert_exit(2);
    assert!(out.stderr.contains("bad.yaml:3"), "{}", out.stderr);
    assert!(out.stderr.contains("on.mqtt[0]"), "{}", out.stderr);
}
