//! End-to-end tests of copper-wasm: the real binary, the embedded broker and
//! mosquitto, the real components on wasmtime, git repositories served on loopback.

mod access;
mod api;
mod broker;
mod cli;
mod cluster;
mod console;
mod copili;
mod docker;
mod engine;
mod failures;
mod fan_out;
mod graph;
mod hosts;
mod kept;
mod library;
mod lifecycle;
mod metrics;
mod otel;
mod over_daemon;
mod plugin;
mod protocol;
mod reload;
mod services_file;
mod sharing;
mod site_in_browser;
mod support;
mod triggers;
mod website;
