//! Graphs over HTTP: `GET /v1/trace` (who published and subscribed to what),
//! `GET /v1/graph` (the system graph drawn from it, with the hosts and the kept
//! workflows' triggers) and `GET /v1/runs/{id}/graph` (a run's steps), each as
//! JSON, DOT, mermaid or SVG.

use super::Api;
use super::problem::Problem;
use crate::Host;
use crate::graph::{self, Context, Graph, Planned};
use crate::runner::record;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// How a graph is wanted.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub(super) struct Shape {
    /// `json` (the default), `dot`, `mermaid` or `svg`.
    format: Option<String>,
}

/// What the trace holds: every client seen, with what it published and
/// subscribed to, how often and when last.
#[utoipa::path(
    get,
    path = "/v1/trace",
    tag = "console",
    responses(
        (status = 200, description = "The trace: `clients`, each with its `publishes` and `subscribes` (topic, count, first and last seen in ms since the epoch, the resources its requests named)", body = Object),
        (status = 401, description = "No or a wrong bearer token", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn trace(State(api): State<Arc<Api>>) -> Response {
    Json(api.host.trace()).into_response()
}

/// The system graph: services (with their hosts), workflows, runners, resources
/// and topics, and the requests, finishes, resources and triggers between them.
#[utoipa::path(
    get,
    path = "/v1/graph",
    tag = "console",
    params(Shape),
    responses(
        (status = 200, description = "The graph: JSON (`nodes`, `edges`), DOT, mermaid or SVG as `format` asks", body = Object),
        (status = 400, description = "An unknown format", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or a wrong bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Too large to draw as SVG", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn system(State(api): State<Arc<Api>>, Query(shape): Query<Shape>) -> Response {
    let graph = graph::system(&api.host.trace(), &context(&api.host));
    drawn(graph, shape, true).await
}

/// A run's steps and their needs; the statuses are the run's (`GET /v1/runs/{id}`).
#[utoipa::path(
    get,
    path = "/v1/runs/{id}/graph",
    tag = "runs",
    params(("id" = String, Path, description = "The run's id"), Shape),
    responses(
        (status = 200, description = "The run's steps: JSON (`nodes`, `edges`), DOT, mermaid or SVG as `format` asks; in SVG each step is `<g class=\"node\" data-id=\"step:<id>\">`", body = Object),
        (status = 400, description = "An unknown format", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or a wrong bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Its workflow no longer reads, or is too large to draw", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn run(
    State(api): State<Arc<Api>>,
    Path(id): Path<String>,
    Query(shape): Query<Shape>,
) -> Response {
    let graph = match super::runs::recorded(&api, &id) {
        Ok((_, workflow, _)) => graph::steps(&workflow),
        Err(problem) if problem.status == StatusCode::NOT_FOUND.as_u16() => {
            return problem.into_response();
        }
        // Not a workflow this version reads: its steps alone, from its record.
        Err(_) => {
            let Ok(state) = record::state(api.host.cache(), &id) else {
                return super::runs::no_run(&id).into_response();
            };
            Graph {
                nodes: state
                    .steps
                    .iter()
                    .map(|(step, s)| graph::Node {
                        id: format!("step:{step}"),
                        kind: graph::NodeKind::Step,
                        label: step.clone(),
                        detail: vec![s.action.clone()],
                    })
                    .collect(),
                edges: Vec::new(),
            }
        }
    };
    drawn(graph, shape, false).await
}

/// `graph` as `shape` asks.
async fn drawn(graph: Graph, shape: Shape, left_to_right: bool) -> Response {
    let text = |content_type: &'static str, body: String| {
        ([(header::CONTENT_TYPE, content_type)], body).into_response()
    };
    match shape.format.as_deref().unwrap_or("json") {
        "json" => Json(graph).into_response(),
        "dot" => text("text/vnd.graphviz; charset=utf-8", graph::dot(&graph)),
        "mermaid" => text("text/plain; charset=utf-8", graph::mermaid(&graph)),
        "svg" => {
            // Laid out off the async threads: a large graph takes a while.
            match tokio::task::spawn_blocking(move || graph::svg(&graph, left_to_right)).await {
                Ok(Ok(svg)) => text("image/svg+xml", svg),
                Ok(Err(error)) => Problem::invalid("too-large", error.to_string()).into_response(),
                Err(error) => Problem::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "layout",
                    format!("the graph layout failed: {error}"),
                )
                .into_response(),
            }
        }
        other => Problem::bad_request(format!(
            "unknown format `{other}`: json, dot, mermaid or svg"
        ))
        .into_response(),
    }
}

/// What the host knows beyond its trace: which hosts serve what, the workflows it keeps.
fn context(host: &Host) -> Context {
    let mut hosts: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let own = host.presence();
    for presence in std::iter::once(own).chain(host.hosts().live()) {
        for served in &presence.services {
            let list = hosts.entry(served.name.clone()).or_default();
            if !list.contains(&presence.id) {
                list.push(presence.id.clone());
            }
        }
    }
    let workflows = host
        .workflows()
        .iter()
        .map(|(name, kept)| {
            let on = &kept.workflow.on;
            Planned {
                name: name.clone(),
                actions: kept
                    .workflow
                    .steps
                    .iter()
                    .map(|s| s.action.clone())
                    .collect(),
                resources: on.resources.clone(),
                topics: on.mqtt.clone(),
                after: on
                    .workflow_run
                    .as_ref()
                    .map(|w| w.workflows.clone())
                    .unwrap_or_default(),
            }
        })
        .collect();
    Context { hosts, workflows }
}
