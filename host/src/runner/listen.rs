//! What comes back about a run's requests, heard once per action topic and
//! handed to each request by its correlation id.
//!
//! Every request under way on `testkit/echo` used to hold its own five
//! subscriptions, so each finish woke every one of them: a wide run of 64 steps
//! at once read each finish 64 times. Here one task per action topic reads
//! `<topic>/finish`, `<topic>/status` (progress), `<topic>/start`,
//! `<service>/error` and `<service>/status`, and hands each message to the
//! request it names. What names none (copper's own services keep no correlation
//! id) goes to every request on the topic, which keeps it only when it is alone
//! there (see [`super::request`]).

use crate::bus::{Bus, BusError, Message, Subscription};
use crate::presence::TAKER_FIELD;
use crate::protocol::{self, CORRELATION_FIELD, Finish};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{OnceCell, mpsc};

/// What a request heard about itself, in the order it came.
#[derive(Clone)]
pub(super) enum Heard {
    /// A finish: its own, or one naming no request.
    Finish(Finish),
    /// Progress as a JSON object: the id it names, and its `message`.
    Progress(Option<String>, String),
    /// Progress that is not a JSON object: its text, for every request.
    Said(String),
    /// A `<service>/error` report: the id it names, the action it is about, the error.
    Error(Option<String>, Option<String>, String),
    /// `<topic>/start`: the host that took it, when it says.
    Taken(String),
    /// `<service>/status`, as it came.
    Status(Message),
}

/// The action topics heard so far in a run, each by one task.
#[derive(Default)]
pub(super) struct Listeners {
    topics: Mutex<HashMap<String, Arc<OnceCell<Watch>>>>,
}

/// One action topic heard: its requests by id; the task reading it ends with it.
struct Watch {
    requests: Arc<Requests>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The requests under way on one action topic, by correlation id; `None` once the
/// bus closed.
type Requests = Mutex<Option<HashMap<String, mpsc::UnboundedSender<Heard>>>>;

/// What one request hears; it stops hearing when dropped.
pub(super) struct Hearing {
    rx: mpsc::UnboundedReceiver<Heard>,
    requests: Arc<Requests>,
    id: String,
}

impl Hearing {
    /// The next thing heard; `None` once the bus closed.
    pub(super) async fn recv(&mut self) -> Option<Heard> {
        self.rx.recv().await
    }
}

impl Drop for Hearing {
    fn drop(&mut self) {
        if let Some(requests) = self.requests.lock().expect("requests lock").as_mut() {
            requests.remove(&self.id);
        }
    }
}

impl std::fmt::Debug for Listeners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let topics: Vec<String> = self
            .topics
            .lock()
            .expect("topics lock")
            .keys()
            .cloned()
            .collect();
        let mut map = f.debug_map();
        for topic in &topics {
            map.entry(topic, &self.under_way(topic));
        }
        map.finish()
    }
}

impl Listeners {
    /// How many requests are under way on `topic` (heard, not yet dropped).
    pub(super) fn under_way(&self, topic: &str) -> usize {
        let cell = self.topics.lock().expect("topics lock").get(topic).cloned();
        let Some(watch) = cell.as_ref().and_then(|cell| cell.get()) else {
            return 0;
        };
        let requests = watch.requests.lock().expect("requests lock");
        requests.as_ref().map_or(0, HashMap::len)
    }

    /// Starts hearing what comes back about request `id` on `topic` (before it is
    /// published, so that nothing about it is missed).
    pub(super) async fn listen(
        &self,
        bus: &Bus,
        topic: &str,
        id: &str,
    ) -> Result<Hearing, BusError> {
        let cell = {
            let mut topics = self.topics.lock().expect("topics lock");
            topics.entry(topic.to_string()).or_default().clone()
        };
        let watch = cell.get_or_try_init(|| Watch::start(bus, topic)).await?;
        let (tx, rx) = mpsc::unbounded_channel();
        match watch.requests.lock().expect("requests lock").as_mut() {
            Some(requests) => requests.insert(id.to_string(), tx),
            None => return Err(BusError::Disconnected),
        };
        Ok(Hearing {
            rx,
            requests: watch.requests.clone(),
            id: id.to_string(),
        })
    }
}

/// The five subscriptions of one action topic.
struct Heeded {
    finishes: Subscription,
    progress: Subscription,
    errors: Subscription,
    starts: Subscription,
    status: Subscription,
}

