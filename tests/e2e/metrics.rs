//! `/metrics` on the real daemon, read by a Prometheus text-format parser: the
//! counters of a known run and of known calls, the latency histogram, the load.

use crate::api::{agent, daemon, post, run_ended};
use std::time::Duration;

/// The value of `metric` whose labels are all of `labels`, summed over the rest.
fn value(scrape: &prometheus_parse::Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match &s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => *v,
            other => panic!("{metric} is {other:?}"),
        })
        .sum()
}

fn scrape(url: &str) -> (String, prometheus_parse::Scrape) {
    let answer = agent().get(format!("{url}/metrics")).call().unwrap();
    assert_eq!(answer.status(), 200);
    let kind = answer.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(kind.starts_with("text/plain"), "{kind}");
    let text = answer.into_body().read_to_string().unwrap();
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    (
        text.clone(),
        prometheus_parse::Scrape::parse(lines).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_counters_of_known_calls_and_a_known_run_are_scraped() {
    let root = tempfile::tempdir().unwrap();
    let daemon = daemon(root.path(), &[], &[]).await;
    let http = agent();
    for n in 0..3 {
        let body = format!("{{\"n\": {n}}}");
        let answer = post(
            &http,
            &format!("{}/v1/actions/testkit/echo", daemon.url),
            &body,
        );
        assert_eq!(answer.body["status"], "success", "{}", answer.body);
    }
    let failed = post(
        &http,
        &format!("{}/v1/actions/testkit/fail", daemon.url),
        "{}",
    );
    assert_eq!(failed.body["status"], "failed", "{}", failed.body);
    let workflow = "name: counted\nsteps:\n  - action: testkit/echo\n  - action: testkit/echo\n";
    let started = post(&http, &format!("{}/v1/runs", daemon.url), workflow);
    assert_eq!(started.status, 201, "{}", started.body);
    let run = format!("{}{}", daemon.url, started.body["url"].as_str().unwrap());
    run_ended(&run, Duration::from_secs(30)).await;

    let (text, scrape) = scrape(&daemon.url);
    let echo = [("service", "testkit"), ("action", "testkit/echo")];
    let succeeded = [echo[0], echo[1], ("status", "success")];
    assert_eq!(
        value(&scrape, "copper_requests_total", &succeeded),
        5.0,
        "{text}"
    );
    let fail = [("action", "testkit/fail"), ("status", "failed")];
    assert_eq!(
        value(&scrape, "copper_requests_total", &fail),
        1.0,
        "{text}"
    );
    assert_eq!(
        value(&scrape, "copper_request_duration_seconds_count", &echo),
        5.0,
        "{text}"
    );
    let buckets = scrape
        .samples
        .iter()
        .find(|s| {
            s.metric == "copper_request_duration_seconds"
                && s.labels.get("action") == Some("testkit/echo")
        })
        .unwrap_or_else(|| panic!("no histogram: {text}"));
    let prometheus_parse::Value::Histogram(counts) = &buckets.value else {
        panic!("not a histogram: {:?}", buckets.value)
    };
    assert_eq!(
        counts.last().unwrap().count,
        5.0,
        "every call in the last bucket"
    );
    let runs = [("workflow", "counted"), ("status", "success")];
    assert_eq!(value(&scrape, "copper_runs_total", &runs), 1.0, "{text}");
    assert_eq!(
        value(
            &scrape,
            "copper_requests_in_flight",
            &[("service", "testkit")]
        ),
        0.0,
        "{text}"
    );
    assert!(
        text.contains("copper_requests_queued{service=\"fetcher\"} 0"),
        "{text}"
    );
}
