//! The daemon's HTTP API (docs/api.md): any program, in any language, calls
//! actions, starts and watches runs and reads the services of a running host,
//! without an MQTT client.
//!
//! # Layout
//! - `actions.rs`: fast calls, `POST /v1/actions/{service}/{action}`: straight to
//!   the scheduler for a service hosted here, over the bus for one elsewhere.
//! - `runs.rs`: runs started, listed, shown, streamed (Server-Sent Events),
//!   cancelled and resumed, and their steps' logs.
//! - `services.rs`: the services, their actions and schemas, how busy each is.
//! - `lifecycle.rs`: a service started, stopped, paused, resumed or reloaded;
//!   `reloads.rs`: what the daemon read again while serving, and what it refused.
//! - `metrics.rs`: `/metrics` in Prometheus' text format.
//! - `graph.rs`: the pub/sub trace, the system graph drawn from it, a run's
//!   graph of steps (JSON, DOT, mermaid, SVG).
//! - `workers.rs`: the requests running and waiting now, and stopping one.
//! - `workflows.rs`: the workflows the daemon keeps, run by name.
//! - `elsewhere.rs`: the services up on the broker, kept current.
//! - `problem.rs`: errors as problem documents (RFC 9457).
//! - the console's pages (`/console/`, [`crate::console`]) are merged in.
//! - here: the router, the bearer token, health and readiness, `/openapi.json`
//!   (OpenAPI 3.1, generated from the handlers by utoipa), and serving until told
//!   to stop.
//!
//! It uses the core through [`Host`]'s public API only.

mod actions;
mod elsewhere;
mod graph;
mod lifecycle;
mod metrics;
mod problem;
mod reloads;
mod runs;
mod services;
mod workers;
mod workflows;

pub use lifecycle::LifecycleView;
pub use problem::Problem;
pub use services::{ActionView, LoadView, ServiceView};
pub use workers::WorkerView;
pub use workflows::{HookView, StepView, WorkflowView};

use crate::Host;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::serve::ListenerExt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The environment variable holding the API's bearer token.
pub const TOKEN_VARIABLE: &str = "COPPER_HTTP_TOKEN";

/// Where and how the API is served.
#[derive(Clone)]
pub struct ApiConfig {
    /// The address it listens on (port 0: any free port).
    pub listen: SocketAddr,
    /// The bearer token every `/v1` request must carry; required off loopback.
    pub token: Option<String>,
    /// The largest request body taken, in bytes.
    pub body_limit: usize,
    /// The deadline of a call that gives no `timeout` (to wait for another host's answer).
    pub default_timeout: Duration,
}

impl std::fmt::Debug for ApiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiConfig")
            .field("listen", &self.listen)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("body_limit", &self.body_limit)
            .finish()
    }
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT)),
            token: None,
            body_limit: 1 << 20,
            default_timeout: Duration::from_secs(300),
        }
    }
}

impl ApiConfig {
    /// Refuses what would be unsafe: an empty token, or an address beyond loopback
    /// without a token.
    pub fn check(&self) -> Result<(), ApiError> {
        if self.token.as_deref() == Some("") {
            return Err(ApiError::EmptyToken);
        }
        if !self.listen.ip().is_loopback() && self.token.is_none() {
            return Err(ApiError::NoToken(self.listen));
        }
        Ok(())
    }
}

/// The port the API listens on unless told otherwise.
pub const DEFAULT_PORT: u16 = 7883;

/// Why the API cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Off loopback, every client must present a token, and none was given.
    #[error(
        "the HTTP API would listen on {0}, beyond loopback, without a token: set {TOKEN_VARIABLE}"
    )]
    NoToken(SocketAddr),
    /// The token is empty.
    #[error("{TOKEN_VARIABLE} is empty")]
    EmptyToken,
    /// The address cannot be listened on.
    #[error("cannot listen on {addr}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The API's own connection to the broker failed.
    #[error(transparent)]
    Bus(#[from] crate::bus::BusError),
}

