//! `for_each`: a step run once per item of an earlier step's list, the results
//! gathered in order, one failed item failing the step, each item reused alone.

use crate::engine::{events_of, finished, run_json};
use serde_json::{Value, json};

#[test]
fn a_step_runs_once_per_item_of_an_earlier_output_and_gathers_the_results() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("w.yaml"),
        "\
- id: list
  action: testkit/echo
  names: [ada, grace, linus, barbara, ken]
- id: each
  action: testkit/echo
  for_each: ${{ steps.list.outputs.names }}
  max_parallel: 2
  name: ${{ item }}
  position: ${{ item_index }}
  label: person ${{ item_index }} is ${{ item }}
- id: after
  action: testkit/echo
  everyone: ${{ steps.each.outputs.name }}
",
    )
    .unwrap();
    let (out, events) = run_json(dir.path(), "w.yaml", &[], &[]);
    out.assert_success();
    let names = json!(["ada", "grace", "linus", "barbara", "ken"]);
    let each = finished(&events, "each");
    assert_eq!(each["status"], "success", "{each:#}");
    assert_eq!(each["outputs"]["name"], names);
    assert_eq!(each["outputs"]["position"], json!([0, 1, 2, 3, 4]));
    assert_eq!(each["outputs"]["label"][3], "person 3 is barbara");
    let ids: Vec<&Value> = each["outputs"]["echo_id"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    let mut distinct = ids.clone();
    distinct.dedup();
    assert_eq!(distinct.len(), 5, "each item is its own request: {ids:?}");
    assert_eq!(events_of(&events, "step.started", "each").len(), 1);
    let said: Vec<&str> = events_of(&events, "step.progress", "each")
        .iter()
        .filter_map(|e| e["message"].as_str())
        .collect();
    assert!(
        said.contains(&"item 4 of 5 (\"barbara\"): done"),
        "{said:#?}"
    );
    assert_eq!(finished(&events, "after")["outputs"]["everyone"], names);
}

#[test]
fn one_failed_item_fails_the_step_and_names_the_item() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("w.yaml"),
        "\
- id: each
  action: testkit/flaky
  for_each:
    - {fail_times: 0}
    - {fail_times: 9}
    - {fail_times: 1}
  counter: /fetch/flaky/${{ item_index }}
  fail_times: ${{ item.fail_times }}
  retry: {attempts: 2, backoff: 10ms}
- id: after
  action: testkit/echo
",
    )
    .unwrap();
    let (out, events) = run_json(dir.path(), "w.yaml", &[], &[]);
    out.assert_exit(1);
    let each = finished(&events, "each");
    assert_eq!(each["status"], "failed");
    let error = each["error"].as_str().unwrap();
    assert!(
        error.starts_with(
            "1 of 3 items failed; the first, item 2: failed: failing on purpose (try 2)"
        ),
        "{error}"
    );
    let retried = events_of(&events, "step.retried", "each");
    assert_eq!(
        retried.len(),
        2,
        "items 2 and 3 were tried again: {retried:#?}"
    );
    assert!(retried.iter().any(|r| {
        r["error"]
            .as_str()
            .unwrap()
            .starts_with("item 3 of 3 ({\"fail_times\":1}): failed: failing on purpose (try 1)")
    }));
    let after = events_of(&events, "step.skipped", "after");
    assert_eq!(after.len(), 1, "{events:#?}");
}

#[test]
fn a_list_that_is_not_one_fails_the_step_with_what_it_got() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("w.yaml"),
        "\
- id: list
  action: testkit/echo
  names: not a list
- id: each
  action: testkit/echo
  for_each: ${{ steps.list.outputs.names }}
  name: ${{ item }}
",
    )
    .unwrap();
    let (out, events) = run_json(dir.path(), "w.yaml", &[], &[]);
    out.assert_exit(1);
    let each = finished(&events, "each");
    assert_eq!(
        each["error"],
        "`for_each` must give a list, got \"not a list\""
    );
}

#[test]
fn the_fan_out_example_fetches_and_builds_each_part_offline() {
    let root = crate::support::repo_root();
    for site in ["fan-out-docs", "fan-out-readme"] {
        let _ = std::fs::remove_dir_all(root.join(".copper/web").join(site));
    }
    let out = crate::support::output(crate::support::copper(&root).args([
        "run",
        "workflows/fan-out.yaml",
        "--no-cache",
    ]));
    out.assert_success();
    assert!(
        out.stdout.contains("2 of 2 steps succeeded"),
        "{}",
        out.stdout
    );
    assert!(
        root.join(".copper/web/fan-out-docs/docs/workflows.html")
            .exists()
    );
    assert!(root.join(".copper/web/fan-out-readme/README.html").exists());
}
