//! Several hosts on one broker, each in a network namespace of its own (its own
//! address): requests split among them, and none lost when one dies, stops, is cut
//! off, or when the broker restarts.

use crate::support::*;
use copper_wasm::bus::{BrokerAddress, Bus};
use copper_wasm::presence::{HostState, Hosts, TAKER_FIELD};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Hosts of `testkit`, each in its namespace, on one mosquitto on the bridge.
struct Pool {
    network: Network,
    broker: Option<Mosquitto>,
    port: u16,
    dir: PathBuf,
    hosts: Vec<Option<Process>>,
    /// How many times each host was started (its log files are numbered so).
    starts: Vec<usize>,
}

impl Pool {
    async fn start(dir: &Path, hosts: usize) -> Pool {
        let network = Network::new(hosts);
        let port = free_port();
        let broker = Mosquitto::start_at(dir, &network.broker_ip(), port);
        let mut pool = Pool {
            network,
            broker: Some(broker),
            port,
            dir: dir.to_path_buf(),
            hosts: (0..hosts).map(|_| None).collect(),
            starts: vec![0; hosts],
        };
        for index in 0..hosts {
            pool.spawn(index);
        }
        let ids: Vec<String> = (0..hosts).map(host_id).collect();
        pool.wait_up(&ids).await;
        pool
    }

    fn url(&self) -> String {
        format!("mqtt://{}:{}", self.network.broker_ip(), self.port)
    }

    fn address(&self) -> BrokerAddress {
        BrokerAddress::new(self.network.broker_ip(), self.port)
    }

    /// Starts host `index` (again), without waiting for it.
    fn spawn(&mut self, index: usize) {
        let cache = self.dir.join(host_id(index));
        std::fs::create_dir_all(&cache).unwrap();
        let mut command = copper_in(&self.network, index, &self.dir);
        command.args(["serve", "--broker", &self.url(), "--no-builtins"]);
        command.args(["--component", copper_wasm::builtin::TESTKIT_PATH]);
        command.args(["--host-id", &host_id(index)]);
        command.arg("--cache").arg(&cache);
        command.env("RUST_LOG", "info,rumqttd=off");
        self.starts[index] += 1;
        let log = self
            .dir
            .join(format!("{}.{}.log", host_id(index), self.starts[index]));
        self.hosts[index] = Some(Process::spawn_logged(
            &mut command,
            "copper-wasm serve",
            &log,
        ));
    }

    /// Waits until every host of `ids` says it is up.
    async fn wait_up(&mut self, ids: &[String]) {
        let what = format!("hosts {ids:?} up");
        self.wait_hosts(&what, Duration::from_secs(120), |hosts| {
            let live = hosts.live();
            ids.iter()
                .all(|id| live.iter().any(|h| &h.id == id && h.state == HostState::Up))
        })
        .await;
    }

    /// Waits until host `id`'s sessions have been adopted: its presence, dead,
    /// is cleared by the host that adopted them once that has ended.
    async fn wait_adopted(&mut self, id: &str) {
        // First dead (its last will), then gone.
        let mut seen_dead = false;
        let what = format!("host {id} adopted");
        self.wait_hosts(&what, Duration::from_secs(60), |hosts| {
            let dead = hosts.dead().iter().any(|h| h.id == id);
            let live = hosts.live().iter().any(|h| h.id == id);
            seen_dead |= dead;
            seen_dead && !dead && !live
        })
        .await;
    }

