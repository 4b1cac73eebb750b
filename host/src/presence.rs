//! Which copper-wasm hosts are on the broker, and what each serves.
//!
//! Each host announces itself, retained, on `copper-wasm/hosts/<id>`: its id,
//! version, capacity and services, with the client id and filters each service is
//! served through. Its last will replaces that with the same presence in state
//! `dead`: its sessions at the broker may hold requests it took and never finished,
//! until a live host adopts them (the scheduler's `adopt`) and clears the topic. A
//! clean stop says `stopping`, finishes what it took, then clears the topic itself.
//!
//! [`Hosts`] watches them: runners resend what a host that died had taken, and a
//! service is up while any host serves it.

use crate::bus::{Bus, BusError, Message};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// The filter of every host's presence.
pub const HOSTS_FILTER: &str = "copper-wasm/hosts/+";

/// The field of a `<topic>/start` message naming the host that took the request.
pub const TAKER_FIELD: &str = "copper_host";

/// `copper-wasm/hosts/<id>`: one host's retained presence.
pub fn host_topic(id: &str) -> String {
    format!("copper-wasm/hosts/{id}")
}

/// The host id kept in `<cache>/host-id`, made (12 random hex digits) the first
/// time: a host started again on the same cache folder is the same host, and takes
/// its sessions back.
pub fn stored_host_id(cache: &std::path::Path) -> std::io::Result<String> {
    let file = cache.join("host-id");
    match std::fs::read_to_string(&file) {
        Ok(id) if crate::protocol::is_safe_name(id.trim()) => return Ok(id.trim().to_string()),
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    std::fs::create_dir_all(cache)?;
    let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
    std::fs::write(&file, format!("{id}\n"))?;
    Ok(id)
}

/// Where a host is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HostState {
    /// Taking requests.
    Up,
    /// Stopping cleanly: taking no more, finishing what it took.
    Stopping,
    /// Gone without a word (its last will): what it took waits in its sessions.
    Dead,
}

/// One service as a host serves it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ServedHere {
    /// The service's name.
    pub name: String,
    /// The MQTT client id (a persistent session) its requests come through.
    pub client_id: String,
    /// The filters it subscribes to.
    pub filters: Vec<String>,
}

/// A host's presence, as it announces it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HostPresence {
    /// Its id, stable across restarts.
    pub id: String,
    /// The copper-wasm version it runs.
    pub version: String,
    /// Where it is in its life.
    pub state: HostState,
    /// Requests of one service it runs at once.
    pub capacity: usize,
    /// Whether its sessions outlive it at the broker (a host with an id of its own),
    /// holding what it took and did not answer.
    pub persistent: bool,
    /// What it serves.
    pub services: Vec<ServedHere>,
}

impl HostPresence {
    /// True when it serves `service`.
    pub fn serves(&self, service: &str) -> bool {
        self.services.iter().any(|s| s.name == service)
    }

    /// The same presence in `state`.
    pub fn with_state(&self, state: HostState) -> Self {
        Self {
            state,
            ..self.clone()
        }
    }

    /// As published.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a presence is JSON")
    }
}

/// One message on a host's topic, read.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    /// A presence (up, stopping or dead).
    Present(HostPresence),
    /// The topic of this host id was cleared: it stopped, or was adopted.
    Cleared(String),
}

/// Reads a message of [`HOSTS_FILTER`]; `None` when it is not a host's presence.
pub fn read(message: &Message) -> Option<Seen> {
    let id = message.topic.strip_prefix("copper-wasm/hosts/")?;
    if message.payload.is_empty() {
        return Some(Seen::Cleared(id.to_string()));
    }
    let presence: HostPresence = serde_json::from_slice(&message.payload).ok()?;
    (presence.id == id).then_some(Seen::Present(presence))
}

/// How a host went away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Departure {
    /// It died: what it took and did not finish will not be answered by it.
    Died,
    /// It stopped cleanly (its finishes were sent before it left).
    Left,
}

/// A change among the hosts.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A host announced itself: it started, changed its state, or reconnected.
    Present(HostPresence),
    /// A host that was up is gone.
    Gone(HostPresence, Departure),
}

struct Known {
    /// The hosts seen up or stopping, by id.
    live: BTreeMap<String, HostPresence>,
    /// The hosts seen dead and not yet adopted, by id.
    dead: BTreeMap<String, HostPresence>,
    /// Every service a host was ever seen serving.
    ever: BTreeSet<String>,
}

