//! A service's life over HTTP: `POST /v1/services/{name}/{command}` starts, stops,
//! pauses, resumes or reloads a service hosted by this daemon.

use super::Api;
use super::problem::Problem;
use crate::scheduler::{Command, LifecycleError};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Where a service is after a command.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LifecycleView {
    /// The service.
    pub name: String,
    /// What was asked.
    pub command: String,
    /// Where it is now: `up`, `paused` or `stopped`.
    pub state: String,
    /// Its version now (a reload changes it).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub version: Option<String>,
}

/// Starts, stops, pauses, resumes or reloads a service hosted here.
///
/// `pause` takes no more requests and finishes those taken (requests on the bus
/// wait at the broker; calls get 503); `resume` takes them again. `stop` serves it
/// no more here (other hosts take its requests); `start` serves it again. `reload`
/// reads a component again from its file or URL: requests running finish on the
/// old version, the next ones get the new one; a version that does not load leaves
/// the old one serving (422, the error says why). A long-running container is
/// started and stopped.
#[utoipa::path(
    post,
    path = "/v1/services/{name}/{command}",
    tag = "services",
    params(
        ("name" = String, Path, description = "The service"),
        ("command" = String, Path, description = "`start`, `stop`, `pause`, `resume` or `reload`"),
    ),
    responses(
        (status = 200, description = "Done: where the service is now", body = LifecycleView),
        (status = 401, description = "No or a wrong bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such service hosted here, or no such command", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The command does not apply to the service as it is (resume a stopped one, pause a container)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The new version cannot be loaded, or answers other actions: the old one goes on serving", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The broker cannot be reached, or the service's container did not start", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn command(
    State(api): State<Arc<Api>>,
    Path((name, command)): Path<(String, String)>,
) -> Response {
    let command: Command = match command.parse() {
        Ok(command) => command,
        Err(why) => return Problem::not_found("unknown-command", why).into_response(),
    };
    match api.host.command(&name, command).await {
        Ok(state) => Json(LifecycleView {
            version: api.host.calls().info(&name).map(|i| i.version),
            name,
            command: command.name().to_string(),
            state: state.to_string(),
        })
        .into_response(),
        Err(error) => problem(&error).into_response(),
    }
}

/// The problem a refused command is.
fn problem(error: &LifecycleError) -> Problem {
    let detail = crate::error_chain::error_chain(error);
    match error {
        LifecycleError::Unknown(_) => Problem::not_found("unknown-service", detail),
        LifecycleError::Conflict { .. } | LifecycleError::Unsupported { .. } => {
            Problem::new(StatusCode::CONFLICT, "conflict", detail)
        }
        LifecycleError::ActionsChanged { .. } | LifecycleError::Reload { .. } => {
            Problem::invalid("reload-failed", detail)
        }
        LifecycleError::Start { .. } | LifecycleError::Bus(_) => Problem::unavailable(detail),
    }
}
