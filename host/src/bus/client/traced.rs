//! What a bus publishes and subscribes to, recorded in the host's trace.

use super::Bus;

impl Bus {
    /// Records what this bus publishes and subscribes to in `trace`, as `client`
    /// (set once: later calls change nothing).
    pub fn trace_as(&self, trace: crate::trace::Trace, client: &str) {
        if trace.is_on() {
            let _ = self.shared.traced.set((trace, client.to_string()));
        }
    }

    pub(super) fn trace_publish(&self, topic: &str, payload: &[u8]) {
        if let Some((trace, client)) = self.shared.traced.get() {
            trace.published(client, topic, payload);
        }
    }

    pub(super) fn trace_subscribe(&self, filter: &str) {
        if let Some((trace, client)) = self.shared.traced.get() {
            trace.subscribed(client, filter);
        }
    }
}