/// The hosts on the broker, as one subscription sees them, and their changes.
#[derive(Clone)]
pub struct Hosts {
    known: Arc<Mutex<Known>>,
    changes: broadcast::Sender<Change>,
    _task: Arc<AbortOnDrop>,
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Hosts {
    /// Starts watching the hosts on `bus`'s broker (their retained presences first).
    pub async fn watch(bus: &Bus) -> Result<Hosts, BusError> {
        let mut subscription = bus.subscribe(HOSTS_FILTER).await?;
        let known = Arc::new(Mutex::new(Known {
            live: BTreeMap::new(),
            dead: BTreeMap::new(),
            ever: BTreeSet::new(),
        }));
        let (changes, _) = broadcast::channel(256);
        let task = {
            let (known, changes) = (known.clone(), changes.clone());
            tokio::spawn(async move {
                while let Some(message) = subscription.recv().await {
                    let Some(seen) = read(&message) else { continue };
                    let fresh = !message.retain;
                    let change = apply(&mut known.lock().expect("hosts lock"), seen, fresh);
                    if let Some(change) = change {
                        let _ = changes.send(change);
                    }
                }
            })
        };
        Ok(Hosts {
            known,
            changes,
            _task: Arc::new(AbortOnDrop(task)),
        })
    }

    /// Changes from now on.
    pub fn changes(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    /// The hosts up or stopping.
    pub fn live(&self) -> Vec<HostPresence> {
        let known = self.known.lock().expect("hosts lock");
        known.live.values().cloned().collect()
    }

    /// The hosts dead and not yet adopted.
    pub fn dead(&self) -> Vec<HostPresence> {
        let known = self.known.lock().expect("hosts lock");
        known.dead.values().cloned().collect()
    }

    /// True while some host up or stopping serves `service`.
    pub fn served(&self, service: &str) -> bool {
        let known = self.known.lock().expect("hosts lock");
        known.live.values().any(|h| h.serves(service))
    }

    /// True when a copper-wasm host was ever seen serving `service` (else it is
    /// served, if at all, by a program that announces no presence).
    pub fn ever_served(&self, service: &str) -> bool {
        self.known
            .lock()
            .expect("hosts lock")
            .ever
            .contains(service)
    }
}

/// Updates what is known with what was seen (`fresh`: published now, not sent
/// from the broker's retained store); the change, if it is one.
fn apply(known: &mut Known, seen: Seen, fresh: bool) -> Option<Change> {
    match seen {
        Seen::Present(presence) if presence.state == HostState::Dead => {
            known.dead.insert(presence.id.clone(), presence.clone());
            let was = known.live.remove(&presence.id)?;
            Some(Change::Gone(was, Departure::Died))
        }
        Seen::Present(presence) => {
            known.dead.remove(&presence.id);
            known
                .ever
                .extend(presence.services.iter().map(|s| s.name.clone()));
            // Only a presence published now is news (the same one again too: the host
            // reconnected, so what was sent meanwhile may be lost); the retained ones
            // a watch starts with are the state it starts from.
            known.live.insert(presence.id.clone(), presence.clone());
            fresh.then_some(Change::Present(presence))
        }
        Seen::Cleared(id) => {
            known.dead.remove(&id);
            let was = known.live.remove(&id)?;
            Some(Change::Gone(was, Departure::Left))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn presence(id: &str, state: HostState) -> HostPresence {
        HostPresence {
            id: id.into(),
            version: "0".into(),
            state,
            capacity: 16,
            persistent: true,
            services: vec![ServedHere {
                name: "testkit".into(),
                client_id: format!("copper-wasm-{id}-testkit"),
                filters: vec!["$share/g/testkit/echo".into()],
            }],
        }
    }

    fn message(topic: &str, payload: &str) -> Message {
        Message {
            topic: topic.into(),
            payload: payload.to_string().into(),
            retain: false,
            delivery: None,
        }
    }

    #[test]
    fn a_host_id_is_kept_in_its_cache() {
        let cache = tempfile::tempdir().unwrap();
        let first = stored_host_id(cache.path()).unwrap();
        assert_eq!(first.len(), 12);
        assert_eq!(stored_host_id(cache.path()).unwrap(), first);
        std::fs::write(cache.path().join("host-id"), "../bad\n").unwrap();
        assert_ne!(stored_host_id(cache.path()).unwrap(), "../bad");
    }

    #[test]
    fn a_presence_round_trips_and_an_empty_one_clears() {
        let up = presence("a", HostState::Up);
        let read_back = read(&message(&host_topic("a"), &up.to_json()));
        assert_eq!(read_back, Some(Seen::Present(up.clone())));
        assert_eq!(
            read(&message(&host_topic("a"), "")),
            Some(Seen::Cleared("a".into()))
        );
        // A presence on another host's topic is not believed.
        assert_eq!(read(&message(&host_topic("b"), &up.to_json())), None);
    }

    #[test]
    fn a_death_or_a_stop_is_one_hosts_own() {
        let mut known = Known {
            live: BTreeMap::new(),
            dead: BTreeMap::new(),
            ever: BTreeSet::new(),
        };
        for id in ["a", "b"] {
            let change = apply(&mut known, Seen::Present(presence(id, HostState::Up)), true);
            assert!(matches!(change, Some(Change::Present(_))));
        }
        let died = apply(
            &mut known,
            Seen::Present(presence("a", HostState::Dead)),
            true,
        );
        assert_eq!(
            died,
            Some(Change::Gone(presence("a", HostState::Up), Departure::Died))
        );
        assert!(known.live.values().any(|h| h.serves("testkit")));
        assert_eq!(known.dead.len(), 1);
        // Adopted: its topic cleared; nothing more leaves.
        assert_eq!(apply(&mut known, Seen::Cleared("a".into()), true), None);
        assert!(known.dead.is_empty());
        let left = apply(&mut known, Seen::Cleared("b".into()), true);
        assert!(matches!(left, Some(Change::Gone(_, Departure::Left))));
        assert!(known.live.is_empty());
        assert!(known.ever.contains("testkit"));
        // Announced: news when published now, not when read from the store.
        let up = || Seen::Present(presence("c", HostState::Up));
        assert_eq!(apply(&mut known, up(), false), None);
        assert!(known.live.contains_key("c"));
        assert!(apply(&mut known, up(), true).is_some());
    }
}
