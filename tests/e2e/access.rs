//! Who may use the broker: logins on the embedded broker, grants enforced on what
//! each client publishes and reads, the same rules on mosquitto, and what another
//! local user can reach (nothing).

use crate::protocol::plain_client;
use crate::support::*;
use copper_wasm::access::{Credentials, Grant, mosquitto_acl};
use rumqttc::{AsyncClient, ConnectReturnCode, ConnectionError, Event, MqttOptions, Packet, QoS};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const TESTKIT: &str = copper_wasm::builtin::TESTKIT_PATH;

/// How the broker at `port` answers a CONNECT with `login`.
async fn connect_as(port: u16, login: Option<(&str, &str)>) -> Result<(), ConnectionError> {
    let id = format!("probe-{}", uuid::Uuid::new_v4().simple());
    let mut options = MqttOptions::new(id, "127.0.0.1", port);
    if let Some((user, password)) = login {
        options.set_credentials(user, password);
    }
    let (_client, mut events) = AsyncClient::new(options, 8);
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match events.poll().await? {
                Event::Incoming(Packet::ConnAck(_)) => return Ok(()),
                _ => continue,
            }
        }
    })
    .await
    .expect("an answer to CONNECT within 20 s")
}

fn refused_with(result: Result<(), ConnectionError>, code: ConnectReturnCode) {
    match result {
        Err(ConnectionError::ConnectionRefused(got)) => assert_eq!(got, code),
        other => panic!("expected a refusal ({code:?}), got {other:?}"),
    }
}

/// Polls `events` until the broker drops the connection; the publishes seen before.
async fn until_dropped(events: &mut rumqttc::EventLoop) -> Vec<rumqttc::Publish> {
    let mut seen = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::Publish(publish))) => seen.push(publish),
                Ok(_) => {}
                Err(_) => return,
            }
        }
    })
    .await
    .expect("the broker disconnects the client within 60 s");
    seen
}

/// Polls `events` until a packet `wanted` picks arrives (20 s at most).
async fn until(events: &mut rumqttc::EventLoop, what: &str, wanted: fn(&Packet) -> bool) {
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Event::Incoming(packet) = events.poll().await.expect("connected")
                && wanted(&packet)
            {
                return;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what} within 20 s"));
}

/// A client `id` logged in as granted `grant`, kept polling until it is disconnected.
async fn stay_connected(port: u16, id: &str, grant: &Grant) -> tokio::task::JoinHandle<()> {
    let (client, mut events) = plain_client(port, id, grant);
    connected(&mut events).await;
    tokio::spawn(async move {
        let _client = client;
        while events.poll().await.is_ok() {}
    })
}

/// Polls `events` until the broker accepts the connection.
async fn connected(events: &mut rumqttc::EventLoop) {
    until(events, "a connection", |p| matches!(p, Packet::ConnAck(_))).await;
}

/// Polls `events` until the broker acknowledges a subscription.
async fn subscribed(events: &mut rumqttc::EventLoop) {
    until(events, "a subscription", |p| matches!(p, Packet::SubAck(_))).await;
}

/// Waits until `services` are up on the broker at `address`.
async fn wait_up_at(address: &copper_wasm::bus::BrokerAddress, services: &[&str]) {
    let bus = copper_wasm::bus::Bus::connect(
        address,
        "e2e-wait",
        None,
        tokio_util::sync::CancellationToken::new(),
    )
    .await
    .expect("a connection to the broker");
    let found =
        copper_wasm::runner::services_up_for(&bus, Some(services), Duration::from_secs(120))
            .await
            .unwrap();
    for service in services {
        assert!(
            found.iter().any(|s| s.name == *service),
            "{service} is not up: {found:?}"
        );
    }
    bus.close().await;
}

/// A finish forged for the request whose start is `start`: its correlation id, a
/// success, and a field no service gives.
fn forged_finish(start: &[u8]) -> String {
    let start: Value = serde_json::from_slice(start).unwrap();
    serde_json::json!([{
        "correlation_id": start["correlation_id"],
        "status": "success",
        "evil": "FORGED",
    }])
    .to_string()
}

