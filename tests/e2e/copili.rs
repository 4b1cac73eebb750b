//! copili's pipeline files as its README writes them, run by the real engine:
//! the static containers in their dependencies' order, a failure stopping what
//! depends on it, a sidecar reached by its name, and the service containers on
//! their schedule in the daemon.
//!
//! The README's images cannot be pulled here: stand-ins are made from the test
//! image under the README's names (labelled as ours; a machine with its own image
//! of such a name makes these tests fail, they never overwrite it).

use crate::api::{agent, daemon, get, post};
use crate::docker::assert_clean;
use crate::engine::{events_of, finished};
use crate::support::*;
use serde_json::Value;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The label our stand-ins carry.
const OURS: &str = "copper-wasm-test.copili";

/// The stand-ins for the README's images: name, and what the container runs.
const STAND_INS: [(&str, &str); 4] = [
    (
        "stakater/exit-container:latest",
        r#"["sh", "-c", "echo exiting with ${EXIT_CODE:-0}; exit ${EXIT_CODE:-0}"]"#,
    ),
    (
        "hello-world:latest",
        r#"["sh", "-c", "echo Hello from Docker!"]"#,
    ),
    (
        "chentex/random-logger:latest",
        r#"["sh", "-c", "for i in $(seq 50); do if wget -q -O- http://redis01:6379/ 2>/dev/null; then exit 0; fi; sleep 0.2; done; echo no redis01; exit 1"]"#,
    ),
    (
        "redis:latest",
        r#"["sh", "-c", "mkdir -p /www && echo '{\"from\": \"redis01\"}' > /www/index.html && httpd -f -p 6379 -h /www"]"#,
    ),
];

/// Makes the stand-ins (once per test run) from the test image.
fn stand_ins() {
    static MADE: OnceLock<()> = OnceLock::new();
    MADE.get_or_init(|| {
        let base = test_image();
        for (name, command) in STAND_INS {
            let label = Command::new("docker")
                .args(["image", "inspect", "--format", &format!("{{{{index .Config.Labels \"{OURS}\"}}}}"), name])
                .output()
                .unwrap();
            if label.status.success() {
                let found = String::from_utf8_lossy(&label.stdout).trim().to_string();
                assert_eq!(found, base, "{name} on this machine is not our stand-in: remove it, or run these tests elsewhere");
                continue;
            }
            let made = format!("copper-wasm-copili-{}", std::process::id());
            let created = Command::new("docker").args(["create", "--name", &made, base]).output().unwrap();
            assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
            let committed = Command::new("docker")
                .args(["commit", "--change", &format!("CMD {command}"), "--change", &format!("LABEL {OURS}={base}"), &made, name])
                .output()
                .unwrap();
            let _ = Command::new("docker").args(["rm", "-f", &made]).output();
            assert!(committed.status.success(), "{}", String::from_utf8_lossy(&committed.stderr));
        }
    });
}

/// The quick example of copili's README, as it is.
const QUICK: &str = include_str!("../fixtures/copili/quick.yaml");

fn run_json(dir: &std::path::Path, file: &str) -> (Output, Vec<Value>) {
    let out = output(copper(dir).args(["run", file, "--events", "json", "--no-builtins"]));
    let events = out
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    (out, events)
}

fn position(events: &[Value], kind: &str, step: &str) -> usize {
    events
        .iter()
        .position(|e| e["event"] == kind && e["step"] == step)
        .unwrap_or_else(|| panic!("no {kind} of {step}: {events:#?}"))
}

