//! What a subscription hands out: messages, the deliveries to acknowledge, and
//! which topics a filter takes.

use super::Bus;
use bytes::Bytes;
use tokio::sync::mpsc;

/// A message received on a subscription.
#[derive(Debug, Clone)]
pub struct Message {
    /// The topic it was published on.
    pub topic: String,
    /// Its payload.
    pub payload: Bytes,
    /// True when the broker delivered it from its retained store.
    pub retain: bool,
    /// For a subscription taken with [`Bus::subscribe_work`]: the broker's delivery,
    /// to acknowledge with [`Bus::ack`] once the work is done (QoS 1 only).
    pub delivery: Option<Delivery>,
}

/// One QoS 1 delivery awaiting its acknowledgement, in the session it arrived in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Delivery {
    pub(super) pkid: u16,
    pub(super) session: u64,
}

/// Messages matching one filter; unsubscribes when dropped.
pub struct Subscription {
    pub(super) rx: mpsc::Receiver<Message>,
    pub(super) id: u64,
    pub(super) bus: Bus,
}

impl Subscription {
    /// The next message; `None` once the bus is closed.
    pub async fn recv(&mut self) -> Option<Message> {
        self.rx.recv().await
    }
}

impl Subscription {
    /// A message already received, if any, without waiting.
    pub fn try_recv(&mut self) -> Option<Message> {
        self.rx.try_recv().ok()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.bus.remove_route(self.id);
    }
}

/// True when `topic` matches `filter`, a shared subscription's `$share/<group>/` prefix ignored.
pub(super) fn filter_matches(topic: &str, filter: &str) -> bool {
    let filter = match filter.strip_prefix("$share/") {
        Some(rest) => rest.split_once('/').map_or(rest, |(_, f)| f),
        None => filter,
    };
    rumqttc::matches(topic, filter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_filters_match_their_topic() {
        assert!(filter_matches(
            "fetcher/fetch",
            "$share/copper/fetcher/fetch"
        ));
        assert!(filter_matches("fetcher/fetch/finish", "fetcher/fetch/+"));
        assert!(!filter_matches("fetcher/fetch/finish", "fetcher/fetch"));
    }
}
