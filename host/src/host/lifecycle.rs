//! A hosted service's life while the host runs, whatever runs it: components and
//! containers per request through the scheduler ([`crate::scheduler::Command`]),
//! long-running containers (`mode: service`) by starting and stopping their container.

use super::{Host, Origin, read_source};
use crate::capability::grants::Grants;
use crate::component::ComponentService;
use crate::docker::long_running;
use crate::scheduler::{Command, LifecycleError, Service, ServiceState};
use crate::services_file::{BackendSpec, Mode};

impl Host {
    /// Applies `command` to the service `name` hosted here, and says where it is then.
    ///
    /// A reload reads a component again from its file or URL and compiles it off
    /// the request path; one that cannot be read, compiled or described leaves the
    /// version serving as it was, and the error says why.
    pub async fn command(
        &self,
        name: &str,
        command: Command,
    ) -> Result<ServiceState, LifecycleError> {
        if self.registry.get(name).is_none() {
            return self.command_long_running(name, command).await;
        }
        let serving = &self.serving;
        match command {
            Command::Pause => serving.pause(name).await,
            Command::Resume => serving.resume(name).await,
            Command::Stop => serving.stop_service(name).await,
            Command::Start => serving.start_service(name).await,
            Command::Reload => {
                let service = self.load_again(name).await?;
                serving.replace(service).await?;
                Ok(serving.state(name).unwrap_or(ServiceState::Up))
            }
        }
    }

    /// Where the service `name` hosted here is in its life (a long-running
    /// container is `up` while its container runs).
    pub async fn service_state(&self, name: &str) -> Option<ServiceState> {
        if let Some(state) = self.serving.state(name) {
            return Some(state);
        }
        self.long_running_spec(name)?;
        let containers = self.containers.as_ref()?;
        let running = containers.running.lock().await;
        Some(match running.iter().any(|r| r.name() == name) {
            true => ServiceState::Up,
            false => ServiceState::Stopped,
        })
    }

    /// A new version of the component `name`, read from where it came from.
    async fn load_again(&self, name: &str) -> Result<Service, LifecycleError> {
        let unsupported = |why: &str| LifecycleError::Unsupported {
            service: name.to_string(),
            command: Command::Reload.name(),
            why: why.to_string(),
        };
        let failed = |source: Box<dyn std::error::Error + Send + Sync>| LifecycleError::Reload {
            service: name.to_string(),
            source,
        };
        let origin = self
            .origins
            .read()
            .expect("not poisoned")
            .get(name)
            .cloned();
        let (bytes, grants) = match origin {
            Some(Origin::Builtin(bytes)) => (bytes.to_vec(), Grants::trusted()),
            Some(Origin::Source(source, grants)) => {
                let bytes = read_source(&source, Some(name), &self.compiled_cache)
                    .await
                    .map_err(|e| failed(Box::new(e)))?;
                (bytes, grants)
            }
            Some(Origin::Given) => {
                return Err(unsupported(
                    "it was given as bytes by the program embedding the host",
                ));
            }
            None => {
                return Err(unsupported(
                    "a container per request runs its image anew for every request: there is nothing to read again",
                ));
            }
        };
        // Compiling takes a while: on a thread of its own, not a worker of the runtime.
        let runtime = self.runtime.clone();
        let handle = tokio::runtime::Handle::current();
        let loaded: Result<ComponentService, _> =
            tokio::task::spawn_blocking(move || handle.block_on(runtime.load(&bytes, grants)))
                .await
                .expect("the compiling thread");
        let component = loaded.map_err(|e| failed(Box::new(e)))?;
        if component.info().name != name {
            let why = format!(
                "the new version describes itself as `{}`",
                component.info().name
            );
            return Err(failed(why.into()));
        }
        Ok(Service::component(component))
    }

    fn long_running_spec(&self, name: &str) -> Option<&crate::services_file::DockerSpec> {
        self.services.iter().find_map(|spec| match &spec.backend {
            BackendSpec::Docker(docker) if spec.name == name && docker.mode == Mode::Service => {
                Some(&**docker)
            }
            _ => None,
        })
    }

    /// Starts or stops a long-running container; it takes its requests itself, so
    /// it cannot be paused, and its image is read again by a stop and a start.
    async fn command_long_running(
        &self,
        name: &str,
        command: Command,
    ) -> Result<ServiceState, LifecycleError> {
        let unknown = || LifecycleError::Unknown(name.to_string());
        let spec = self.long_running_spec(name).ok_or_else(unknown)?;
        let containers = self.containers.as_ref().ok_or_else(unknown)?;
        let mut running = containers.running.lock().await;
        let index = running.iter().position(|r| r.name() == name);
        match (command, index) {
            (Command::Stop, Some(index)) => {
                let container = running.swap_remove(index);
                container.stop(&containers.engine).await;
                tracing::info!(service = %name, "stopped its container");
                Ok(ServiceState::Stopped)
            }
            (Command::Stop, None) => Ok(ServiceState::Stopped),
            (Command::Start, Some(_)) => Ok(ServiceState::Up),
            (Command::Start, None) => {
                let address = self
                    .connector
                    .address_for(&crate::access::Grant::Serve(name.to_string()));
                let bus = self
                    .connect(&format!("copper-wasm-docker-{name}"), None)
                    .await?;
                let sandbox = &containers.sandbox;
                let started = long_running::start(
                    &containers.engine,
                    name,
                    spec,
                    &address,
                    &bus,
                    sandbox,
                    &sandbox.cache().join("logs"),
                )
                .await;
                bus.close().await;
                let container = started.map_err(|e| LifecycleError::Start {
                    service: name.to_string(),
                    source: Box::new(e),
                })?;
                running.push(container);
                tracing::info!(service = %name, "started its container");
                Ok(ServiceState::Up)
            }
            (command, _) => Err(LifecycleError::Unsupported {
                service: name.to_string(),
                command: command.name(),
                why: "a long-running container takes its requests from the broker itself: stop and start it".into(),
            }),
        }
    }
}
