//! `copper-wasm graph` and the daemon's `/v1/trace` and `/v1/graph` after copper's
//! own workflow ran: on the daemon's embedded broker (its trace), on mosquitto
//! (its log, as copper meant it), and a workflow's steps.

use crate::api::{agent, daemon_after_copper_s_workflow, get};
use crate::support::*;
use std::time::{Duration, Instant};

/// `graph` with `args`, its DOT (or other) output.
fn graph(dir: &std::path::Path, args: &[&str]) -> String {
    let out = output(copper(dir).arg("graph").args(args));
    out.assert_success();
    out.stdout
}

/// The edges of DOT text as `from -> to`.
fn dot_edges(dot: &str) -> Vec<String> {
    dot.lines()
        .filter(|l| l.contains(" -> "))
        .map(|l| {
            let (edge, _) = l.trim().split_once(" [").unwrap();
            edge.replace('"', "")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_s_graph_shows_copper_s_workflow_in_every_format() {
    let root = tempfile::tempdir().unwrap();
    let (daemon, _git) = daemon_after_copper_s_workflow(root.path()).await;
    let dir = root.path().join("daemon");

    let dot = graph(&dir, &["--daemon", &daemon.url]);
    assert!(dot.starts_with("digraph copper {"), "{dot}");
    let edges = dot_edges(&dot);
    for expected in [
        "workflow:request-body -> service:fetcher",
        "service:fetcher -> workflow:request-body",
        "service:fetcher -> resource:test-website",
        "resource:test-website -> service:markdown",
        "workflow:request-body -> service:markdown",
        "service:markdown -> workflow:request-body",
    ] {
        assert!(
            edges.contains(&expected.to_string()),
            "{expected} missing:\n{dot}"
        );
    }
    // The service nodes say which host serves them.
    let host_id = std::fs::read_to_string(dir.join(".copper/host-id")).unwrap();
    assert!(
        dot.contains(&format!("[label=\"fetcher\\non {}\"", host_id.trim())),
        "{dot}"
    );

    let mermaid = graph(&dir, &["--daemon", &daemon.url, "--format", "mermaid"]);
    assert!(mermaid.starts_with("flowchart LR\n"), "{mermaid}");
    assert!(mermaid.contains("[(\"test-website\")]"), "{mermaid}");
    assert!(mermaid.contains("|\"produces\"|"), "{mermaid}");

    let svg = graph(&dir, &["--daemon", &daemon.url, "--format", "svg"]);
    assert!(
        svg.contains("<svg") && svg.trim_end().ends_with("</svg>"),
        "{svg}"
    );
    assert!(svg.contains("data-id=\"resource:test-website\""), "{svg}");
    assert!(
        svg.contains("data-from=\"service:fetcher\" data-to=\"resource:test-website\""),
        "{svg}"
    );

    let json = get(&agent(), &format!("{}/v1/graph", daemon.url)).body;
    let kinds: Vec<&str> = json["edges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["from"] == "service:fetcher")
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"produces") && kinds.contains(&"finish"),
        "{json}"
    );
    let request = json["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "request" && e["to"] == "service:fetcher")
        .unwrap();
    assert_eq!(request["label"], "fetch");
    assert_eq!(request["count"], 1);
    assert!(request["last_ms"].as_u64().unwrap() > 0);

    // The trace saved, and read back by `graph --from`: the same edges.
    let trace = agent()
        .get(format!("{}/v1/trace", daemon.url))
        .call()
        .unwrap()
        .into_body()
        .read_to_string()
        .unwrap();
    let saved = dir.join("trace.json");
    std::fs::write(&saved, &trace).unwrap();
    let again = graph(&dir, &["--from", saved.to_str().unwrap()]);
    for expected in [
        "service:fetcher -> resource:test-website",
        "resource:test-website -> service:markdown",
    ] {
        assert!(dot_edges(&again).contains(&expected.to_string()), "{again}");
    }

    let unknown = get(&agent(), &format!("{}/v1/graph?format=png", daemon.url));
    assert_eq!(unknown.status, 400, "{}", unknown.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mosquitto_log_is_a_trace_of_who_asks_whom() {
    let root = tempfile::tempdir().unwrap();
    let (git, _work) = serve_astro_big_doc(root.path());
    let (mosquitto, log) = Mosquitto::start_logging(root.path());
    let dir = root.path().join("run");
    std::fs::create_dir_all(&dir).unwrap();
    let out = output(
        copper(&dir)
            .arg("run")
            .arg(repo_root().join("workflows/website.yaml"))
            .args(["--broker", &mosquitto.url()])
            .env("COPPER_GITHUB_URL", git.github_url()),
    );
    out.assert_success();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("'markdown/build/finish'")
    {
        assert!(Instant::now() < deadline, "mosquitto logged no finish");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let dot = graph(&dir, &["--from", log.to_str().unwrap()]);
    let edges = dot_edges(&dot);
    for expected in [
        "workflow:website -> service:fetcher",
        "service:fetcher -> workflow:website",
        "service:fetcher -> resource:test-website",
        "workflow:website -> service:markdown",
        "service:markdown -> workflow:website",
    ] {
        assert!(
            edges.contains(&expected.to_string()),
            "{expected} missing:\n{dot}"
        );
    }
}

#[test]
fn a_workflow_s_steps_are_drawn_with_their_needs() {
    let root = tempfile::tempdir().unwrap();
    let dot = graph(
        root.path(),
        &[
            "--workflow",
            repo_root().join("workflows/website.yaml").to_str().unwrap(),
        ],
    );
    assert_eq!(dot_edges(&dot), ["step:step1 -> step:step2"], "{dot}");
    assert!(dot.contains("[label=\"step1\\nfetcher/fetch\""), "{dot}");
    let mermaid = graph(
        root.path(),
        &[
            "--workflow",
            repo_root().join("workflows/website.yaml").to_str().unwrap(),
            "--format",
            "mermaid",
        ],
    );
    assert!(mermaid.contains("n0 --> n1"), "{mermaid}");
    let missing = output(copper(root.path()).args(["graph", "--from", "nowhere.log"]));
    missing.assert_exit(2);
    assert!(missing.stderr.contains("nowhere.log"), "{}", missing.stderr);
}
