//! A clustered broker a user would run: a host and a runner on a three-node
//! nats-server cluster, a node killed mid-run.

use crate::support::*;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_on_a_nats_cluster_survives_a_broker_node_killed() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = NatsCluster::start(dir.path());
    // nats-server takes `$share/…` as a plain topic: the host finds out and
    // subscribes to its topics themselves (one host per service on such a broker).
    let log = dir.path().join("host.log");
    let mut command = copper(dir.path());
    command.args(["serve", "--broker", &cluster.url(0), "--no-builtins"]);
    command.args([
        "--component",
        copper_wasm::builtin::TESTKIT_PATH,
        "--host-id",
        "n0host",
    ]);
    command.arg("--cache").arg(dir.path().join("host"));
    command.env("RUST_LOG", "info,rumqttd=off");
    let mut host = Process::spawn_logged(&mut command, "copper-wasm serve", &log);
    wait_up(cluster.nodes[1].mqtt, &["testkit"]).await;
    host.assert_running();
    let printed = std::fs::read_to_string(&log).unwrap();
    assert!(
        printed.contains("does not honour shared subscriptions"),
        "{printed}"
    );

    let mut command = sleep_run(dir.path(), &cluster.url(1), 30, 100);
    command.env("RUST_LOG", "info,rumqttd=off");
    let runner_log = dir.path().join("runner.log");
    let mut run = Process::spawn_logged(&mut command, "copper-wasm run", &runner_log);
    let said = |path: &std::path::Path| std::fs::read_to_string(path).unwrap_or_default();
    let until = std::time::Instant::now() + Duration::from_secs(60);
    while !said(&runner_log).contains("[5/30]") {
        run.assert_running();
        assert!(std::time::Instant::now() < until, "{}", said(&runner_log));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The node the host is connected to: the host moves to another one.
    cluster.kill(0);
    let status = run.wait_for(Duration::from_secs(180)).await;
    assert!(
        status.is_some_and(|s| s.success()),
        "the run: {status:?}\n{}\nthe host:\n{}",
        said(&runner_log),
        said(&log)
    );
    assert!(
        said(&runner_log).contains("30 of 30 steps succeeded"),
        "{}",
        said(&runner_log)
    );
    host.assert_running();
    assert!(
        said(&log).contains("reconnected to the broker"),
        "{}",
        said(&log)
    );
}
