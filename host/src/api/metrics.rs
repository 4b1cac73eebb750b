//! `GET /metrics`: what the host measures ([`crate::telemetry`]) in Prometheus'
//! text format, by metrics-exporter-prometheus: the recorder is installed once
//! per process, the first time an API is served, and what is read when scraped
//! (each service's load) is set just before rendering.

use super::Api;
use crate::telemetry;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// How often the recorder's histograms are drained (without a scrape, memory stays bounded).
const UPKEEP: Duration = Duration::from_secs(5);

/// The process's Prometheus recorder: installed on the first call, or `None` when
/// an embedder installed another recorder first.
pub(super) fn recorder() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let built = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(telemetry::REQUEST_SECONDS.into()),
                    &telemetry::LATENCY_BUCKETS,
                )
                .and_then(|b| b.install_recorder());
            match built {
                Ok(handle) => {
                    let upkeep = handle.clone();
                    std::thread::Builder::new()
                        .name("metrics-upkeep".into())
                        .spawn(move || {
                            loop {
                                std::thread::sleep(UPKEEP);
                                upkeep.run_upkeep();
                            }
                        })
                        .expect("a thread for the metrics' upkeep");
                    Some(handle)
                }
                Err(error) => {
                    tracing::warn!("no /metrics: {error}");
                    None
                }
            }
        })
        .as_ref()
}

/// The metrics, in Prometheus' text format.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "daemon",
    responses(
        (status = 200, description = "Requests, latencies, load, runs and triggers in Prometheus' text format (version 0.0.4)", body = String, content_type = "text/plain"),
        (status = 401, description = "No or a wrong bearer token", body = super::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "Another recorder than Prometheus' is installed in this process", body = super::problem::Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn render(State(api): State<Arc<Api>>) -> axum::response::Response {
    let Some(handle) = recorder() else {
        let detail = "this process records its metrics elsewhere";
        return super::problem::Problem::not_found("no-metrics", detail).into_response();
    };
    let registry = api.host.registry();
    for service in registry.services() {
        if let Some(load) = api.host.calls().load(&service.name) {
            let instances = match registry.get(&service.name).map(|s| s.backend()) {
                Some("component") => load.in_flight,
                _ => 0,
            };
            telemetry::load(&service.name, load.in_flight, load.queued, instances);
        }
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle.render(),
    )
        .into_response()
}
