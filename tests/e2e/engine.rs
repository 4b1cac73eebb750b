//! The workflow engine through real runs: a DAG of steps on the real host and
//! components, outputs between steps, env, secrets, conditions, retries,
//! timeouts, run folders, resume.

use crate::support::*;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

const TESTKIT: &str = copper_wasm::builtin::TESTKIT_PATH;

/// `copper-wasm run WORKFLOW --events json` in `dir` with testkit hosted; the
/// events it printed.
pub(crate) fn run_json(
    dir: &Path,
    workflow: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> (Output, Vec<Value>) {
    let mut command = copper(dir);
    command
        .args(["run", workflow, "--events", "json", "--component", TESTKIT])
        .args(extra);
    for (key, value) in env {
        command.env(key, value);
    }
    let out = output(&mut command);
    let events = out
        .stdout
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    (out, events)
}

pub(crate) fn events_of<'a>(events: &'a [Value], kind: &str, step: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["event"] == kind && e["step"] == step)
        .collect()
}

/// Position in the event list of the first `kind` event of `step`.
fn position(events: &[Value], kind: &str, step: &str) -> usize {
    events
        .iter()
        .position(|e| e["event"] == kind && e["step"] == step)
        .unwrap_or_else(|| panic!("no {kind} for {step} in {events:#?}"))
}

pub(crate) fn finished<'a>(events: &'a [Value], step: &str) -> &'a Value {
    events_of(events, "step.finished", step)
        .pop()
        .unwrap_or_else(|| panic!("{step} never finished: {events:#?}"))
}

/// The state of the only run in `dir`, as its folder holds it.
fn only_run_state(dir: &Path) -> Value {
    let runs = copper_wasm::runner::record::list(&dir.join(".copper"));
    assert_eq!(runs.len(), 1, "{runs:?}");
    serde_json::to_value(&runs[0]).unwrap()
}

#[test]
fn independent_steps_overlap_and_each_waits_for_its_needs() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("w.yaml"),
        "\
name: diamond
steps:
  - id: report
    action: testkit/echo
    needs: [left, right]
    total: ${{ steps.left.outputs.ms }}
    label: left slept ${{ steps.left.outputs.ms }} ms
  - id: left
    action: testkit/sleep
    ms: 400
  - id: right
    action: testkit/sleep
    ms: 400
",
    )
    .unwrap();
    let (out, events) = run_json(dir.path(), "w.yaml", &[], &[]);
    out.assert_success();
    // Both sleeps started before either finished: they overlapped.
    let first_end =
        position(&events, "step.finished", "left").min(position(&events, "step.finished", "right"));
    assert!(position(&events, "step.started", "left") < first_end);
    assert!(position(&events, "step.started", "right") < first_end);
    // The report started after both of its needs finished.
    let report = position(&events, "step.started", "report");
    assert!(report > position(&events, "step.finished", "left"));
    assert!(report > position(&events, "step.finished", "right"));
    let outputs = &finished(&events, "report")["outputs"];
    assert_eq!(
        outputs["total"], 400,
        "a whole reference keeps its type: {outputs}"
    );
    assert_eq!(outputs["label"], "left slept 400 ms");
    let state = only_run_state(dir.path());
    assert_eq!(state["status"], "success");
    assert_eq!(state["steps"]["report"]["outputs"]["total"], 400);

    // The run is listed and shown.
    let out = output(copper(dir.path()).args(["runs"]));
    assert!(
        out.stdout.contains("diamond") && out.stdout.contains("3/3"),
        "{}",
        out.stdout
    );
    let id = state["id"].as_str().unwrap();
    let out = output(copper(dir.path()).args(["runs", "show", id]));
    out.assert_success();
    assert!(
        out.stdout.contains("report") && out.stdout.contains("success"),
        "{}",
        out.stdout
    );
}

