//! Runs over HTTP: `POST /v1/runs` starts one (the workflow in the body, YAML or
//! JSON), `GET /v1/runs` and `GET /v1/runs/{id}` read what its folder holds, and
//! `GET /v1/runs/{id}/events` streams its events (Server-Sent Events): the history
//! first, then each event as it happens, until the run ends. `POST
//! /v1/runs/{id}/cancel` stops one (the steps under way are stopped where they
//! run), `POST /v1/runs/{id}/resume` goes on with one, `POST
//! /v1/runs/{id}/again` runs its workflow anew, and `GET
//! /v1/runs/{id}/steps/{step}/log` reads what a step reported.

use super::Api;
use super::problem::Problem;
use crate::host::{Begin, LaunchError};
use crate::runner::record;
use crate::runner::{RunEvent, RunOptions, Stamped};
use crate::workflow::Workflow;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};
use std::convert::Infallible;
use std::sync::Arc;

/// What names a workflow sent in a request body, in its errors.
const BODY_SOURCE: &str = "request-body.yaml";

/// How a run started over HTTP goes.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub(super) struct Start {
    /// Steps running at once, at most (default 16).
    max_parallel: Option<usize>,
    /// Run every step, even those unchanged since their last success.
    no_cache: Option<bool>,
}

/// A run just started.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct Started {
    /// The run's id.
    id: String,
    /// `running`.
    status: String,
    /// Its state: `GET` this.
    url: String,
    /// Its events, streamed: `GET` this.
    events: String,
}

