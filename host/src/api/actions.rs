//! Fast calls: `POST /v1/actions/{service}/{action}`, one action's input in, its
//! finish out. A service hosted here is called straight through the scheduler; one
//! served by another host on the broker is asked over the bus.

use super::Api;
use super::problem::Problem;
use crate::protocol::{self, Object, Status};
use crate::runner::RequestError;
use crate::scheduler::ServiceState;
use crate::service::{Failure, FailureKind};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// Seconds a client is told to wait when a queue is full.
const RETRY_AFTER: u64 = 1;

/// How much longer than the request's own deadline an answer from another host
/// is waited for (it may have queued the request).
const REMOTE_SLACK: Duration = Duration::from_secs(30);

/// Calls one action and returns its finish entry: the input with the results and
/// `status` (`success`, or `failed` when the action itself failed: its `error` says why).
#[utoipa::path(
    post,
    path = "/v1/actions/{service}/{action}",
    tag = "actions",
    params(
        ("service" = String, Path, description = "The service (the topic's first level)"),
        ("action" = String, Path, description = "The action (the topic's second level)"),
    ),
    request_body(content = Object, description = "The action's input, a JSON object", content_type = "application/json"),
    responses(
        (status = 200, description = "The finish entry: the input, the results and `status`; `failed` (with `error`) when the action itself failed", body = Object),
        (status = 400, description = "The body is not a JSON object", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or a wrong bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No service answers the action; `known` lists those that are answered", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The input does not match the action's schema (the error says where)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "The service's queue is full: nothing was run; try again after `Retry-After` seconds", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "The broker cannot be reached, the service went down, or it is paused or stopped here: nothing was run; try again after `Retry-After` seconds when given", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "The action ran past its deadline and was stopped, or no answer came in time", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn call(
    State(api): State<Arc<Api>>,
    Path((service, action)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let topic = format!("{service}/{action}");
    if !protocol::is_action_topic(&topic) {
        return Problem::not_found(
            "unknown-action",
            format!("`{topic}` is not an action topic `<service>/<action>`"),
        )
        .into_response();
    }
    let mut request = if body.is_empty() {
        Object::new()
    } else {
        match serde_json::from_slice(&body) {
            Ok(Value::Object(fields)) => fields,
            Ok(_) => return Problem::bad_request("the body is not a JSON object").into_response(),
            Err(error) => {
                return Problem::bad_request(format!("the body is not JSON: {error}"))
                    .into_response();
            }
        }
    };
    request
        .entry("action")
        .or_insert_with(|| Value::from(topic.clone()));
    // A service stopped here may be served by another host: ask the bus then.
    let stopped = api.host.calls().state(&service) == Some(ServiceState::Stopped);
    if !stopped && let Some(outcome) = api.host.calls().call(&topic, request.clone()).await {
        return answer_here(&topic, &request, outcome);
    }
    if stopped && !api.elsewhere.may_answer(&topic) {
        let mut problem = Problem::unavailable(format!(
            "service `{service}` is stopped here and no other host serves it: `{topic}` was not run"
        ));
        problem.retry_after = Some(RETRY_AFTER);
        return problem.into_response();
    }
    if !api.elsewhere.may_answer(&topic) {
        let mut known = api.host.registry().topics();
        known.extend(api.elsewhere.known());
        known.sort();
        known.dedup();
        return unanswered(RequestError::NotServed { topic, known });
    }
    let wait = request
        .get("timeout")
        .and_then(|t| crate::timeout::parse(t).ok())
        .unwrap_or(api.default_timeout)
        + REMOTE_SLACK;
    match api.host.call(&topic, &request, Some(wait)).await {
        Ok(finish) => answer_elsewhere(finish),
        Err(error) => unanswered(error),
    }
}

/// The answer of a service hosted here.
fn answer_here(topic: &str, request: &Object, outcome: Result<Object, Failure>) -> Response {
    match outcome {
        Ok(results) => Json(protocol::success_entry(request, &results)).into_response(),
        Err(failure) => match problem_for(failure.kind, topic, &failure.to_string()) {
            Some(problem) => problem.into_response(),
            None => Json(protocol::failed_entry(
                request,
                &failure.to_string(),
                failure.exit_code,
            ))
            .into_response(),
        },
    }
}

/// The answer of a service on another host: its finish, or the problem its error names.
fn answer_elsewhere(finish: protocol::Finish) -> Response {
    if finish.status == Status::Failed
        && let Some(error) = &finish.error
        && let Some(problem) =
            FailureKind::of_error(error).and_then(|kind| problem_for(kind, "the action", error))
    {
        return problem.into_response();
    }
    Json(finish.entry).into_response()
}

/// The problem a failure of `kind` is, when it is not the action's own failure
/// (those are results with `status: failed`).
fn problem_for(kind: FailureKind, topic: &str, error: &str) -> Option<Problem> {
    match kind {
        FailureKind::InvalidInput => Some(Problem::invalid("invalid-input", error)),
        FailureKind::Busy => {
            let mut problem = Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "queue-full",
                format!("{error}: `{topic}` was not run; try again"),
            );
            problem.retry_after = Some(RETRY_AFTER);
            Some(problem)
        }
        FailureKind::TimedOut => Some(Problem::new(StatusCode::GATEWAY_TIMEOUT, "deadline", error)),
        FailureKind::Unavailable => {
            let mut problem = Problem::unavailable(format!("{error}: `{topic}` was not run"));
            problem.retry_after = Some(RETRY_AFTER);
            Some(problem)
        }
        FailureKind::Failed | FailureKind::Trapped | FailureKind::OutOfMemory => None,
    }
}

/// No finish came: the action is unknown, or the broker or service failed.
fn unanswered(error: RequestError) -> Response {
    match error {
        RequestError::NotServed { topic, known } => {
            let mut problem = Problem::not_found(
                "unknown-action",
                format!("no service here or on the broker answers `{topic}`"),
            );
            problem.known = Some(known);
            problem.into_response()
        }
        RequestError::NotAnAction(topic) => Problem::not_found(
            "unknown-action",
            format!("`{topic}` is not an action topic"),
        )
        .into_response(),
        RequestError::NoAnswer { .. } => {
            Problem::new(StatusCode::GATEWAY_TIMEOUT, "no-answer", error.to_string())
                .into_response()
        }
        RequestError::ServiceDown(_) | RequestError::Bus(_) => {
            Problem::unavailable(error.to_string()).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_failures_of_the_request_itself_are_problems() {
        for kind in FailureKind::ALL {
            let error = Failure::new(kind, "why").to_string();
            assert_eq!(FailureKind::of_error(&error), Some(kind), "{error}");
            let problem = problem_for(kind, "t/a", &error).map(|p| p.status);
            let expected = match kind {
                FailureKind::InvalidInput => Some(422),
                FailureKind::Busy => Some(429),
                FailureKind::TimedOut => Some(504),
                FailureKind::Unavailable => Some(503),
                _ => None,
            };
            assert_eq!(problem, expected, "{kind}");
        }
        assert_eq!(
            FailureKind::of_error("busy: nobody"),
            Some(FailureKind::Busy)
        );
        assert_eq!(FailureKind::of_error("busyness"), None);
        assert_eq!(FailureKind::of_error("copper's own error"), None);
    }
}
