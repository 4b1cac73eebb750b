//! `lambda` mode: one container per request, as copper's "single shot" services.
//!
//! The request's fields are given as env `COPPER_REQUEST` and as the file
//! `/copper/request.json`; the container writes its results to
//! `/copper/output.json` (or prints them as its last JSON line) and exits 0 on
//! success. `/fetch` and `/web` are the same folders the components see. Its log
//! streams live to `<topic>/log` and to `<cache>/logs/<service>/<id>.log`.

use super::{Engine, short};
use crate::job::{Job, ServiceEvent};
use crate::protocol::Object;
use crate::sandbox::Sandbox;
use crate::service::{Failure, FailureKind, ServiceInfo};
use crate::services_file::ContainerSpec;
use bollard::container::LogOutput;
use bollard::errors::Error as BollardError;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{CreateContainerOptionsBuilder, LogsOptionsBuilder};
use futures_util::StreamExt;
use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use tokio_util::sync::CancellationToken;

/// Lines of a container's log kept for a failed finish.
const TAIL_LINES: usize = 20;

/// What a container gets, whatever its mode: image, command, env, mounts, limits.
pub fn container_body(
    labels: HashMap<String, String>,
    image: &str,
    spec: &ContainerSpec,
    network: Option<&str>,
    extra_env: Vec<String>,
    extra_binds: Vec<String>,
) -> ContainerCreateBody {
    let mut env: Vec<String> = spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    env.extend(extra_env);
    let mut binds = extra_binds;
    binds.extend(spec.volumes.iter().map(|v| v.bind()));
    ContainerCreateBody {
        image: Some(image.to_string()),
        cmd: spec.command.clone(),
        entrypoint: spec.entrypoint.clone(),
        env: Some(env),
        labels: Some(labels),
        host_config: Some(HostConfig {
            binds: Some(binds),
            memory: spec.memory,
            // Equal to the memory limit: no swap on top of it.
            memory_swap: spec.memory,
            nano_cpus: spec.cpus.map(|c| (c * 1e9) as i64),
            network_mode: network.map(str::to_string),
            auto_remove: Some(false),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Removes a container when dropped (a request cancelled mid-way included).
pub struct ContainerGuard {
    engine: Engine,
    id: Option<String>,
}

impl ContainerGuard {
    /// Guards the container `id`.
    pub fn new(engine: &Engine, id: String) -> Self {
        Self {
            engine: engine.clone(),
            id: Some(id),
        }
    }

    /// The container's id.
    pub fn id(&self) -> &str {
        self.id.as_deref().unwrap_or_default()
    }

    /// Removes it now.
    pub async fn remove(mut self) {
        if let Some(id) = self.id.take() {
            self.engine.remove_container(&id).await;
        }
    }

    /// Removes it in the background, as `docker run --rm` does: the answer need
    /// not wait for it (a host that stops removes what is left).
    pub fn remove_later(self) {
        drop(self);
    }
}

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            let engine = self.engine.clone();
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move { engine.remove_container(&id).await });
            }
        }
    }
}

/// A service whose every request runs in a container of its own.
pub struct LambdaService {
    /// The engine.
    pub engine: Engine,
    /// What it answers.
    pub info: ServiceInfo,
    /// The image to run (resolved: found, built or pulled).
    pub image: String,
    /// The container as the services file says.
    pub container: ContainerSpec,
    /// The network its containers join.
    pub network: Option<String>,
    /// `/fetch`, `/web` and the per-request folders.
    pub sandbox: Sandbox,
    /// Where step logs go (`<cache>/logs`).
    pub logs: PathBuf,
    /// Cancelled when the host stops: running containers are killed.
    pub shutdown: CancellationToken,
}

/// How a container ended.
enum Ending {
    Exited(i64),
    TimedOut,
    Stopped,
}

