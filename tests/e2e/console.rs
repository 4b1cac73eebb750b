//! The web console in a real headless Chromium (Debian's, through its
//! chromedriver) against the real daemon: no console error, a run's graph turning
//! green step by step without a reload, a failed step's error and log, a service
//! stopped from its button, and the system graph after copper's own workflow.
//! Each test writes screenshots to `target/screenshots/` (docs/console.md).

use crate::api::{Daemon, agent, daemon, daemon_after_copper_s_workflow, get, post, run_ended};
use crate::support::browser::Browser;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

/// Starts `workflow` on the daemon; returns the run's id.
fn start_run(daemon: &Daemon, workflow: &str) -> String {
    let started = post(&agent(), &format!("{}/v1/runs", daemon.url), workflow);
    assert_eq!(started.status, 201, "{}", started.body);
    started.body["id"].as_str().unwrap().to_string()
}

/// The status of every step node drawn in the run's graph, as the page shows it.
const NODE_STATUSES: &str = "Object.fromEntries([...document.querySelectorAll('#run-graph g.node')].map(n => [n.dataset.id, n.getAttribute('data-status')]))";

#[tokio::test(flavor = "multi_thread")]
async fn a_run_appears_and_its_graph_turns_green_step_by_step_without_a_reload() {
    let root = tempfile::tempdir().unwrap();
    let daemon = daemon(root.path(), &[], &[]).await;
    let browser = Browser::start(1280, 900).await;
    browser
        .open(&format!("{}/console/#/runs", daemon.url))
        .await;
    browser
        .wait_until(
            "document.querySelector('#runs tbody')",
            WAIT,
            "the runs table",
        )
        .await;
    browser.assert_no_console_error().await;
    // Marks this page: a reload would forget it.
    browser.eval("window.__same_page = 'yes'").await;

    let workflow = "name: three\nsteps:\n  - id: fetch\n    action: testkit/sleep\n    ms: 1500\n  - id: build\n    action: testkit/sleep\n    ms: 1500\n    needs: [fetch]\n  - id: publish\n    action: testkit/sleep\n    ms: 1500\n    needs: [build]\n";
    let id = start_run(&daemon, workflow);
    let row = format!("#runs tr[data-run='{id}'] a");
    browser
        .wait_until(
            &format!("document.querySelector(\"{row}\")"),
            WAIT,
            "the run listed",
        )
        .await;
    browser.click(&row).await;
    browser
        .wait_until(
            "document.querySelectorAll('#run-graph g.node').length === 3",
            WAIT,
            "the run's graph of three steps",
        )
        .await;

    // Every change of a step's colour, as the page makes it.
    browser
        .eval("(() => { window.__changes = []; new MutationObserver(ms => { for (const m of ms) { const now = m.target.getAttribute('data-status'); if (now !== m.oldValue) window.__changes.push([m.target.dataset.id, now]); } }).observe(document.querySelector('#run-graph'), {subtree: true, attributes: true, attributeOldValue: true, attributeFilter: ['data-status']}); return true; })()")
        .await;
    browser
        .wait_until(
            "document.querySelector(\"#run-graph g.node[data-id='step:publish']\").getAttribute('data-status') === 'running'",
            WAIT,
            "the last step running",
        )
        .await;
    let midway = browser.eval(NODE_STATUSES).await;
    browser.screenshot("console-run-live").await;
    browser
        .wait_until(
            "[...document.querySelectorAll('#run-graph g.node')].every(n => n.getAttribute('data-status') === 'success')",
            WAIT,
            "every step green",
        )
        .await;
    browser
        .wait_until(
            "document.querySelector('#run-status .badge').textContent === 'success'",
            WAIT,
            "the run's status",
        )
        .await;
    assert_eq!(
        browser.eval("window.__same_page").await,
        "yes",
        "the page was never reloaded"
    );
    assert_eq!(midway["step:fetch"], "success", "{midway}");
    assert_eq!(midway["step:build"], "success", "{midway}");
    // Seen turning green one after the other, on this page, as the events came.
    let changes = browser.eval("window.__changes").await;
    let greens: Vec<&str> = changes
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c[1] == "success")
        .filter_map(|c| c[0].as_str())
        .collect();
    assert!(
        greens == ["step:build", "step:publish"]
            || greens == ["step:fetch", "step:build", "step:publish"],
        "the steps turned green one by one, in order: {changes}"
    );
    // The timeline drew a bar per step, the later ones further right.
    let lefts = browser
        .eval("['fetch', 'build', 'publish'].map(s => parseFloat(document.querySelector(`#timeline .row[data-step='${s}'] .bar`).style.left))")
        .await;
    let lefts: Vec<f64> = lefts
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap_or(f64::NAN))
        .collect();
    assert!(lefts[0] < lefts[1] && lefts[1] < lefts[2], "{lefts:?}");
    browser.screenshot("console-run-done").await;
    browser.assert_no_console_error().await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_step_shows_its_error_and_its_log() {
    let root = tempfile::tempdir().unwrap();
    let daemon = daemon(root.path(), &[], &[]).await;
    // testkit/progress reports "half way", then fails on a resource name it may not use.
    let workflow = "name: broken\nsteps:\n  - id: first\n    action: testkit/echo\n  - id: second\n    action: testkit/progress\n    resource: \"not a name!\"\n    needs: [first]\n";
    let id = start_run(&daemon, workflow);
    let run = format!("{}/v1/runs/{id}", daemon.url);
    let error = run_ended(&run, WAIT).await["steps"]["second"]["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(!error.is_empty(), "the step failed with an error");

    let browser = Browser::start(1280, 900).await;
    browser
        .open(&format!("{}/console/#/runs/{id}", daemon.url))
        .await;
    browser
        .wait_until(
            "document.querySelector(\"#run-graph g.node[data-id='step:second']\")?.getAttribute('data-status') === 'failed'",
            WAIT,
            "the failed step drawn red",
        )
        .await;
    let shown = browser
        .text("#steps tr[data-step='second'] .error-text")
        .await;
    assert!(
        shown.contains(error.lines().next().unwrap()),
        "the error shown: {shown:?}, the run's: {error:?}"
    );
    browser
        .click("#run-graph g.node[data-id='step:second']")
        .await;
    browser
        .wait_until(
            "document.querySelector('#log-text')?.textContent.includes('half way')",
            WAIT,
            "the failed step's log",
        )
        .await;
    assert_eq!(
        browser
            .eval("document.querySelector('#run-status .badge').textContent")
            .await,
        "failed"
    );
    browser.screenshot("console-failed-step").await;
    browser.assert_no_console_error().await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn stopping_a_service_from_its_button_stops_it() {
    let root = tempfile::tempdir().unwrap();
    let daemon = daemon(root.path(), &[], &[]).await;
    let browser = Browser::start(1280, 800).await;
    browser.open(&format!("{}/console/", daemon.url)).await;
    let stop = "#services button[data-command='stop'][data-service='testkit']";
    browser
        .wait_until(
            &format!(
                "document.querySelector(\"{stop}\") && !document.querySelector(\"{stop}\").disabled"
            ),
            WAIT,
            "the stop button of testkit",
        )
        .await;
    browser.screenshot("console-services").await;
    browser.click(stop).await;
    browser
        .wait_until(
            "document.querySelector(\"#services tr[data-service='testkit'] .badge\")?.textContent === 'stopped'",
            WAIT,
            "testkit shown stopped",
        )
        .await;
    let service = get(&agent(), &format!("{}/v1/services/testkit", daemon.url));
    assert_eq!(service.body["status"], "stopped", "{}", service.body);
    let call = post(
        &agent(),
        &format!("{}/v1/actions/testkit/echo", daemon.url),
        "{}",
    );
    assert_eq!(
        call.status, 503,
        "a stopped service takes no call: {}",
        call.body
    );
    // And started again from its button.
    browser
        .click("#services button[data-command='start'][data-service='testkit']")
        .await;
    browser
        .wait_until(
            "document.querySelector(\"#services tr[data-service='testkit'] .badge\")?.textContent === 'up'",
            WAIT,
            "testkit shown up again",
        )
        .await;
    browser.assert_no_console_error().await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_system_graph_shows_fetcher_to_markdown_through_the_resource() {
    let root = tempfile::tempdir().unwrap();
    let (daemon, _git) = daemon_after_copper_s_workflow(root.path()).await;

    let browser = Browser::start(1400, 900).await;
    browser
        .open(&format!("{}/console/#/graph", daemon.url))
        .await;
    let edge = |from: &str, to: &str| {
        format!(
            "document.querySelector(\"#system-graph g.edge[data-from='{from}'][data-to='{to}']\")"
        )
    };
    for (from, to) in [
        ("service:fetcher", "resource:test-website"),
        ("resource:test-website", "service:markdown"),
        ("workflow:request-body", "service:fetcher"),
        ("service:markdown", "workflow:request-body"),
    ] {
        browser
            .wait_until(&edge(from, to), WAIT, &format!("the edge {from} → {to}"))
            .await;
    }
    let labels = browser
        .eval("[...document.querySelectorAll('#system-graph text')].map(t => t.textContent).join(' | ')")
        .await;
    let labels = labels.as_str().unwrap();
    for name in ["fetcher", "markdown", "test-website"] {
        assert!(labels.contains(name), "{name} drawn: {labels}");
    }
    browser.screenshot("console-system-graph").await;
    browser.assert_no_console_error().await;
    browser.close().await;
}
