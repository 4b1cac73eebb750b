//! Hot reload on the real daemon: a component file replaced under load (none of
//! 600 requests lost, the new version answering), a broken one (the old version
//! goes on), the workflows folder read again (a new workflow's trigger fires, a
//! broken file keeps the old set), the services file pointed at another file, and
//! SIGHUP.

use crate::api::{Daemon, agent, daemon, daemon_without_testkit, get, post};
use crate::lifecycle::{steady_callers, testkit_marked, testkit_view};
use crate::support::*;
use serde_json::Value;
use std::time::{Duration, Instant};

/// Waits (at most 30 s) until `check` holds of what `GET path` answers; returns it.
fn until(daemon: &Daemon, path: &str, what: &str, mut check: impl FnMut(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let body = get(&agent(), &format!("{}{path}", daemon.url)).body;
        if check(&body) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "never {what}: {path} says {body:#}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The reloads of `what` the daemon noted.
fn reloads_of(body: &Value, what: &str) -> Vec<Value> {
    let all = body.as_array().expect("a list of reloads");
    all.iter().filter(|r| r["what"] == what).cloned().collect()
}

fn version_of(daemon: &Daemon) -> String {
    testkit_view(daemon)["version"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_component_file_replaced_under_load_is_swapped_and_a_broken_one_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let kit = root.path().join("kit.wasm");
    testkit_marked(&kit, "+build.0000");
    let daemon = daemon(root.path(), &["--component", kit.to_str().unwrap()], &[]).await;
    let (callers, _) = steady_callers(&daemon.url);
    std::thread::sleep(Duration::from_millis(150));

    // A new version written over the file: compiled aside, swapped in.
    testkit_marked(&kit, "+build.0001");
    until(&daemon, "/v1/services/testkit", "the new version", |v| {
        v["version"]
            .as_str()
            .is_some_and(|v| v.ends_with("+build.0001"))
    });
    let reloads = get(&agent(), &format!("{}/v1/reloads", daemon.url)).body;
    let done = reloads_of(&reloads, "service testkit");
    assert!(done.iter().any(|r| r["ok"] == true), "{reloads:#}");

    // A broken file: refused, said so, and the new version goes on serving.
    std::fs::write(&kit, b"\0asm but not really a component").unwrap();
    let reloads = until(&daemon, "/v1/reloads", "a refused reload", |body| {
        reloads_of(body, "service testkit")
            .iter()
            .any(|r| r["ok"] == false)
    });
    let refused_reload = reloads_of(&reloads, "service testkit")
        .into_iter()
        .find(|r| r["ok"] == false)
        .unwrap();
    let detail = refused_reload["detail"].as_str().unwrap();
    assert!(
        detail.contains("the old version goes on serving"),
        "{detail}"
    );
    assert!(version_of(&daemon).ends_with("+build.0001"));
    let still = post(
        &agent(),
        &format!("{}/v1/actions/testkit/echo", daemon.url),
        r#"{"after": "a broken file"}"#,
    );
    assert_eq!(still.body["after"], "a broken file", "{}", still.body);

    let answered: usize = callers.into_iter().map(|c| c.join().unwrap()).sum();
    assert_eq!(answered, 600, "every request answered, none lost");
    let log = std::fs::read_to_string(&daemon.log).unwrap();
    assert!(log.contains("reload refused"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_workflows_folder_is_read_again_and_a_broken_file_keeps_the_old_set() {
    let root = tempfile::tempdir().unwrap();
    let flows = root.path().join("flows");
    std::fs::create_dir_all(&flows).unwrap();
    std::fs::write(
        flows.join("first.yaml"),
        "name: first\nsteps:\n  - action: testkit/echo\n",
    )
    .unwrap();
    let daemon = daemon(root.path(), &["--workflows", flows.to_str().unwrap()], &[]).await;
    let names = |body: &Value| -> Vec<String> {
        let all = body.as_array().cloned().unwrap_or_default();
        all.iter()
            .filter_map(|w| w["name"].as_str().map(String::from))
            .collect()
    };

    // A new workflow: listed, and its trigger listened for.
    let second = "name: second\non:\n  mqtt: reload/test\nsteps:\n  - action: testkit/echo\n    said: ${{ trigger.payload }}\n";
    std::fs::write(flows.join("second.yaml"), second).unwrap();
    until(&daemon, "/v1/workflows", "the new workflow", |body| {
        names(body).contains(&"second".to_string())
    });
    let (user, password) = login(&copper_wasm::access::Grant::Host);
    let port = daemon.port.to_string();
    let mut publish = std::process::Command::new("mosquitto_pub");
    publish.args(["-h", "127.0.0.1", "-p", &port, "-u", &user, "-P", &password]);
    publish.args(["-q", "1", "-t", "reload/test", "-m", "hello"]);
    let runs = until(&daemon, "/v1/runs", "a run of the new workflow", |body| {
        let ran = body.as_array().is_some_and(|runs| {
            runs.iter()
                .any(|r| r["workflow"] == "second" && r["status"] == "success")
        });
        if !ran {
            // The subscription may be a moment behind the listing: say it again.
            output(&mut publish).assert_success();
        }
        ran
    });
    let run = runs
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["workflow"] == "second")
        .unwrap();
    assert_eq!(run["steps"]["step1"]["outputs"]["said"], "hello", "{run}");

    // A broken file: refused with its line, the old set kept.
    std::fs::write(
        flows.join("second.yaml"),
        "name: second\nsteps:\n  - action: testkit/echo\n    needs: [nowhere]\n",
    )
    .unwrap();
    let reloads = until(&daemon, "/v1/reloads", "a refused reload", |body| {
        reloads_of(body, "workflows")
            .iter()
            .any(|r| r["ok"] == false)
    });
    let refused = reloads_of(&reloads, "workflows")
        .into_iter()
        .find(|r| r["ok"] == false)
        .unwrap();
    let detail = refused["detail"].as_str().unwrap();
    assert!(detail.contains("second.yaml:4"), "{detail}");
    let kept = get(&agent(), &format!("{}/v1/workflows/second", daemon.url)).body;
    assert_eq!(
        kept["triggers"][0], "mqtt",
        "the old second stays: {kept:#}"
    );

    // Removed: gone from the list.
    std::fs::remove_file(flows.join("second.yaml")).unwrap();
    until(&daemon, "/v1/workflows", "the workflow removed", |body| {
        names(body) == ["first"]
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn the_services_file_points_a_component_at_another_file_and_sighup_reads_all_again() {
    let root = tempfile::tempdir().unwrap();
    let (a, b) = (
        root.path().join("kit-a.wasm"),
        root.path().join("kit-b.wasm"),
    );
    testkit_marked(&a, "+build.000a");
    testkit_marked(&b, "+build.000b");
    let services = |file: &str, extra: &str| {
        let text = format!("services:\n  testkit:\n    component: {file}\n{extra}");
        std::fs::write(root.path().join("copper.yaml"), text).unwrap();
    };
    services("kit-a.wasm", "");
    let daemon = daemon_without_testkit(root.path(), &["--no-builtins"]).await;
    assert!(version_of(&daemon).ends_with("+build.000a"));

    services("kit-b.wasm", "");
    until(&daemon, "/v1/services/testkit", "kit-b serving", |v| {
        v["version"]
            .as_str()
            .is_some_and(|v| v.ends_with("+build.000b"))
    });

    // A service added: not applied while serving, and said so.
    services("kit-b.wasm", "  extra:\n    component: kit-a.wasm\n");
    let reloads = until(&daemon, "/v1/reloads", "the added service noted", |body| {
        reloads_of(body, "services file")
            .iter()
            .any(|r| r["ok"] == false)
    });
    let noted = reloads_of(&reloads, "services file");
    let detail = noted.last().unwrap()["detail"].as_str().unwrap();
    assert!(
        detail.contains("applied at the next start: extra (added)"),
        "{detail}"
    );

    // SIGHUP: everything read again, the component among it.
    let before = reloads_of(&reloads, "service testkit").len();
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &daemon.process.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    until(&daemon, "/v1/reloads", "the reload of SIGHUP", |body| {
        reloads_of(body, "service testkit").len() > before
    });
    assert!(version_of(&daemon).ends_with("+build.000b"));
}