#[test]
fn env_comes_from_the_process_a_dotenv_file_and_defaults() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".env"), "NAME=copper\n").unwrap();
    std::fs::write(dir.path().join("other.env"), "NAME=wasm\n").unwrap();
    std::fs::write(
        dir.path().join("w.yaml"),
        "\
env:
  GREETING: hello ${NAME:-world}
steps:
  - id: greet
    action: testkit/echo
    text: ${GREETING}, ${PLACE:-here}
    env:
      PLACE: ${{ env.WHERE }}
",
    )
    .unwrap();
    let (out, events) = run_json(dir.path(), "w.yaml", &[], &[("WHERE", "there")]);
    out.assert_success();
    assert_eq!(
        finished(&events, "greet")["outputs"]["text"],
        "hello copper, there"
    );
    let (out, events) = run_json(
        dir.path(),
        "w.yaml",
        &["--env-file", "other.env"],
        &[("WHERE", "x")],
    );
    out.assert_success();
    assert_eq!(
        finished(&events, "greet")["outputs"]["text"],
        "hello wasm, x"
    );
    // A variable that is not set is an error before anything runs, with its line.
    std::fs::write(
        dir.path().join("bad.yaml"),
        "- action: testkit/echo\n  text: ${NOT_SET_ANYWHERE}\n",
    )
    .unwrap();
    let out = output(copper(dir.path()).args(["run", "bad.yaml", "--component", TESTKIT]));
    out.assert_exit(2);
    assert!(
        out.stderr.contains("bad.yaml:2") && out.stderr.contains("NOT_SET_ANYWHERE"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_secret_never_reaches_the_bus_nor_any_file() {
    let secret = "s3cr3t-value-4f9d";
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("w.yaml"),
        "\
secrets: [API_TOKEN]
steps:
  - id: call
    action: testkit/echo
    token: ${API_TOKEN}
    header: Bearer ${{ secrets.API_TOKEN }}
  - id: announce
    action: testkit/progress
    resource: res-${API_TOKEN}
",
    )
    .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        // A host of its own, and a plain client that records everything on the broker.
        let (_host, port) = serve(
            dir.path(),
            &["--component", TESTKIT],
            &[("API_TOKEN", secret)],
            &["testkit"],
        )
        .await;
        let spy = client(port).await;
        let mut everything = spy.subscribe("#").await.unwrap();
        let broker = format!("mqtt://127.0.0.1:{port}");
        let mut command = copper(dir.path());
        command
            .args([
                "run",
                "w.yaml",
                "--events",
                "json",
                "--no-local-services",
                "--broker",
                &broker,
            ])
            .env("API_TOKEN", secret);
        let out = output_async(command).await;
        out.assert_success();
        assert!(!out.stdout.contains(secret) && !out.stderr.contains(secret));
        let mut seen = 0;
        let mut run_events = 0;
        let mut resources = 0;
        // The broker may still be forwarding the last messages when the command exits:
        // read until it has been quiet for a second.
        while let Ok(Some(message)) =
            tokio::time::timeout(std::time::Duration::from_secs(1), everything.recv()).await
        {
            seen += 1;
            if message.topic.starts_with("copper/runs/") && message.topic.ends_with("/events") {
                run_events += 1;
            }
            assert!(
                !String::from_utf8_lossy(&message.payload).contains(secret)
                    && !message.topic.contains(secret),
                "on {}: {:?}",
                message.topic,
                message.payload
            );
            resources += usize::from(message.topic == "testkit/resources/res-***");
        }
        assert!(seen > 5, "the spy saw the run ({seen} messages)");
        assert_eq!(resources, 1, "the resource was announced, masked");
        assert!(
            run_events >= 4,
            "the run's events are on the bus ({run_events})"
        );
        let events: Vec<Value> = out
            .stdout
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        // The service saw the real value (it echoed it), and it came back masked.
        assert_eq!(finished(&events, "call")["outputs"]["token"], "***");
        assert_eq!(finished(&events, "call")["outputs"]["header"], "Bearer ***");
    });
    for file in files_under(&dir.path().join(".copper")) {
        let text = String::from_utf8_lossy(&std::fs::read(&file).unwrap()).into_owned();
        assert!(
            !text.contains(secret),
            "{} holds the secret",
            file.display()
        );
    }
}

