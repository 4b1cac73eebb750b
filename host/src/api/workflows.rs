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

/// What a webhook did.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HookView {
    /// `started`, `queued` (as many runs as the workflow may have go on: it waits
    /// its turn) or `skipped` (its `concurrency:` says to start nothing then).
    pub status: String,
    /// The run started, when one did.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub run: Option<String>,
    /// Its URL.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub url: Option<String>,
}

/// A webhook (leprechaun's hook): starts the kept workflow `name` whose `on:` has
/// a `webhook`, with the body as `${{ trigger.body }}` (JSON when it reads as
/// JSON, else text). Its own token, from the variable its `secret` names, comes
/// as `Authorization: Bearer <token>` or `?token=`; open without the API's token.
#[utoipa::path(
    post,
    path = "/hooks/{name}",
    tag = "workflows",
    params(
        ("name" = String, Path, description = "The workflow's name"),
        ("token" = Option<String>, Query, description = "The hook's token, when not in `Authorization`"),
    ),
    request_body(content = String, description = "Anything: the trigger's body", content_type = "application/json"),
    responses(
        (status = 202, description = "Taken: a run started, waits its turn, or was skipped", body = HookView),
        (status = 401, description = "No or a wrong token for this hook", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No kept workflow of that name has a webhook", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The workflow no longer checks", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The hook's token is not set on the daemon, or the broker cannot be reached", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn hook(
    State(api): State<Arc<Api>>,
    Path(name): Path<String>,
    Query(query): Query<HookQuery>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Some(webhook) = api
        .host
        .workflows()
        .get(&name)
        .and_then(|k| k.workflow.on.webhook.clone())
    else {
        return Problem::not_found(
            "unknown-hook",
            format!("no workflow `{name}` with a webhook is kept here"),
        )
        .into_response();
    };
    let Some(token) = std::env::var(&webhook.secret)
        .ok()
        .filter(|t| !t.is_empty())
    else {
        return Problem::unavailable(format!(
            "the hook's token is not set on the daemon: set {}",
            webhook.secret
        ))
        .into_response();
    };
    let given = super::bearer(&headers).map(str::to_string).or(query.token);
    if !given.is_some_and(|given| crate::access::same_secret(&given, &token)) {
        return Problem::new(
            axum::http::StatusCode::UNAUTHORIZED,
            "unauthorized",
            format!(
                "this hook needs its token (the value of {})",
                webhook.secret
            ),
        )
        .into_response();
    }
    let body = serde_json::from_slice::<serde_json::Value>(&body)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&body).into_owned()));
    let trigger = serde_json::json!({"kind": "webhook", "body": body});
    let view = match api.host.fire(&name, trigger).await {
        Ok(crate::host::Fired::Started(id)) => HookView {
            status: "started".into(),
            url: Some(format!("/v1/runs/{id}")),
            run: Some(id),
        },
        Ok(crate::host::Fired::Queued) => HookView {
            status: "queued".into(),
            run: None,
            url: None,
        },
        Ok(crate::host::Fired::Skipped) => HookView {
            status: "skipped".into(),
            run: None,
            url: None,
        },
        Err(error) => return super::runs::launch_problem(error).into_response(),
    };
    (axum::http::StatusCode::ACCEPTED, Json(view)).into_response()
}

/// A hook's query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub(super) struct HookQuery {
    /// The hook's token.
    token: Option<String>,
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