impl LambdaService {
    /// Runs one request in a fresh container; returns the result fields.
    pub async fn handle(&self, job: Job<'_>) -> Result<Object, Failure> {
        let failed = |message: String| Failure::new(FailureKind::Failed, message);
        let request_id = if job.id.is_empty() {
            uuid::Uuid::new_v4().simple().to_string()
        } else {
            job.id.to_string()
        };
        let exchange = self
            .sandbox
            .scratch(&uuid::Uuid::new_v4().simple().to_string())
            .map_err(|e| failed(format!("cannot make the request folder: {e}")))?;
        let request = serde_json::to_string(job.input).expect("a JSON object serializes");
        std::fs::write(exchange.path().join("request.json"), &request)
            .map_err(|e| failed(format!("cannot write the request: {e}")))?;
        let env = vec![
            format!("COPPER_REQUEST={request}"),
            format!("COPPER_TOPIC={}", job.topic),
            format!("COPPER_CORRELATION_ID={}", job.id),
        ];
        let binds = vec![
            format!("{}:/fetch", self.sandbox.fetch_dir().display()),
            format!("{}:/web", self.sandbox.web_dir().display()),
            format!("{}:/copper", exchange.path().display()),
        ];
        let body = container_body(
            self.engine.labels(&self.info.name, "lambda"),
            &self.image,
            &self.container,
            self.network.as_deref(),
            env,
            binds,
        );
        let docker = self.engine.docker();
        let created = docker
            .create_container(Some(CreateContainerOptionsBuilder::default().build()), body)
            .await
            .map_err(|e| {
                failed(format!(
                    "cannot create a container of `{}`: {e}",
                    self.image
                ))
            })?;
        let guard = ContainerGuard::new(&self.engine, created.id);
        docker
            .start_container(guard.id(), None)
            .await
            .map_err(|e| failed(format!("cannot start a container of `{}`: {e}", self.image)))?;
        tracing::debug!(service = %self.info.name, container = %short(guard.id()), "started");

        let log_path = self.log_path(&request_id);
        let mut log = Log::open(&log_path, job.events.clone(), job.secrets.to_vec());
        let pump = async {
            let options = LogsOptionsBuilder::default()
                .follow(true)
                .stdout(true)
                .stderr(true)
                .build();
            let mut stream = docker.logs(guard.id(), Some(options));
            while let Some(item) = stream.next().await {
                match item {
                    Ok(LogOutput::StdOut { message } | LogOutput::Console { message }) => {
                        log.take(&message, false).await
                    }
                    Ok(LogOutput::StdErr { message }) => log.take(&message, true).await,
                    Ok(LogOutput::StdIn { .. }) => {}
                    Err(_) => break,
                }
            }
            log.flush().await;
        };
        let ending = async {
            let mut wait = docker.wait_container(guard.id(), None);
            let exited = async {
                match wait.next().await {
                    Some(Ok(response)) => Ending::Exited(response.status_code),
                    Some(Err(BollardError::DockerContainerWaitError { code, .. })) => {
                        Ending::Exited(code)
                    }
                    _ => Ending::Exited(-1),
                }
            };
            let ending = tokio::select! {
                ending = exited => ending,
                () = tokio::time::sleep(job.left) => Ending::TimedOut,
                () = self.shutdown.cancelled() => Ending::Stopped,
            };
            if !matches!(ending, Ending::Exited(_)) {
                // The log stream ends with the container.
                self.engine.kill_container(guard.id()).await;
            }
            ending
        };
        let ((), ending) = tokio::join!(pump, ending);
        let oom = match ending {
            Ending::Exited(code) if code != 0 => docker
                .inspect_container(guard.id(), None)
                .await
                .ok()
                .and_then(|i| i.state)
                .and_then(|s| s.oom_killed)
                .unwrap_or(false),
            _ => false,
        };
        guard.remove_later();
        let tail = super::tail(&log.tail);
        let with_log = |message: String| {
            if tail.is_empty() {
                format!("{message} (log: {})", log_path.display())
            } else {
                format!(
                    "{message}; last lines of its log ({}):\n{tail}",
                    log_path.display()
                )
            }
        };
        match ending {
            Ending::TimedOut => Err(Failure::new(
                FailureKind::TimedOut,
                with_log(format!(
                    "the container was killed after its timeout of {}",
                    humantime::format_duration(job.timeout)
                )),
            )),
            Ending::Stopped => Err(failed(
                "the container was killed: the host is stopping".into(),
            )),
            Ending::Exited(_) if oom => Err(Failure::new(
                FailureKind::OutOfMemory,
                with_log("the container ran out of its memory limit and was killed".into()),
            )),
            Ending::Exited(0) => read_output(exchange.path(), log.last_json.as_deref()),
            Ending::Exited(code) => Err(Failure::new(
                FailureKind::Failed,
                with_log(format!("the container exited with code {code}")),
            )
            .with_exit_code(code)),
        }
    }

