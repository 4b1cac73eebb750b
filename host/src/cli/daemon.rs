//! The command over a running daemon (`--daemon URL`, or `COPPER_DAEMON`): `call`,
//! `run`, `runs`, `services` and `workers` through its HTTP API (docs/api.md), with
//! the same output and exit codes as without one. The bearer token, when the
//! daemon wants one, comes from `COPPER_HTTP_TOKEN`.

use super::{CliError, print_json};
use copper_wasm::api::{Problem, ServiceView, TOKEN_VARIABLE, WorkerView};
use copper_wasm::progress::{Progress, Style};
use copper_wasm::protocol::Object;
use copper_wasm::runner::record::RunState;
use copper_wasm::runner::{RequestError, RunEvent, RunReport, Stamped};
use copper_wasm::workflow::Workflow;
use serde_json::Value;
use std::io::BufRead;
use std::path::Path;
use std::time::{Duration, Instant};

/// The daemon the tests and operators reach by default.
pub const DEFAULT_URL: &str = "http://127.0.0.1:7883";

/// A running daemon's HTTP API.
pub struct Daemon {
    url: String,
    agent: ureq::Agent,
    token: Option<String>,
}

/// One answer of the daemon.
struct Answer {
    status: u16,
    retry_after: Option<u64>,
    body: String,
}

impl Answer {
    /// The problem document it carries (or one made of its status and body).
    fn problem(&self) -> Problem {
        serde_json::from_str(&self.body).unwrap_or_else(|_| Problem {
            kind: "about:blank".into(),
            title: String::new(),
            status: self.status,
            detail: self.body.trim().to_string(),
            known: None,
            retry_after: self.retry_after,
        })
    }

    fn json<T: serde::de::DeserializeOwned>(&self, daemon: &Daemon) -> Result<T, CliError> {
        serde_json::from_str(&self.body).map_err(|e| CliError::DaemonAnswer {
            url: daemon.url.clone(),
            why: e.to_string(),
        })
    }
}

impl Daemon {
    /// The daemon at `url` (`http://127.0.0.1:7883`).
    pub fn new(url: &str) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10)))
            .build()
            .into();
        Self {
            url: url.trim_end_matches('/').to_string(),
            agent,
            token: std::env::var(TOKEN_VARIABLE).ok().filter(|t| !t.is_empty()),
        }
    }

    /// `method path` with `body`, on a thread of its own (ureq blocks).
    async fn send(
        &self,
        method: &'static str,
        path: &str,
        body: Option<(&'static str, Vec<u8>)>,
    ) -> Result<Answer, CliError> {
        let request = self.request(method, path);
        let url = self.url.clone();
        tokio::task::spawn_blocking(move || {
            let sent = match body {
                Some((content_type, bytes)) => request
                    .header("content-type", content_type)
                    .send(&bytes[..]),
                None => request.send_empty(),
            };
            let response = sent.map_err(|source| CliError::Daemon {
                url: url.clone(),
                source: Box::new(source),
            })?;
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok());
            let body = response
                .into_body()
                .with_config()
                .limit(256 << 20)
                .read_to_string()
                .map_err(|source| CliError::Daemon {
                    url,
                    source: Box::new(source),
                })?;
            Ok(Answer {
                status,
                retry_after,
                body,
            })
        })
        .await
        .expect("the HTTP thread")
    }

    fn request(
        &self,
        method: &'static str,
        path: &str,
    ) -> ureq::RequestBuilder<ureq::typestate::WithBody> {
        let url = format!("{}{path}", self.url);
        let request = match method {
            "DELETE" => self.agent.delete(&url).force_send_body(),
            "GET" => self.agent.get(&url).force_send_body(),
            _ => self.agent.post(&url),
        };
        match &self.token {
            Some(token) => request.header("authorization", format!("Bearer {token}")),
            None => request,
        }
    }

    /// The text `GET path` answers, or the daemon's refusal.
    pub async fn text(&self, path: &str) -> Result<String, CliError> {
        let answer = self.send("GET", path, None).await?;
        match answer.status {
            200 => Ok(answer.body),
            _ => Err(self.refused(&answer)),
        }
    }

    /// A refusal of the daemon as the command's error.
    fn refused(&self, answer: &Answer) -> CliError {
        let problem = answer.problem();
        CliError::DaemonSaid {
            url: self.url.clone(),
            status: answer.status,
            detail: problem.detail,
        }
    }
}