impl Watch {
    /// Subscribes to what comes back on `topic` and starts the task handing it out.
    async fn start(bus: &Bus, topic: &str) -> Result<Watch, BusError> {
        let service = protocol::service_of(topic);
        let heeded = Heeded {
            finishes: bus.subscribe_kept(&protocol::finish_topic(topic)).await?,
            progress: bus.subscribe_kept(&protocol::progress_topic(topic)).await?,
            errors: bus.subscribe_kept(&protocol::error_topic(service)).await?,
            starts: bus.subscribe_kept(&protocol::start_topic(topic)).await?,
            status: bus.subscribe_kept(&protocol::status_topic(service)).await?,
        };
        let requests: Arc<Requests> = Arc::new(Mutex::new(Some(HashMap::new())));
        let task = tokio::spawn(hand_out(heeded, requests.clone()));
        Ok(Watch { requests, task })
    }
}

/// Hands each message to the request it names, or to all of them; a finish after
/// the progress and errors already waiting (they were published before it).
async fn hand_out(mut heeded: Heeded, requests: Arc<Requests>) {
    loop {
        let message = tokio::select! {
            biased;
            Some(message) = heeded.progress.recv() => progress(&message),
            Some(message) = heeded.errors.recv() => error(&message),
            Some(message) = heeded.starts.recv() => taken(&message),
            Some(message) = heeded.status.recv() => Some((None, Heard::Status(message))),
            Some(message) = heeded.finishes.recv() => {
                while let Some(message) = heeded.progress.try_recv() {
                    give(&requests, progress(&message));
                }
                while let Some(message) = heeded.errors.try_recv() {
                    give(&requests, error(&message));
                }
                let finish = protocol::parse_finish(&message.payload);
                Some((finish.correlation_id.clone(), Heard::Finish(finish)))
            }
            else => break,
        };
        give(&requests, message);
    }
    // The bus closed: every request hears that nothing more comes.
    requests.lock().expect("requests lock").take();
}

/// Hands `heard` to the request whose id it names, or, naming none, to every one.
fn give(requests: &Requests, heard: Option<(Option<String>, Heard)>) {
    let Some((id, heard)) = heard else { return };
    let requests = requests.lock().expect("requests lock");
    let Some(requests) = requests.as_ref() else {
        return;
    };
    match id {
        Some(id) => {
            if let Some(tx) = requests.get(&id) {
                let _ = tx.send(heard);
            }
        }
        None => {
            for tx in requests.values() {
                let _ = tx.send(heard.clone());
            }
        }
    }
}

/// A message's correlation id, when it is a JSON object naming one.
fn id_of(body: &Value) -> Option<String> {
    body.get(CORRELATION_FIELD)
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// A progress message: an object's id and `message`, or, not an object, its text
/// for every request.
fn progress(message: &Message) -> Option<(Option<String>, Heard)> {
    Some(match serde_json::from_slice::<Value>(&message.payload) {
        Ok(body @ Value::Object(_)) => {
            let text = body.get("message").and_then(Value::as_str);
            let text = text.unwrap_or_default().to_string();
            let id = id_of(&body);
            (id.clone(), Heard::Progress(id, text))
        }
        _ => {
            let text = String::from_utf8_lossy(&message.payload).into_owned();
            (None, Heard::Said(text))
        }
    })
}

/// A `<service>/error` report: its id, its action topic, its error.
fn error(message: &Message) -> Option<(Option<String>, Heard)> {
    let body: Value = serde_json::from_slice(&message.payload).unwrap_or(Value::Null);
    let topic = body
        .get("topic")
        .and_then(Value::as_str)
        .map(str::to_string);
    let error = match body.get("error") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::from_utf8_lossy(&message.payload).into_owned(),
    };
    let id = id_of(&body);
    Some((id.clone(), Heard::Error(id, topic, error)))
}

/// `<topic>/start`, when it names its request and the host that took it.
fn taken(message: &Message) -> Option<(Option<String>, Heard)> {
    let body: Value = serde_json::from_slice(&message.payload).ok()?;
    let id = id_of(&body)?;
    let host = body.get(TAKER_FIELD).and_then(Value::as_str)?;
    Some((Some(id), Heard::Taken(host.to_string())))
}
