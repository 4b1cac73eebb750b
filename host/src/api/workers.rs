//! What runs now: `GET /v1/workers` lists every request taken by this daemon and
//! not yet answered; `DELETE /v1/workers/{id}` stops one (leprechaun's
//! `workers:list` and `workers:kill`).

use super::Api;
use super::problem::Problem;
use crate::scheduler::Worker;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// One request taken and not yet answered.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WorkerView {
    /// Its number on this daemon, to stop it by.
    pub id: u64,
    /// The service.
    pub service: String,
    /// The action's topic.
    pub action: String,
    /// The request's correlation id, when it has one.
    pub correlation_id: Option<String>,
    /// How it came: `bus` or `call` (over HTTP).
    pub via: String,
    /// `queued` (waiting for a worker) or `running`.
    pub state: String,
    /// When it was taken (RFC 3339).
    pub since: String,
}

impl From<Worker> for WorkerView {
    fn from(worker: Worker) -> Self {
        Self {
            id: worker.id,
            service: worker.service,
            action: worker.action,
            correlation_id: worker.correlation_id,
            via: worker.via.to_string(),
            state: worker.state.to_string(),
            since: worker.since,
        }
    }
}

/// Lists every request taken here and not yet answered, oldest first.
#[utoipa::path(
    get,
    path = "/v1/workers",
    tag = "workers",
    responses(
        (status = 200, description = "What runs and waits now", body = Vec<WorkerView>),
        (status = 401, description = "No or a wrong bearer token", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn list(State(api): State<Arc<Api>>) -> Json<Vec<WorkerView>> {
    let workers = api.host.calls().workers().all();
    Json(workers.into_iter().map(WorkerView::from).collect())
}

/// Stops one request where it runs (a component's instance dropped, a container
/// killed); it is answered `failed`.
#[utoipa::path(
    delete,
    path = "/v1/workers/{id}",
    tag = "workers",
    params(("id" = u64, Path, description = "The request's number, as listed")),
    responses(
        (status = 204, description = "Stopped"),
        (status = 401, description = "No or a wrong bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such request runs or waits here", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn kill(State(api): State<Arc<Api>>, Path(id): Path<String>) -> Response {
    // What is not a number names no request: 404 as any other.
    if id
        .parse::<u64>()
        .is_ok_and(|n| api.host.calls().workers().kill(n))
    {
        StatusCode::NO_CONTENT.into_response()
    } else {
        Problem::not_found(
            "unknown-worker",
            format!("no request #{id} runs or waits here"),
        )
        .into_response()
    }
}
