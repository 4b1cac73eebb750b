//! copper-wasm runs workflows of actions addressed by MQTT topics, answered by
//! WASI components, containers or any program on the broker.
//!
//! # Layout
//! Data flows one way: workflow -> runner -> bus -> scheduler -> backend -> bus -> runner.
//! - [`workflow`]: copper's YAML workflow, read and checked (file, line, field in every
//!   error): steps, needs, conditions, references.
//! - [`runner`]: runs the steps as their needs allow, each published and awaited;
//!   records every run; [`progress`] shows it.
//! - [`protocol`]: copper's topics and message shapes.
//! - [`bus`]: the MQTT client; [`broker`]: the embedded broker; [`connector`]: how the
//!   host's clients reach its broker (in-process links to the embedded one, or TCP);
//!   [`access`]: who may connect to the broker and what each may publish and read.
//! - [`scheduler`]: the registry of services, served on the bus with bounded concurrency,
//!   each request acknowledged once answered, a dead host's sessions adopted;
//!   [`presence`]: which hosts are on the broker and what each serves.
//! - [`service`]: what a service is, whatever runs it, and how a request fails;
//!   [`job`]: one request as a backend runs it, and what it reports meanwhile;
//!   [`schema`]: the actions' JSON Schemas, compiled once; [`secret`]: placeholders
//!   and masking, shared by the runner, the scheduler and every backend.
//! - [`component`]: the WASI component backend (wasmtime); [`wit`]: its bindings;
//!   [`component_url`]: components downloaded from a URL pinned by sha256.
//! - [`docker`]: the Docker backend (a container per request, or a long-running one).
//! - [`services_file`]: which backend serves each service (`copper.yaml`);
//!   [`copili`]: copili's pipeline files read as workflows of container steps;
//!   [`environment`]: `${VAR}` from the environment and `.env`;
//!   [`timeout`]: durations as the files and messages write them (`30s`, `5m`, seconds);
//!   [`file_watch`]: folders watched for changes to their files (not reads);
//!   [`telemetry`]: what the host measures (requests, latencies, runs, triggers);
//!   [`otel`]: its spans sent to an OpenTelemetry collector when one is configured;
//!   [`trace`]: who publishes and subscribes to what on the broker;
//!   [`graph`]: the system's graph drawn from that trace, and a workflow's steps,
//!   as DOT, mermaid or SVG.
//! - [`capability`]: what the host grants components (log/progress/resources, git, workspace);
//!   [`sandbox`]: the folders a request sees.
//! - [`builtin`]: the components built into the binary; [`host`]: everything wired together;
//!   [`error_chain`]: an error and its causes on one line.
//! - [`api`]: the daemon's HTTP API over a host (fast calls, runs, services,
//!   their lifecycle, the workers); [`control`]: the services' lifecycle over MQTT;
//!   [`triggers`]: workflows that start themselves (schedules, messages, other runs);
//!   [`hot_reload`]: the daemon's files (workflows, services, components) read again
//!   when they change, or on SIGHUP; [`console`]: the web pages the daemon serves
//!   (services, runs and their graphs, the system graph).
//!
//! The `copper-wasm` command is built on this public API alone (it lives in the binary
//! crate, `host/src/main.rs` and `host/src/cli/`), so whatever it does an embedder can do.
//!
//! # Embedding
//!
//! A host (its broker, its services), a workflow given as text, a run with its events:
//!
//! ```no_run
//! use copper_wasm::runner::RunOptions;
//! use copper_wasm::{Host, HostConfig, Workflow};
//! use tokio_util::sync::CancellationToken;
//!
//! # async fn example() -> anyhow::Result<()> {
//! let host = Host::start(HostConfig::default(), CancellationToken::new()).await?;
//! let workflow = Workflow::parse(
//!     "- action: fetcher/fetch\n  type: git\n  url: .\n  resource: docs\n",
//!     std::path::Path::new("inline.yaml"),
//! )?;
//! let report = host
//!     .run(&workflow, RunOptions::default(), |event| {
//!         println!("{}", serde_json::to_string(event).unwrap());
//!     })
//!     .await?;
//! assert!(report.success());
//! host.stop().await;
//! # Ok(())
//! # }
//! ```
//!
//! `host/examples/embed.rs` adds a component given as bytes.

#![deny(unsafe_code)]

pub mod access;
pub mod api;
pub mod broker;
pub mod builtin;
pub mod bus;
pub mod capability;
pub mod component;
pub mod component_url;
pub mod connector;
pub mod console;
pub mod control;
pub mod copili;
pub mod docker;
pub mod environment;
pub mod error_chain;
pub mod file_watch;
pub mod graph;
pub mod host;
pub mod hot_reload;
pub mod job;
pub mod otel;
pub mod presence;
pub mod progress;
pub mod protocol;
pub mod runner;
pub mod sandbox;
pub mod scheduler;
pub mod schema;
pub mod secret;
pub mod service;
pub mod services_file;
pub mod telemetry;
pub mod timeout;
pub mod trace;
pub mod triggers;
pub mod wit;
pub mod workflow;

pub use host::{BrokerChoice, Host, HostConfig, HostError};
pub use workflow::{Workflow, WorkflowError};
