//! Services: `GET /v1/services` and `GET /v1/services/{name}`: what each answers
//! (its actions and their schemas), what runs it, how busy it is here, and which
//! hosts on the broker serve it.

use super::Api;
use super::problem::Problem;
use crate::scheduler::Load;
use crate::service::ServiceInfo;
use crate::services_file::{BackendSpec, Mode};
use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// One service, as the daemon sees it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ServiceView {
    /// Its name: the first level of its topics.
    pub name: String,
    /// Its version (a component's, an image's).
    pub version: String,
    /// What runs it: `component`, `container` (one per request), `container-service`
    /// (long-running), `external` (a program on the broker).
    pub backend: String,
    /// `up` when it takes requests here or on the broker, `paused` or `stopped`
    /// when it is so here, else `down`.
    pub status: String,
    /// Its actions.
    pub actions: Vec<ActionView>,
    /// Host capabilities it was granted.
    pub capabilities: Vec<String>,
    /// How busy it is on this host (only for services this host runs itself).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub load: Option<LoadView>,
    /// The copper-wasm hosts on the broker serving it (by their presence).
    pub hosts: Vec<String>,
}

/// One action of a service.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ActionView {
    /// Its topic, `<service>/<action>`, also its call's path under `/v1/actions/`.
    pub topic: String,
    /// What it does.
    pub doc: String,
    /// The JSON Schema of its input.
    #[schema(value_type = Object)]
    pub input_schema: serde_json::Value,
    /// The JSON Schema of its results.
    #[schema(value_type = Object)]
    pub output_schema: serde_json::Value,
}

/// How busy a service is on this host.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LoadView {
    /// Requests running now.
    pub in_flight: usize,
    /// Requests waiting for a worker.
    pub queued: usize,
    /// Requests it runs at once, at most.
    pub concurrency: usize,
    /// Requests that may wait behind those (more are refused with 429).
    pub queue: usize,
}

impl From<Load> for LoadView {
    fn from(load: Load) -> Self {
        Self {
            in_flight: load.in_flight,
            queued: load.queued,
            concurrency: load.concurrency,
            queue: load.queue,
        }
    }
}

/// Lists every service known here: hosted here, declared by the services file, or
/// served by another copper-wasm host on the broker.
#[utoipa::path(
    get,
    path = "/v1/services",
    tag = "services",
    responses(
        (status = 200, description = "Every service, by name", body = Vec<ServiceView>),
        (status = 401, description = "No or a wrong bearer token", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn list(State(api): State<Arc<Api>>) -> Json<Vec<ServiceView>> {
    Json(views(&api).await)
}

/// Shows one service.
#[utoipa::path(
    get,
    path = "/v1/services/{name}",
    tag = "services",
    params(("name" = String, Path, description = "The service")),
    responses(
        (status = 200, description = "The service", body = ServiceView),
        (status = 401, description = "No or a wrong bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such service", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn show(State(api): State<Arc<Api>>, Path(name): Path<String>) -> Response {
    match views(&api).await.into_iter().find(|s| s.name == name) {
        Some(view) => Json(view).into_response(),
        None => Problem::not_found("unknown-service", format!("no service `{name}` is known"))
            .into_response(),
    }
}

/// Every service known here, by name.
async fn views(api: &Api) -> Vec<ServiceView> {
    let host = &api.host;
    // This host as it is now, not as its last presence came back from the broker.
    let mut live = host.hosts().live();
    live.retain(|h| h.id != host.id());
    let here = host.presence();
    if !here.services.is_empty() {
        live.push(here);
    }
    let hosts_of = |name: &str| -> Vec<String> {
        live.iter()
            .filter(|h| h.serves(name))
            .map(|h| h.id.clone())
            .collect()
    };
    let mut views: Vec<ServiceView> = host
        .registry()
        .services()
        .map(|info| {
            let backend = host
                .registry()
                .get(&info.name)
                .map_or("component", |s| s.backend());
            let state = host.calls().state(&info.name).map(|s| s.to_string());
            let current = host.calls().info(&info.name);
            let status = state.as_deref().unwrap_or("up");
            view(
                current.as_ref().unwrap_or(info),
                backend,
                status,
                hosts_of(&info.name),
            )
        })
        .map(|mut view| {
            view.load = host.calls().load(&view.name).map(LoadView::from);
            view
        })
        .collect();
    for spec in host.declared() {
        if views.iter().any(|v| v.name == spec.name) {
            continue;
        }
        let backend = match &spec.backend {
            BackendSpec::Component(_) => "component",
            BackendSpec::Docker(docker) if docker.mode == Mode::Service => "container-service",
            BackendSpec::Docker(_) => "container",
            BackendSpec::External => "external",
        };
        let hosts = hosts_of(&spec.name);
        let up = !hosts.is_empty() || api.elsewhere.is_up(&spec.name);
        let status = match host.service_state(&spec.name).await {
            Some(state) if state != crate::scheduler::ServiceState::Up => state.to_string(),
            _ if up => "up".to_string(),
            _ => "down".to_string(),
        };
        views.push(view(&spec.info(), backend, &status, hosts));
    }
    for presence in &live {
        for served in &presence.services {
            if views.iter().all(|v| v.name != served.name) {
                let info = ServiceInfo {
                    name: served.name.clone(),
                    version: String::new(),
                    actions: Vec::new(),
                    capabilities: Vec::new(),
                };
                let mut remote = view(&info, "remote", "up", hosts_of(&served.name));
                remote.actions = api
                    .elsewhere
                    .actions_of(&served.name)
                    .into_iter()
                    .map(|topic| ActionView {
                        topic,
                        doc: String::new(),
                        input_schema: serde_json::json!({}),
                        output_schema: serde_json::json!({}),
                    })
                    .collect();
                views.push(remote);
            }
        }
    }
    views.sort_by(|a, b| a.name.cmp(&b.name));
    views
}

fn view(info: &ServiceInfo, backend: &str, status: &str, hosts: Vec<String>) -> ServiceView {
    ServiceView {
        name: info.name.clone(),
        version: info.version.clone(),
        backend: backend.to_string(),
        status: status.to_string(),
        actions: info
            .actions
            .iter()
            .map(|action| ActionView {
                topic: info.topic(action),
                doc: action.doc.clone(),
                input_schema: action.input_schema.clone(),
                output_schema: action.output_schema.clone(),
            })
            .collect(),
        capabilities: info.capabilities.clone(),
        load: None,
        hosts,
    }
}