/// What every handler shares.
struct Api {
    host: Arc<Host>,
    token: Option<String>,
    default_timeout: Duration,
    elsewhere: elsewhere::Elsewhere,
    /// False once the daemon stops taking work.
    ready: AtomicBool,
}

/// The API being served; [`Serving::stop`] ends it.
pub struct Serving {
    addr: SocketAddr,
    api: Arc<Api>,
    stop: CancellationToken,
    server: tokio::task::JoinHandle<()>,
}

/// The OpenAPI document's frame; the paths come from the handlers.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "copper-wasm daemon",
        description = "Call actions, run workflows and read the services of a running `copper-wasm serve` (docs/api.md). Off loopback every `/v1` request carries `Authorization: Bearer <COPPER_HTTP_TOKEN>`."
    ),
    tags(
        (name = "actions", description = "Fast calls: one action, its input in, its finish out"),
        (name = "runs", description = "Workflows run by the daemon"),
        (name = "services", description = "What the daemon and the hosts on its broker serve, and their lifecycle"),
        (name = "workers", description = "The requests running and waiting on the daemon"),
        (name = "workflows", description = "The workflows the daemon keeps (serve --workflows DIR)"),
        (name = "console", description = "What the console draws: the pub/sub trace and the system graph"),
        (name = "daemon", description = "Health and readiness, for supervisors"),
    )
)]
struct Frame;

/// The `/v1` endpoints.
fn v1() -> OpenApiRouter<Arc<Api>> {
    OpenApiRouter::new()
        .routes(routes!(actions::call))
        .routes(routes!(runs::start, runs::list))
        .routes(routes!(runs::show))
        .routes(routes!(runs::events))
        .routes(routes!(runs::cancel))
        .routes(routes!(runs::resume))
        .routes(routes!(runs::again))
        .routes(routes!(runs::step_log))
        .routes(routes!(services::list))
        .routes(routes!(services::show))
        .routes(routes!(lifecycle::command))
        .routes(routes!(workers::list))
        .routes(routes!(workers::kill))
        .routes(routes!(workflows::list))
        .routes(routes!(workflows::show))
        .routes(routes!(workflows::run))
        .routes(routes!(reloads::list))
        .routes(routes!(metrics::render))
        .routes(routes!(graph::trace))
        .routes(routes!(graph::system))
        .routes(routes!(graph::run))
}

/// The endpoints open without the API's token: health and readiness for
/// supervisors, and the webhooks (each carries a token of its own).
fn daemon() -> OpenApiRouter<Arc<Api>> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(ready))
        .routes(routes!(workflows::hook))
}

/// The OpenAPI 3.1 document of the API, as `/openapi.json` serves it.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut openapi = OpenApiRouter::with_openapi(Frame::openapi())
        .merge(v1())
        .merge(daemon())
        .into_openapi();
    openapi.info.version = env!("CARGO_PKG_VERSION").to_string();
    openapi
}

/// The API's routes.
fn router(api: Arc<Api>, body_limit: usize) -> axum::Router {
    let document = Arc::new(openapi().to_json().expect("the OpenAPI document is JSON"));
    let (router, _) = OpenApiRouter::new()
        .merge(v1().route_layer(middleware::from_fn_with_state(api.clone(), require_token)))
        .merge(daemon())
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(api)
        .split_for_parts();
    router
        .route(
            "/openapi.json",
            axum::routing::get(move || {
                let document = document.clone();
                async move {
                    (
                        [(
                            header::CONTENT_TYPE,
                            HeaderValue::from_static("application/json"),
                        )],
                        document.as_str().to_owned(),
                    )
                }
            }),
        )
        .merge(crate::console::router())
        .fallback(|| async { Problem::not_found("not-found", "no such endpoint") })
}

/// `/v1` requires the bearer token when one is set.
async fn require_token(State(api): State<Arc<Api>>, request: Request, next: Next) -> Response {
    if let Some(token) = &api.token {
        let given = bearer(request.headers());
        if !given.is_some_and(|given| crate::access::same_secret(given, token)) {
            let mut response = Problem::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "this endpoint needs `Authorization: Bearer <token>`",
            )
            .into_response();
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return response;
        }
    }
    next.run(request).await
}

