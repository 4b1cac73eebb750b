//! Bad requests and bad components: each a clear `failed` finish, the host still serving.

use crate::support::*;
use copper_wasm::protocol::{Object, Status};
use copper_wasm::runner::request;
use serde_json::{Value, json};
use std::time::Duration;

fn fields(value: Value) -> Object {
    value.as_object().expect("an object").clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_fail_clearly_and_the_host_keeps_serving() {
    let root = tempfile::tempdir().unwrap();
    // A repository whose content/ holds a link to a file outside it.
    let evil = root.path().join("evil");
    std::fs::create_dir_all(evil.join("content")).unwrap();
    std::fs::write(evil.join("content/ok.md"), "# fine\n").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", evil.join("content/passwd.md")).unwrap();
    commit_tree(&evil);
    let testkit = copper_wasm::builtin::TESTKIT_PATH;
    let (mut serving, port) = serve(
        root.path(),
        &["--component", testkit],
        &[],
        &["fetcher", "markdown", "testkit"],
    )
    .await;
    let bus = client(port).await;
    let wait = Some(Duration::from_secs(120));

    let cases: Vec<(&str, Value, &str)> = vec![
        ("testkit/trap", json!({}), "trapped"),
        (
            "testkit/spin",
            json!({"timeout": "1s"}),
            "timed out: stopped after its timeout of 1s",
        ),
        ("testkit/hog", json!({}), "out of memory"),
        // A deadline too far to be an instant: answered, not a worker's panic.
        (
            "testkit/spin",
            json!({"timeout": "18446744073709551615s"}),
            "field `timeout` must be at most 366 days",
        ),
        ("testkit/fail", json!({}), "failed: asked to fail"),
        (
            "fetcher/fetch",
            json!({"type": "local", "path": ".", "resource": "../x"}),
            "invalid input",
        ),
        (
            "fetcher/fetch",
            json!({"type": "local", "path": "../..", "resource": "x"}),
            "must stay inside the workspace",
        ),
        (
            "fetcher/fetch",
            json!({"type": "local", "path": ".", "resource": "x", "filter": "../*"}),
            "inside the repository",
        ),
        (
            "fetcher/fetch",
            json!({"type": "git", "url": evil.display().to_string(), "resource": "evil", "filter": "content/*"}),
            "points outside the repository",
        ),
        (
            "markdown/build",
            json!({"resource": "x", "path": "/etc"}),
            "invalid input",
        ),
        (
            "markdown/build",
            json!({"resource": "x", "path": "/fetch/../etc"}),
            "invalid input",
        ),
        (
            "markdown/build",
            json!({"path": "/fetch", "out": "/web/../../x"}),
            "invalid input",
        ),
        (
            "markdown/build",
            json!({"resource": 5, "path": "/fetch"}),
            "does not match its schema",
        ),
    ];
    for (topic, input, expected) in cases {
        let finish = request(&bus, topic, &fields(input.clone()), wait, |_| {})
            .await
            .unwrap();
        assert_eq!(
            finish.status,
            Status::Failed,
            "{topic} {input} should fail: {:?}",
            finish.entry
        );
        let error = finish.error.clone().unwrap_or_default();
        assert!(
            error.contains(expected),
            "{topic} {input}: expected `{expected}` in `{error}`"
        );
        serving.assert_running();
    }
    assert!(
        !root
            .path()
            .join(".copper/fetch/evil/content/passwd.md")
            .exists(),
        "nothing was copied through the link"
    );

    // Still serving, and still right.
    let finish = request(
        &bus,
        "testkit/echo",
        &fields(json!({"after": "failures"})),
        wait,
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!(
        (finish.status, &finish.entry["after"]),
        (Status::Success, &json!("failures"))
    );
    let finish = request(
        &bus,
        "fetcher/fetch",
        &fields(
            json!({"type": "local", "path": "evil/content", "resource": "ok", "filter": "ok.md"}),
        ),
        wait,
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!(finish.status, Status::Success, "{:?}", finish.entry);
    assert_eq!(finish.entry["filtered_files"], json!(1));
    assert!(root.path().join(".copper/fetch/ok/ok.md").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_and_resources_reach_the_bus() {
    let root = tempfile::tempdir().unwrap();
    let testkit = copper_wasm::builtin::TESTKIT_PATH;
    let (_serving, port) = serve(root.path(), &["--component", testkit], &[], &["testkit"]).await;
    let bus = client(port).await;
    let mut resources = bus.subscribe("testkit/resources/+").await.unwrap();
    let mut progress = Vec::new();
    let finish = request(
        &bus,
        "testkit/progress",
        &fields(json!({"resource": "made"})),
        Some(Duration::from_secs(60)),
        |m| progress.push(m),
    )
    .await
    .unwrap();
    assert_eq!(finish.status, Status::Success);
    assert_eq!(progress, vec!["half way".to_string()]);
    let message = tokio::time::timeout(Duration::from_secs(10), resources.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(message.topic, "testkit/resources/made");
}

#[test]
fn a_run_whose_process_was_killed_is_listed_as_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("w.yaml"),
        "name: long\nsteps:\n  - {id: wait, action: testkit/sleep, ms: 60000}\n",
    )
    .unwrap();
    let mut command = copper(dir.path());
    command.args([
        "run",
        "w.yaml",
        "--component",
        copper_wasm::builtin::TESTKIT_PATH,
    ]);
    let mut run = Process::spawn(&mut command, "copper-wasm run");
    let runs = dir.path().join(".copper/runs");
    let running = |dir: &std::path::Path| {
        copper_wasm::runner::record::list(dir)
            .iter()
            .any(|r| r.steps.get("wait").is_some_and(|s| s.status == "running"))
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while !running(&dir.path().join(".copper")) {
        run.assert_running();
        assert!(
            std::time::Instant::now() < deadline,
            "no run started in {}",
            runs.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let listed = output(copper(dir.path()).arg("runs"));
    assert!(listed.stdout.contains("running"), "{}", listed.stdout);
    run.kill();
    let listed = output(copper(dir.path()).arg("runs"));
    assert!(
        listed.stdout.contains("interrupted") && !listed.stdout.contains("running"),
        "{}",
        listed.stdout
    );
    // The library reads it so too.
    let state = &copper_wasm::runner::record::list(&dir.path().join(".copper"))[0];
    assert_eq!(state.status, "interrupted");
}
