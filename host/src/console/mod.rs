//! The web console the daemon serves at `/console/` (docs/console.md): the
//! services and their lifecycle, the runs with their graphs of steps updated
//! live, and the system graph. Plain HTML, CSS and JavaScript, all in the
//! binary: no CDN, no build step, nothing fetched; it works offline.
//!
//! The pages read and drive the daemon through the same HTTP API as any other
//! client (`/v1/…`, the run's Server-Sent Events, `/metrics`), with the API's
//! bearer token when one is set; the graphs are laid out on the server
//! ([`crate::graph`]). So this module holds no state and imports nothing of the
//! host: it is only the files.

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

/// The page every view is drawn in.
const INDEX: &str = include_str!("assets/index.html");
/// The views, the API calls and the live updates.
const SCRIPT: &str = include_str!("assets/console.js");
/// The looks: light and dark.
const STYLE: &str = include_str!("assets/console.css");
/// The icon.
const ICON: &str = include_str!("assets/icon.svg");

/// Where the console is served.
pub const PATH: &str = "/console/";

/// The console's files: no data, so no token (the pages ask for it to call the API).
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { Redirect::to(PATH) }))
        .route("/console", get(|| async { Redirect::to(PATH) }))
        .route(
            PATH,
            get(|| async { file("text/html; charset=utf-8", INDEX) }),
        )
        .route(
            "/console/console.js",
            get(|| async { file("text/javascript; charset=utf-8", SCRIPT) }),
        )
        .route(
            "/console/console.css",
            get(|| async { file("text/css; charset=utf-8", STYLE) }),
        )
        .route(
            "/console/icon.svg",
            get(|| async { file("image/svg+xml", ICON) }),
        )
        .route(
            "/favicon.ico",
            get(|| async { file("image/svg+xml", ICON) }),
        )
}

/// One of the files, with headers that keep it to itself: no script or style
/// from anywhere else, no framing by another site.
fn file(content_type: &'static str, body: &'static str) -> Response {
    let mut response = ([(header::CONTENT_TYPE, content_type)], body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// The bytes a first visit loads: the page, its script, its style and its icon.
pub fn first_load_bytes() -> usize {
    INDEX.len() + SCRIPT.len() + STYLE.len() + ICON.len()
}
