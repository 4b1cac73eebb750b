//! The Docker backend: services run in containers through the Docker engine (bollard).
//!
//! - [`image`]: the image a service needs, found, built (cached by content) or pulled.
//! - [`lambda`]: one container per request (copper's "single shot" services).
//! - [`long_running`]: one container with its own MQTT client, started and stopped by the host.
//! - [`sidecar`]: helper containers and the network they share with the service.
//!
//! Every container and network the host creates is labelled with its owner (this
//! process) and removed when its work ends, when the host stops, and — for the
//! leftovers of a host that crashed — when the next host starts.

pub mod image;
pub mod lambda;
pub mod long_running;
pub mod sidecar;

use bollard::Docker;
use bollard::errors::Error as BollardError;
use bollard::query_parameters::{
    KillContainerOptionsBuilder, ListContainersOptionsBuilder, ListNetworksOptionsBuilder,
    RemoveContainerOptionsBuilder,
};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Label naming the host process that owns a container or network.
pub const OWNER_LABEL: &str = "copper-wasm.owner";
/// Label naming the service a container or network belongs to.
pub const SERVICE_LABEL: &str = "copper-wasm.service";
/// Label saying what a container is: `lambda`, `service` or `sidecar`.
pub const ROLE_LABEL: &str = "copper-wasm.role";

/// What can go wrong with the Docker engine.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    /// No engine answers.
    #[error("no Docker engine answers ({hint})")]
    NoEngine {
        /// Where we looked.
        hint: String,
        /// Why.
        #[source]
        source: BollardError,
    },
    /// An image is not on this machine, and `pull: never` forbids pulling it.
    #[error("image `{image}` is not on this machine and `pull: never` forbids pulling it")]
    Image {
        /// Which image.
        image: String,
    },
    /// An image cannot be pulled from its registry.
    #[error("cannot pull image `{image}`")]
    Pull {
        /// Which image.
        image: String,
        /// Why.
        #[source]
        source: BollardError,
    },
    /// An image failed to build.
    #[error("cannot build {context}")]
    Build {
        /// The build folder.
        context: String,
        /// Why.
        #[source]
        source: image::BuildError,
    },
    /// A container or network could not be made or started.
    #[error("cannot {what}")]
    Engine {
        /// What was attempted.
        what: String,
        /// Why.
        #[source]
        source: BollardError,
    },
    /// A sidecar or a long-running container did not become ready.
    #[error("{what} did not become ready")]
    NotReady {
        /// Which container.
        what: String,
        /// Why.
        #[source]
        source: Unready,
    },
}

/// Why a sidecar or a long-running container did not become ready.
#[derive(Debug, thiserror::Error)]
pub enum Unready {
    /// The status topic it says `up` on cannot be watched.
    #[error("cannot watch `{topic}`")]
    Watch {
        /// The topic.
        topic: String,
        /// Why.
        #[source]
        source: crate::bus::BusError,
    },
    /// Its readiness check cannot run (the container is not running).
    #[error("cannot run its readiness check")]
    Check(#[source] BollardError),
    /// Its readiness check did not pass in time, the last one failing in the engine.
    #[error("not ready after {}: its last check could not run", humantime::format_duration(*after))]
    CheckFailed {
        /// How long it was given.
        after: Duration,
        /// Why the last check could not run.
        #[source]
        source: BollardError,
    },
    /// A reason with no error beneath it (an exit code, a deadline passed), with the
    /// last lines of its log when there are some.
    #[error("{0}")]
    Reason(String),
}

/// A connection to the Docker engine, and who we are to it.
#[derive(Clone)]
pub struct Engine {
    docker: Docker,
    owner: Arc<str>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("owner", &self.owner)
            .finish()
    }
}

impl Engine {
    /// Connects to the local engine (`DOCKER_HOST` or `/var/run/docker.sock`) and
    /// removes what crashed hosts of this machine left behind.
    pub async fn connect() -> Result<Engine, DockerError> {
        let hint = std::env::var("DOCKER_HOST")
            .unwrap_or_else(|_| "unix:///var/run/docker.sock".to_string());
        let no_engine = |source| DockerError::NoEngine {
            hint: hint.clone(),
            source,
        };
        let docker = Docker::connect_with_local_defaults().map_err(no_engine)?;
        let docker = docker
            .with_timeout(Duration::from_secs(10))
            .negotiate_version()
            .await
            .map_err(no_engine)?;
        docker.ping().await.map_err(no_engine)?;
        let engine = Engine {
            docker: docker.with_timeout(Duration::from_secs(300)),
            owner: owner_id().into(),
        };
        engine.sweep_leftovers().await;
        Ok(engine)
    }

    /// The bollard client.
    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// This process, as written in [`OWNER_LABEL`].
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// The labels of something this host creates for `service`.
    pub fn labels(&self, service: &str, role: &str) -> HashMap<String, String> {
        HashMap::from([
            (OWNER_LABEL.to_string(), self.owner.to_string()),
            (SERVICE_LABEL.to_string(), service.to_string()),
            (ROLE_LABEL.to_string(), role.to_string()),
        ])
    }

