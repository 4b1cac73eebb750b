//! A run's events on their way out: masked once, shown, published on
//! `copper/runs/<id>/events`.

use super::events::{RunEvent, Stamped};
use crate::bus::Bus;

/// Where a run's events go: the caller's callback, then the bus.
pub(super) struct Emitter<'a, F> {
    bus: &'a Bus,
    /// `copper/runs/<id>/events`.
    topic: String,
    /// The values to mask wherever they would show.
    secrets: Vec<String>,
    on_event: F,
}

impl<'a, F: FnMut(&Stamped)> Emitter<'a, F> {
    /// The events of run `run_id`, masking `secrets`, shown to `on_event`.
    pub(super) fn new(bus: &'a Bus, run_id: &str, secrets: Vec<String>, on_event: F) -> Self {
        Self {
            bus,
            topic: format!("copper/runs/{run_id}/events"),
            secrets,
            on_event,
        }
    }

    /// Stamps `event`, masks it (whatever it carries), shows it and publishes it.
    pub(super) async fn emit(&mut self, event: RunEvent) {
        let stamped = Stamped::now(event.masked(&self.secrets));
        let text = serde_json::to_string(&stamped).expect("events serialize");
        (self.on_event)(&stamped);
        if let Err(error) = self.bus.publish(&self.topic, text, false).await {
            tracing::warn!(%error, "cannot publish a run event");
        }
    }
}
