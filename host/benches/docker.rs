//! A Docker lambda's cost against `docker run --rm` of the same image, and the same
//! action as a component against as a container, all measured in one run.
//!
//! `cargo bench -p copper-wasm --bench docker` (`BENCH_N` runs each, 20 by default).
//! Needs the Docker engine; the image is made by tests/fixtures/shell-image/build.sh.

use copper_wasm::environment::Environment;
use copper_wasm::protocol::{Object, Status};
use copper_wasm::services_file::ServicesFile;
use copper_wasm::{BrokerChoice, Host, HostConfig, runner};
use serde_json::json;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const IMAGE: &str = "copper-wasm-test/shell:bench";

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// `docker run --rm IMAGE sh -c SCRIPT`, `n` times.
fn docker_cli(n: usize, script: &str) -> Duration {
    let samples = (0..n)
        .map(|_| {
            let t = Instant::now();
            let status = Command::new("docker")
                .args(["run", "--rm", IMAGE, "sh", "-c", script])
                .stdout(std::process::Stdio::null())
                .status()
                .unwrap();
            assert!(status.success());
            t.elapsed()
        })
        .collect();
    median(samples)
}

/// `topic` through a host configured by `services` (YAML), `n` times.
async fn through_host(
    dir: &Path,
    services: &str,
    components: Vec<std::path::PathBuf>,
    topic: &str,
    fields: Object,
    n: usize,
) -> Duration {
    let path = dir.join("copper.yaml");
    let file = ServicesFile::parse(services, &path, Environment::default()).unwrap();
    let config = HostConfig {
        broker: BrokerChoice::Embedded(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))),
        cache: dir.join("cache"),
        workspace: dir.to_path_buf(),
        compiled_cache: dir.join("compiled"),
        builtins: false,
        components,
        services: file.services,
        ..HostConfig::default()
    };
    let host = Host::start(config, CancellationToken::new()).await.unwrap();
    let bus = host.connect("bench", None).await.unwrap();
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n + 1 {
        let t = Instant::now();
        let finish = runner::request(&bus, topic, &fields, Some(Duration::from_secs(60)), |_| {})
            .await
            .unwrap();
        assert_eq!(finish.status, Status::Success, "{:?}", finish.error);
        samples.push(t.elapsed());
    }
    samples.remove(0); // the first one warms up
    host.stop().await;
    median(samples)
}

fn main() {
    let n: usize = std::env::var("BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let built = Command::new("bash")
        .arg(root.join("tests/fixtures/shell-image/build.sh"))
        .arg("bench")
        .status()
        .unwrap();
    assert!(built.success(), "cannot build the bench image");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("cache/fetch/poems");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(
        data.join("poem.txt"),
        "Copper wire, copper wire,\nthe current runs through\n\nand out again.\n",
    )
    .unwrap();
    let wc = r#"path=$(sed -n 's/.*"path":"\([^"]*\)".*/\1/p' /copper/request.json); set -- $(wc -l -w -c < "$path"); echo "{\"lines\":$1,\"words\":$2,\"bytes\":$3}" > /copper/output.json"#;
    let services = format!(
        "services:\n  noop:\n    docker:\n      image: {IMAGE}\n      command: [sh, -c, 'true']\n    actions: [run]\n  testkit:\n    docker:\n      image: {IMAGE}\n      command: [sh, -c, '{}']\n    actions: [wc]\n",
        wc.replace('\'', "''")
    );
    let mut wc_fields = Object::new();
    wc_fields.insert("path".into(), json!("/fetch/poems/poem.txt"));

    let cli = docker_cli(n, "true");
    let (lambda, container_wc, component_wc) = runtime.block_on(async {
        let lambda =
            through_host(dir.path(), &services, vec![], "noop/run", Object::new(), n).await;
        let container_wc = through_host(
            dir.path(),
            &services,
            vec![],
            "testkit/wc",
            wc_fields.clone(),
            n,
        )
        .await;
        let component_wc = through_host(
            dir.path(),
            "services: {}\n",
            vec![copper_wasm::builtin::TESTKIT_PATH.into()],
            "testkit/wc",
            wc_fields,
            n.max(200),
        )
        .await;
        (lambda, container_wc, component_wc)
    });
    println!("copper-wasm Docker backend, medians of {n} runs");
    println!(
        "{:<52} {:>10.1} ms",
        "`docker run --rm` of the image (reference)",
        ms(cli)
    );
    println!(
        "{:<52} {:>10.1} ms",
        "lambda action through the host (same image)",
        ms(lambda)
    );
    println!(
        "{:<52} {:>10.3} ms",
        "testkit/wc as a container",
        ms(container_wc)
    );
    println!(
        "{:<52} {:>10.3} ms",
        "testkit/wc as a component",
        ms(component_wc)
    );
    println!(
        "lambda / docker CLI: {:.2}x   container / component: {:.0}x",
        lambda.as_secs_f64() / cli.as_secs_f64(),
        container_wc.as_secs_f64() / component_wc.as_secs_f64()
    );
    let _ = Command::new("docker").args(["rmi", "-f", IMAGE]).output();
}
