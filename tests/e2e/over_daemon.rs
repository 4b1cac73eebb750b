//! The command over a running daemon (`--daemon URL`): `call`, `run`, `runs` and
//! `services` print what they print without one, and exit with the same codes.

use crate::api::daemon;
use crate::support::*;
use std::path::Path;

const TESTKIT: &str = copper_wasm::builtin::TESTKIT_PATH;

/// The rows of a run's summary table without their durations (the last column).
fn summary_rows(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter(|line| line.starts_with('#') || line.starts_with(|c: char| c.is_ascii_digit()))
        .map(|line| {
            let cells: Vec<&str> = line.split_whitespace().collect();
            cells[..cells.len().min(5)].join(" ")
        })
        .collect()
}

/// `copper-wasm <args>` in `dir`, given `--daemon url` or hosting the testkit itself
/// (with a cache of its own: the daemon's runs are the daemon's).
fn both(dir: &Path, url: &str, args: &[&str]) -> (Output, Output) {
    let over = output(copper(dir).args(args).args(["--daemon", url]));
    let here = output(
        copper(dir)
            .args(args)
            .args(["--component", TESTKIT, "--cache", "here"]),
    );
    (over, here)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_command_over_a_daemon_prints_and_exits_as_without_one() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path();
    let daemon = daemon(dir, &[], &[]).await;
    let url = daemon.url.as_str();

    // A run that succeeds: the same summary.
    std::fs::write(
        dir.join("good.yaml"),
        "name: good\nsteps:\n  - id: first\n    action: testkit/echo\n    greeting: hi\n  - id: second\n    action: testkit/echo\n    needs: [first]\n    said: ${{ steps.first.outputs.greeting }}\n",
    )
    .unwrap();
    let (over, here) = both(dir, url, &["run", "good.yaml"]);
    over.assert_success();
    here.assert_success();
    let rows = summary_rows(&over.stdout);
    assert_eq!(rows.len(), 3, "{}", over.stdout);
    assert_eq!(rows, summary_rows(&here.stdout), "{}", over.stdout);

    // A run with a failed step: exit 1 both ways, its row says so.
    std::fs::write(
        dir.join("bad.yaml"),
        "- id: broken\n  action: testkit/fail\n- id: after\n  action: testkit/echo\n",
    )
    .unwrap();
    let (over, here) = both(dir, url, &["run", "bad.yaml"]);
    over.assert_exit(1);
    here.assert_exit(1);
    assert_eq!(summary_rows(&over.stdout), summary_rows(&here.stdout));
    assert!(over.stdout.contains("failed"), "{}", over.stdout);

    // An invalid workflow is refused before anything is sent, naming its file and line.
    std::fs::write(
        dir.join("invalid.yaml"),
        "- id: x\n  actoin: testkit/echo\n",
    )
    .unwrap();
    let (over, here) = both(dir, url, &["run", "invalid.yaml"]);
    over.assert_exit(2);
    here.assert_exit(2);
    assert!(over.stderr.contains("invalid.yaml:"), "{}", over.stderr);
    assert_eq!(over.stderr, here.stderr);

    // call: the finish printed, and the same codes for a failure and an unknown action.
    let (over, here) = both(
        dir,
        url,
        &["call", "testkit/echo", "--input", r#"{"n": 7}"#],
    );
    over.assert_success();
    here.assert_success();
    let over_entry: serde_json::Value = serde_json::from_str(&over.stdout).unwrap();
    let here_entry: serde_json::Value = serde_json::from_str(&here.stdout).unwrap();
    assert_eq!(over_entry[0]["n"], 7);
    assert_eq!(over_entry[0]["n"], here_entry[0]["n"]);
    assert_eq!(over_entry[0]["status"], here_entry[0]["status"]);
    let (over, here) = both(dir, url, &["call", "testkit/fail"]);
    over.assert_exit(1);
    here.assert_exit(1);
    let (over, here) = both(dir, url, &["call", "nobody/here", "--timeout", "5s"]);
    over.assert_exit(2);
    here.assert_exit(2);
    assert!(
        over.stderr.contains("testkit/echo"),
        "the known actions: {}",
        over.stderr
    );

    // runs: the daemon's own runs, listed and shown.
    let listed = output(copper(dir).args(["runs", "--daemon", url]));
    listed.assert_success();
    let lines: Vec<&str> = listed.stdout.lines().collect();
    assert_eq!(
        lines.len(),
        2,
        "the two runs of the daemon: {}",
        listed.stdout
    );
    assert!(
        lines.iter().any(|l| l.contains("good")),
        "{}",
        listed.stdout
    );
    let id = lines
        .iter()
        .find(|l| l.contains("good"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap();
    let shown = output(copper(dir).args(["runs", "show", id, "--daemon", url]));
    shown.assert_success();
    assert!(shown.stdout.contains("first"), "{}", shown.stdout);
    assert!(shown.stdout.contains("success"), "{}", shown.stdout);
    let missing = output(copper(dir).args(["runs", "show", "no-such-run", "--daemon", url]));
    missing.assert_exit(2);

    // services: the daemon's, with their actions.
    let services = output(copper(dir).args(["services", "--daemon", url]));
    services.assert_success();
    assert!(
        services.stdout.contains("testkit/echo"),
        "{}",
        services.stdout
    );
    assert!(
        services.stdout.contains("(component, up)"),
        "{}",
        services.stdout
    );

    // A daemon that is not there: exit 3, saying where it looked.
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let gone = output(copper(dir).args(["services", "--daemon", &nowhere]));
    gone.assert_exit(3);
    assert!(gone.stderr.contains(&nowhere), "{}", gone.stderr);
}
