//! Spans sent to an OpenTelemetry collector: the standard OTEL_* variables set,
//! `copper-wasm run` exports its run, its steps and the requests its services
//! served over OTLP/HTTP (JSON here) to a collector made in the test, before it
//! exits.

use crate::support::*;
use axum::body::Bytes;
use axum::extract::State;
use serde_json::Value;
use std::sync::{Arc, Mutex};

const TESTKIT: &str = copper_wasm::builtin::TESTKIT_PATH;

/// A collector on loopback keeping every span sent to `/v1/traces`.
async fn collector() -> (String, Arc<Mutex<Vec<Value>>>) {
    let spans: Arc<Mutex<Vec<Value>>> = Arc::default();
    let app = axum::Router::new()
        .route(
            "/v1/traces",
            axum::routing::post(
                |State(spans): State<Arc<Mutex<Vec<Value>>>>, body: Bytes| async move {
                    let export: Value = serde_json::from_slice(&body).expect("OTLP JSON");
                    for resource in export["resourceSpans"].as_array().into_iter().flatten() {
                        let service = attribute(&resource["resource"], "service.name");
                        for scope in resource["scopeSpans"].as_array().into_iter().flatten() {
                            for span in scope["spans"].as_array().into_iter().flatten() {
                                let mut span = span.clone();
                                span["service"] = Value::String(service.clone());
                                spans.lock().unwrap().push(span);
                            }
                        }
                    }
                    "{}"
                },
            ),
        )
        .with_state(spans.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, spans)
}

/// The string value of attribute `key` of an OTLP object.
fn attribute(object: &Value, key: &str) -> String {
    object["attributes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["key"] == key)
        .map(|a| {
            let value = &a["value"];
            match (
                &value["stringValue"],
                &value["boolValue"],
                &value["intValue"],
            ) {
                (Value::String(text), _, _) => text.clone(),
                (_, Value::Bool(flag), _) => flag.to_string(),
                (_, _, Value::String(number)) => number.clone(),
                _ => value.to_string(),
            }
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_s_spans_reach_the_collector_before_the_command_exits() {
    let root = tempfile::tempdir().unwrap();
    let (url, spans) = collector().await;
    std::fs::write(
        root.path().join("traced.yaml"),
        "- action: testkit/echo\n  n: 1\n- action: testkit/echo\n  n: 2\n",
    )
    .unwrap();
    let out = output_async({
        let mut command = copper(root.path());
        command
            .args([
                "run",
                "traced.yaml",
                "--component",
                TESTKIT,
                "--no-builtins",
            ])
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", &url)
            .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json");
        command
    })
    .await;
    out.assert_success();

    let spans = spans.lock().unwrap().clone();
    let named =
        |name: &str| -> Vec<&Value> { spans.iter().filter(|s| s["name"] == name).collect() };
    let runs = named("run");
    assert_eq!(runs.len(), 1, "one run span: {spans:#?}");
    let run = runs[0];
    assert_eq!(attribute(run, "workflow"), "traced");
    assert_eq!(attribute(run, "success"), "true", "{run}");
    assert_eq!(run["service"], "copper-wasm");
    let steps = named("step");
    assert_eq!(steps.len(), 2, "a span per step: {spans:#?}");
    for step in &steps {
        assert_eq!(step["traceId"], run["traceId"], "in the run's trace");
        assert_eq!(step["parentSpanId"], run["spanId"], "under the run");
        assert_eq!(attribute(step, "action"), "testkit/echo");
    }
    let requests = named("request");
    assert_eq!(requests.len(), 2, "a span per request served: {spans:#?}");
    for request in &requests {
        assert_eq!(attribute(request, "service"), "testkit");
        assert_eq!(attribute(request, "status"), "success");
        assert!(
            !attribute(request, "correlation_id").is_empty(),
            "{request}"
        );
    }
}

#[test]
fn an_endpoint_that_is_not_a_url_is_refused_with_its_variable() {
    let root = tempfile::tempdir().unwrap();
    let out = output(
        copper(root.path())
            .args(["graph", "--workflow", "nowhere.yaml"])
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", "not a url"),
    );
    out.assert_exit(2);
    assert!(out.stderr.contains("OpenTelemetry"), "{}", out.stderr);
}
