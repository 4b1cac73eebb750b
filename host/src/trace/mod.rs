//! The pub/sub trace: who publishes and who subscribes to what on the broker,
//! with counts and when each was first and last seen.
//!
//! copper meant its broker's log to be read for this ("collection of mosquitto
//! logs allows to trace services publish and subscribe to generate a
//! dependencies graph"). A host records it as it goes: its own clients (the
//! services, the runners, the API's) through [`crate::connector`], and on the
//! embedded broker every client that comes in over TCP through the broker's
//! relay, copper's own programs among them. A recorded trace is also read from
//! a mosquitto log ([`mosquitto_log`]); [`crate::graph`] draws it.
//!
//! Recording takes a lock and a hash lookup per message, and allocates only for a
//! client or topic not seen before: the request path does not wait on it.
//! Clients whose ids end in a random suffix (one per run: `copper-wasm-runner-
//! <workflow>-<uuid>`) are counted under their id without it, so a daemon that
//! runs for months keeps one entry per workflow, not one per run.

pub mod mosquitto_log;

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

/// Clients kept at most; past that the one seen least recently is forgotten.
const MAX_CLIENTS: usize = 4096;

/// Topics kept per client and direction at most; past that they are counted as `others`.
const MAX_TOPICS: usize = 1024;

/// Resources named per topic at most.
const MAX_RESOURCES: usize = 16;

/// The request field that names a resource (copper's `resource:`).
const RESOURCE_FIELD: &str = "resource";

/// The recorder: cheap to clone, shared by a host's clients; [`Trace::off`] records nothing.
#[derive(Clone, Default)]
pub struct Trace {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    /// False while paused ([`Trace::set_recording`]).
    recording: std::sync::atomic::AtomicBool,
    tally: Mutex<Tally>,
}

impl std::fmt::Debug for Trace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trace")
            .field("on", &self.inner.is_some())
            .finish()
    }
}

#[derive(Default)]
struct Tally {
    clients: HashMap<String, ClientTally>,
    /// Clients forgotten to stay under [`MAX_CLIENTS`].
    forgotten: u64,
}

#[derive(Default)]
struct ClientTally {
    publishes: HashMap<String, Seen>,
    subscribes: HashMap<String, Seen>,
    last_ms: u64,
    /// Messages on topics beyond [`MAX_TOPICS`].
    others: u64,
}

#[derive(Clone)]
struct Seen {
    count: u64,
    first_ms: u64,
    last_ms: u64,
    resources: Vec<String>,
}

impl Trace {
    /// A recorder that keeps what it is told.
    pub fn new() -> Self {
        Self {
            inner: Some(Arc::new(Inner {
                recording: std::sync::atomic::AtomicBool::new(true),
                tally: Mutex::default(),
            })),
        }
    }