#[test]
fn the_quick_example_runs_its_static_containers_in_their_order() {
    stand_ins();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pipeline.yaml"), QUICK).unwrap();
    let (out, events) = run_json(dir.path(), "pipeline.yaml");
    out.assert_success();
    for step in ["dataloader_01", "dataloader_02", "dataloader_03"] {
        assert_eq!(finished(&events, step)["status"], "success", "{events:#?}");
        assert_clean(step);
    }
    let ended_01 = position(&events, "step.finished", "dataloader_01");
    assert!(ended_01 < position(&events, "step.started", "dataloader_02"));
    let ended_02 = position(&events, "step.finished", "dataloader_02");
    assert!(ended_02 < position(&events, "step.started", "dataloader_03"));
    assert!(
        events_of(&events, "step.started", "servicecontainer01").is_empty(),
        "a service container waits for its schedule"
    );
    let log = std::fs::read_dir(dir.path().join(".copper/logs/dataloader_02"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert!(
        std::fs::read_to_string(log)
            .unwrap()
            .contains("exiting with 0")
    );
}

#[test]
fn a_failed_container_stops_what_depends_on_it_and_a_mistake_names_its_line() {
    stand_ins();
    let dir = tempfile::tempdir().unwrap();
    let failing = QUICK.replace("EXIT_CODE: 0", "EXIT_CODE: 3");
    std::fs::write(dir.path().join("pipeline.yaml"), failing).unwrap();
    let (out, events) = run_json(dir.path(), "pipeline.yaml");
    out.assert_exit(1);
    let failed = finished(&events, "dataloader_02");
    assert_eq!(failed["status"], "failed");
    assert!(failed["error"].as_str().unwrap().contains('3'), "{failed}");
    assert_eq!(events_of(&events, "step.skipped", "dataloader_03").len(), 1);

    let wrong = QUICK.replace(
        "        - dataloader_01\n      env_vars",
        "        - dataloader_00\n      env_vars",
    );
    std::fs::write(dir.path().join("wrong.yaml"), wrong).unwrap();
    let out = output(copper(dir.path()).args(["run", "wrong.yaml"]));
    out.assert_exit(2);
    assert!(
        out.stderr.contains("wrong.yaml:5: field `ExmaplePipeline[0].dependencies`: `dataloader_02` depends on `dataloader_00`"),
        "{}",
        out.stderr
    );
}

#[test]
fn the_json_example_with_a_sidecar_reaches_it_by_its_name() {
    stand_ins();
    let dir = tempfile::tempdir().unwrap();
    let json = include_str!("../fixtures/copili/readme.json");
    std::fs::write(dir.path().join("pipeline.json"), json).unwrap();
    let (out, events) = run_json(dir.path(), "pipeline.json");
    out.assert_success();
    let second = finished(&events, "my-second-container");
    assert_eq!(second["outputs"]["from"], "redis01", "{second}");
    assert_clean("my-second-container");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_runs_the_service_containers_on_their_schedule() {
    stand_ins();
    let root = tempfile::tempdir().unwrap();
    let flows = root.path().join("flows");
    std::fs::create_dir_all(&flows).unwrap();
    let scheduled = format!("{QUICK}service_schedule: '* * * * * *'\n");
    std::fs::write(flows.join("pipeline.yaml"), scheduled).unwrap();
    // A pipeline in JSON is kept too; other JSON is left alone.
    let json = include_str!("../fixtures/copili/readme.json");
    std::fs::write(flows.join("readme.json"), json).unwrap();
    std::fs::write(flows.join("notes.json"), r#"{"not": "a pipeline"}"#).unwrap();
    let daemon = daemon(root.path(), &["--workflows", flows.to_str().unwrap()], &[]).await;
    let listed = get(&agent(), &format!("{}/v1/workflows", daemon.url)).body;
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|w| w["name"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "ExmaplePipeline",
            "ExmaplePipeline-services",
            "my-pipeline-name"
        ],
        "{listed:#}"
    );
    let started = post(
        &agent(),
        &format!("{}/v1/workflows/ExmaplePipeline/runs", daemon.url),
        "",
    );
    assert_eq!(started.status, 201, "{}", started.body);

    let deadline = Instant::now() + Duration::from_secs(60);
    let runs = loop {
        let all = get(&agent(), &format!("{}/v1/runs", daemon.url)).body;
        let ended: Vec<Value> = all
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["status"] != "running")
            .cloned()
            .collect();
        let by_schedule = ended.iter().any(|r| {
            r["workflow"] == "ExmaplePipeline-services" && r["trigger"]["kind"] == "schedule"
        });
        let pipeline = ended.iter().any(|r| r["workflow"] == "ExmaplePipeline");
        if by_schedule && pipeline {
            break ended;
        }
        assert!(
            Instant::now() < deadline,
            "no scheduled run of the service containers: {all:#}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    for run in &runs {
        assert_eq!(run["status"], "success", "{run:#}");
    }
    let service_run = runs
        .iter()
        .find(|r| r["workflow"] == "ExmaplePipeline-services")
        .unwrap();
    assert_eq!(
        service_run["steps"]["servicecontainer01"]["status"], "success",
        "{service_run:#}"
    );
}
