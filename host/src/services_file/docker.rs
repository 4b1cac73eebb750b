//! A Docker service as the file describes it: its container, mode and sidecars.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// How a Docker service runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// One container per request: request in, output file out, exit code.
    #[default]
    Lambda,
    /// One long-running container with its own MQTT client.
    Service,
}

/// When an image is pulled from its registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PullPolicy {
    /// Only when the engine does not have it.
    #[default]
    Missing,
    /// Before every run.
    Always,
    /// Never: the image must be there.
    Never,
}

/// Where an image comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource {
    /// A named image (`name:tag`).
    Image(String),
    /// A folder with a Dockerfile, built by the host and cached by content.
    Build {
        /// The build context.
        context: PathBuf,
        /// The Dockerfile, relative to the context.
        dockerfile: String,
    },
}

impl fmt::Display for ImageSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageSource::Image(name) => write!(f, "image `{name}`"),
            ImageSource::Build { context, .. } => {
                write!(f, "the image built from {}", context.display())
            }
        }
    }
}

/// One bind mount or named volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    /// A host path (absolute) or a volume name.
    pub source: String,
    /// Where the container sees it.
    pub target: String,
    /// Mounted read-only.
    pub read_only: bool,
}

impl Volume {
    /// Docker's bind text, `source:target[:ro]`.
    pub fn bind(&self) -> String {
        if self.read_only {
            format!("{}:{}:ro", self.source, self.target)
        } else {
            format!("{}:{}", self.source, self.target)
        }
    }
}

/// A container as the file describes it (a service's, or a sidecar's).
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerSpec {
    /// Its image.
    pub image: ImageSource,
    /// Replaces the image's command.
    pub command: Option<Vec<String>>,
    /// Replaces the image's entrypoint.
    pub entrypoint: Option<Vec<String>>,
    /// Environment variables, interpolated.
    pub env: BTreeMap<String, String>,
    /// Bind mounts and volumes beyond `/fetch` and `/web`.
    pub volumes: Vec<Volume>,
    /// Memory limit in bytes.
    pub memory: Option<i64>,
    /// CPU limit, in CPUs.
    pub cpus: Option<f64>,
    /// When to pull the image.
    pub pull: PullPolicy,
    /// The registry login to pull it with (else `COPPER_REGISTRY_*`, else none).
    pub login: Option<RegistryLogin>,
}

/// A registry login; its password never shows in a debug print or a log.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistryLogin {
    /// The user.
    pub username: String,
    /// The password (or token).
    pub password: String,
}

impl fmt::Debug for RegistryLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryLogin")
            .field("username", &self.username)
            .field("password", &"***")
            .finish()
    }
}

/// A helper container started before the service's and removed after.
#[derive(Debug, Clone, PartialEq)]
pub struct SidecarSpec {
    /// Its name: the host name the service reaches it by.
    pub name: String,
    /// The container.
    pub container: ContainerSpec,
    /// A command run in it until it succeeds: the sidecar is ready.
    pub ready: Option<Vec<String>>,
    /// How long readiness may take.
    pub ready_timeout: Duration,
}

/// A Docker service.
#[derive(Debug, Clone, PartialEq)]
pub struct DockerSpec {
    /// The service's container.
    pub container: ContainerSpec,
    /// Per request, or long-running.
    pub mode: Mode,
    /// The Docker network (`host`, `bridge`, `none` or a network name); by default a
    /// lambda gets Docker's default, a `service` the host's network (to reach a
    /// broker on loopback), and services with sidecars a network of their own.
    pub network: Option<String>,
    /// A request's deadline when it gives none.
    pub timeout: Option<Duration>,
    /// How long a `service` container may take to say `up`.
    pub ready_timeout: Duration,
    /// Helper containers.
    pub sidecars: Vec<SidecarSpec>,
}
