//! Which services are up on the broker: copper's retained `<service>/status`, our
//! `<service>/describe`, and the hosts' presence.

use crate::bus::{Bus, BusError};
use crate::presence::{HostState, Seen};
use crate::protocol;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// The action topics a `<service>/describe` payload names (None when it is not one).
pub fn described_actions(service: &str, payload: &[u8]) -> Option<Vec<String>> {
    let info: Value = serde_json::from_slice(payload).ok()?;
    let actions = info["actions"].as_array()?;
    Some(
        actions
            .iter()
            .filter_map(|a| a["name"].as_str())
            .map(|name| format!("{service}/{name}"))
            .collect(),
    )
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
///
/// A service a copper-wasm host's presence names (up or stopping) is up whatever
/// its status says.
pub async fn services_up(bus: &Bus, wait: Duration) -> Result<Vec<ServiceUp>, BusError> {
    services_up_for(bus, None, wait).await
}

/// How long [`services_up_for`] waits at least for a describe of a service it
/// found up (copper's services send none).
pub const DESCRIBE_WAIT: Duration = Duration::from_millis(300);

/// [`services_up`], returning as soon as every service of `needed` is up and
/// described (or up for [`DESCRIBE_WAIT`]): a clustered broker may take a
/// second or more to send what it retained, so `wait` can be long.
pub async fn services_up_for(
    bus: &Bus,
    needed: Option<&[&str]>,
    wait: Duration,
) -> Result<Vec<ServiceUp>, BusError> {
    let mut statuses = bus.subscribe("+/status").await?;
    let mut describes = bus.subscribe("+/describe").await?;
    let mut presences = bus.subscribe(crate::presence::HOSTS_FILTER).await?;
    let mut up = std::collections::BTreeSet::new();
    let mut actions = std::collections::BTreeMap::new();
    let mut hosted: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let started = tokio::time::Instant::now();
    let until = started + wait;
    let mut check = tokio::time::interval(Duration::from_millis(20));
    loop {
        tokio::select! {
            _ = check.tick(), if needed.is_some() => {
                let found = |service: &&str| {
                    let is_up = up.contains(*service) || hosted.values().any(|s| s.iter().any(|n| n == service));
                    is_up && (actions.contains_key(*service) || started.elapsed() >= DESCRIBE_WAIT)
                };
                if needed.is_some_and(|needed| needed.iter().all(found)) {
                    break;
                }
            }
            Some(message) = presences.recv() => match crate::presence::read(&message) {
                Some(Seen::Present(host)) if host.state != HostState::Dead => {
                    hosted.insert(host.id, host.services.into_iter().map(|s| s.name).collect());
                }
                Some(Seen::Present(host)) => { hosted.remove(&host.id); }
                Some(Seen::Cleared(id)) => { hosted.remove(&id); }
                None => {}
            },
            Some(message) = statuses.recv() => {
                let service = protocol::service_of(&message.topic).to_string();
                if &message.payload[..] == b"up" {
                    up.insert(service);
                } else {
                    up.remove(&service);
                }
            }
            Some(message) = describes.recv() => {
                if serde_json::from_slice::<Value>(&message.payload).is_ok() {
                    let service = protocol::service_of(&message.topic).to_string();
                    let topics = described_actions(&service, &message.payload).unwrap_or_default();
                    actions.insert(service, topics);
                }
            }
            () = tokio::time::sleep_until(until) => break,
        }
    }
    up.extend(hosted.into_values().flatten());
    Ok(up
        .into_iter()
        .map(|name| ServiceUp {
            actions: actions.remove(&name),
            name,
        })
        .collect())
}