    /// Kills and removes a container; a container already gone is fine.
    pub async fn remove_container(&self, id: &str) {
        let options = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        match self.docker.remove_container(id, Some(options)).await {
            Ok(()) => {}
            Err(BollardError::DockerResponseServerError {
                status_code: 404, ..
            }) => {}
            // 409: a removal is already in progress (a request's own): see it through,
            // so that a host that stopped leaves nothing behind.
            Err(BollardError::DockerResponseServerError {
                status_code: 409, ..
            }) => self.await_removal(id).await,
            Err(error) => {
                tracing::warn!(container = %short(id), %error, "cannot remove a container")
            }
        }
    }

    /// Waits until a container being removed is gone, for at most 30 s.
    async fn await_removal(&self, id: &str) {
        for _ in 0..600 {
            match self.docker.inspect_container(id, None).await {
                Err(BollardError::DockerResponseServerError {
                    status_code: 404, ..
                }) => return,
                Err(error) => {
                    tracing::warn!(container = %short(id), %error, "cannot follow a removal");
                    return;
                }
                Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            }
        }
        tracing::warn!(container = %short(id), "still being removed after 30 s");
    }

    /// Kills a running container (SIGKILL); one already stopped is fine.
    pub async fn kill_container(&self, id: &str) {
        let options = KillContainerOptionsBuilder::default()
            .signal("SIGKILL")
            .build();
        if let Err(error) = self.docker.kill_container(id, Some(options)).await
            && !matches!(
                error,
                BollardError::DockerResponseServerError {
                    status_code: 404 | 409,
                    ..
                }
            )
        {
            tracing::warn!(container = %short(id), %error, "cannot kill a container");
        }
    }

    /// Removes every container and network labelled with an owner for which `dead` is true.
    async fn remove_owned_by(&self, dead: impl Fn(&str) -> bool) -> usize {
        let filters = HashMap::from([("label", vec![OWNER_LABEL.to_string()])]);
        let mut removed = 0;
        let containers = self
            .docker
            .list_containers(Some(
                ListContainersOptionsBuilder::default()
                    .all(true)
                    .filters(&filters)
                    .build(),
            ))
            .await
            .unwrap_or_default();
        for container in containers {
            if let Some(id) = container.id.as_deref()
                && dead(owner_of(container.labels.as_ref()))
            {
                self.remove_container(id).await;
                removed += 1;
            }
        }
        let networks = self
            .docker
            .list_networks(Some(
                ListNetworksOptionsBuilder::default()
                    .filters(&filters)
                    .build(),
            ))
            .await
            .unwrap_or_default();
        for network in networks {
            if let Some(id) = network.id.as_deref()
                && dead(owner_of(network.labels.as_ref()))
            {
                if let Err(error) = self.docker.remove_network(id).await {
                    tracing::warn!(network = %short(id), %error, "cannot remove a network");
                }
                removed += 1;
            }
        }
        removed
    }

    /// Removes what hosts of this machine that are no longer running left behind.
    pub async fn sweep_leftovers(&self) {
        let removed = self.remove_owned_by(owner_is_gone).await;
        if removed > 0 {
            tracing::info!(
                removed,
                "removed containers and networks left by a host that stopped without cleaning up"
            );
        }
    }

    /// Removes every container and network of this host.
    pub async fn remove_all_owned(&self) {
        let me = self.owner.clone();
        self.remove_owned_by(|owner| owner == &*me).await;
    }
}

/// The owner label among `labels` ("" when there is none).
fn owner_of(labels: Option<&HashMap<String, String>>) -> &str {
    labels
        .and_then(|l| l.get(OWNER_LABEL))
        .map(String::as_str)
        .unwrap_or_default()
}

/// `<machine>:<pid>:<process start time>`: unique to this process on this machine.
fn owner_id() -> String {
    let pid = std::process::id();
    format!(
        "{}:{pid}:{}",
        machine_id(),
        process_start(pid).unwrap_or_default()
    )
}

fn machine_id() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// The start time of a process (field 22 of `/proc/<pid>/stat`), to tell a reused pid apart.
fn process_start(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19).map(str::to_string)
}

/// True when `owner` names a process of this machine that no longer runs.
fn owner_is_gone(owner: &str) -> bool {
    let mut parts = owner.rsplitn(3, ':');
    let (Some(start), Some(pid), Some(machine)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    if machine != machine_id() {
        return false;
    }
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    process_start(pid).as_deref() != Some(start)
}

/// The first 12 characters of an id, as Docker shows them.
pub fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

/// Kept log lines as one text.
pub fn tail(lines: &std::collections::VecDeque<String>) -> String {
    lines
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners() {
        let me = owner_id();
        assert!(!owner_is_gone(&me), "{me}");
        let parts: Vec<&str> = me.rsplitn(3, ':').collect();
        assert!(owner_is_gone(&format!("{}:{}:0", parts[2], parts[1])));
        assert!(!owner_is_gone("another-machine:1:1"));
    }
}
