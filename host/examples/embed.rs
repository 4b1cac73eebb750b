//! Embeds copper-wasm in a program of its own: a host with its embedded broker,
//! one more component given as bytes, a workflow given as a string, its events.
//!
//! `cargo run -p copper-wasm --example embed [COMPONENT.wasm]` (default: the
//! `testkit` component the build makes).

use copper_wasm::runner::{RunEvent, RunOptions};
use copper_wasm::{Host, HostConfig, Workflow};
use std::path::Path;
use tokio_util::sync::CancellationToken;

const WORKFLOW: &str = "
name: embedded
steps:
  - id: hello
    action: testkit/echo
    greeting: hello from an embedded host
  - id: again
    action: testkit/echo
    needs: hello
    echoed: ${{ steps.hello.outputs.greeting }}
";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| copper_wasm::builtin::TESTKIT_PATH.to_string());
    let cache = tempfile::tempdir()?;
    let config = HostConfig {
        cache: cache.path().to_path_buf(),
        builtins: false,
        component_bytes: vec![std::fs::read(&path)?],
        ..HostConfig::default()
    };
    let shutdown = CancellationToken::new();
    let host = Host::start(config, shutdown.clone()).await?;

    let workflow = Workflow::parse(WORKFLOW, Path::new("embedded.yaml"))?;
    let report = host
        .run(&workflow, RunOptions::default(), |event| {
            if let RunEvent::StepFinished { step, status, .. } = &event.event {
                println!("{step}: {}", status.as_str());
            }
        })
        .await?;
    let again = &report.steps[1].outputs;
    println!("echoed: {}", again["echoed"]);

    // One action, without a workflow.
    let mut fields = copper_wasm::protocol::Object::new();
    fields.insert("n".into(), 42.into());
    let finish = host.call("testkit/echo", &fields, None).await?;
    println!("called: n = {}", finish.entry["n"]);

    host.stop().await;
    if !report.success() {
        anyhow::bail!("the run failed");
    }
    Ok(())
}
