//! A service's life while its host runs: paused, stopped, started again, reloaded.
//!
//! - **pause**: take no more requests and finish those taken. Requests on the bus
//!   wait unread at the broker (the same backpressure as a full queue); a call from
//!   within the process is refused as `unavailable` (HTTP 503), so its caller
//!   retries. **resume** takes them again.
//! - **stop**: as pause, and the broker is asked for no more: the presence no longer
//!   lists the service, so other hosts take its requests, and `<service>/status`
//!   says `down` when no other host serves it. **start** subscribes again.
//! - **reload**: a new version of the service replaces the old one; requests
//!   running finish on the old one, the next ones get the new one. Its actions must
//!   stay the same (a service that answers other topics is a restart's business).

use super::{Service, Serving};
use crate::protocol;
use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

/// Where a service is in its life on this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceState {
    /// Taking requests.
    Up,
    /// Taking none; finishing those taken; requests wait.
    Paused,
    /// Not served here: the broker sends it nothing.
    Stopped,
}

impl fmt::Display for ServiceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Up => "up",
            Self::Paused => "paused",
            Self::Stopped => "stopped",
        })
    }
}

/// What may be asked of a service's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Command {
    /// Serve it again after a stop.
    Start,
    /// Serve it no more here.
    Stop,
    /// Take no more requests for now.
    Pause,
    /// Take requests again after a pause.
    Resume,
    /// Read it again from where it came from, and serve the new version.
    Reload,
}

impl Command {
    /// Every command, as the API names them.
    pub const ALL: [Command; 5] = [
        Self::Start,
        Self::Stop,
        Self::Pause,
        Self::Resume,
        Self::Reload,
    ];

    /// Its name (`pause`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Stop => "stop",
            Self::Pause => "pause",
            Self::Resume => "resume",
            Self::Reload => "reload",
        }
    }
}

impl std::str::FromStr for Command {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|c| c.name() == text)
            .ok_or_else(|| {
                format!("`{text}` is not a command: start, stop, pause, resume or reload")
            })
    }
}

