//! `service` mode: one long-running container with its own MQTT client serving its
//! topics itself, as copper's service containers did. The host starts it with the
//! broker's address in `MQTT_HOST` / `MQTT_PORT` (and `MQTT_TLS=1` for a TLS
//! broker), waits for its retained
//! `<service>/status` `up` before the run goes on, and stops it at the end.

use super::lambda::{ContainerGuard, container_body};
use super::sidecar::Sidecars;
use super::{DockerError, Engine, Unready, image, short};
use crate::bus::{BrokerAddress, Bus};
use crate::protocol;
use crate::sandbox::Sandbox;
use crate::services_file::DockerSpec;
use bollard::container::LogOutput;
use bollard::query_parameters::{CreateContainerOptionsBuilder, LogsOptionsBuilder};
use futures_util::StreamExt;
use std::io::Write;
use std::path::Path;

/// A running service container and its sidecars; [`Running::stop`] removes them.
pub struct Running {
    name: String,
    container: ContainerGuard,
    sidecars: Sidecars,
}

/// Starts the container of service `name` and waits until it says `up` on `bus`.
pub async fn start(
    engine: &Engine,
    name: &str,
    spec: &DockerSpec,
    broker: &BrokerAddress,
    bus: &Bus,
    sandbox: &Sandbox,
    logs: &Path,
) -> Result<Running, DockerError> {
    let image = image::ensure(engine, name, &spec.container).await?;
    let sidecars = Sidecars::start(engine, name, spec).await?;
    let status_topic = protocol::status_topic(name);
    let engine_error = |what: String| move |source| DockerError::Engine { what, source };
    // A retained `up` left by an earlier container would pass for this one's.
    let mut status = async {
        bus.publish(&status_topic, Vec::new(), true).await?;
        bus.subscribe(&status_topic).await
    }
    .await
    .map_err(|source| DockerError::NotReady {
        what: format!("service `{name}`"),
        source: Unready::Watch {
            topic: status_topic.clone(),
            source,
        },
    })?;
    let mut env = vec![
        format!("MQTT_HOST={}", broker.host),
        format!("MQTT_PORT={}", broker.port),
        format!("COPPER_SERVICE={name}"),
    ];
    if let Some((user, pass)) = &broker.credentials {
        env.push(format!("MQTT_USERNAME={user}"));
        env.push(format!("MQTT_PASSWORD={pass}"));
    }
    // A TLS broker: the container brings its own trust (its image or a volume).
    if broker.tls.is_some() {
        env.push("MQTT_TLS=1".to_string());
    }
    let binds = vec![
        format!("{}:/fetch", sandbox.fetch_dir().display()),
        format!("{}:/web", sandbox.web_dir().display()),
    ];
    let body = container_body(
        engine.labels(name, "service"),
        &image,
        &spec.container,
        sidecars.network.name(),
        env,
        binds,
    );
    let docker = engine.docker();
    let created = match docker
        .create_container(Some(CreateContainerOptionsBuilder::default().build()), body)
        .await
    {
        Ok(created) => created,
        Err(source) => {
            sidecars.stop().await;
            return Err(engine_error(format!(
                "create the container of service `{name}`"
            ))(source));
        }
    };
    let running = Running {
        name: name.to_string(),
        container: ContainerGuard::new(engine, created.id),
        sidecars,
    };
    if let Err(source) = docker.start_container(running.container.id(), None).await {
        running.stop(engine).await;
        return Err(engine_error(format!(
            "start the container of service `{name}`"
        ))(source));
    }
    tokio::spawn(pump_log(
        engine.clone(),
        running.container.id().to_string(),
        logs.join(name).join("service.log"),
    ));
    let mut exited = docker.wait_container(running.container.id(), None);
    let ready = tokio::time::timeout(spec.ready_timeout, async {
        loop {
            tokio::select! {
                message = status.recv() => match message {
                    Some(message) if &message.payload[..] == b"up" => return Ok(()),
                    Some(_) => {}
                    None => return Err("the broker connection closed".to_string()),
                },
                result = exited.next() => {
                    let code = match result {
                        Some(Ok(response)) => response.status_code,
                        Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => code,
                        _ => -1,
                    };
                    return Err(format!("its container exited with code {code} before saying `up`"));
                }
            }
        }
    })
    .await;
    let why = match ready {
        Ok(Ok(())) => {
            tracing::info!(service = %name, container = %short(running.container.id()), "service container up");
            return Ok(running);
        }
        Ok(Err(why)) => why,
        Err(_) => format!(
            "no retained `up` on `{status_topic}` within {}",
            humantime::format_duration(spec.ready_timeout)
        ),
    };
    let tail = log_tail(engine, running.container.id()).await;
    running.stop(engine).await;
    Err(DockerError::NotReady {
        what: format!("service `{name}`"),
        source: Unready::Reason(if tail.is_empty() {
            why
        } else {
            format!("{why}; last lines of its log:\n{tail}")
        }),
    })
}

impl Running {
    /// The service's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Stops and removes the container, then its sidecars and network.
    pub async fn stop(self, engine: &Engine) {
        let stop = bollard::query_parameters::StopContainerOptionsBuilder::default()
            .t(5)
            .build();
        let _ = engine
            .docker()
            .stop_container(self.container.id(), Some(stop))
            .await;
        self.container.remove().await;
        self.sidecars.stop().await;
    }
}

async fn log_tail(engine: &Engine, id: &str) -> String {
    let options = LogsOptionsBuilder::default()
        .stdout(true)
        .stderr(true)
        .tail("20")
        .build();
    let mut text = Vec::new();
    let mut stream = engine.docker().logs(id, Some(options));
    while let Some(Ok(output)) = stream.next().await {
        text.extend_from_slice(output.as_ref());
    }
    String::from_utf8_lossy(&text).trim_end().to_string()
}

/// Copies the container's log into `path` until it stops.
async fn pump_log(engine: Engine, id: String, path: std::path::PathBuf) {
    let file = path
        .parent()
        .map(std::fs::create_dir_all)
        .transpose()
        .and_then(|_| std::fs::File::create(&path));
    let mut file = match file {
        Ok(file) => file,
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "cannot write a service log");
            return;
        }
    };
    let options = LogsOptionsBuilder::default()
        .follow(true)
        .stdout(true)
        .stderr(true)
        .build();
    let mut stream = engine.docker().logs(&id, Some(options));
    while let Some(Ok(output)) = stream.next().await {
        let bytes = match &output {
            LogOutput::StdOut { message }
            | LogOutput::StdErr { message }
            | LogOutput::Console { message } => message,
            LogOutput::StdIn { .. } => continue,
        };
        let _ = file.write_all(bytes);
    }
}