#[test]
fn conditions_failures_and_independent_branches() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("w.yaml"),
        "\
steps:
  - id: broken
    action: testkit/fail
  - id: after-broken
    action: testkit/echo
    needs: broken
  - id: cleanup
    action: testkit/echo
    needs: broken
    if: failure()
  - id: independent
    action: testkit/echo
    n: 1
  - id: prod-only
    action: testkit/echo
    needs: independent
    if: env.ENV == 'prod' && steps.independent.outputs.n == 1
  - id: dev-excluded
    action: testkit/echo
    exclude_in_env: [dev]
  - id: tolerated
    action: testkit/fail
    continue_on_error: true
  - id: after-tolerated
    action: testkit/echo
    needs: tolerated
",
    )
    .unwrap();
    let (out, events) = run_json(dir.path(), "w.yaml", &[], &[("ENV", "dev")]);
    out.assert_exit(1);
    assert_eq!(finished(&events, "broken")["status"], "failed");
    assert_eq!(events_of(&events, "step.skipped", "after-broken").len(), 1);
    assert_eq!(finished(&events, "cleanup")["status"], "success");
    assert_eq!(finished(&events, "independent")["status"], "success");
    let skipped = events_of(&events, "step.skipped", "prod-only");
    assert!(
        skipped[0]["reason"].as_str().unwrap().contains("false"),
        "{skipped:?}"
    );
    assert_eq!(events_of(&events, "step.skipped", "dev-excluded").len(), 1);
    assert_eq!(finished(&events, "tolerated")["status"], "failed");
    assert_eq!(finished(&events, "after-tolerated")["status"], "success");
    let (out, events) = run_json(dir.path(), "w.yaml", &[], &[("ENV", "prod")]);
    out.assert_exit(1);
    assert_eq!(finished(&events, "prod-only")["status"], "success");
    assert_eq!(finished(&events, "dev-excluded")["status"], "success");
}

#[test]
fn a_step_that_fails_twice_succeeds_on_its_third_try() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("w.yaml"),
        "\
- id: flaky
  action: testkit/flaky
  counter: /fetch/flaky/count
  fail_times: 2
  retry: {attempts: 3, backoff: 10ms, max_delay: 50ms}
",
    )
    .unwrap();
    let (out, events) = run_json(dir.path(), "w.yaml", &[], &[]);
    out.assert_success();
    let retried = events_of(&events, "step.retried", "flaky");
    assert_eq!(retried.len(), 2, "{events:#?}");
    assert!(retried[0]["error"].as_str().unwrap().contains("try 1"));
    let done = finished(&events, "flaky");
    assert_eq!(
        (done["attempts"].clone(), done["outputs"]["tries"].clone()),
        (3.into(), 3.into())
    );
}

#[test]
fn step_and_workflow_timeouts_are_enforced() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("step.yaml"),
        "- id: slow\n  action: testkit/sleep\n  ms: 60000\n  timeout: 1s\n",
    )
    .unwrap();
    let (out, events) = run_json(dir.path(), "step.yaml", &[], &[]);
    out.assert_exit(1);
    let error = finished(&events, "slow")["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(error.contains("timeout of 1s"), "{error}");

    std::fs::write(
        dir.path().join("whole.yaml"),
        "timeout: 1s\nsteps:\n  - id: slow\n    action: testkit/sleep\n    ms: 60000\n  - id: next\n    action: testkit/echo\n",
    )
    .unwrap();
    let (out, events) = run_json(dir.path(), "whole.yaml", &[], &[]);
    out.assert_exit(1);
    let error = finished(&events, "slow")["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(error.contains("timeout"), "{error}");
    assert_eq!(events_of(&events, "step.skipped", "next").len(), 1);
}

#[test]
fn an_input_that_breaks_its_schema_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("w.yaml"),
        "- action: testkit/echo\n- action: markdown/build\n  resource: site\n",
    )
    .unwrap();
    let out = output(copper(dir.path()).args(["run", "w.yaml", "--component", TESTKIT]));
    out.assert_exit(2);
    assert!(out.stderr.contains("w.yaml:2"), "{}", out.stderr);
    assert!(
        out.stderr.contains("path"),
        "the missing field: {}",
        out.stderr
    );
    assert!(!dir.path().join(".copper/runs").exists(), "nothing ran");
}

