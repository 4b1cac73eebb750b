//! The daemon's workflows (`serve --workflows DIR`): `GET /v1/workflows` lists
//! them, `GET /v1/workflows/{name}` shows one, `POST /v1/workflows/{name}/runs`
//! runs one by name (an ordinary run: recorded, streamed, cancelled, resumed as
//! any run of `/v1/runs`).

use super::Api;
use super::problem::Problem;
use super::runs::{Start, Started};
use crate::workflow::Workflow;
use crate::workflow::on::WhenBusy;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// One workflow the daemon keeps.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WorkflowView {
    /// Its name.
    pub name: String,
    /// Its file.
    pub source: String,
    /// Its steps: id and action, in file order.
    pub steps: Vec<StepView>,
    /// What starts it by itself (`schedule`, `mqtt`, `resource`, `webhook`,
    /// `watch`, `workflow_run`); empty: only when asked.
    pub triggers: Vec<String>,
    /// Its runs at once, at most.
    pub concurrency: usize,
    /// What a trigger does when that many run: `queue`, `skip`, `cancel-oldest`.
    pub when_busy: String,
}

/// One step of a kept workflow.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StepView {
    /// Its id.
    pub id: String,
    /// Its action.
    pub action: String,
    /// The steps it needs.
    pub needs: Vec<String>,
}

fn view(workflow: &Workflow) -> WorkflowView {
    let on = &workflow.on;
    let triggers = [
        ("schedule", !on.schedules.is_empty()),
        ("mqtt", !on.mqtt.is_empty()),
        ("resource", !on.resources.is_empty()),
        ("webhook", on.webhook.is_some()),
        ("watch", on.watch.is_some()),
        ("workflow_run", on.workflow_run.is_some()),
    ]
    .into_iter()
    .filter(|(_, has)| *has)
    .map(|(kind, _)| kind.to_string())
    .collect();
    WorkflowView {
        name: workflow.name.clone(),
        source: workflow.source.display().to_string(),
        steps: workflow
            .steps
            .iter()
            .map(|s| StepView {
                id: s.id.clone(),
                action: s.action.clone(),
                needs: s.needs.clone(),
            })
            .collect(),
        triggers,
        concurrency: workflow.concurrency.max,
        when_busy: match workflow.concurrency.when_busy {
            WhenBusy::Queue => "queue",
            WhenBusy::Skip => "skip",
            WhenBusy::CancelOldest => "cancel-oldest",
        }
        .to_string(),
    }
}

fn unknown(name: &str) -> Response {
    Problem::not_found(
        "unknown-workflow",
        format!("the daemon keeps no workflow `{name}`"),
    )
    .into_response()
}

/// Lists the workflows the daemon keeps, by name.
#[utoipa::path(
    get,
    path = "/v1/workflows",
    tag = "workflows",
    responses(
        (status = 200, description = "Every workflow kept, by name", body = Vec<WorkflowView>),
        (status = 401, description = "No or a wrong bearer token", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn list(State(api): State<Arc<Api>>) -> Json<Vec<WorkflowView>> {
    Json(
        api.host
            .workflows()
            .values()
            .map(|kept| view(&kept.workflow))
            .collect(),
    )
}

/// Shows one workflow the daemon keeps.
#[utoipa::path(
    get,
    path = "/v1/workflows/{name}",
    tag = "workflows",
    params(("name" = String, Path, description = "The workflow's name")),
    responses(
        (status = 200, description = "The workflow", body = WorkflowView),
        (status = 401, description = "No or a wrong bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such workflow", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn show(State(api): State<Arc<Api>>, Path(name): Path<String>) -> Response {
    match api.host.workflows().get(&name) {
        Some(kept) => Json(view(&kept.workflow)).into_response(),
        None => unknown(&name),
    }
}

/// Runs a workflow the daemon keeps, by name; as `POST /v1/runs` with its text.
#[utoipa::path(
    post,
    path = "/v1/workflows/{name}/runs",
    tag = "workflows",
    params(("name" = String, Path, description = "The workflow's name"), Start),
    responses(
        (status = 201, description = "The run started", body = Started,
            headers(("Location" = String, description = "The run's URL"))),
        (status = 401, description = "No or a wrong bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such workflow", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The workflow no longer checks (a service it needs is not served)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The broker cannot be reached, or the run cannot be recorded", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn run(
    State(api): State<Arc<Api>>,
    Path(name): Path<String>,
    Query(how): Query<Start>,
) -> Response {
    let Some(kept) = api.host.workflows().get(&name).cloned() else {
        return unknown(&name);
    };
    super::runs::start_kept(api, kept.workflow, kept.text, how).await
}
