//! `GET /v1/reloads`: what the daemon read again while serving, and what it refused.

use super::Api;
use super::problem::Problem;
use axum::Json;
use axum::extract::State;
use serde::Serialize;
use std::sync::Arc;

/// One reload, done or refused.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReloadView {
    /// Its place among the daemon's reloads, from 1.
    pub seq: u64,
    /// When, in RFC 3339.
    pub at: String,
    /// What was read again: `workflows`, `services file`, `service <name>`, `triggers`.
    pub what: String,
    /// True when the new version took over; false when the old one stays.
    pub ok: bool,
    /// What changed, or why nothing did (with the file, line and field).
    pub detail: String,
}

/// Lists the last reloads (at most 64), oldest first.
#[utoipa::path(
    get,
    path = "/v1/reloads",
    tag = "services",
    responses(
        (status = 200, description = "The last reloads, oldest first", body = Vec<ReloadView>),
        (status = 401, description = "No or a wrong bearer token", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn list(State(api): State<Arc<Api>>) -> Json<Vec<ReloadView>> {
    let reloads = api.host.reloads().into_iter().map(|r| ReloadView {
        seq: r.seq,
        at: r.at,
        what: r.what,
        ok: r.ok,
        detail: r.detail,
    });
    Json(reloads.collect())
}