/// Why a service's life cannot change as asked.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    /// No service of that name is served here.
    #[error("no service `{0}` is hosted here")]
    Unknown(String),
    /// The command does not apply to where the service is.
    #[error("service `{service}` is {state}: it cannot {command}")]
    Conflict {
        /// The service.
        service: String,
        /// Where it is.
        state: ServiceState,
        /// What was asked.
        command: &'static str,
    },
    /// A new version answers other actions than the one serving.
    #[error(
        "the new version of `{service}` answers {new:?}, the one serving {old:?}: a change of actions needs a restart"
    )]
    ActionsChanged {
        /// The service.
        service: String,
        /// The topics served now.
        old: Vec<String>,
        /// The new version's.
        new: Vec<String>,
    },
    /// The new version cannot be had; the old one goes on serving.
    #[error("service `{service}` cannot be reloaded; the version serving goes on")]
    Reload {
        /// The service.
        service: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The service cannot be started (a long-running container that did not come up).
    #[error("service `{service}` cannot start")]
    Start {
        /// The service.
        service: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// This kind of service cannot do it (a container per request has no file to read again).
    #[error("service `{service}` cannot {command}: {why}")]
    Unsupported {
        /// The service.
        service: String,
        /// What was asked.
        command: &'static str,
        /// Why not.
        why: String,
    },
    /// The bus failed.
    #[error(transparent)]
    Bus(#[from] crate::bus::BusError),
}

impl Serving {
    /// Where the service `name` is in its life here; None when it is not served here.
    pub fn state(&self, name: &str) -> Option<ServiceState> {
        self.dispatch(name).map(|d| d.lane.state()).ok()
    }

    /// The version of `name` serving now (a reload replaces it).
    pub fn current(&self, name: &str) -> Option<Arc<Service>> {
        self.dispatch(name).map(|d| d.current()).ok()
    }

    /// Takes no more requests of `name` until [`Serving::resume`].
    pub async fn pause(&self, name: &str) -> Result<ServiceState, LifecycleError> {
        let _one = self.lifecycle.lock().await;
        let dispatch = self.dispatch(name)?;
        match dispatch.lane.state() {
            ServiceState::Up => dispatch.lane.set_state(ServiceState::Paused),
            ServiceState::Paused => {}
            state => return Err(conflict(name, state, Command::Pause)),
        }
        tracing::info!(service = %name, "paused");
        Ok(ServiceState::Paused)
    }

    /// Takes requests of `name` again after a pause.
    pub async fn resume(&self, name: &str) -> Result<ServiceState, LifecycleError> {
        let _one = self.lifecycle.lock().await;
        let dispatch = self.dispatch(name)?;
        match dispatch.lane.state() {
            ServiceState::Paused => dispatch.lane.set_state(ServiceState::Up),
            ServiceState::Up => {}
            state => return Err(conflict(name, state, Command::Resume)),
        }
        tracing::info!(service = %name, "resumed");
        Ok(ServiceState::Up)
    }

    /// Serves `name` no more here: the broker sends it nothing, requests taken finish.
    pub async fn stop_service(&self, name: &str) -> Result<ServiceState, LifecycleError> {
        let _one = self.lifecycle.lock().await;
        let dispatch = self.dispatch(name)?;
        if dispatch.lane.state() == ServiceState::Stopped {
            return Ok(ServiceState::Stopped);
        }
        dispatch.lane.set_state(ServiceState::Stopped);
        let served = self.served_named(name);
        for filter in &served.filters {
            served.bus.stop_receiving(filter);
        }
        self.announce_presence(|p| p.services.retain(|s| s.name != name))
            .await?;
        let others = self.hosts.live().into_iter().any(|h| {
            h.id != self.id() && h.state == crate::presence::HostState::Up && h.serves(name)
        });
        if !others {
            served
                .bus
                .announce(&protocol::status_topic(name), "down")
                .await?;
        }
        tracing::info!(service = %name, "stopped");
        Ok(ServiceState::Stopped)
    }

    /// Serves `name` again after a stop.
    pub async fn start_service(&self, name: &str) -> Result<ServiceState, LifecycleError> {
        let _one = self.lifecycle.lock().await;
        let dispatch = self.dispatch(name)?;
        if dispatch.lane.state() != ServiceState::Stopped {
            return Ok(dispatch.lane.state());
        }
        let served = self.served_named(name);
        for filter in &served.filters {
            served.bus.resume_receiving(filter).await?;
        }
        let here = self
            .initial
            .services
            .iter()
            .find(|s| s.name == name)
            .cloned()
            .expect("every service served is in the first presence");
        self.announce_presence(|p| {
            p.services.push(here);
            p.services.sort_by(|a, b| a.name.cmp(&b.name));
        })
        .await?;
        served
            .bus
            .announce(&protocol::status_topic(name), "up")
            .await?;
        dispatch.lane.set_state(ServiceState::Up);
        tracing::info!(service = %name, "started");
        Ok(ServiceState::Up)
    }

    /// Serves `service` in place of the version of the same name: requests running
    /// finish on the old one. Refused when it answers other actions.
    pub async fn replace(&self, service: Service) -> Result<(), LifecycleError> {
        let _one = self.lifecycle.lock().await;
        let name = service.info.name.clone();
        let dispatch = self.dispatch(&name)?;
        let old = dispatch.current();
        let topics = |s: &Service| s.actions.keys().cloned().collect::<BTreeSet<_>>();
        if topics(&old) != topics(&service) {
            return Err(LifecycleError::ActionsChanged {
                service: name,
                old: topics(&old).into_iter().collect(),
                new: topics(&service).into_iter().collect(),
            });
        }
        let service = Arc::new(service.with_concurrency(old.concurrency));
        let describe = serde_json::to_string(&service.info).expect("service info is JSON");
        tracing::info!(service = %name, old = %old.info.version, new = %service.info.version, "reloaded");
        dispatch.replace(service);
        self.served_named(&name)
            .bus
            .announce(&protocol::describe_topic(&name), describe)
            .await?;
        Ok(())
    }

    fn served_named(&self, name: &str) -> &super::Served {
        self.served
            .iter()
            .find(|s| s.name == name)
            .expect("every dispatch has its served")
    }

    fn dispatch(&self, name: &str) -> Result<&Arc<super::Dispatch>, LifecycleError> {
        self.calls
            .by_service
            .get(name)
            .ok_or_else(|| LifecycleError::Unknown(name.to_string()))
    }

    /// Changes this host's presence and announces it again.
    async fn announce_presence(
        &self,
        change: impl FnOnce(&mut crate::presence::HostPresence),
    ) -> Result<(), LifecycleError> {
        let json = {
            let mut presence = self.presence.lock().expect("presence lock");
            change(&mut presence);
            presence.to_json()
        };
        let topic = crate::presence::host_topic(self.id());
        self.presence_bus.announce(&topic, json).await?;
        Ok(())
    }
}

fn conflict(service: &str, state: ServiceState, command: Command) -> LifecycleError {
    LifecycleError::Conflict {
        service: service.to_string(),
        state,
        command: command.name(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_read_by_name() {
        for command in Command::ALL {
            assert_eq!(command.name().parse::<Command>(), Ok(command));
        }
        let refused = "restart".parse::<Command>().unwrap_err();
        assert!(refused.contains("start, stop, pause, resume or reload"));
    }
}