/// A two-step workflow: a sleep, then an echo of the sleep's result.
const SLEEP_THEN_ECHO: &str = "\
steps:
  - id: slow
    action: testkit/sleep
    ms: 1500
  - id: next
    action: testkit/echo
    needs: [slow]
    got: ${{ steps.slow.outputs.ms }}
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_login_no_entry_and_a_runner_cannot_forge_a_finish() {
    let root = tempfile::tempdir().unwrap();
    let (_serve, port) = serve(root.path(), &["--component", TESTKIT], &[], &["testkit"]).await;

    refused_with(
        connect_as(port, None).await,
        ConnectReturnCode::NotAuthorized,
    );
    let (runner, _) = login(&Grant::Runner);
    refused_with(
        connect_as(port, Some((&runner, "not-the-password"))).await,
        ConnectReturnCode::BadUserNamePassword,
    );

    // A runner may not take requests.
    let (thief, mut thief_events) = plain_client(port, "thief", &Grant::Runner);
    thief
        .subscribe("$share/copper-wasm/testkit/echo", QoS::AtLeastOnce)
        .await
        .unwrap();
    until_dropped(&mut thief_events).await;
    // Nor leave a retained request, which every host subscribing later would run again.
    let (retainer, mut retainer_events) = plain_client(port, "retainer", &Grant::Runner);
    retainer
        .publish("testkit/echo", QoS::AtLeastOnce, true, "{}")
        .await
        .unwrap();
    until_dropped(&mut retainer_events).await;

    // Nor take a host's connection (and its session) over by using its client id.
    let victim = stay_connected(port, "copper-wasm-victim", &Grant::Host).await;
    let usurping = stay_connected(port, "copper-wasm-victim", &Grant::Runner).await;

    // A runner sees a request start (and its correlation id) but cannot answer it:
    // the forged finish is refused, the forger disconnected, the real result kept.
    let (forger, mut forger_events) = plain_client(port, "forger", &Grant::Runner);
    forger
        .subscribe("testkit/sleep/start", QoS::AtLeastOnce)
        .await
        .unwrap();
    subscribed(&mut forger_events).await;
    let forging = tokio::spawn(async move {
        let start = loop {
            match forger_events.poll().await {
                Ok(Event::Incoming(Packet::Publish(publish))) => break publish,
                Ok(_) => {}
                Err(error) => panic!("the forger lost its connection early: {error}"),
            }
        };
        forger
            .publish(
                "testkit/sleep/finish",
                QoS::AtLeastOnce,
                false,
                forged_finish(&start.payload),
            )
            .await
            .unwrap();
        until_dropped(&mut forger_events).await;
    });
    std::fs::write(root.path().join("w.yaml"), SLEEP_THEN_ECHO).unwrap();
    let broker = format!("mqtt://127.0.0.1:{port}");
    let mut command = copper(root.path());
    command.args(["run", "w.yaml", "--broker", &broker, "--no-local-services"]);
    command.args(["--events", "json"]);
    let out = output_async(command).await;
    out.assert_success();
    tokio::time::timeout(Duration::from_secs(60), forging)
        .await
        .expect("the forger was disconnected")
        .unwrap();
    assert!(!out.stdout.contains("FORGED"), "{}", out.stdout);
    assert!(
        !victim.is_finished(),
        "a runner took a host's connection over"
    );
    assert!(
        !usurping.is_finished(),
        "the runner with a host's id was disconnected"
    );
    victim.abort();
    usurping.abort();
    let echoed = out
        .stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|e| e["event"] == "step.finished" && e["step"] == "next")
        .expect("the echo finished");
    assert_eq!(echoed["outputs"]["got"], 1500, "{echoed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_loopback_only_with_logins() {
    let root = tempfile::tempdir().unwrap();
    let port = free_port();
    let listen = format!("0.0.0.0:{port}");
    let _serve = serve_on(
        root.path(),
        port,
        &["--listen", &listen, "--component", TESTKIT],
        &[],
        &["testkit"],
    )
    .await;
    refused_with(
        connect_as(port, None).await,
        ConnectReturnCode::NotAuthorized,
    );
    let (user, password) = login(&Grant::Runner);
    connect_as(port, Some((&user, &password))).await.unwrap();

    // Clients with no login are for loopback only.
    let file = root.path().join("open.yaml");
    let mut open = Credentials::default();
    open.add("host", vec![Grant::Host]);
    open.write(&file).unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::remove_file(&file).unwrap();
    let text = text.replace("anonymous: []", "anonymous: [runner]");
    assert!(text.contains("anonymous: [runner]"), "{text}");
    std::fs::write(&file, text).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let listen = format!("0.0.0.0:{}", free_port());
    let out = output(
        copper(root.path())
            .args(["serve", "--listen", &listen, "--no-builtins"])
            .env("COPPER_CREDENTIALS", &file),
    );
    out.assert_exit(3);
    assert!(
        out.stderr
            .contains("anonymous grants are for loopback only"),
        "{}",
        out.stderr
    );
}

