//! `copper-wasm graph`: the system graph of a running daemon (`--daemon URL`),
//! of a recorded trace (`--from FILE`: a daemon's `/v1/trace`, or a mosquitto
//! log written with `log_type all`), or a workflow's steps (`--workflow FILE`),
//! printed as DOT (the default), mermaid, SVG or JSON.

use super::CliError;
use super::daemon::Daemon;
use copper_wasm::graph::{self, Context, Graph};
use copper_wasm::trace::{Recorded, mosquitto_log};
use copper_wasm::workflow::Workflow;
use std::path::{Path, PathBuf};

/// Where the graph comes from.
pub enum Source {
    /// A running daemon's API.
    Daemon(String),
    /// A recorded trace.
    Trace(PathBuf),
    /// A workflow file.
    Workflow(PathBuf),
}

/// Prints the graph of `source` as `format` (`dot`, `mermaid`, `svg`, `json`).
pub async fn print(source: Source, format: &str) -> Result<(), CliError> {
    let text = match source {
        Source::Daemon(url) => {
            let daemon = Daemon::new(&url);
            daemon.text(&format!("/v1/graph?format={format}")).await?
        }
        Source::Trace(path) => {
            let recorded = read_trace(&path)?;
            drawn(&graph::system(&recorded, &Context::default()), format, true)?
        }
        Source::Workflow(path) => {
            let workflow = Workflow::load(&path)?;
            drawn(&graph::steps(&workflow), format, false)?
        }
    };
    print!("{text}");
    if !text.ends_with('\n') {
        println!();
    }
    Ok(())
}

/// A trace file: the JSON `/v1/trace` serves, else a mosquitto log.
fn read_trace(path: &Path) -> Result<Recorded, CliError> {
    let text = std::fs::read_to_string(path).map_err(|source| CliError::ReadFile {
        path: path.to_path_buf(),
        source,
    })?;
    if text.trim_start().starts_with('{') {
        return serde_json::from_str(&text).map_err(|source| CliError::TraceFile {
            path: path.to_path_buf(),
            source,
        });
    }
    Ok(mosquitto_log::read(&text))
}

fn drawn(graph: &Graph, format: &str, left_to_right: bool) -> Result<String, CliError> {
    Ok(match format {
        "mermaid" => graph::mermaid(graph),
        "svg" => graph::svg(graph, left_to_right).map_err(CliError::Svg)?,
        "json" => serde_json::to_string_pretty(graph).map_err(CliError::Json)?,
        _ => graph::dot(graph),
    })
}