/// The token of an `Authorization: Bearer <token>` header, when there is one.
fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

/// The daemon is alive.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "daemon",
    responses((status = 200, description = "Alive", body = String))
)]
async fn health() -> &'static str {
    "ok"
}

/// The daemon takes work (it answers 503 once it is stopping).
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "daemon",
    responses(
        (status = 200, description = "Taking work", body = String),
        (status = 503, description = "Stopping", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn ready(State(api): State<Arc<Api>>) -> Response {
    if api.ready.load(Ordering::SeqCst) {
        "ready".into_response()
    } else {
        Problem::unavailable("the daemon is stopping").into_response()
    }
}

/// Serves the API of `host` as `config` says, until [`Serving::stop`].
///
/// Beyond loopback it refuses to start without a token.
pub async fn serve(host: Arc<Host>, config: ApiConfig) -> Result<Serving, ApiError> {
    config.check()?;
    // Counting starts now: what is recorded before a recorder is there is lost.
    metrics::recorder();
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ApiError::Listen {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ApiError::Listen {
        addr: config.listen,
        source,
    })?;
    let id = format!("copper-wasm-api-{}", uuid::Uuid::new_v4().simple());
    let bus = host.connect(&id, None).await?;
    let api = Arc::new(Api {
        host,
        token: config.token,
        default_timeout: config.default_timeout,
        elsewhere: elsewhere::Elsewhere::watch(bus).await?,
        ready: AtomicBool::new(true),
    });
    let router = router(api.clone(), config.body_limit);
    let stop = CancellationToken::new();
    // Small answers go out at once, not after the peer's delayed acknowledgement.
    let listener = listener.tap_io(|stream| {
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
    });
    let server = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let served = axum::serve(listener, router)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
            if let Err(error) = served {
                tracing::error!(%error, "the HTTP API stopped");
            }
        })
    };
    tracing::info!(%addr, "HTTP API listening");
    Ok(Serving {
        addr,
        api,
        stop,
        server,
    })
}

impl Serving {
    /// The address it listens on.
    pub fn address(&self) -> SocketAddr {
        self.addr
    }

    /// Stops taking requests, then waits at most `grace` for those under way
    /// (calls and runs) to finish.
    pub async fn stop(self, grace: Duration) {
        self.api.ready.store(false, Ordering::SeqCst);
        self.stop.cancel();
        let drained = async {
            let _ = self.server.await;
            self.api.host.drain_runs(grace).await
        };
        if !tokio::time::timeout(grace, drained).await.unwrap_or(false) {
            tracing::warn!(
                "requests still under way after {}: stopping anyway",
                humantime::format_duration(grace)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_openapi_3_1_with_every_endpoint() {
        let document = serde_json::to_value(openapi()).unwrap();
        assert_eq!(document["openapi"], "3.1.0");
        for path in [
            "/v1/actions/{service}/{action}",
            "/v1/runs",
            "/v1/runs/{id}",
            "/v1/runs/{id}/events",
            "/v1/runs/{id}/cancel",
            "/v1/runs/{id}/resume",
            "/v1/runs/{id}/again",
            "/v1/runs/{id}/steps/{step}/log",
            "/v1/services",
            "/v1/services/{name}",
            "/v1/services/{name}/{command}",
            "/v1/workers",
            "/v1/workers/{id}",
            "/v1/workflows",
            "/v1/workflows/{name}",
            "/v1/workflows/{name}/runs",
            "/v1/trace",
            "/v1/graph",
            "/v1/runs/{id}/graph",
            "/hooks/{name}",
            "/healthz",
            "/readyz",
        ] {
            assert!(document["paths"][path].is_object(), "{path} missing");
        }
        assert!(document["components"]["schemas"]["Problem"].is_object());
    }

    #[test]
    fn the_token_never_shows_in_the_configuration() {
        let config = ApiConfig {
            token: Some("hunter2-very-secret".into()),
            ..ApiConfig::default()
        };
        assert!(!format!("{config:?}").contains("hunter2"));
    }
}