/// `call TOPIC --daemon URL`: the finish printed as `copper-wasm call` prints it. A
/// full queue or a paused service is waited out, as the daemon's `Retry-After` says,
/// until `wait` (5 minutes when not given).
pub async fn call(
    daemon: &Daemon,
    topic: &str,
    fields: &Object,
    wait: Option<Duration>,
) -> Result<(), CliError> {
    let path = format!("/v1/actions/{topic}");
    let body = Value::Object(fields.clone()).to_string().into_bytes();
    let until = Instant::now() + wait.unwrap_or(Duration::from_secs(300));
    let answer = loop {
        let answer = daemon
            .send("POST", &path, Some(("application/json", body.clone())))
            .await?;
        match (answer.status, answer.retry_after) {
            (429 | 503, Some(after)) if Instant::now() < until => {
                let pause = Duration::from_secs(after.max(1)).min(until - Instant::now());
                tokio::time::sleep(pause).await;
            }
            _ => break answer,
        }
    };
    match answer.status {
        200 => {}
        404 => {
            let problem = answer.problem();
            return Err(RequestError::NotServed {
                topic: topic.to_string(),
                known: problem.known.unwrap_or_default(),
            }
            .into());
        }
        422 | 504 => {
            return Err(CliError::ActionFailed {
                topic: topic.to_string(),
                why: Some(answer.problem().detail),
            });
        }
        _ => return Err(daemon.refused(&answer)),
    }
    let entry: Object = answer.json(daemon)?;
    let failed = entry.get("status").and_then(Value::as_str) == Some("failed");
    let why = entry
        .get("error")
        .and_then(Value::as_str)
        .map(str::to_string);
    print_json(&Value::Array(vec![Value::Object(entry)]))?;
    match failed {
        false => Ok(()),
        true => Err(CliError::ActionFailed {
            topic: topic.to_string(),
            why,
        }),
    }
}

/// `run WORKFLOW --daemon URL`: checked here (errors name the file, line and
/// field), run by the daemon, its events shown as they come.
pub async fn run(
    daemon: &Daemon,
    path: &Path,
    max_parallel: usize,
    no_cache: bool,
    json_events: bool,
) -> Result<(), CliError> {
    let (workflow, text) = Workflow::read(path)?;
    let query = format!("/v1/runs?max_parallel={max_parallel}&no_cache={no_cache}");
    let answer = daemon
        .send(
            "POST",
            &query,
            Some(("application/yaml", text.into_bytes())),
        )
        .await?;
    if answer.status != 201 {
        return Err(daemon.refused(&answer));
    }
    let started: Value = answer.json(daemon)?;
    let events_path = started["events"].as_str().unwrap_or_default().to_string();
    let style = if json_events {
        Style::Json
    } else {
        Style::detect()
    };
    let (events, mut heard) = tokio::sync::mpsc::unbounded_channel();
    let stream = {
        let request = daemon.request("GET", &events_path);
        let url = daemon.url.clone();
        tokio::task::spawn_blocking(move || stream_events(request, &url, events))
    };
    let mut progress = Progress::new(&workflow, style);
    let mut seen = Vec::new();
    let interrupted = super::interruption();
    tokio::pin!(interrupted);
    loop {
        tokio::select! {
            event = heard.recv() => match event {
                Some(stamped) => {
                    progress.show(&stamped);
                    seen.push(stamped.event);
                }
                None => break,
            },
            () = &mut interrupted => return Err(CliError::Interrupted { resume: None }),
        }
    }
    stream.await.expect("the events thread")?;
    if seen
        .iter()
        .any(|e| matches!(e, RunEvent::RunCancelled { .. }))
    {
        return Err(CliError::Interrupted { resume: None });
    }
    if !seen
        .iter()
        .any(|e| matches!(e, RunEvent::RunFinished { .. }))
    {
        return Err(CliError::DaemonAnswer {
            url: daemon.url.clone(),
            why: "the run's events ended before the run did".into(),
        });
    }
    let report = RunReport::from_events(&workflow, &seen);
    super::run::conclude(&report, json_events)
}

