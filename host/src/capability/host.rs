//! Capability `host`, granted to every component: log lines, progress, resources.

use super::RequestState;
use crate::job::ServiceEvent;
use crate::wit::copper::service::host::{Host, Level};

/// Longest log or progress line kept; longer ones are cut, so a guest cannot flood the log.
pub const MAX_LINE: usize = 8 * 1024;

/// Largest resource payload accepted.
pub const MAX_RESOURCE_PAYLOAD: usize = 1 << 20;

fn cut(mut text: String) -> String {
    if text.len() > MAX_LINE {
        let mut end = MAX_LINE;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

impl Host for RequestState {
    async fn log(&mut self, level: Level, message: String) {
        let message = cut(message);
        let service = self.service.as_str();
        match level {
            Level::Trace => tracing::trace!(target: "component", service, "{message}"),
            Level::Debug => tracing::debug!(target: "component", service, "{message}"),
            Level::Info => tracing::info!(target: "component", service, "{message}"),
            Level::Warn => tracing::warn!(target: "component", service, "{message}"),
            Level::Error => tracing::error!(target: "component", service, "{message}"),
        }
    }

    async fn progress(&mut self, message: String) {
        if let Some(events) = &self.events {
            let _ = events.send(ServiceEvent::Progress(cut(message))).await;
        }
    }

    async fn announce_resource(&mut self, name: String, payload: String) -> Result<(), String> {
        if !crate::protocol::is_safe_name(&name) {
            return Err(format!(
                "resource name `{name}` is not a safe name (letters, digits, `.`, `_`, `-`)"
            ));
        }
        if payload.len() > MAX_RESOURCE_PAYLOAD {
            return Err(format!(
                "resource payload of {} bytes is over the limit of {MAX_RESOURCE_PAYLOAD}",
                payload.len()
            ));
        }
        if serde_json::from_str::<serde_json::Value>(&payload).is_err() {
            return Err("resource payload is not JSON".into());
        }
        if let Some(events) = &self.events {
            let _ = events.send(ServiceEvent::Resource { name, payload }).await;
        }
        Ok(())
    }
}
