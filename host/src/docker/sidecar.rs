//! Sidecars: helper containers of a Docker service (a database, a browser…), started
//! before it serves, checked ready, reachable by their name, and removed after.

use super::lambda::{ContainerGuard, container_body};
use super::{DockerError, Engine, Unready, image};
use crate::services_file::{DockerSpec, Mode, SidecarSpec};
use bollard::exec::{CreateExecOptions, StartExecOptions};
use bollard::models::{EndpointSettings, NetworkCreateRequest, NetworkingConfig};
use bollard::query_parameters::CreateContainerOptionsBuilder;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The network a service's containers join: the one the file names; the host's for
/// a long-running service (to reach a broker on loopback); one of their own for a
/// lambda with sidecars; else Docker's default.
pub enum Network {
    /// Docker's default for the container.
    Default,
    /// A network given by name (`host`, `bridge`, or one that exists).
    Named(String),
    /// A network the host made for this service, removed with it.
    Owned {
        /// Its name.
        name: String,
        /// Its id.
        id: String,
    },
}

impl Network {
    /// The name to give containers, if any.
    pub fn name(&self) -> Option<&str> {
        match self {
            Network::Default => None,
            Network::Named(name) | Network::Owned { name, .. } => Some(name),
        }
    }
}

/// A service's network and running sidecars; [`Sidecars::stop`] removes them.
pub struct Sidecars {
    engine: Engine,
    /// The network the service's containers join.
    pub network: Network,
    containers: Vec<ContainerGuard>,
}

impl Sidecars {
    /// Makes the service's network and starts its sidecars, each checked ready.
    pub async fn start(
        engine: &Engine,
        service: &str,
        spec: &DockerSpec,
    ) -> Result<Sidecars, DockerError> {
        let network = match (&spec.network, spec.mode) {
            (Some(name), _) => Network::Named(name.clone()),
            (None, Mode::Service) => Network::Named("host".into()),
            (None, Mode::Lambda) if !spec.sidecars.is_empty() => {
                let name = format!(
                    "copper-wasm-{service}-{}",
                    &uuid::Uuid::new_v4().simple().to_string()[..8]
                );
                let created = engine
                    .docker()
                    .create_network(NetworkCreateRequest {
                        name: name.clone(),
                        driver: Some("bridge".into()),
                        labels: Some(engine.labels(service, "network")),
                        ..Default::default()
                    })
                    .await
                    .map_err(|source| DockerError::Engine {
                        what: format!("create the network of service `{service}`"),
                        source,
                    })?;
                Network::Owned {
                    name,
                    id: created.id,
                }
            }
            (None, Mode::Lambda) => Network::Default,
        };
        let mut sidecars = Sidecars {
            engine: engine.clone(),
            network,
            containers: Vec::new(),
        };
        for sidecar in &spec.sidecars {
            if let Err(error) = sidecars.start_one(service, sidecar).await {
                sidecars.stop().await;
                return Err(error);
            }
        }
        Ok(sidecars)
    }

    async fn start_one(&mut self, service: &str, sidecar: &SidecarSpec) -> Result<(), DockerError> {
        let what = format!("sidecar `{}` of service `{service}`", sidecar.name);
        let image = image::ensure(&self.engine, service, &sidecar.container).await?;
        let network = self.network.name().map(str::to_string);
        let mut body = container_body(
            self.engine.labels(service, "sidecar"),
            &image,
            &sidecar.container,
            network.as_deref(),
            Vec::new(),
            Vec::new(),
        );
        if let Network::Owned { name, .. } | Network::Named(name) = &self.network
            && !matches!(name.as_str(), "host" | "bridge" | "none")
        {
            body.networking_config = Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(
                    name.clone(),
                    EndpointSettings {
                        aliases: Some(vec![sidecar.name.clone()]),
                        ..Default::default()
                    },
                )])),
            });
        }
        let docker = self.engine.docker();
        let created = docker
            .create_container(Some(CreateContainerOptionsBuilder::default().build()), body)
            .await
            .map_err(|source| DockerError::Engine {
                what: format!("create {what}"),
                source,
            })?;
        let guard = ContainerGuard::new(&self.engine, created.id);
        let id = guard.id().to_string();
        self.containers.push(guard);
        docker
            .start_container(&id, None)
            .await
            .map_err(|source| DockerError::Engine {
                what: format!("start {what}"),
                source,
            })?;
        if let Some(command) = &sidecar.ready {
            wait_ready(&self.engine, &id, command, sidecar.ready_timeout)
                .await
                .map_err(|source| DockerError::NotReady { what, source })?;
        }
        Ok(())
    }

    /// Removes the sidecars, then the network the host made.
    pub async fn stop(self) {
        for container in self.containers {
            container.remove().await;
        }
        if let Network::Owned { id, name } = &self.network
            && let Err(error) = self.engine.docker().remove_network(id).await
        {
            tracing::warn!(network = %name, %error, "cannot remove a network");
        }
    }
}

/// Runs `command` in the container until it exits 0, or `timeout` passes.
async fn wait_ready(
    engine: &Engine,
    id: &str,
    command: &[String],
    timeout: Duration,
) -> Result<(), Unready> {
    let docker = engine.docker();
    let deadline = Instant::now() + timeout;
    // The last check's exit code, or why it could not run.
    let mut last: Result<i64, bollard::errors::Error>;
    loop {
        let exec = docker
            .create_exec(
                id,
                CreateExecOptions {
                    cmd: Some(command.to_vec()),
                    attach_stdout: Some(false),
                    attach_stderr: Some(false),
                    ..Default::default()
                },
            )
            .await;
        match exec {
            Ok(exec) => {
                let started = docker
                    .start_exec(
                        &exec.id,
                        Some(StartExecOptions {
                            detach: true,
                            ..Default::default()
                        }),
                    )
                    .await;
                if let Err(error) = started {
                    last = Err(error);
                } else {
                    loop {
                        match docker.inspect_exec(&exec.id).await {
                            Ok(state) if state.running == Some(true) => {
                                tokio::time::sleep(Duration::from_millis(20)).await
                            }
                            Ok(state) if state.exit_code == Some(0) => return Ok(()),
                            Ok(state) => {
                                last = Ok(state.exit_code.unwrap_or(-1));
                                break;
                            }
                            Err(error) => {
                                last = Err(error);
                                break;
                            }
                        }
                    }
                }
            }
            // The container is not running (it exited): no point waiting.
            Err(error) => return Err(Unready::Check(error)),
        }
        if Instant::now() >= deadline {
            return Err(match last {
                Ok(code) => Unready::Reason(format!(
                    "not ready after {}: `{}` exited with code {code}",
                    humantime::format_duration(timeout),
                    command.join(" ")
                )),
                Err(source) => Unready::CheckFailed {
                    after: timeout,
                    source,
                },
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