/// Reads a run's Server-Sent Events until the stream ends, sending each run event on.
fn stream_events(
    request: ureq::RequestBuilder<ureq::typestate::WithBody>,
    url: &str,
    events: tokio::sync::mpsc::UnboundedSender<Stamped>,
) -> Result<(), CliError> {
    let failed = |source: ureq::Error| CliError::Daemon {
        url: url.to_string(),
        source: Box::new(source),
    };
    let response = request
        .header("accept", "text/event-stream")
        .send_empty()
        .map_err(failed)?;
    let reader = std::io::BufReader::new(response.into_body().into_reader());
    for line in reader.lines() {
        let line = line.map_err(|e| failed(ureq::Error::Io(e)))?;
        let Some(data) = line.strip_prefix("data:") else {
            continue;
        };
        let Ok(stamped) = serde_json::from_str::<Stamped>(data.trim()) else {
            continue;
        };
        let last = matches!(
            stamped.event,
            RunEvent::RunFinished { .. } | RunEvent::RunCancelled { .. }
        );
        if events.send(stamped).is_err() || last {
            break;
        }
    }
    Ok(())
}

/// `runs [show RUN] --daemon URL`.
pub async fn runs(daemon: &Daemon, show: Option<String>, json: bool) -> Result<(), CliError> {
    let Some(id) = show else {
        let answer = daemon.send("GET", "/v1/runs", None).await?;
        if answer.status != 200 {
            return Err(daemon.refused(&answer));
        }
        let runs: Vec<RunState> = answer.json(daemon)?;
        if json {
            return print_json(&runs);
        }
        if runs.is_empty() {
            println!("no runs on {}", daemon.url);
        }
        super::run::print_runs(&runs);
        return Ok(());
    };
    let answer = daemon.send("GET", &format!("/v1/runs/{id}"), None).await?;
    if answer.status != 200 {
        return Err(daemon.refused(&answer));
    }
    let state: RunState = answer.json(daemon)?;
    if json {
        return print_json(&state);
    }
    super::run::print_run(&state);
    println!("events: {}/v1/runs/{id}/events", daemon.url);
    Ok(())
}

/// `services --daemon URL`: what the daemon and the hosts on its broker serve.
pub async fn services(daemon: &Daemon, json: bool) -> Result<(), CliError> {
    let answer = daemon.send("GET", "/v1/services", None).await?;
    if answer.status != 200 {
        return Err(daemon.refused(&answer));
    }
    if json {
        let services: Value = answer.json(daemon)?;
        return print_json(&services);
    }
    let services: Vec<ServiceView> = answer.json(daemon)?;
    for service in services {
        let load = service
            .load
            .map(|l| format!("  {} running, {} queued", l.in_flight, l.queued))
            .unwrap_or_default();
        println!(
            "{} {} ({}, {}){load}",
            service.name, service.version, service.backend, service.status
        );
        for action in &service.actions {
            println!("  {:<28} {}", action.topic, action.doc);
        }
    }
    Ok(())
}

/// `workers [kill ID]`: what runs on the daemon now, or stop one request.
pub async fn workers(daemon: &Daemon, kill: Option<u64>, json: bool) -> Result<(), CliError> {
    if let Some(id) = kill {
        let answer = daemon
            .send("DELETE", &format!("/v1/workers/{id}"), None)
            .await?;
        if answer.status != 204 {
            return Err(daemon.refused(&answer));
        }
        eprintln!("stopped request #{id}");
        return Ok(());
    }
    let answer = daemon.send("GET", "/v1/workers", None).await?;
    if answer.status != 200 {
        return Err(daemon.refused(&answer));
    }
    let workers: Vec<WorkerView> = answer.json(daemon)?;
    if json {
        return print_json(&workers);
    }
    if workers.is_empty() {
        println!("nothing runs on {}", daemon.url);
        return Ok(());
    }
    println!(
        "{:>6}  {:<14} {:<28} {:<8} {:<5} SINCE",
        "ID", "SERVICE", "ACTION", "STATE", "VIA"
    );
    for worker in workers {
        println!(
            "{:>6}  {:<14} {:<28} {:<8} {:<5} {}",
            worker.id, worker.service, worker.action, worker.state, worker.via, worker.since
        );
    }
    Ok(())
}

/// The exit code of a refusal with HTTP `status`: 2 for what the asker got wrong,
/// 1 for a service that cannot answer now, 3 for the daemon's own trouble.
pub fn exit_code(status: u16) -> u8 {
    match status {
        400..=499 if status != 429 => 2,
        503 | 504 => 1,
        _ => 3,
    }
}
