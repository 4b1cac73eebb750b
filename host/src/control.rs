//! A service's lifecycle over MQTT, for programs on the bus: the same commands as
//! the HTTP API's `POST /v1/services/{name}/{command}`.
//!
//! A command is a message on `copper-wasm/services/<service>/<command>` (`start`,
//! `stop`, `pause`, `resume`, `reload`), its payload empty or a JSON object with a
//! `correlation_id`. Every host that hosts the service applies it and answers on
//! `copper-wasm/services/<service>/<command>/finish` with the correlation id, its
//! host id, `status` (`success` or `failed`, with `error`) and the service's
//! `state`. On the embedded broker only clients granted `host` may publish there
//! (docs/security.md); on another broker, give those topics to operators alone.

use crate::Host;
use crate::bus::{Bus, BusError};
use crate::protocol::CORRELATION_FIELD;
use crate::scheduler::Command;
use serde_json::{Value, json};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The filter of every lifecycle command.
pub const COMMANDS_FILTER: &str = "copper-wasm/services/+/+";

/// `copper-wasm/services/<service>/<command>`.
pub fn command_topic(service: &str, command: Command) -> String {
    format!("copper-wasm/services/{service}/{}", command.name())
}

/// Lifecycle commands being listened for; [`Control::stop`] ends it.
pub struct Control {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Control {
    /// Stops listening, once the command under way (if any) is answered; the host
    /// is no longer held then.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

/// Listens for lifecycle commands on `host`'s broker until [`Control::stop`].
pub async fn listen(host: Arc<Host>) -> Result<Control, BusError> {
    let id = format!("copper-wasm-{}-control", host.id());
    let bus = host.connect(&id, None).await?;
    let mut commands = bus.subscribe(COMMANDS_FILTER).await?;
    let stop = CancellationToken::new();
    let shutdown = stop.clone();
    let task = tokio::spawn(async move {
        loop {
            let message = tokio::select! {
                message = commands.recv() => match message { Some(m) => m, None => break },
                () = shutdown.cancelled() => break,
            };
            if message.retain {
                continue;
            }
            // One at a time: commands to one service apply in the order they came.
            answer(&host, &bus, &message.topic, &message.payload).await;
        }
        bus.close().await;
    });
    Ok(Control { stop, task })
}

/// Applies one command and publishes its finish, when the service is hosted here.
async fn answer(host: &Host, bus: &Bus, topic: &str, payload: &[u8]) {
    let mut levels = topic.split('/').skip(2);
    let (Some(service), Some(command)) = (levels.next(), levels.next()) else {
        return;
    };
    if host.service_state(service).await.is_none() {
        return;
    }
    let correlation = serde_json::from_slice::<Value>(payload)
        .ok()
        .and_then(|v| v.get(CORRELATION_FIELD).cloned())
        .unwrap_or(Value::Null);
    let outcome = match command.parse::<Command>() {
        Ok(command) => host
            .command(service, command)
            .await
            .map_err(|e| crate::error_chain::error_chain(&e)),
        Err(why) => Err(why),
    };
    let state = host.service_state(service).await.map(|s| s.to_string());
    let body = match outcome {
        Ok(_) => {
            json!({CORRELATION_FIELD: correlation, "host": host.id(), "status": "success", "state": state})
        }
        Err(error) => {
            tracing::warn!(%service, %command, "{error}");
            json!({CORRELATION_FIELD: correlation, "host": host.id(), "status": "failed", "error": error, "state": state})
        }
    };
    if let Err(error) = bus
        .publish(&format!("{topic}/finish"), body.to_string(), false)
        .await
    {
        tracing::error!(%topic, %error, "cannot answer a lifecycle command");
    }
}
