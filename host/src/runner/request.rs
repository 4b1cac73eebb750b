//! One request over the bus: publish it on its action topic, await its finish.
//!
//! Requests carry a correlation id; a finish without one (a copper service that
//! builds its own entry) is accepted, since the runner has one request pending
//! per topic. Also: which services are `up` on the broker.

use crate::bus::{Bus, BusError, Will};
use crate::protocol::{self, CORRELATION_FIELD, Finish, Object, Status};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Why a request got no usable answer.
///
/// ```no_run
/// # async fn example(host: &copper_wasm::Host) -> anyhow::Result<()> {
/// use copper_wasm::runner::RequestError;
/// let fields = copper_wasm::protocol::Object::new();
/// let wait = Some(std::time::Duration::from_secs(30));
/// match host.call("markdown/build", &fields, wait).await {
///     Ok(finish) => println!("{:?}", finish.status),
///     Err(RequestError::NotServed { known, .. }) => eprintln!("try one of {known:?}"),
///     Err(RequestError::NoAnswer { waited, .. }) => eprintln!("silent for {waited:?}"),
///     Err(other) => return Err(other.into()),
/// }
/// # Ok(())
/// # }
/// ```
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
    /// Not an action topic `<service>/<action>` (no wildcards).
    #[error("`{0}` is not an action topic `<service>/<action>`")]
    NotAnAction(String),
    /// No service here or on the broker answers the action.
    #[error("no service answers `{topic}`; known actions: {}", if known.is_empty() { "none".to_string() } else { known.join(", ") })]
    NotServed {
        /// The action topic.
        topic: String,
        /// The actions that are answered.
        known: Vec<String>,
    },
}

/// Requests under way, by topic: a finish without a correlation id (a copper
/// service's) is taken only when its topic has one request pending.
#[derive(Debug, Clone, Default)]
pub struct Pending(Arc<Mutex<BTreeMap<String, usize>>>);

impl Pending {
    fn enter(&self, topic: &str) -> PendingGuard {
        *self
            .0
            .lock()
            .expect("pending lock")
            .entry(topic.to_string())
            .or_default() += 1;
        PendingGuard {
            pending: self.clone(),
            topic: topic.to_string(),
        }
    }

    fn alone(&self, topic: &str) -> bool {
        self.0.lock().expect("pending lock").get(topic).copied() == Some(1)
    }
}

struct PendingGuard {
    pending: Pending,
    topic: String,
}

impl Drop for PendingGuard {
    fn drop(&mut self) {
        if let Some(count) = self
            .pending
            .0
            .lock()
            .expect("pending lock")
            .get_mut(&self.topic)
        {
            *count -= 1;
        }
    }
}

/// Publishes one request on `topic` and waits for its finish; `progress` gets the
/// service's progress messages. `wait` bounds the wait (none: until it answers).
pub async fn request(
    bus: &Bus,
    topic: &str,
    fields: &Object,
    wait: Option<Duration>,
    progress: impl FnMut(String),
) -> Result<Finish, RequestError> {
    request_among(bus, topic, fields, wait, progress, &Pending::default()).await
}

/// [`request`], one of several under way at once (`pending` counts them).
pub async fn request_among(
    bus: &Bus,
    topic: &str,
    fields: &Object,
    wait: Option<Duration>,
    mut progress: impl FnMut(String),
    pending: &Pending,
) -> Result<Finish, RequestError> {
    let _pending = pending.enter(topic);
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
    let ours = |other: Option<&str>| match other {
        Some(other) => other == id,
        None => pending.alone(topic),
    };
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