/// Runs `program` as the user `nobody`; its output.
fn as_nobody(program: &str, args: &[&str]) -> std::process::Output {
    assert!(
        is_root(),
        "this test needs root to act as another user (CI runs it as root)"
    );
    Command::new("setpriv")
        .args([
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            program,
        ])
        .args(args)
        .output()
        .expect("setpriv (util-linux) runs")
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .is_some_and(|uids| uids.split_whitespace().next() == Some("0"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_local_user_can_neither_call_nor_read_nor_forge() {
    let root = tempfile::tempdir().unwrap();
    // Everyone may enter the test folder: only the host's own modes protect it.
    std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(root.path().join(".env"), "TOKEN=s3cr3t\n").unwrap();
    std::fs::set_permissions(
        root.path().join(".env"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    // The host's own credentials file, made at first start in its cache.
    let mut command = copper(root.path());
    command
        .args(["serve", "--listen", &listen, "--component", TESTKIT])
        .env_remove("COPPER_CREDENTIALS");
    let _serve = Process::spawn(&mut command, "copper-wasm serve");
    let credentials = root.path().join(".copper/credentials.yaml");
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while !credentials.exists() || std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "serve did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut address = copper_wasm::bus::BrokerAddress::new("127.0.0.1", port);
    address.credentials = Credentials::read(&credentials)
        .unwrap()
        .login_for(&Grant::Host);
    wait_up_at(&address, &["fetcher", "testkit"]).await;
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&credentials), 0o600);
    assert_eq!(mode(&root.path().join(".copper")), 0o700);

    // The host's own runner fetches the secret file into the cache.
    std::fs::write(
        root.path().join("w.yaml"),
        "- action: fetcher/fetch\n  type: local\n  path: .\n  filter: .env\n  resource: got\n",
    )
    .unwrap();
    let broker = format!("mqtt://127.0.0.1:{port}");
    let mut run = copper(root.path());
    run.args(["run", "w.yaml", "--broker", &broker, "--no-local-services"])
        .env_remove("COPPER_CREDENTIALS");
    output_async(run).await.assert_success();
    let fetched = root.path().join(".copper/fetch/got/.env");
    assert_eq!(std::fs::read_to_string(&fetched).unwrap(), "TOKEN=s3cr3t\n");

    // Another user cannot read the credentials, nor what was fetched.
    for path in [&credentials, &fetched] {
        let read = as_nobody("cat", &[path.to_str().unwrap()]);
        assert!(!read.status.success(), "nobody read {}", path.display());
        assert!(
            String::from_utf8_lossy(&read.stderr).contains("Permission denied"),
            "{read:?}"
        );
    }
    // Nor call an action, nor publish a finish: no login, no entry.
    let port_text = port.to_string();
    for topic in ["testkit/echo", "testkit/echo/finish"] {
        let publish = as_nobody(
            "mosquitto_pub",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port_text,
                "-q",
                "1",
                "-t",
                topic,
                "-m",
                "{}",
            ],
        );
        assert!(!publish.status.success(), "nobody published on {topic}");
        let said = String::from_utf8_lossy(&publish.stderr).to_lowercase();
        assert!(said.contains("not authori"), "{said}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_with_a_password_file_and_the_acl_keeps_the_same_rules() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path();
    let users = [
        ("host".to_string(), vec![Grant::Host]),
        ("runner".to_string(), vec![Grant::Runner]),
    ];
    let requests = ["testkit/echo".to_string(), "testkit/sleep".to_string()];
    std::fs::write(dir.join("acl"), mosquitto_acl(&users, &requests)).unwrap();
    let password = |user: &str| format!("{user}-password-0123456789");
    for (n, (user, _)) in users.iter().enumerate() {
        let mut passwd = Command::new("mosquitto_passwd");
        if n == 0 {
            passwd.arg("-c");
        }
        let status = passwd
            .args(["-b", dir.join("passwd").to_str().unwrap(), user])
            .arg(password(user))
            .status()
            .expect("mosquitto_passwd (Debian's mosquitto) runs");
        assert!(status.success());
    }
    let broker = Mosquitto::start_secured(dir, &dir.join("passwd"), &dir.join("acl"));
    let as_user =
        |user: &str| format!("mqtt://{user}:{}@127.0.0.1:{}", password(user), broker.port);

    refused_with(
        connect_as(broker.port, None).await,
        ConnectReturnCode::NotAuthorized,
    );
    let mut command = copper(dir);
    command.args([
        "serve",
        "--broker",
        &as_user("host"),
        "--component",
        TESTKIT,
    ]);
    command.args(["--no-builtins"]);
    let _serve = Process::spawn(&mut command, "copper-wasm serve");
    wait_up_at(
        &copper_wasm::bus::BrokerAddress::parse(&as_user("runner")).unwrap(),
        &["testkit"],
    )
    .await;

    // The forger, a runner, subscribes to starts and answers one: mosquitto drops
    // the finish, so the run goes on with the real result.
    let mut options = MqttOptions::new("forger", "127.0.0.1", broker.port);
    options.set_credentials("runner", password("runner"));
    let (forger, mut forger_events) = AsyncClient::new(options, 16);
    forger
        .subscribe("testkit/sleep/start", QoS::AtLeastOnce)
        .await
        .unwrap();
    subscribed(&mut forger_events).await;
    let forging = tokio::spawn(async move {
        loop {
            if let Ok(Event::Incoming(Packet::Publish(start))) = forger_events.poll().await {
                let _ = forger
                    .publish(
                        "testkit/sleep/finish",
                        QoS::AtLeastOnce,
                        false,
                        forged_finish(&start.payload),
                    )
                    .await;
            }
        }
    });
    std::fs::write(dir.join("w.yaml"), SLEEP_THEN_ECHO).unwrap();
    let mut command = copper(dir);
    command.args([
        "run",
        "w.yaml",
        "--broker",
        &as_user("runner"),
        "--no-local-services",
    ]);
    command.args(["--events", "json"]);
    let out = output_async(command).await;
    forging.abort();
    out.assert_success();
    assert!(!out.stdout.contains("FORGED"), "{}", out.stdout);
    assert!(out.stdout.contains("\"step\":\"next\""), "{}", out.stdout);
}