#[test]
fn cycles_and_unknown_references_are_reported_with_their_lines() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("cycle.yaml"),
        "- id: a\n  action: testkit/echo\n  needs: b\n- id: b\n  action: testkit/echo\n  needs: a\n",
    )
    .unwrap();
    let out = output(copper(dir.path()).args(["run", "cycle.yaml", "--component", TESTKIT]));
    out.assert_exit(2);
    assert!(
        out.stderr.contains("cycle.yaml:3") && out.stderr.contains("cycle"),
        "{}",
        out.stderr
    );
    std::fs::write(
        dir.path().join("ref.yaml"),
        "- id: a\n  action: testkit/echo\n- id: b\n  action: testkit/echo\n  x: ${{ steps.c.outputs.y }}\n",
    )
    .unwrap();
    let out = output(copper(dir.path()).args(["run", "ref.yaml", "--component", TESTKIT]));
    out.assert_exit(2);
    assert!(
        out.stderr.contains("ref.yaml:5") && out.stderr.contains("`c`"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_failed_run_resumes_where_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("w.yaml"),
        "\
- id: first
  action: testkit/flaky
  counter: /fetch/resume/first
- id: second
  action: testkit/flaky
  counter: /fetch/resume/second
  fail_times: 1
",
    )
    .unwrap();
    let (out, _) = run_json(dir.path(), "w.yaml", &[], &[]);
    out.assert_exit(1);
    let id = only_run_state(dir.path())["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut command = copper(dir.path());
    command.args([
        "run",
        "--resume",
        &id,
        "--events",
        "json",
        "--component",
        TESTKIT,
    ]);
    let out = output(&mut command);
    out.assert_success();
    let events: Vec<Value> = out
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert_eq!(
        finished(&events, "first")["status"],
        "cached",
        "kept, not run again"
    );
    assert_eq!(finished(&events, "second")["status"], "success");
    let counter = std::fs::read_to_string(dir.path().join(".copper/fetch/resume/first")).unwrap();
    assert_eq!(counter, "1", "the first step ran once in all");
    assert_eq!(only_run_state(dir.path())["status"], "success");
}

#[test]
fn a_host_killed_mid_run_loses_nothing_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("w.yaml"),
        "\
- id: quick
  action: testkit/flaky
  counter: /fetch/killed/quick
- id: slow
  action: testkit/sleep
  ms: ${SLEEP_MS:-60000}
",
    )
    .unwrap();
    let mut run = Process::spawn(
        copper(dir.path()).args(["run", "w.yaml", "--component", TESTKIT]),
        "copper-wasm run",
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let state = loop {
        run.assert_running();
        assert!(
            std::time::Instant::now() < deadline,
            "the slow step never started"
        );
        let runs = copper_wasm::runner::record::list(&dir.path().join(".copper"));
        if let Some(state) = runs.first()
            && state
                .steps
                .get("slow")
                .is_some_and(|s| s.status == "running")
        {
            break serde_json::to_value(state).unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let status = Command::new("kill")
        .args(["-KILL", &run.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    drop(run);
    assert_eq!(state["steps"]["quick"]["status"], "success");
    let id = state["id"].as_str().unwrap();
    let history = std::fs::read_to_string(
        dir.path()
            .join(".copper/runs")
            .join(id)
            .join("events.jsonl"),
    )
    .unwrap();
    assert!(
        history
            .lines()
            .any(|l| l.contains("step.started") && l.contains("slow")),
        "{history}"
    );
    let out = output(
        copper(dir.path())
            .args(["run", "--resume", id, "--component", TESTKIT])
            .env("SLEEP_MS", "10"),
    );
    out.assert_success();
    assert!(out.stdout.contains("cached"), "{}", out.stdout);
    let counter = std::fs::read_to_string(dir.path().join(".copper/fetch/killed/quick")).unwrap();
    assert_eq!(counter, "1");
}

#[test]
fn unchanged_steps_are_reused_and_no_cache_runs_them_again() {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    std::fs::create_dir_all(&site).unwrap();
    std::fs::write(site.join("README.md"), "# One\n").unwrap();
    commit_tree(&site);
    std::fs::write(
        dir.path().join("w.yaml"),
        "\
- id: fetch
  action: fetcher/fetch
  type: git
  url: site
  resource: site
- id: build
  action: markdown/build
  resource: site
  path: ${{ steps.fetch.outputs.path }}
",
    )
    .unwrap();
    let status = |extra: &[&str]| {
        let (out, events) = run_json(dir.path(), "w.yaml", extra, &[]);
        out.assert_success();
        (
            finished(&events, "fetch")["status"]
                .as_str()
                .unwrap()
                .to_string(),
            finished(&events, "build")["status"]
                .as_str()
                .unwrap()
                .to_string(),
        )
    };
    assert_eq!(status(&[]), ("success".into(), "success".into()));
    // Nothing changed: the fetch runs (its source is remote to us), the build is reused.
    assert_eq!(status(&[]), ("success".into(), "cached".into()));
    assert_eq!(
        status(&["--no-cache"]),
        ("success".into(), "success".into())
    );
    // A changed source changes the build's input files: it runs.
    std::fs::write(site.join("README.md"), "# Two\n").unwrap();
    commit_tree(&site);
    assert_eq!(status(&[]), ("success".into(), "success".into()));
    let page = std::fs::read_to_string(dir.path().join(".copper/web/site/README.html")).unwrap();
    assert!(page.contains("Two"), "{page}");
    // Its results gone: it runs again.
    std::fs::remove_dir_all(dir.path().join(".copper/web/site")).unwrap();
    assert_eq!(status(&[]), ("success".into(), "success".into()));
    assert!(dir.path().join(".copper/web/site/README.html").exists());
    // The summary says what was reused.
    let out = output(copper(dir.path()).args(["run", "w.yaml"]));
    assert!(
        out.stdout.contains("cached") && out.stdout.contains("1 reused"),
        "{}",
        out.stdout
    );
}

mod random_dags {
    //! Random DAGs through a real host: every step starts after all of its needs ended.
    use super::TESTKIT;
    use copper_wasm::runner::{self, RunEvent, RunOptions};
    use copper_wasm::{Host, HostConfig, Workflow};
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use std::path::Path;
    use tokio_util::sync::CancellationToken;

    /// `needs[i]`: the steps step `i` needs, all before it (so no cycle); `order`: the file order.
    fn dags() -> impl Strategy<Value = (Vec<Vec<usize>>, Vec<usize>)> {
        (2usize..12).prop_flat_map(|n| {
            let needs = (0..n)
                .map(|i| proptest::sample::subsequence((0..i).collect::<Vec<_>>(), 0..=i.min(3)))
                .collect::<Vec<_>>();
            (needs, Just((0..n).collect::<Vec<_>>()).prop_shuffle())
        })
    }

    fn yaml(needs: &[Vec<usize>], order: &[usize]) -> String {
        let mut text = String::from("steps:\n");
        for &i in order {
            let list: Vec<String> = needs[i].iter().map(|j| format!("s{j}")).collect();
            text.push_str(&format!(
                "  - id: s{i}\n    action: testkit/echo\n    needs: [{}]\n",
                list.join(", ")
            ));
        }
        text
    }

    #[test]
    fn every_step_runs_after_all_of_its_needs() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let host = runtime.block_on(async {
            let config = HostConfig {
                cache: dir.path().join("cache"),
                workspace: dir.path().to_path_buf(),
                builtins: false,
                components: vec![TESTKIT.into()],
                ..HostConfig::default()
            };
            Host::start(config, CancellationToken::new()).await.unwrap()
        });
        let bus = runtime.block_on(host.connect("random-dags", None)).unwrap();
        let config = ProptestConfig {
            cases: 64,
            failure_persistence: None,
            ..ProptestConfig::default()
        };
        proptest!(config, |((needs, order) in dags())| {
            let workflow = Workflow::parse(&yaml(&needs, &order), Path::new("random.yaml")).unwrap();
            let mut events = Vec::new();
            let options = RunOptions { max_parallel: 4, ..RunOptions::default() };
            let report = runtime
                .block_on(runner::run(&workflow, &bus, options, |e| events.push(e.event.clone())))
                .unwrap();
            let failures: Vec<_> = report
                .steps
                .iter()
                .filter_map(|s| s.error.as_ref().map(|e| (s.id.clone(), e.clone())))
                .collect();
            prop_assert!(report.success(), "failed steps: {:?}", failures);
            let mut started = BTreeMap::new();
            let mut ended = BTreeMap::new();
            for (at, event) in events.iter().enumerate() {
                match event {
                    RunEvent::StepStarted { step, .. } => { started.insert(step.clone(), at); }
                    RunEvent::StepFinished { step, .. } => { ended.insert(step.clone(), at); }
                    _ => {}
                }
            }
            prop_assert_eq!(started.len(), needs.len(), "events: {:?}", events);
            for (i, step_needs) in needs.iter().enumerate() {
                for j in step_needs {
                    prop_assert!(
                        started[&format!("s{i}")] > ended[&format!("s{j}")],
                        "s{} started before its need s{} ended", i, j
                    );
                }
            }
        });
        runtime.block_on(host.stop());
    }
}

#[test]
fn the_pipeline_example_runs_offline() {
    let root = repo_root();
    for site in ["e2e-pipeline-docs", "e2e-pipeline-readme"] {
        let _ = std::fs::remove_dir_all(root.join(".copper/web").join(site));
    }
    let out = output(
        copper(&root)
            .args(["run", "workflows/pipeline.yaml", "--no-cache"])
            .env("SITE", "e2e-pipeline"),
    );
    out.assert_success();
    assert!(
        out.stdout.contains("4 of 4 steps succeeded"),
        "{}",
        out.stdout
    );
    assert!(
        root.join(".copper/web/e2e-pipeline-docs/docs/workflows.html")
            .exists()
    );
    assert!(
        root.join(".copper/web/e2e-pipeline-readme/README.html")
            .exists()
    );
}

/// Regression: with many steps in flight, the run loop once awaited the in-process
/// link's async lock while the lock had been handed to a step it polls itself: the
/// run hung after a few dozen steps.
#[test]
fn a_wide_graph_of_many_steps_runs_to_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("steps:\n");
    for i in 0..150 {
        text.push_str(&format!(
            "  - id: s{i}\n    action: testkit/echo\n    needs: []\n    n: {i}\n"
        ));
    }
    std::fs::write(dir.path().join("wide.yaml"), text).unwrap();
    let (out, events) = run_json(dir.path(), "wide.yaml", &[], &[]);
    out.assert_success();
    let done = events
        .iter()
        .filter(|e| e["event"] == "step.finished" && e["status"] == "success")
        .count();
    assert_eq!(done, 150);
}
