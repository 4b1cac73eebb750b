//! Scheduling overhead of a 1,000-step workflow of no-op actions, as a graph
//! (wide: all independent; deep: a chain through `needs`) against the same steps
//! as a plain copper list, measured in one run through the whole host.
//!
//! `cargo bench -p copper-wasm --bench dag` (`BENCH_STEPS`, 1000 by default).

use copper_wasm::runner::record::RunRecord;
use copper_wasm::runner::{self, RunOptions};
use copper_wasm::{Host, HostConfig, Workflow};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

fn list(n: usize) -> String {
    (0..n).map(|_| "- action: testkit/echo\n").collect()
}

fn wide(n: usize) -> String {
    let mut text = String::from("steps:\n");
    for i in 0..n {
        text.push_str(&format!(
            "  - id: s{i}\n    action: testkit/echo\n    needs: []\n"
        ));
    }
    text
}

fn deep(n: usize) -> String {
    let mut text = String::from("steps:\n  - id: s0\n    action: testkit/echo\n    needs: []\n");
    for i in 1..n {
        text.push_str(&format!(
            "  - id: s{i}\n    action: testkit/echo\n    needs: s{}\n",
            i - 1
        ));
    }
    text
}

fn main() {
    let n: usize = std::env::var("BENCH_STEPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    runtime.block_on(async {
        let config = HostConfig {
            cache: dir.path().join("cache"),
            workspace: dir.path().to_path_buf(),
            compiled_cache: dir.path().join("compiled"),
            builtins: false,
            components: vec![copper_wasm::builtin::TESTKIT_PATH.into()],
            ..HostConfig::default()
        };
        let host = Host::start(config, CancellationToken::new()).await.unwrap();
        let bus = host.connect("bench-dag", None).await.unwrap();
        let runs = dir.path().join("runs");
        let measure = async |name: &str, text: String, recorded: bool| -> Duration {
            let workflow = Workflow::parse(&text, Path::new(name)).unwrap();
            let options = RunOptions::default();
            let started = Instant::now();
            let mut record = recorded.then(|| {
                let steps: Vec<(String, String)> = workflow
                    .steps
                    .iter()
                    .map(|s| (s.id.clone(), s.action.clone()))
                    .collect();
                RunRecord::create(
                    &runs,
                    &options.run_id,
                    name,
                    Path::new(name),
                    &text,
                    &steps,
                    Vec::new(),
                )
                .unwrap()
            });
            let report = runner::run(&workflow, &bus, options, |event| {
                if let Some(record) = record.as_mut() {
                    record.record(event).unwrap();
                }
            })
            .await
            .unwrap();
            let took = started.elapsed();
            assert!(report.success(), "{name} failed");
            took
        };
        // Warm up the host's paths once.
        measure("warm-up", list(100), false).await;
        let plain = measure("list", list(n), false).await;
        let chain = measure("deep", deep(n), false).await;
        let spread = measure("wide", wide(n), false).await;
        let recorded = measure("wide-recorded", wide(n), true).await;
        let row = |name: &str, d: Duration| {
            let ms = d.as_secs_f64() * 1e3;
            println!("{name:<44} {ms:>9.1} ms  {:>7.3} ms/step", ms / n as f64);
        };
        println!("copper-wasm scheduling, {n} no-op steps (testkit/echo) through the host");
        row("plain copper list (reference)", plain);
        row("deep: a chain of needs", chain);
        row("wide: all independent (16 at a time)", spread);
        row("wide, with the run's folder written", recorded);
        println!(
            "deep / list: {:.2}x   wide / list: {:.2}x",
            chain.as_secs_f64() / plain.as_secs_f64(),
            spread.as_secs_f64() / plain.as_secs_f64()
        );
        host.stop().await;
    });
}
