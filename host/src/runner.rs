//! The runner: publishes each workflow step on its action topic and awaits its finish.
//!
//! As copper's runner it publishes `runner/status`, then for each step
//! `runner/start`, the request, and `runner/finish` once the matching
//! `<topic>/finish` arrives. Requests carry a correlation id; a finish without
//! one (a copper service that builds its own entry) is accepted, since the
//! runner has one request pending per topic. It stops at the first failure.

use crate::bus::{Bus, BusError, Will};
use crate::protocol::{self, CORRELATION_FIELD, Finish, Object, Status};
use crate::workflow::{Step, Workflow};
use serde_json::Value;
use std::time::{Duration, Instant};

/// How a step ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepOutcome {
    /// Its service reported success.
    Success,
    /// Its service reported a failure, or never answered.
    Failed(String),
    /// Not run, because an earlier step failed.
    Skipped,
}

/// What became of one step.
#[derive(Debug, Clone)]
pub struct StepReport {
    /// Position, from 1.
    pub number: usize,
    /// Its action topic.
    pub action: String,
    /// How it ended.
    pub outcome: StepOutcome,
    /// Time from request to finish.
    pub duration: Duration,
    /// The finish entry (the request updated with results).
    pub results: Object,
}

impl StepReport {
    /// The step's service.
    pub fn service(&self) -> &str {
        protocol::service_of(&self.action)
    }
}

/// What became of a whole run.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// The workflow's name.
    pub workflow: String,
    /// Every step, run or skipped.
    pub steps: Vec<StepReport>,
    /// Wall time of the run.
    pub duration: Duration,
}

impl RunReport {
    /// True when every step succeeded.
    pub fn success(&self) -> bool {
        self.steps.iter().all(|s| s.outcome == StepOutcome::Success)
    }
}

/// What the runner tells whoever shows progress.
#[derive(Debug, Clone)]
pub enum RunEvent<'a> {
    /// A step's request was published.
    Started(&'a Step),
    /// Its service reported progress.
    Progress(&'a Step, String),
    /// It finished (or was skipped).
    Finished(&'a Step, &'a StepReport),
}

/// Why a request got no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The bus failed.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// No finish within the wait.
    #[error("no finish on `{topic}` within {}", humantime::format_duration(*.waited))]
    NoAnswer {
        /// The action topic.
        topic: String,
        /// How long we waited.
        waited: Duration,
    },
    /// The service said `down` while we waited.
    #[error("service `{0}` went down before answering")]
    ServiceDown(String),
}

/// Publishes one request on `topic` and waits for its finish; `progress` gets the
/// service's progress messages. `wait` bounds the wait (none: until it answers).
pub async fn request(
    bus: &Bus,
    topic: &str,
    fields: &Object,
    wait: Option<Duration>,
    mut progress: impl FnMut(String),
) -> Result<Finish, RequestError> {
    let service = protocol::service_of(topic).to_string();
    let id = uuid::Uuid::new_v4().to_string();
    // Finish and progress apart: `<topic>/start` (and anything else) need not wake us.
    let mut replies = bus.subscribe_kept(&protocol::finish_topic(topic)).await?;
    let mut updates = bus.subscribe_kept(&protocol::progress_topic(topic)).await?;
    let mut errors = bus.subscribe_kept(&protocol::error_topic(&service)).await?;
    let mut status = bus
        .subscribe_kept(&protocol::status_topic(&service))
        .await?;
    let mut payload = fields.clone();
    payload.insert(CORRELATION_FIELD.into(), Value::from(id.clone()));
    bus.publish_at_most_once(topic, Value::Object(payload).to_string())
        .await?;
    let ours = |other: Option<&str>| other.is_none_or(|other| other == id);
    let deadline = wait.map(|w| tokio::time::Instant::now() + w);
    let mut reported_error: Option<String> = None;
    loop {
        let timer = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            message = replies.recv() => {
                let Some(message) = message else { return Err(BusError::Disconnected.into()) };
                let mut finish = protocol::parse_finish(&message.payload);
                if !ours(finish.correlation_id.as_deref()) {
                    continue;
                }
                // Progress published before this finish is already waiting: report it first.
                while let Some(message) = updates.try_recv() {
                    if let Some(text) = progress_text(&message, &ours) {
                        progress(text);
                    }
                }
                // copper's services report errors on <service>/error, then finish:
                // an error delivered before this finish is already waiting.
                while let Some(message) = errors.try_recv() {
                    if let Some(error) = error_for(topic, &message, &ours) {
                        reported_error = Some(error);
                    }
                }
                if let (Status::Success, Some(error)) = (finish.status, reported_error.take())
                    && !finish.entry.contains_key("status")
                {
                    finish.status = Status::Failed;
                    finish.error = Some(error);
                }
                return Ok(finish);
            }
            Some(message) = updates.recv() => {
                if let Some(text) = progress_text(&message, &ours) {
                    progress(text);
                }
            }
            Some(message) = errors.recv() => {
                if let Some(error) = error_for(topic, &message, &ours) {
                    reported_error = Some(error);
                }
            }
            Some(message) = status.recv() => {
                if !message.retain && &message.payload[..] == b"down" {
                    return Err(RequestError::ServiceDown(service));
                }
            }
            () = timer => {
                return Err(RequestError::NoAnswer { topic: topic.to_string(), waited: wait.unwrap_or_default() });
            }
        }
    }
}

