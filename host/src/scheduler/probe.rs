//! What a host finds out about the broker before it serves: whether its id is
//! free, whether shared subscriptions work, and whether acknowledgements must come
//! in order.

use super::ServeError;
use crate::bus::{Bus, BusError};
use crate::presence::{self, HostState};
use std::time::Duration;

/// Retained by a host whose broker is embedded: what that broker (rumqttd) asks of clients.
pub const BROKER_TOPIC: &str = "copper-wasm/broker";

/// How long retained messages are waited for (a host's presence, the broker's description).
const LOOK: Duration = Duration::from_millis(300);

/// How long a probe of shared subscriptions waits for its message.
const PROBE: Duration = Duration::from_secs(2);

/// What the broker is.
#[derive(Debug, Clone, Copy)]
pub(super) struct Facts {
    /// Shared subscriptions work (nats-server takes `$share/…` as a plain topic).
    pub shared: bool,
    /// Acknowledgements must come in the order the messages did (rumqttd).
    pub ordered_acks: bool,
}

/// Looks at the broker on `bus`: whether a host of id `host_id` is up (refused when
/// `check_id`), whether it is another host's embedded broker, and, when the host
/// `serves` anything, whether shared subscriptions work.
pub(super) async fn look_around(
    bus: &Bus,
    host_id: &str,
    check_id: bool,
    serves: bool,
) -> Result<Facts, ServeError> {
    let mut own = bus.subscribe(&presence::host_topic(host_id)).await?;
    let mut broker = bus.subscribe(BROKER_TOPIC).await?;
    let mut ordered_acks = false;
    let until = tokio::time::Instant::now() + LOOK;
    loop {
        tokio::select! {
            Some(message) = own.recv() => {
                if let Some(presence::Seen::Present(host)) = presence::read(&message)
                    && host.state != HostState::Dead
                    && check_id
                {
                    return Err(ServeError::IdInUse(host_id.to_string()));
                }
            }
            Some(message) = broker.recv() => {
                let said: serde_json::Value = serde_json::from_slice(&message.payload).unwrap_or_default();
                ordered_acks = said["acks"] == "in-order";
            }
            () = tokio::time::sleep_until(until) => break,
        }
    }
    let shared = !serves || shares_work(bus, host_id).await?;
    Ok(Facts {
        shared,
        ordered_acks,
    })
}

/// Says, retained, what the embedded broker asks of clients from other hosts.
pub(super) async fn describe_embedded(bus: &Bus) -> Result<(), BusError> {
    let description = r#"{"broker": "rumqttd", "acks": "in-order"}"#;
    bus.announce(BROKER_TOPIC, description).await
}

/// True when the broker honours shared subscriptions: a message reaches a `$share`
/// subscriber of its topic.
async fn shares_work(bus: &Bus, host_id: &str) -> Result<bool, BusError> {
    let topic = format!("copper-wasm/probe/{host_id}");
    let mut probe = bus
        .subscribe(&format!("$share/copper-wasm-probe/{topic}"))
        .await?;
    bus.publish(&topic, "probe", false).await?;
    let received = tokio::time::timeout(PROBE, probe.recv()).await;
    Ok(matches!(received, Ok(Some(_))))
}