    /// Pauses the recording (`false`) or takes it up again (`true`); what was
    /// recorded is kept.
    pub fn set_recording(&self, on: bool) {
        if let Some(inner) = &self.inner {
            inner
                .recording
                .store(on, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// The recorder, when it records now.
    fn recording(&self) -> Option<&Inner> {
        self.inner
            .as_deref()
            .filter(|inner| inner.recording.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// A recorder that keeps nothing (and costs nothing).
    pub fn off() -> Self {
        Self { inner: None }
    }

    /// True when it records.
    pub fn is_on(&self) -> bool {
        self.inner.is_some()
    }

    /// `client` published `payload` on `topic`. For a request (an action topic),
    /// the `resource` it names is kept too: a service that reads a resource
    /// another produced depends on it.
    pub fn published(&self, client: &str, topic: &str, payload: &[u8]) {
        let Some(inner) = self.recording() else {
            return;
        };
        let resource = if crate::protocol::is_action_topic(topic) {
            resource_of(payload)
        } else {
            None
        };
        let now = now_ms();
        let mut tally = inner.tally.lock().expect("trace lock");
        let client = tally.client(client, now);
        let others = &mut client.others;
        if let Some(seen) = note(&mut client.publishes, topic, now, others)
            && let Some(resource) = resource
            && seen.resources.len() < MAX_RESOURCES
            && !seen.resources.contains(&resource)
        {
            seen.resources.push(resource);
        }
    }

    /// `client` subscribed to `filter` (a shared subscription's `$share/<group>/`
    /// is left off: what matters is the topics it reads).
    pub fn subscribed(&self, client: &str, filter: &str) {
        let Some(inner) = self.recording() else {
            return;
        };
        let filter = unshared(filter);
        let now = now_ms();
        let mut tally = inner.tally.lock().expect("trace lock");
        let client = tally.client(client, now);
        let others = &mut client.others;
        note(&mut client.subscribes, filter, now, others);
    }

    /// What it holds now.
    pub fn recorded(&self) -> Recorded {
        let Some(inner) = &self.inner else {
            return Recorded::default();
        };
        let tally = inner.tally.lock().expect("trace lock");
        let list = |map: &HashMap<String, Seen>| {
            let mut topics: Vec<TopicRecord> = map
                .iter()
                .map(|(topic, seen)| TopicRecord {
                    topic: topic.clone(),
                    count: seen.count,
                    first_ms: seen.first_ms,
                    last_ms: seen.last_ms,
                    resources: seen.resources.clone(),
                })
                .collect();
            topics.sort_by(|a, b| a.topic.cmp(&b.topic));
            topics
        };
        let mut clients: Vec<ClientRecord> = tally
            .clients
            .iter()
            .map(|(id, client)| ClientRecord {
                client: id.clone(),
                publishes: list(&client.publishes),
                subscribes: list(&client.subscribes),
                others: client.others,
            })
            .collect();
        clients.sort_by(|a, b| a.client.cmp(&b.client));
        Recorded {
            clients,
            forgotten: tally.forgotten,
        }
    }
}

impl Tally {
    fn client(&mut self, id: &str, now: u64) -> &mut ClientTally {
        let id = grouped(id);
        if !self.clients.contains_key(id) {
            if self.clients.len() >= MAX_CLIENTS
                && let Some(oldest) = self
                    .clients
                    .iter()
                    .min_by_key(|(_, c)| c.last_ms)
                    .map(|(id, _)| id.clone())
            {
                self.clients.remove(&oldest);
                self.forgotten += 1;
            }
            self.clients.insert(id.to_string(), ClientTally::default());
        }
        let client = self.clients.get_mut(id).expect("just inserted");
        client.last_ms = now;
        client
    }
}

/// Counts one message on `topic`; `None` when the map is full and the topic new.
fn note<'m>(
    map: &'m mut HashMap<String, Seen>,
    topic: &str,
    now: u64,
    others: &mut u64,
) -> Option<&'m mut Seen> {
    if !map.contains_key(topic) {
        if map.len() >= MAX_TOPICS {
            *others += 1;
            return None;
        }
        map.insert(
            topic.to_string(),
            Seen {
                count: 0,
                first_ms: now,
                last_ms: now,
                resources: Vec::new(),
            },
        );
    }
    let seen = map.get_mut(topic).expect("just inserted");
    seen.count += 1;
    seen.last_ms = now;
    Some(seen)
}

/// The `resource` a request names, read only when the payload mentions one.
/// The `resource` a request names: its first `"resource": "<name>"`, read in
/// place (a JSON parse only when the name holds an escape).
fn resource_of(payload: &[u8]) -> Option<String> {
    let key = memchr::memmem::find(payload, b"\"resource\"")?;
    let rest = skip(&payload[key + RESOURCE_FIELD.len() + 2..]);
    let rest = skip(rest.strip_prefix(b":")?);
    let rest = rest.strip_prefix(b"\"")?;
    let end = memchr::memchr2(b'"', b'\\', rest)?;
    let name = if rest[end] == b'"' {
        std::str::from_utf8(&rest[..end]).ok()?.to_string()
    } else {
        let value: serde_json::Value = serde_json::from_slice(payload).ok()?;
        value.get(RESOURCE_FIELD)?.as_str()?.to_string()
    };
    (!name.is_empty()).then_some(name)
}

/// `bytes` without the whitespace it starts with.
fn skip(bytes: &[u8]) -> &[u8] {
    let n = bytes.iter().take_while(|b| b.is_ascii_whitespace()).count();
    &bytes[n..]
}

/// `filter` without a shared subscription's `$share/<group>/`.
pub fn unshared(filter: &str) -> &str {
    filter
        .strip_prefix("$share/")
        .and_then(|rest| rest.split_once('/'))
        .map_or(filter, |(_, filter)| filter)
}

/// A client id without the random suffix that makes one per run or call:
/// `copper-wasm-runner-docs-3f2a…` (32 hex digits) is counted as `copper-wasm-runner-docs`.
pub fn grouped(client: &str) -> &str {
    match client.rsplit_once('-') {
        Some((head, tail))
            if !head.is_empty()
                && tail.len() == 32
                && tail.bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            head
        }
        _ => client,
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A trace as recorded: every client seen, what it published and subscribed to.
/// `GET /v1/trace` serves it; `copper-wasm graph --from FILE` reads it back.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Recorded {
    /// The clients, by id.
    pub clients: Vec<ClientRecord>,
    /// Clients forgotten to keep the trace bounded (those seen least recently).
    #[serde(default)]
    pub forgotten: u64,
}

/// One client's publications and subscriptions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientRecord {
    /// Its MQTT client id (per-run suffixes left off).
    pub client: String,
    /// The topics it published on.
    #[serde(default)]
    pub publishes: Vec<TopicRecord>,
    /// The filters it subscribed to.
    #[serde(default)]
    pub subscribes: Vec<TopicRecord>,
    /// Messages on topics beyond the trace's bound.
    #[serde(default)]
    pub others: u64,
}

/// One topic (or filter) of a client.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TopicRecord {
    /// The topic or filter.
    pub topic: String,
    /// How many times.
    pub count: u64,
    /// First seen, in milliseconds since the Unix epoch (0: unknown).
    #[serde(default)]
    pub first_ms: u64,
    /// Last seen, likewise.
    #[serde(default)]
    pub last_ms: u64,
    /// The resources its requests named (requests only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
}

impl Recorded {
    /// The client `id`, added when new.
    pub fn client_mut(&mut self, id: &str) -> &mut ClientRecord {
        let id = grouped(id);
        match self.clients.iter().position(|c| c.client == id) {
            Some(at) => &mut self.clients[at],
            None => {
                self.clients.push(ClientRecord {
                    client: id.to_string(),
                    ..ClientRecord::default()
                });
                self.clients.last_mut().expect("just pushed")
            }
        }
    }
}

impl ClientRecord {
    /// Counts one message on `topic` in `list` at `at_ms`.
    pub fn note<'l>(
        list: &'l mut Vec<TopicRecord>,
        topic: &str,
        at_ms: u64,
    ) -> &'l mut TopicRecord {
        let at = match list.iter().position(|t| t.topic == topic) {
            Some(at) => at,
            None => {
                list.push(TopicRecord {
                    topic: topic.to_string(),
                    first_ms: at_ms,
                    ..TopicRecord::default()
                });
                list.len() - 1
            }
        };
        let topic = &mut list[at];
        topic.count += 1;
        topic.last_ms = topic.last_ms.max(at_ms);
        topic
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publications_and_subscriptions_are_counted_by_client_and_topic() {
        let trace = Trace::new();
        let runner = format!("copper-wasm-runner-docs-{}", "a".repeat(32));
        trace.subscribed("copper-wasm-h1-fetcher", "$share/copper/fetcher/fetch");
        trace.subscribed(&runner, "fetcher/fetch/finish");
        for _ in 0..3 {
            trace.published(
                &runner,
                "fetcher/fetch",
                br#"{"resource": "site", "type": "git"}"#,
            );
        }
        trace.published("copper-wasm-h1-fetcher", "fetcher/resources/site", b"[]");
        let recorded = trace.recorded();
        let names: Vec<&str> = recorded.clients.iter().map(|c| c.client.as_str()).collect();
        assert_eq!(names, ["copper-wasm-h1-fetcher", "copper-wasm-runner-docs"]);
        let service = &recorded.clients[0];
        assert_eq!(service.subscribes[0].topic, "fetcher/fetch");
        assert_eq!(service.publishes[0].topic, "fetcher/resources/site");
        let runner = &recorded.clients[1];
        assert_eq!(runner.publishes[0].count, 3);
        assert_eq!(runner.publishes[0].resources, ["site"]);
        assert!(runner.publishes[0].first_ms > 0);
        assert!(runner.publishes[0].last_ms >= runner.publishes[0].first_ms);
    }