    fn log_path(&self, request_id: &str) -> PathBuf {
        let safe: String = request_id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.logs.join(&self.info.name).join(format!("{safe}.log"))
    }
}

/// Results: `/copper/output.json`, else the last line of stdout that is a JSON object, else none.
fn read_output(exchange: &Path, last_json: Option<&str>) -> Result<Object, Failure> {
    let invalid = |why: String| Failure::new(FailureKind::Failed, why);
    let path = exchange.join("output.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => match last_json {
            Some(line) => line.to_string(),
            None => return Ok(Object::new()),
        },
        Err(error) => return Err(invalid(format!("cannot read /copper/output.json: {error}"))),
    };
    match serde_json::from_str(&text) {
        Ok(serde_json::Value::Object(results)) => Ok(results),
        _ => Err(invalid(
            "/copper/output.json is not a JSON object".to_string(),
        )),
    }
}

/// A container's log: to a file, to `<topic>/log`, and its last lines kept.
struct Log {
    file: Option<std::io::BufWriter<std::fs::File>>,
    secrets: Vec<String>,
    events: tokio::sync::mpsc::Sender<ServiceEvent>,
    partial: [Vec<u8>; 2],
    tail: VecDeque<String>,
    last_json: Option<String>,
}

impl Log {
    fn open(
        path: &Path,
        events: tokio::sync::mpsc::Sender<ServiceEvent>,
        secrets: Vec<String>,
    ) -> Self {
        let file = path
            .parent()
            .map(std::fs::create_dir_all)
            .transpose()
            .and_then(|_| std::fs::File::create(path))
            .map(std::io::BufWriter::new)
            .map_err(
                |error| tracing::warn!(path = %path.display(), %error, "cannot write a step log"),
            )
            .ok();
        Self {
            file,
            secrets,
            events,
            partial: [Vec::new(), Vec::new()],
            tail: VecDeque::new(),
            last_json: None,
        }
    }

    async fn take(&mut self, bytes: &[u8], stderr: bool) {
        let buffer = &mut self.partial[stderr as usize];
        buffer.extend_from_slice(bytes);
        let mut lines = Vec::new();
        while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=end).collect();
            lines.push(String::from_utf8_lossy(&line).trim_end().to_string());
        }
        for line in lines {
            self.line(line, stderr).await;
        }
    }

    async fn line(&mut self, line: String, stderr: bool) {
        let line = crate::secret::mask(&line, &self.secrets);
        if let Some(file) = &mut self.file {
            let _ = writeln!(file, "{}{line}", if stderr { "! " } else { "" });
        }
        if !stderr && line.trim_start().starts_with('{') {
            self.last_json = Some(line.clone());
        }
        if self.tail.len() == TAIL_LINES {
            self.tail.pop_front();
        }
        self.tail.push_back(line.clone());
        let _ = self.events.send(ServiceEvent::Log(line)).await;
    }

    async fn flush(&mut self) {
        for stderr in [false, true] {
            let rest = std::mem::take(&mut self.partial[stderr as usize]);
            if !rest.is_empty() {
                self.line(
                    String::from_utf8_lossy(&rest).trim_end().to_string(),
                    stderr,
                )
                .await;
            }
        }
        if let Some(file) = &mut self.file {
            let _ = file.flush();
        }
    }
}
