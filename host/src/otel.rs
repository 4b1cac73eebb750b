//! The host's spans sent to an OpenTelemetry collector, when one is configured.
//!
//! The host marks its work with `tracing` spans: `run` (a workflow's run),
//! `step` (one step, each try) and `request` (one request as a service here
//! serves it). A program that sets `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) gets them exported over OTLP/HTTP,
//! `http/protobuf` or `http/json` as `OTEL_EXPORTER_OTLP_PROTOCOL` says, in
//! batches (`OTEL_BSP_*`): the standard variables, read by opentelemetry-otlp.
//! The command does this for every subcommand; an embedder adds
//! [`Otel::layer`] to its own subscriber. Nothing is sent when none is set.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{SpanExporter, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracerProvider, Tracer};
use std::time::Duration;

/// The variables that turn the export on.
pub const ENDPOINT_VARIABLES: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
];

/// Why spans cannot be exported as configured.
#[derive(Debug, thiserror::Error)]
pub enum OtelError {
    /// The exporter refused its configuration (an endpoint that is not a URL…).
    #[error("the OpenTelemetry exporter cannot be built from the OTEL_* variables")]
    Exporter(#[source] opentelemetry_otlp::ExporterBuildError),
}

/// The export, while it runs; [`Otel::shutdown`] sends what is left.
pub struct Otel {
    provider: SdkTracerProvider,
    tracer: Tracer,
}

impl Otel {
    /// The export the environment asks for, or `None` when it asks for none.
    pub fn from_env(service_name: &str) -> Result<Option<Self>, OtelError> {
        let configured = ENDPOINT_VARIABLES
            .iter()
            .any(|v| std::env::var(v).is_ok_and(|value| !value.is_empty()));
        if !configured {
            return Ok(None);
        }
        let exporter = SpanExporter::builder()
            .with_http()
            .with_http_client(Blocking::new())
            .build()
            .map_err(OtelError::Exporter)?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(
                Resource::builder()
                    .with_service_name(service_name.to_string())
                    .build(),
            )
            .build();
        let tracer = provider.tracer("copper-wasm");
        Ok(Some(Self { provider, tracer }))
    }

    /// The layer that turns the host's `tracing` spans into OpenTelemetry spans.
    pub fn layer<S>(&self) -> tracing_opentelemetry::OpenTelemetryLayer<S, Tracer>
    where
        S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
    {
        tracing_opentelemetry::layer().with_tracer(self.tracer.clone())
    }

    /// Sends the spans not sent yet (at most 5 s) and stops.
    pub fn shutdown(self) {
        if let Err(error) = self.provider.shutdown_with_timeout(Duration::from_secs(5)) {
            eprintln!("copper-wasm: spans not all sent to the OpenTelemetry collector: {error}");
        }
    }
}

/// OTLP over the HTTP client the host already has (ureq): the batch exporter
/// sends from a thread of its own, where blocking is what it expects.
#[derive(Debug)]
struct Blocking {
    agent: ureq::Agent,
}

impl Blocking {
    fn new() -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        Self { agent }
    }
}

#[async_trait::async_trait]
impl HttpClient for Blocking {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let (parts, body) = request.into_parts();
        let request = ureq::http::Request::from_parts(parts, body.to_vec());
        let response = self.agent.run(request)?;
        let (parts, body) = response.into_parts();
        let bytes = body.into_with_config().limit(4 << 20).read_to_vec()?;
        Ok(Response::from_parts(parts, Bytes::from(bytes)))
    }
}