/// Starts a run of the workflow in the body (YAML, or JSON: a list of steps or an
/// object with `steps`), checked first like `copper-wasm run` checks it.
#[utoipa::path(
    post,
    path = "/v1/runs",
    tag = "runs",
    params(Start),
    request_body(content = String, description = "The workflow, YAML or JSON", content_type = "application/yaml"),
    responses(
        (status = 201, description = "The run started", body = Started,
            headers(("Location" = String, description = "The run's URL"))),
        (status = 400, description = "The body is not text", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or a wrong bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The workflow is invalid (the error names the line and field)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The broker cannot be reached, or the run cannot be recorded", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn start(
    State(api): State<Arc<Api>>,
    Query(how): Query<Start>,
    body: Bytes,
) -> Response {
    let Ok(text) = String::from_utf8(body.to_vec()) else {
        return Problem::bad_request("the workflow is not UTF-8 text").into_response();
    };
    let workflow = match Workflow::parse(&text, std::path::Path::new(BODY_SOURCE)) {
        Ok(workflow) => workflow,
        Err(error) => {
            return Problem::invalid("invalid-workflow", error.to_string()).into_response();
        }
    };
    start_kept(api, workflow, text, how).await
}

/// Starts a run of `workflow` (read from a body, or kept by the daemon).
pub(super) async fn start_kept(
    api: Arc<Api>,
    workflow: Workflow,
    text: String,
    how: Start,
) -> Response {
    let options = RunOptions {
        max_parallel: how.max_parallel.unwrap_or(16).clamp(1, 4096),
        ..RunOptions::default()
    };
    begin_run(
        api,
        workflow,
        Begin::New(text),
        options,
        how.no_cache != Some(true),
    )
    .await
}

/// Starts a run and answers 201 with where to watch it, or the problem that kept
/// it from starting.
async fn begin_run(
    api: Arc<Api>,
    workflow: Workflow,
    begin: Begin,
    options: RunOptions,
    cache: bool,
) -> Response {
    match api.host.launch(workflow, begin, options, cache).await {
        Ok(id) => started(&id).into_response(),
        Err(error) => launch_problem(error).into_response(),
    }
}

/// The problem a run that could not be launched is: 422 or 503.
pub(super) fn launch_problem(error: LaunchError) -> Problem {
    match error {
        LaunchError::Invalid(error) => Problem::invalid("invalid-workflow", error.to_string()),
        LaunchError::Unavailable(why) => Problem::unavailable(why),
    }
}

/// `201 Created` for run `id`, with where to watch it.
pub(super) fn started(id: &str) -> impl IntoResponse + use<> {
    let url = format!("/v1/runs/{id}");
    let started = Started {
        id: id.to_string(),
        status: "running".into(),
        events: format!("{url}/events"),
        url: url.clone(),
    };
    (
        StatusCode::CREATED,
        [(header::LOCATION, url)],
        Json(started),
    )
}

/// True for the event a run's history ends with.
fn is_last(event: &RunEvent) -> bool {
    matches!(
        event,
        RunEvent::RunFinished { .. } | RunEvent::RunCancelled { .. }
    )
}

/// Lists the runs recorded in the daemon's cache folder, oldest first.
#[utoipa::path(
    get,
    path = "/v1/runs",
    tag = "runs",
    responses(
        (status = 200, description = "Every run: its id, workflow, status, start and end, and its steps", body = Vec<Object>),
        (status = 401, description = "No or a wrong bearer token", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn list(State(api): State<Arc<Api>>) -> Response {
    Json(record::list(api.host.cache())).into_response()
}

/// Shows one run: its state, and each step's status, tries, results and error.
#[utoipa::path(
    get,
    path = "/v1/runs/{id}",
    tag = "runs",
    params(("id" = String, Path, description = "The run's id")),
    responses(
        (status = 200, description = "The run's state, as its folder's state.json holds it", body = Object),
        (status = 401, description = "No or a wrong bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn show(State(api): State<Arc<Api>>, Path(id): Path<String>) -> Response {
    match record::state(api.host.cache(), &id) {
        Ok(state) => Json(state).into_response(),
        Err(_) => no_run(&id).into_response(),
    }
}

/// Streams a run's events: those so far, then each as it happens, until
/// `run.finished`. Each SSE event is named after the run event (`step.finished`),
/// its data the event as the history holds it, its id the event's index; a
/// client that reconnects with `Last-Event-ID` gets only what came after.
#[utoipa::path(
    get,
    path = "/v1/runs/{id}/events",
    tag = "runs",
    params(("id" = String, Path, description = "The run's id")),
    responses(
        (status = 200, description = "Server-Sent Events, one per run event", content_type = "text/event-stream", body = String),
        (status = 401, description = "No or a wrong bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn events(
    State(api): State<Arc<Api>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok());
    let skip = after.map_or(0, |n| n + 1);
    let (history, live) = match api.host.live_run(&id) {
        Some(run) => {
            let (history, receiver) = run.watch();
            (history, Some(receiver))
        }
        None => match record::show(api.host.cache(), &id) {
            Ok((_, history)) => (history, None),
            Err(_) => return no_run(&id).into_response(),
        },
    };
    let ended = history.iter().any(|e| is_last(&e.event));
    let count = history.len();
    let past = stream::iter(history.into_iter().enumerate());
    let coming = match live.filter(|_| !ended) {
        Some(receiver) => {
            stream::unfold((receiver, count, false), |(mut rx, n, done)| async move {
                if done {
                    return None;
                }
                let event = rx.recv().await?;
                let last = is_last(&event.event);
                Some(((n, event), (rx, n + 1, last)))
            })
            .boxed()
        }
        None => stream::empty().boxed(),
    };
    let all = past.chain(coming).skip(skip).map(sse_event);
    Sse::new(all)
        .keep_alive(KeepAlive::default())
        .into_response()
}

fn sse_event((index, stamped): (usize, Stamped)) -> Result<Event, Infallible> {
    let data = serde_json::to_string(&stamped).expect("events serialize");
    let name = serde_json::to_value(&stamped.event)
        .ok()
        .and_then(|v| v["event"].as_str().map(str::to_string))
        .unwrap_or_else(|| "event".into());
    Ok(Event::default()
        .event(name)
        .id(index.to_string())
        .data(data))
}

/// Cancels a run under way: the steps running are stopped where they run (a
/// component's instance dropped, a container killed), the others are not run.
/// Answers once the run has ended, with its state (`cancelled`).
#[utoipa::path(
    post,
    path = "/v1/runs/{id}/cancel",
    tag = "runs",
    params(("id" = String, Path, description = "The run's id")),
    responses(
        (status = 200, description = "Cancelled: the run's state", body = Object),
        (status = 401, description = "No or a wrong bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The run is not under way on this daemon", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn cancel(State(api): State<Arc<Api>>, Path(id): Path<String>) -> Response {
    let Some(run) = api.host.live_run(&id) else {
        return match record::state(api.host.cache(), &id) {
            Ok(state) => Problem::new(
                StatusCode::CONFLICT,
                "not-running",
                format!(
                    "run `{id}` is {}: only a run under way can be cancelled",
                    state.status
                ),
            )
            .into_response(),
            Err(_) => no_run(&id).into_response(),
        };
    };
    run.cancel("cancelled over the HTTP API");
    run.ended().await;
    match record::state(api.host.cache(), &id) {
        Ok(state) => Json(state).into_response(),
        Err(_) => no_run(&id).into_response(),
    }
}

/// Goes on with a run that did not succeed: the steps that succeeded keep their
/// results, the others run again (as `copper-wasm run --resume`).
#[utoipa::path(
    post,
    path = "/v1/runs/{id}/resume",
    tag = "runs",
    params(("id" = String, Path, description = "The run's id"), Start),
    responses(
        (status = 201, description = "The run goes on", body = Started,
            headers(("Location" = String, description = "The run's URL"))),
        (status = 401, description = "No or a wrong bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The run is under way", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Its workflow no longer checks", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The broker cannot be reached, or the run cannot be recorded", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn resume(
    State(api): State<Arc<Api>>,
    Path(id): Path<String>,
    Query(how): Query<Start>,
) -> Response {
    if let Some(run) = api.host.live_run(&id) {
        // One that has said its end is only writing its record: wait for that.
        if run.told_its_end() {
            run.ended().await;
        }
    }
    if api.host.live_run(&id).is_some() {
        return Problem::new(
            StatusCode::CONFLICT,
            "running",
            format!("run `{id}` is under way"),
        )
        .into_response();
    }
    let (state, workflow, _) = match recorded(&api, &id) {
        Ok(recorded) => recorded,
        Err(problem) => return problem.into_response(),
    };
    let options = RunOptions {
        max_parallel: how.max_parallel.unwrap_or(16).clamp(1, 4096),
        run_id: id,
        done: state.succeeded(),
        ..RunOptions::default()
    };
    let cache = how.no_cache != Some(true);
    begin_run(api, workflow, Begin::Resume(state), options, cache).await
}

/// Starts a new run of the workflow a recorded run ran (its `workflow.yaml`),
/// every step from the start (unchanged steps still come from the step cache).
#[utoipa::path(
    post,
    path = "/v1/runs/{id}/again",
    tag = "runs",
    params(("id" = String, Path, description = "The run's id"), Start),
    responses(
        (status = 201, description = "A new run started", body = Started,
            headers(("Location" = String, description = "The new run's URL"))),
        (status = 401, description = "No or a wrong bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Its workflow no longer checks", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The broker cannot be reached, or the run cannot be recorded", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn again(
    State(api): State<Arc<Api>>,
    Path(id): Path<String>,
    Query(how): Query<Start>,
) -> Response {
    let (state, mut workflow, text) = match recorded(&api, &id) {
        Ok(recorded) => recorded,
        Err(problem) => return problem.into_response(),
    };
    workflow.name = state.workflow;
    start_kept(api, workflow, text, how).await
}

/// What a step reported while it ran (its progress, one line each, timed), as its
/// run's folder keeps it in `logs/<step>.log`.
#[utoipa::path(
    get,
    path = "/v1/runs/{id}/steps/{step}/log",
    tag = "runs",
    params(
        ("id" = String, Path, description = "The run's id"),
        ("step" = String, Path, description = "The step's id"),
    ),
    responses(
        (status = 200, description = "The step's log (empty when it reported nothing)", content_type = "text/plain", body = String),
        (status = 401, description = "No or a wrong bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run, or no such step in it", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn step_log(
    State(api): State<Arc<Api>>,
    Path((id, step)): Path<(String, String)>,
) -> Response {
    let cache = api.host.cache();
    let Ok(state) = record::state(cache, &id) else {
        return no_run(&id).into_response();
    };
    // Only a step the run has: its id is never a path of the asker's.
    if !state.steps.contains_key(&step) {
        return Problem::not_found("unknown-step", format!("run `{id}` has no step `{step}`"))
            .into_response();
    }
    let file = record::runs_dir(cache)
        .join(&id)
        .join("logs")
        .join(format!("{step}.log"));
    let text = std::fs::read_to_string(file).unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
}

/// Run `id` as its folder records it: its state, and the workflow it ran (read
/// back from its `workflow.yaml`) with that file's text.
pub(super) fn recorded(
    api: &Api,
    id: &str,
) -> Result<(record::RunState, Workflow, String), Problem> {
    let cache = api.host.cache();
    let state = record::state(cache, id).map_err(|_| no_run(id))?;
    let file = record::runs_dir(cache).join(id).join("workflow.yaml");
    let text = std::fs::read_to_string(&file).map_err(|error| {
        Problem::unavailable(format!("cannot read {}: {error}", file.display()))
    })?;
    let workflow = Workflow::parse(&text, &state.source)
        .map_err(|error| Problem::invalid("invalid-workflow", error.to_string()))?;
    Ok((state, workflow, text))
}

pub(super) fn no_run(id: &str) -> Problem {
    Problem::not_found("unknown-run", format!("no run `{id}` is recorded here"))
}
