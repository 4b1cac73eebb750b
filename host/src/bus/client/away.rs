//! What a persistent session publishes while disconnected: held, then sent once
//! the broker says it kept that session, or dropped when it kept none (the
//! session's requests were handed to other hosts, who answer them).
//!
//! rumqttc itself drops what it had queued when the broker keeps no session, but
//! not what is still in its request channel: a host cut off from the broker
//! would send, once back, the finishes of requests others had answered.

use super::Bus;
use rumqttc::QoS;
use std::sync::atomic::Ordering;

/// Messages a persistent session keeps while disconnected, at most.
const HELD_CAPACITY: usize = 65_536;

/// One message held.
pub(super) type Held = (String, QoS, bool, Vec<u8>);

impl Bus {
    /// True when `payload` was kept for after the reconnection (a persistent
    /// session, disconnected): what rumqttc would queue now it would send in the
    /// next session even if the broker kept none of ours.
    pub(super) fn hold(&self, topic: &str, qos: QoS, retain: bool, payload: &mut Vec<u8>) -> bool {
        // Connected (nearly always): no lock. The check under the lock below is
        // the one that decides against a reconnection under way.
        if !self.shared.persistent
            || self.shared.client.mqtt().is_none()
            || *self.shared.connected.borrow()
        {
            return false;
        }
        let mut held = self.shared.held.lock().expect("held lock");
        if *self.shared.connected.borrow() {
            return false;
        }
        if held.len() >= HELD_CAPACITY {
            tracing::error!(%topic, "too much published while disconnected; dropped");
            return true;
        }
        held.push((topic.to_string(), qos, retain, std::mem::take(payload)));
        true
    }

    /// Sends what was held for this session once the broker kept it, in order;
    /// drops it when the session is new.
    pub(super) fn release_held(&self, held: Vec<Held>, session_present: bool) {
        if held.is_empty() {
            return;
        }
        if !session_present {
            tracing::warn!(
                broker = %self.shared.address,
                messages = held.len(),
                "the broker kept no session of ours: what we published while away is dropped (its requests went to other hosts)"
            );
            return;
        }
        let bus = self.clone();
        tokio::spawn(async move {
            for (topic, qos, retain, payload) in held {
                if let Some(client) = bus.shared.client.mqtt()
                    && client.publish(topic, qos, retain, payload).await.is_ok()
                    && qos == QoS::AtLeastOnce
                {
                    bus.shared.published.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
    }
}
