//! The services up on the broker, watched for as long as the API serves: a call
//! for an action nobody answers is told so at once, not after a discovery's wait.

use crate::bus::{Bus, BusError};
use crate::protocol;
use crate::runner::discovery::described_actions;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// What one service said on the broker.
#[derive(Debug, Clone, Default)]
struct Said {
    /// Its retained `<service>/status` is `up`.
    up: bool,
    /// The action topics of its retained `<service>/describe`, when it sent one.
    actions: Option<Vec<String>>,
}

/// The services up on the broker, kept current.
pub(super) struct Elsewhere {
    said: Arc<Mutex<BTreeMap<String, Said>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Elsewhere {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Elsewhere {
    /// Starts watching statuses and descriptions on `bus`.
    pub async fn watch(bus: Bus) -> Result<Self, BusError> {
        let mut statuses = bus.subscribe("+/status").await?;
        let mut describes = bus.subscribe("+/describe").await?;
        let said: Arc<Mutex<BTreeMap<String, Said>>> = Arc::default();
        let task = {
            let said = said.clone();
            tokio::spawn(async move {
                let _bus = bus;
                loop {
                    let (message, status) = tokio::select! {
                        Some(m) = statuses.recv() => (m, true),
                        Some(m) = describes.recv() => (m, false),
                        else => break,
                    };
                    let service = protocol::service_of(&message.topic).to_string();
                    let mut said = said.lock().expect("services lock");
                    let entry = said.entry(service.clone()).or_default();
                    if status {
                        entry.up = &message.payload[..] == b"up";
                    } else {
                        entry.actions = described_actions(&service, &message.payload);
                    }
                }
            })
        };
        Ok(Self { said, task })
    }

    /// True when a service up on the broker may answer `topic`: it describes that
    /// action, or it describes none (copper's services only say `up`).
    pub fn may_answer(&self, topic: &str) -> bool {
        let said = self.said.lock().expect("services lock");
        said.get(protocol::service_of(topic)).is_some_and(|s| {
            s.up && s
                .actions
                .as_ref()
                .is_none_or(|actions| actions.iter().any(|a| a == topic))
        })
    }

    /// True when `service`'s retained status is `up`.
    pub fn is_up(&self, service: &str) -> bool {
        let said = self.said.lock().expect("services lock");
        said.get(service).is_some_and(|s| s.up)
    }

    /// The actions `service` describes.
    pub fn actions_of(&self, service: &str) -> Vec<String> {
        let said = self.said.lock().expect("services lock");
        said.get(service)
            .and_then(|s| s.actions.clone())
            .unwrap_or_default()
    }

    /// The actions services up on the broker describe.
    pub fn known(&self) -> Vec<String> {
        let said = self.said.lock().expect("services lock");
        said.values()
            .filter(|s| s.up)
            .flat_map(|s| s.actions.iter().flatten().cloned())
            .collect()
    }
}