    #[test]
    fn the_resource_a_request_names_is_read_in_place() {
        assert_eq!(
            resource_of(br#"{"a":1, "resource" : "site"}"#).as_deref(),
            Some("site")
        );
        assert_eq!(
            resource_of(br#"{"resource":"a\"b"}"#).as_deref(),
            Some("a\"b")
        );
        assert_eq!(resource_of(br#"{"resource":""}"#), None);
        assert_eq!(resource_of(br#"{"resources":"x"}"#), None);
        assert_eq!(resource_of(br#"{"resource": 3}"#), None);
        assert_eq!(resource_of(b"not json"), None);
    }

    #[test]
    fn a_paused_trace_keeps_what_it_had_and_adds_nothing() {
        let trace = Trace::new();
        trace.published("a", "x/y", b"{}");
        trace.set_recording(false);
        trace.published("a", "x/y", b"{}");
        trace.published("b", "x/y", b"{}");
        trace.set_recording(true);
        let recorded = trace.recorded();
        assert_eq!(recorded.clients.len(), 1);
        assert_eq!(recorded.clients[0].publishes[0].count, 1);
    }

    #[test]
    fn an_off_trace_keeps_nothing() {
        let trace = Trace::off();
        trace.published("a", "b/c", b"{}");
        assert_eq!(trace.recorded(), Recorded::default());
    }

    #[test]
    fn it_stays_bounded() {
        let trace = Trace::new();
        for n in 0..(MAX_CLIENTS + 10) {
            trace.published(&format!("client-{n}"), "x/y", b"{}");
        }
        for n in 0..(MAX_TOPICS + 5) {
            trace.published("one", &format!("t/{n}"), b"");
        }
        let recorded = trace.recorded();
        assert_eq!(recorded.clients.len(), MAX_CLIENTS);
        assert_eq!(recorded.forgotten, 11);
        let one = recorded.clients.iter().find(|c| c.client == "one").unwrap();
        assert_eq!(one.publishes.len(), MAX_TOPICS);
        assert_eq!(one.others, 5);
    }

    #[test]
    fn only_a_random_suffix_is_left_off() {
        assert_eq!(
            grouped(&format!("copper-wasm-call-{}", "0f".repeat(16))),
            "copper-wasm-call"
        );
        assert_eq!(grouped("copper-wasm-h1-fetcher"), "copper-wasm-h1-fetcher");
        assert_eq!(grouped("paho-1234"), "paho-1234");
        assert_eq!(unshared("$share/copper/a/b"), "a/b");
        assert_eq!(unshared("a/b"), "a/b");
    }

    #[test]
    fn a_recorded_trace_reads_back_from_json() {
        let trace = Trace::new();
        trace.published("c", "a/b", br#"{"resource":"r"}"#);
        let recorded = trace.recorded();
        let text = serde_json::to_string(&recorded).unwrap();
        let back: Recorded = serde_json::from_str(&text).unwrap();
        assert_eq!(back, recorded);
    }
}