    /// Watches the hosts' presences until `done` says so (at most `bound`), every
    /// host of the pool still running meanwhile.
    async fn wait_hosts(
        &mut self,
        what: &str,
        bound: Duration,
        mut done: impl FnMut(&Hosts) -> bool,
    ) {
        let bus = self.client().await;
        let hosts = Hosts::watch(&bus).await.unwrap();
        let deadline = Instant::now() + bound;
        while !done(&hosts) {
            for host in self.hosts.iter_mut().flatten() {
                host.assert_running();
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not so; logs in {}",
                self.dir.display()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bus.close().await;
    }

    async fn client(&self) -> Bus {
        let id = format!("e2e-{}", uuid::Uuid::new_v4().simple());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match Bus::connect(&self.address(), &id, None, CancellationToken::new()).await {
                Ok(bus) => return bus,
                Err(error) => {
                    assert!(Instant::now() < deadline, "cannot connect: {error}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    fn host(&mut self, index: usize) -> &mut Process {
        self.hosts[index].as_mut().expect("the host runs")
    }
}

fn host_id(index: usize) -> String {
    format!("h{index}")
}

/// A plain MQTT client: requests `testkit/sleep` at QoS 1 with correlation ids
/// `r<k>`, counting the finishes of each and who took each; it never sends again.
struct Caller {
    bus: Bus,
    finishes: Arc<Mutex<BTreeMap<String, usize>>>,
    takers: Arc<Mutex<BTreeMap<String, Vec<String>>>>,
}

impl Caller {
    async fn new(pool: &Pool) -> Caller {
        let bus = pool.client().await;
        let finishes = Arc::new(Mutex::new(BTreeMap::new()));
        let takers = Arc::new(Mutex::new(BTreeMap::new()));
        let mut finished = bus.subscribe("testkit/sleep/finish").await.unwrap();
        let mut started = bus.subscribe("testkit/sleep/start").await.unwrap();
        let counts = finishes.clone();
        tokio::spawn(async move {
            while let Some(message) = finished.recv().await {
                let finish = copper_wasm::protocol::parse_finish(&message.payload);
                let id = finish.correlation_id.expect("a correlation id");
                *counts.lock().unwrap().entry(id).or_insert(0) += 1;
            }
        });
        let seen = takers.clone();
        tokio::spawn(async move {
            while let Some(message) = started.recv().await {
                let start: Value = serde_json::from_slice(&message.payload).unwrap();
                let id = start["correlation_id"].as_str().unwrap().to_string();
                let host = start[TAKER_FIELD].as_str().unwrap().to_string();
                seen.lock()
                    .unwrap()
                    .entry(id)
                    .or_insert_with(Vec::new)
                    .push(host);
            }
        });
        Caller {
            bus,
            finishes,
            takers,
        }
    }

    /// Requests `r<k>` for every k of `ids`, each sleeping `ms`.
    async fn send(&self, ids: std::ops::Range<usize>, ms: u64) {
        for k in ids {
            let request =
                json!({"action": "testkit/sleep", "ms": ms, "correlation_id": format!("r{k}")});
            self.bus
                .publish("testkit/sleep", request.to_string(), false)
                .await
                .unwrap();
        }
    }

    /// How many of `ids` were answered.
    fn answered(&self, ids: std::ops::Range<usize>) -> usize {
        let finishes = self.finishes.lock().unwrap();
        ids.filter(|k| finishes.contains_key(&format!("r{k}")))
            .count()
    }

    /// Waits until `count` of `ids` are answered, or `bound` passes; how many are.
    async fn wait_answered(
        &self,
        ids: std::ops::Range<usize>,
        count: usize,
        bound: Duration,
    ) -> usize {
        let until = Instant::now() + bound;
        while self.answered(ids.clone()) < count && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.answered(ids)
    }

    /// Every finish seen, by correlation id.
    fn finishes(&self) -> BTreeMap<String, usize> {
        self.finishes.lock().unwrap().clone()
    }

    /// How many of `ids` host `host` took.
    fn taken_by(&self, host: &str, ids: std::ops::Range<usize>) -> usize {
        let takers = self.takers.lock().unwrap();
        ids.filter(|k| {
            takers
                .get(&format!("r{k}"))
                .is_some_and(|t| t.iter().any(|h| h == host))
        })
        .count()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_killed_mid_burst_loses_nothing_and_rejoins() {
    let dir = tempfile::tempdir().unwrap();
    let mut pool = Pool::start(dir.path(), 3).await;
    let caller = Caller::new(&pool).await;
    caller.send(0..600, 50).await;
    caller
        .wait_answered(0..600, 100, Duration::from_secs(60))
        .await;
    pool.host(0).kill();
    let before = caller.answered(0..600);
    let answered = caller
        .wait_answered(0..600, 600, Duration::from_secs(120))
        .await;
    let repeats: usize = caller.finishes().values().map(|n| n - 1).sum();
    let taken = caller.taken_by("h0", 0..600);
    eprintln!(
        "killed h0 with {before} of 600 answered; it had taken {taken}; {answered} answered, {repeats} repeats; h1 took {}, h2 {}",
        caller.taken_by("h1", 0..600),
        caller.taken_by("h2", 0..600)
    );
    assert_eq!(
        answered,
        600,
        "requests lost; logs in {}",
        dir.path().display()
    );
    assert!(taken > 0, "the killed host took none");

    // Its last will cleared its own presence only: the service is still up.
    let bus = pool.client().await;
    let up = copper_wasm::runner::services_up(&bus, Duration::from_millis(500))
        .await
        .unwrap();
    assert!(
        up.iter().any(|s| s.name == "testkit"),
        "testkit not up: {up:?}"
    );
    let mut status = bus.subscribe("testkit/status").await.unwrap();
    let retained = tokio::time::timeout(Duration::from_secs(5), status.recv())
        .await
        .expect("a retained status")
        .unwrap();
    assert_eq!(&retained.payload[..], b"up");

    // Started again, it rejoins and takes its share.
    pool.spawn(0);
    pool.wait_up(&[host_id(0)]).await;
    caller.send(600..720, 20).await;
    let answered = caller
        .wait_answered(600..720, 120, Duration::from_secs(60))
        .await;
    assert_eq!(answered, 120);
    assert!(
        caller.taken_by("h0", 600..720) > 0,
        "the restarted host took nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_succeeds_while_a_host_dies() {
    let dir = tempfile::tempdir().unwrap();
    let mut pool = Pool::start(dir.path(), 3).await;
    let command = sleep_run(dir.path(), &pool.url(), 100, 30);
    let run = tokio::spawn(output_async(command));
    tokio::time::sleep(Duration::from_secs(1)).await;
    pool.host(1).kill();
    let output = run.await.unwrap();
    output.assert_success();
    assert!(
        output.stdout.contains("100 of 100 steps succeeded"),
        "{}",
        output.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_stopped_under_load_loses_nothing_ten_times() {
    let dir = tempfile::tempdir().unwrap();
    let mut pool = Pool::start(dir.path(), 3).await;
    let caller = Caller::new(&pool).await;
    for round in 0..10 {
        let ids = round * 60..(round + 1) * 60;
        let index = round % 3;
        caller.send(ids.clone(), 50).await;
        caller
            .wait_answered(ids.clone(), 10, Duration::from_secs(60))
            .await;
        let status = pool.host(index).terminate();
        assert!(
            status.success(),
            "round {round}: SIGTERM is a clean stop: {status}"
        );
        let answered = caller
            .wait_answered(ids.clone(), 60, Duration::from_secs(60))
            .await;
        assert_eq!(
            answered,
            60,
            "round {round}: requests lost; logs in {}",
            dir.path().display()
        );
        // One host's stop is its own: the service is still up.
        let mut status = caller.bus.subscribe("testkit/status").await.unwrap();
        let retained = tokio::time::timeout(Duration::from_secs(5), status.recv())
            .await
            .expect("a retained status")
            .unwrap();
        assert_eq!(&retained.payload[..], b"up", "round {round}");
        drop(status);
        pool.spawn(index);
        pool.wait_up(&[host_id(index)]).await;
    }
    assert_eq!(caller.answered(0..600), 600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_cut_off_is_answered_for_elsewhere_and_not_again_when_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut pool = Pool::start(dir.path(), 3).await;
    let caller = Caller::new(&pool).await;
    caller.send(0..300, 100).await;
    caller
        .wait_answered(0..300, 30, Duration::from_secs(60))
        .await;
    pool.network.cut(2);
    let cut = Instant::now();
    let before = caller.answered(0..300);
    // Answered by the others while it is still cut off: the broker declares it gone
    // after 1.5 keep-alives (7.5 s), its sessions are adopted a second later.
    let answered = caller
        .wait_answered(0..300, 300, Duration::from_secs(40))
        .await;
    eprintln!(
        "cut h2 off with {before} of 300 answered, {} taken by it; all answered elsewhere {:?} later",
        caller.taken_by("h2", 0..300),
        cut.elapsed()
    );
    assert_eq!(
        answered,
        300,
        "not answered elsewhere; logs in {}",
        dir.path().display()
    );
    // Back only once its sessions were adopted and ended. A host that comes back
    // while a live one is still adopting them takes its session back half
    // handed over, and may answer again what was answered elsewhere: a race of
    // its own, not what this test is about (noted in issue 17).
    pool.wait_adopted(&host_id(2)).await;
    let before = caller.finishes();
    pool.network.restore(2);
    pool.wait_up(&[host_id(2)]).await;
    // Back, it answers none of what it had taken a second time.
    tokio::time::sleep(Duration::from_secs(3)).await;
    pool.host(2).assert_running();
    assert_eq!(
        caller.finishes(),
        before,
        "answered again after coming back"
    );
    // And it takes work again.
    caller.send(300..420, 20).await;
    assert_eq!(
        caller
            .wait_answered(300..420, 120, Duration::from_secs(60))
            .await,
        120
    );
    assert!(
        caller.taken_by("h2", 300..420) > 0,
        "the host back took nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_completes_when_the_broker_restarts_midway() {
    let dir = tempfile::tempdir().unwrap();
    let mut pool = Pool::start(dir.path(), 2).await;
    let command = sleep_run(dir.path(), &pool.url(), 40, 100);
    let run = tokio::spawn(output_async(command));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    drop(pool.broker.take());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let broker_dir = dir.path().join("broker-again");
    std::fs::create_dir_all(&broker_dir).unwrap();
    pool.broker = Some(Mosquitto::start_at(
        &broker_dir,
        &pool.network.broker_ip(),
        pool.port,
    ));
    let output = run.await.unwrap();
    output.assert_success();
    assert!(
        output.stdout.contains("40 of 40 steps succeeded"),
        "{}",
        output.stdout
    );
    for index in 0..2 {
        pool.host(index).assert_running();
    }
}