/// The text of a progress message on `<topic>/status`, if it is about our request.
fn progress_text(
    message: &crate::bus::Message,
    ours: &impl Fn(Option<&str>) -> bool,
) -> Option<String> {
    match serde_json::from_slice::<Value>(&message.payload) {
        Ok(Value::Object(body)) if !ours(body.get(CORRELATION_FIELD).and_then(Value::as_str)) => {
            None
        }
        Ok(Value::Object(body)) => Some(
            body.get("message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        ),
        _ => Some(String::from_utf8_lossy(&message.payload).into_owned()),
    }
}

/// The error a `<service>/error` message reports for our request on `topic`, if it is ours.
fn error_for(
    topic: &str,
    message: &crate::bus::Message,
    ours: &impl Fn(Option<&str>) -> bool,
) -> Option<String> {
    let body: Value = serde_json::from_slice(&message.payload).unwrap_or(Value::Null);
    let same_topic = body
        .get("topic")
        .and_then(Value::as_str)
        .is_none_or(|t| t == topic);
    if !(same_topic && ours(body.get(CORRELATION_FIELD).and_then(Value::as_str))) {
        return None;
    }
    Some(match body.get("error") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::from_utf8_lossy(&message.payload).into_owned(),
    })
}

/// A service announced `up` on the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceUp {
    /// Its name.
    pub name: String,
    /// Its action topics, when it published a `<service>/describe` (copper-wasm hosts do;
    /// copper's services do not, and then any action of theirs is taken).
    pub actions: Option<Vec<String>>,
}

/// Services announced `up` on the broker (retained `<service>/status`, with their
/// retained `<service>/describe`), gathered for `wait`.
pub async fn services_up(bus: &Bus, wait: Duration) -> Result<Vec<ServiceUp>, BusError> {
    let mut statuses = bus.subscribe("+/status").await?;
    let mut describes = bus.subscribe("+/describe").await?;
    let mut up = std::collections::BTreeSet::new();
    let mut actions = std::collections::BTreeMap::new();
    let until = tokio::time::Instant::now() + wait;
    loop {
        tokio::select! {
            Some(message) = statuses.recv() => {
                let service = protocol::service_of(&message.topic).to_string();
                if &message.payload[..] == b"up" {
                    up.insert(service);
                } else {
                    up.remove(&service);
                }
            }
            Some(message) = describes.recv() => {
                if let Ok(info) = serde_json::from_slice::<Value>(&message.payload) {
                    let service = protocol::service_of(&message.topic).to_string();
                    let topics = info["actions"]
                        .as_array()
                        .map(|a| a.iter().filter_map(|a| a["name"].as_str()).map(|n| format!("{service}/{n}")).collect())
                        .unwrap_or_default();
                    actions.insert(service, topics);
                }
            }
            () = tokio::time::sleep_until(until) => break,
        }
    }
    Ok(up
        .into_iter()
        .map(|name| ServiceUp {
            actions: actions.remove(&name),
            name,
        })
        .collect())
}

/// The runner's last will, as copper's: `runner/status` = `disconnected`.
pub fn runner_will() -> Will {
    Will {
        topic: "runner/status".into(),
        payload: "disconnected".into(),
    }
}

/// Runs the steps in order, stopping at the first failure; `on_event` sees every step.
pub async fn run(
    workflow: &Workflow,
    bus: &Bus,
    mut on_event: impl FnMut(RunEvent<'_>),
) -> Result<RunReport, BusError> {
    let started = Instant::now();
    bus.publish("runner/status", "connected", true).await?;
    let mut steps = Vec::with_capacity(workflow.steps.len());
    let mut failed = false;
    for step in &workflow.steps {
        if failed {
            let report = StepReport {
                number: step.number,
                action: step.action.clone(),
                outcome: StepOutcome::Skipped,
                duration: Duration::ZERO,
                results: Object::new(),
            };
            on_event(RunEvent::Finished(step, &report));
            steps.push(report);
            continue;
        }
        bus.publish(
            "runner/start",
            Value::Object(step.entry.clone()).to_string(),
            false,
        )
        .await?;
        on_event(RunEvent::Started(step));
        let begun = Instant::now();
        let wait = step.timeout().map(|t| t + Duration::from_secs(10));
        let answer = request(bus, &step.action, &step.entry, wait, |message| {
            on_event(RunEvent::Progress(step, message))
        })
        .await;
        let (outcome, results) = match answer {
            Ok(finish) => match finish.status {
                Status::Success => (StepOutcome::Success, finish.entry),
                Status::Failed => (
                    StepOutcome::Failed(finish.error.unwrap_or_else(|| "failed".into())),
                    finish.entry,
                ),
            },
            Err(RequestError::Bus(error)) => return Err(error),
            Err(error) => (StepOutcome::Failed(error.to_string()), Object::new()),
        };
        failed = outcome != StepOutcome::Success;
        let finish_entry = if results.is_empty() {
            step.entry.clone()
        } else {
            results.clone()
        };
        bus.publish(
            "runner/finish",
            Value::Object(finish_entry).to_string(),
            false,
        )
        .await?;
        let report = StepReport {
            number: step.number,
            action: step.action.clone(),
            outcome,
            duration: begun.elapsed(),
            results,
        };
        on_event(RunEvent::Finished(step, &report));
        steps.push(report);
    }
    Ok(RunReport {
        workflow: workflow.name.clone(),
        steps,
        duration: started.elapsed(),
    })
}
