//! What the host measures, through the `metrics` facade: requests by service,
//! action and status with their latencies, runs by workflow and status, triggers
//! by workflow and kind. Without a recorder installed (an embedder's choice) each
//! is a no-op; the daemon's HTTP API installs Prometheus' and serves `/metrics`,
//! adding what is read when scraped (in flight, queued, instances).

use crate::service::{Failure, FailureKind};
use std::time::Duration;

/// Requests answered here, by `service`, `action` and `status` (counter).
pub const REQUESTS: &str = "copper_requests_total";
/// Time from a request's start to its answer, by `service` and `action` (histogram, seconds).
pub const REQUEST_SECONDS: &str = "copper_request_duration_seconds";
/// Runs ended, by `workflow` and `status` (counter).
pub const RUNS: &str = "copper_runs_total";
/// Triggers fired, by `workflow`, `kind` and `outcome` (counter).
pub const TRIGGERS: &str = "copper_triggers_total";
/// Requests running now, by `service` (gauge, read when scraped).
pub const IN_FLIGHT: &str = "copper_requests_in_flight";
/// Requests waiting for a worker, by `service` (gauge, read when scraped).
pub const QUEUED: &str = "copper_requests_queued";
/// Component instances alive, by `service` (gauge, read when scraped: one per request running).
pub const INSTANCES: &str = "copper_instances";

/// The buckets of [`REQUEST_SECONDS`]: from a no-op component's 0.1 ms to a long container.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0, 10.0, 60.0,
];

/// A request of `action` (its topic) on `service` ended with `outcome` after `took`.
pub fn request_ended<T>(service: &str, action: &str, outcome: &Result<T, Failure>, took: Duration) {
    let status = match outcome {
        Ok(_) => "success",
        Err(failure) => kind_label(failure.kind),
    };
    let (service, action) = (service.to_owned(), action.to_owned());
    ::metrics::counter!(REQUESTS, "service" => service.clone(), "action" => action.clone(), "status" => status)
        .increment(1);
    ::metrics::histogram!(REQUEST_SECONDS, "service" => service, "action" => action).record(took);
}

/// A run of `workflow` ended as `status` (`success`, `failed`, `cancelled`).
pub fn run_ended(workflow: &str, status: &str) {
    ::metrics::counter!(RUNS, "workflow" => workflow.to_owned(), "status" => status.to_owned())
        .increment(1);
}

/// A trigger of `kind` fired `workflow`; `outcome` is what it did (`started`,
/// `queued`, `skipped`, `refused`).
pub fn triggered(workflow: &str, kind: &str, outcome: &str) {
    ::metrics::counter!(TRIGGERS, "workflow" => workflow.to_owned(), "kind" => kind.to_owned(), "outcome" => outcome.to_owned())
        .increment(1);
}

/// How busy `service` is now: read when scraped, never on the request path.
pub fn load(service: &str, in_flight: usize, queued: usize, instances: usize) {
    let service = service.to_owned();
    ::metrics::gauge!(IN_FLIGHT, "service" => service.clone()).set(in_flight as f64);
    ::metrics::gauge!(QUEUED, "service" => service.clone()).set(queued as f64);
    ::metrics::gauge!(INSTANCES, "service" => service).set(instances as f64);
}

/// A failure's kind as a label value, as the API's problems name it (kebab-case).
fn kind_label(kind: FailureKind) -> &'static str {
    match kind {
        FailureKind::InvalidInput => "invalid-input",
        FailureKind::Failed => "failed",
        FailureKind::Trapped => "trapped",
        FailureKind::TimedOut => "timed-out",
        FailureKind::OutOfMemory => "out-of-memory",
        FailureKind::Busy => "busy",
        FailureKind::Unavailable => "unavailable",
    }
}
