//! The services file: which backend serves each service of a workflow.
//!
//! `copper.yaml` beside the workflow (or `--services FILE`) maps service names to
//! a `component:` (a `.wasm` file), `docker:` (an image or a folder to build,
//! one container per request or one long-running container) or `external: true`
//! (served by someone else on the broker). The built-in components need no entry.
//! Every error names the file, the line and the field.
//!
//! ```yaml
//! services:
//!   thumbnails:
//!     docker:
//!       build: ./thumbnails          # or image: registry/thumbnails:1.2
//!       mode: lambda                 # one container per request (default), or `service`
//!       env: { QUALITY: "${QUALITY:-80}" }
//!       memory: 512m
//!       timeout: 2m
//!     actions:
//!       resize: { doc: Resize the images of a resource }
//!   legacy:
//!     external: true
//!     actions: [build]
//! ```

use crate::environment::Environment;
use crate::service::ActionInfo;
use crate::timeout;
use serde::Deserialize;
use serde_json::{Value, json};
use serde_saphyr::Spanned;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The name of the services file looked for beside a workflow.
pub const DEFAULT_NAME: &str = "copper.yaml";

/// A read and checked services file.
#[derive(Debug, Clone, Default)]
pub struct ServicesFile {
    /// Where it came from.
    pub path: PathBuf,
    /// Its services, in file order.
    pub services: Vec<ServiceSpec>,
}

/// One service of the file.
#[derive(Debug, Clone)]
pub struct ServiceSpec {
    /// Its name: the first level of its topics.
    pub name: String,
    /// The file it is declared in.
    pub file: PathBuf,
    /// The line it is declared on.
    pub line: u64,
    /// What runs it.
    pub backend: BackendSpec,
    /// Its actions, when declared (a component describes its own).
    pub actions: Option<Vec<ActionInfo>>,
}

impl ServiceSpec {
    /// What the file says of it (no version: a container's image or another
    /// program says that); a component describes itself instead.
    pub fn info(&self) -> crate::service::ServiceInfo {
        crate::service::ServiceInfo {
            name: self.name.clone(),
            version: String::new(),
            actions: self.actions.clone().unwrap_or_default(),
            capabilities: Vec::new(),
        }
    }

    /// The topics of its declared actions.
    pub fn topics(&self) -> Vec<String> {
        self.actions
            .iter()
            .flatten()
            .map(|a| format!("{}/{}", self.name, a.name))
            .collect()
    }
}

/// What runs a service.
#[derive(Debug, Clone)]
pub enum BackendSpec {
    /// A WASI component.
    Component(ComponentSource),
    /// Docker containers.
    Docker(Box<DockerSpec>),
    /// Someone else on the broker.
    External,
}

/// Where a component comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComponentSource {
    /// A file.
    File(PathBuf),
    /// A URL, pinned by the sha256 of the component (a download that differs is refused).
    Url {
        /// Where to download it.
        url: String,
        /// Its sha256, in hex.
        sha256: String,
    },
}

impl fmt::Display for ComponentSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ComponentSource::File(path) => write!(f, "{}", path.display()),
            ComponentSource::Url { url, .. } => f.write_str(url),
        }
    }
}

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

/// A services file that cannot be used, with where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}: {}{message}", file.display(), line.map(|l| format!(":{l}")).unwrap_or_default(), field.as_ref().map(|f| format!("field `{f}`: ")).unwrap_or_default())]
pub struct ServicesFileError {
    /// The file.
    pub file: PathBuf,
    /// The line, when known.
    pub line: Option<u64>,
    /// The field at fault (`services.thumbnails.docker.memory`).
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    services: BTreeMap<String, Spanned<RawService>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    component: Option<Spanned<Value>>,
    docker: Option<Spanned<RawContainer>>,
    #[serde(default)]
    external: bool,
    actions: Option<Spanned<RawActions>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawActions {
    Names(Vec<String>),
    Described(BTreeMap<String, RawAction>),
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAction {
    #[serde(default)]
    doc: String,
    input: Option<Value>,
    output: Option<Value>,
}

/// A command: a list of words (numbers and booleans taken as written), or one line.
#[derive(Deserialize)]
#[serde(untagged)]
enum Words {
    Line(String),
    List(Vec<Word>),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Word {
    Text(String),
    Integer(i64),
    Number(f64),
    Flag(bool),
}

impl Words {
    fn into_vec(self) -> Vec<String> {
        match self {
            // A command given as one line is split at white space.
            Words::Line(line) => line.split_whitespace().map(str::to_string).collect(),
            Words::List(list) => list
                .into_iter()
                .map(|word| match word {
                    Word::Text(text) => text,
                    Word::Integer(n) => n.to_string(),
                    Word::Number(n) => n.to_string(),
                    Word::Flag(b) => b.to_string(),
                })
                .collect(),
        }
    }
}

/// A container's fields, for a service's and a sidecar's alike (no `flatten`: it
/// would lose the locations of the fields).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawContainer {
    image: Option<String>,
    build: Option<String>,
    dockerfile: Option<String>,
    command: Option<Words>,
    entrypoint: Option<Words>,
    #[serde(default)]
    env: BTreeMap<String, Spanned<Value>>,
    #[serde(default)]
    volumes: Vec<Spanned<String>>,
    memory: Option<Spanned<Value>>,
    cpus: Option<Spanned<f64>>,
    #[serde(default)]
    pull: PullPolicy,
    ready_timeout: Option<Spanned<Value>>,
    // A service's only.
    mode: Option<Mode>,
    network: Option<String>,
    timeout: Option<Spanned<Value>>,
    sidecars: Option<BTreeMap<String, Spanned<RawContainer>>>,
    // A sidecar's only.
    ready: Option<Words>,
}

/// Default time a sidecar or a `service` container gets to be ready.
const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(30);

struct Reader<'a> {
    path: &'a Path,
    dir: PathBuf,
    env: Environment,
}

impl Reader<'_> {
    fn error(
        &self,
        line: Option<u64>,
        field: &str,
        message: impl Into<String>,
    ) -> ServicesFileError {
        ServicesFileError {
            file: self.path.to_path_buf(),
            line,
            field: (!field.is_empty()).then(|| field.to_string()),
            message: message.into(),
        }
    }

    fn duration(&self, value: &Spanned<Value>, field: &str) -> Result<Duration, ServicesFileError> {
        timeout::parse(&value.value)
            .map_err(|why| self.error(Some(value.referenced.line()), field, why))
    }

    fn container(
        &self,
        raw: &mut RawContainer,
        line: u64,
        field: &str,
    ) -> Result<ContainerSpec, ServicesFileError> {
        let image = match (raw.image.take(), raw.build.take()) {
            (Some(image), None) => {
                let image = self
                    .env
                    .interpolate(&image)
                    .map_err(|why| self.error(Some(line), &format!("{field}.image"), why))?;
                ImageSource::Image(image)
            }
            (None, Some(build)) => {
                let context = self.dir.join(&build);
                if !context.is_dir() {
                    return Err(self.error(
                        Some(line),
                        &format!("{field}.build"),
                        format!(
                            "`{build}` is not a folder (looked for {})",
                            context.display()
                        ),
                    ));
                }
                let dockerfile = raw.dockerfile.take().unwrap_or_else(|| "Dockerfile".into());
                if !context.join(&dockerfile).is_file() {
                    return Err(self.error(
                        Some(line),
                        &format!("{field}.build"),
                        format!("{} has no {dockerfile}", context.display()),
                    ));
                }
                ImageSource::Build {
                    context: std::path::absolute(&context).unwrap_or(context),
                    dockerfile,
                }
            }
            _ => {
                return Err(self.error(
                    Some(line),
                    field,
                    "give either `image` (a name with its tag) or `build` (a folder with a Dockerfile)",
                ));
            }
        };
        let mut env = BTreeMap::new();
        for (key, value) in std::mem::take(&mut raw.env) {
            let at = format!("{field}.env.{key}");
            let text = match &value.value {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                Value::Null => String::new(),
                _ => {
                    return Err(self.error(
                        Some(value.referenced.line()),
                        &at,
                        "must be a string, a number or a boolean",
                    ));
                }
            };
            let text = self
                .env
                .interpolate(&text)
                .map_err(|why| self.error(Some(value.referenced.line()), &at, why))?;
            env.insert(key, text);
        }
        let mut volumes = Vec::new();
        for (index, text) in raw.volumes.iter().enumerate() {
            let at = format!("{field}.volumes[{index}]");
            let line = Some(text.referenced.line());
            let expanded = self
                .env
                .interpolate(&text.value)
                .map_err(|why| self.error(line, &at, why))?;
            volumes.push(
                self.volume(&expanded)
                    .map_err(|why| self.error(line, &at, why))?,
            );
        }
        let memory = match raw.memory.take() {
            None => None,
            Some(value) => Some(parse_memory(&value.value).map_err(|why| {
                self.error(
                    Some(value.referenced.line()),
                    &format!("{field}.memory"),
                    why,
                )
            })?),
        };
        let cpus = match raw.cpus.take() {
            Some(cpus) if !(cpus.value > 0.0 && cpus.value <= 1024.0) => {
                return Err(self.error(
                    Some(cpus.referenced.line()),
                    &format!("{field}.cpus"),
                    format!("must be a number of CPUs above 0, got {}", cpus.value),
                ));
            }
            other => other.map(|c| c.value),
        };
        Ok(ContainerSpec {
            image,
            command: raw.command.take().map(Words::into_vec),
            entrypoint: raw.entrypoint.take().map(Words::into_vec),
            env,
            volumes,
            memory,
            cpus,
            pull: raw.pull,
        })
    }

    /// `./host/path:/in/container[:ro]` or `name:/in/container[:ro]`.
    fn volume(&self, text: &str) -> Result<Volume, String> {
        let parts: Vec<&str> = text.split(':').collect();
        let (source, target, read_only) = match parts.as_slice() {
            [source, target] => (*source, *target, false),
            [source, target, "ro"] => (*source, *target, true),
            [source, target, "rw"] => (*source, *target, false),
            _ => return Err(format!("`{text}` is not `SOURCE:TARGET[:ro]`")),
        };
        if !target.starts_with('/') {
            return Err(format!("the container path `{target}` must be absolute"));
        }
        if crate::sandbox::RESERVED_PATHS
            .iter()
            .any(|reserved| Path::new(target).starts_with(reserved))
        {
            return Err(format!(
                "`{target}` is mounted by the host itself ({})",
                crate::sandbox::RESERVED_PATHS.join(", ")
            ));
        }
        let source =
            if source.starts_with('/') || source.starts_with('.') || source.starts_with('~') {
                let path = self.dir.join(source);
                std::path::absolute(&path)
                    .map_err(|e| format!("`{source}`: {e}"))?
                    .display()
                    .to_string()
            } else {
                source.to_string()
            };
        Ok(Volume {
            source,
            target: target.to_string(),
            read_only,
        })
    }

    fn actions(
        &self,
        raw: Option<Spanned<RawActions>>,
        field: &str,
    ) -> Result<Option<Vec<ActionInfo>>, ServicesFileError> {
        let Some(raw) = raw else { return Ok(None) };
        let line = Some(raw.referenced.line());
        let described: Vec<(String, RawAction)> = match raw.value {
            RawActions::Names(names) => names
                .into_iter()
                .map(|n| (n, RawAction::default()))
                .collect(),
            RawActions::Described(map) => map.into_iter().collect(),
        };
        let mut actions = Vec::new();
        for (name, action) in described {
            let at = format!("{field}.{name}");
            if crate::protocol::RESERVED_ACTIONS.contains(&name.as_str())
                || !crate::protocol::is_action_topic(&format!("x/{name}"))
            {
                return Err(self.error(line, &at, format!("`{name}` cannot be an action name")));
            }
            let schema = |which: &str, value: Option<Value>| {
                let value = value.unwrap_or_else(|| json!({"type": "object"}));
                jsonschema::validator_for(&value).map_err(|e| {
                    self.error(
                        line,
                        &format!("{at}.{which}"),
                        format!("not a JSON Schema: {e}"),
                    )
                })?;
                Ok::<_, ServicesFileError>(value)
            };
            actions.push(ActionInfo {
                input_schema: schema("input", action.input)?,
                output_schema: schema("output", action.output)?,
                name,
                doc: action.doc,
            });
        }
        if actions.is_empty() {
            return Err(self.error(line, field, "lists no action"));
        }
        Ok(Some(actions))
    }

    fn service(
        &self,
        name: String,
        raw: Spanned<RawService>,
    ) -> Result<ServiceSpec, ServicesFileError> {
        let line = raw.referenced.line();
        let field = format!("services.{name}");
        if !crate::protocol::is_service_name(&name) {
            return Err(self.error(
                Some(line),
                &field,
                format!("`{name}` is not a plain service name (letters, digits, `_`, `-`)"),
            ));
        }
        let raw = raw.value;
        let actions = self.actions(raw.actions, &format!("{field}.actions"))?;
        let backend = match (raw.component, raw.docker, raw.external) {
            (Some(component), None, false) => {
                let line = Some(component.referenced.line());
                let at = format!("{field}.component");
                let text = |key: &str| component.value.get(key).and_then(Value::as_str);
                let keys_ok = component
                    .value
                    .as_object()
                    .is_some_and(|o| o.keys().all(|k| k == "url" || k == "sha256"));
                match (&component.value, text("url"), text("sha256")) {
                    (Value::String(path), _, _) => {
                        let file = self.dir.join(path);
                        if !file.is_file() {
                            return Err(self.error(
                                line,
                                &at,
                                format!("no component file {}", file.display()),
                            ));
                        }
                        BackendSpec::Component(ComponentSource::File(file))
                    }
                    (Value::Object(_), Some(url), Some(sha256)) if keys_ok => {
                        let (url, sha256) = (url.to_string(), sha256.to_string());
                        if !(url.starts_with("https://") || url.starts_with("http://")) {
                            return Err(self.error(
                                line,
                                &format!("{at}.url"),
                                "must be an http:// or https:// URL",
                            ));
                        }
                        if sha256.len() != 64 || !sha256.chars().all(|c| c.is_ascii_hexdigit()) {
                            return Err(self.error(
                                line,
                                &format!("{at}.sha256"),
                                "must be the component's sha256 in hex (64 characters)",
                            ));
                        }
                        BackendSpec::Component(ComponentSource::Url { url, sha256 })
                    }
                    _ => {
                        return Err(self.error(
                            line,
                            &at,
                            "give a file path, or `url` and `sha256` (quoted, as text)",
                        ));
                    }
                }
            }
            (None, Some(docker), false) => {
                BackendSpec::Docker(Box::new(self.docker(docker, &format!("{field}.docker"))?))
            }
            (None, None, true) => BackendSpec::External,
            _ => {
                return Err(self.error(
                    Some(line),
                    &field,
                    "give exactly one of `component`, `docker` or `external: true`",
                ));
            }
        };
        if !matches!(backend, BackendSpec::Component(_)) && actions.is_none() {
            return Err(self.error(
                Some(line),
                &format!("{field}.actions"),
                "a docker or external service must list its actions",
            ));
        }
        Ok(ServiceSpec {
            name,
            file: self.path.to_path_buf(),
            line,
            backend,
            actions,
        })
    }

    fn ready_timeout(
        &self,
        raw: &RawContainer,
        field: &str,
    ) -> Result<Duration, ServicesFileError> {
        match &raw.ready_timeout {
            Some(value) => self.duration(value, &format!("{field}.ready_timeout")),
            None => Ok(DEFAULT_READY_TIMEOUT),
        }
    }

    fn docker(
        &self,
        raw: Spanned<RawContainer>,
        field: &str,
    ) -> Result<DockerSpec, ServicesFileError> {
        let line = raw.referenced.line();
        let mut raw = raw.value;
        if raw.ready.is_some() {
            return Err(self.error(
                Some(line),
                &format!("{field}.ready"),
                "only a sidecar has a readiness command (a `service` container is ready when it says `up`)",
            ));
        }
        let container = self.container(&mut raw, line, field)?;
        let mut sidecars = Vec::new();
        for (name, sidecar) in raw.sidecars.take().unwrap_or_default() {
            let at = format!("{field}.sidecars.{name}");
            let sidecar_line = sidecar.referenced.line();
            if !crate::protocol::is_service_name(&name) {
                return Err(self.error(Some(sidecar_line), &at, "not a plain host name"));
            }
            let mut sidecar = sidecar.value;
            if sidecar.mode.is_some()
                || sidecar.network.is_some()
                || sidecar.timeout.is_some()
                || sidecar.sidecars.is_some()
            {
                return Err(self.error(
                    Some(sidecar_line),
                    &at,
                    "a sidecar takes no `mode`, `network`, `timeout` or `sidecars`: it shares its service's",
                ));
            }
            sidecars.push(SidecarSpec {
                container: self.container(&mut sidecar, sidecar_line, &at)?,
                ready: sidecar.ready.take().map(Words::into_vec),
                ready_timeout: self.ready_timeout(&sidecar, &at)?,
                name,
            });
        }
        let timeout = match &raw.timeout {
            Some(value) => Some(self.duration(value, &format!("{field}.timeout"))?),
            None => None,
        };
        Ok(DockerSpec {
            container,
            mode: raw.mode.unwrap_or_default(),
            network: raw.network.take(),
            timeout,
            ready_timeout: self.ready_timeout(&raw, field)?,
            sidecars,
        })
    }
}

/// The YAML library's message without its own `error: line L column C:` prefix
/// (ours already says where).
fn library_message(text: &str) -> String {
    let first = text.lines().next().unwrap_or_default();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    match first
        .strip_prefix("line ")
        .and_then(|rest| rest.split_once(": "))
    {
        Some((_, message)) => message.to_string(),
        None => first.to_string(),
    }
}

/// `512m`, `2g`, `1024k`, or a number of bytes.
fn parse_memory(value: &Value) -> Result<i64, String> {
    let text = match value {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_ascii_lowercase(),
        other => return Err(format!("must be a size such as `512m`, got {other}")),
    };
    let text = text.trim_end_matches('b');
    let (digits, unit) = match text
        .char_indices()
        .find(|(_, c)| !c.is_ascii_digit() && *c != '.')
    {
        Some((at, _)) => text.split_at(at),
        None => (text, ""),
    };
    let scale: f64 = match unit {
        "" => 1.0,
        "k" | "ki" => 1024.0,
        "m" | "mi" => 1024.0 * 1024.0,
        "g" | "gi" => 1024.0 * 1024.0 * 1024.0,
        _ => {
            return Err(format!(
                "must be a size such as `512m` or `2g`, got `{text}`"
            ));
        }
    };
    let amount: f64 = digits
        .parse()
        .map_err(|_| format!("must be a size such as `512m` or `2g`, got `{text}`"))?;
    let bytes = amount * scale;
    // Docker refuses less than 6 MiB.
    if !(6.0 * 1024.0 * 1024.0..=1e15).contains(&bytes) {
        return Err(format!("`{text}` is outside 6m to 1000000g"));
    }
    Ok(bytes as i64)
}

impl ServicesFile {
    /// The services file beside `workflow` (`copper.yaml`), if there is one.
    pub fn beside(workflow: &Path) -> Option<PathBuf> {
        let dir = workflow.parent().unwrap_or(Path::new("."));
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        let path = dir.join(DEFAULT_NAME);
        path.is_file().then_some(path)
    }

    /// Reads and checks a services file; `${VAR}` come from the environment and the
    /// `.env` file beside it.
    pub fn load(path: &Path) -> Result<Self, ServicesFileError> {
        let unreadable = |message: String| ServicesFileError {
            file: path.to_path_buf(),
            line: None,
            field: None,
            message,
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| unreadable(format!("cannot read the services file: {e}")))?;
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let env = Environment::load(&dir).map_err(unreadable)?;
        Self::parse(&text, path, env)
    }

    /// Reads and checks a services file given as text; paths are relative to `path`'s folder.
    pub fn parse(text: &str, path: &Path, env: Environment) -> Result<Self, ServicesFileError> {
        let raw: RawFile =
            serde_saphyr::from_str_with_options(text, crate::workflow::yaml_options()).map_err(
                |e| {
                    let location = e.location();
                    ServicesFileError {
                        file: path.to_path_buf(),
                        line: location.map(|l| l.line()),
                        field: None,
                        message: library_message(&e.to_string()),
                    }
                },
            )?;
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let reader = Reader { path, dir, env };
        let mut services = Vec::new();
        for (name, service) in raw.services {
            services.push(reader.service(name, service)?);
        }
        services.sort_by_key(|s| s.line);
        Ok(Self {
            path: path.to_path_buf(),
            services,
        })
    }

    /// The service named `name`.
    pub fn get(&self, name: &str) -> Option<&ServiceSpec> {
        self.services.iter().find(|s| s.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ServicesFile, ServicesFileError> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("ctx")).unwrap();
        std::fs::write(dir.path().join("ctx/Dockerfile"), "FROM scratch\n").unwrap();
        let path = dir.path().join("copper.yaml");
        ServicesFile::parse(text, &path, Environment::default())
    }

    #[test]
    fn docker_service_with_everything() {
        let file = parse(
            "services:\n  shout:\n    docker:\n      image: test/shout:1\n      command: sh -c 'x'\n      env:\n        A: 1\n        B: ${COPPER_TEST_NOT_SET:-dflt}\n      volumes: ['./data:/data:ro', 'cache:/cache']\n      memory: 256m\n      cpus: 0.5\n      timeout: 30s\n      pull: never\n      sidecars:\n        db:\n          build: ctx\n          ready: test -f /ok\n    actions:\n      run:\n        doc: Shouts\n        input: {type: object, required: [text]}\n",
        )
        .unwrap();
        let shout = file.get("shout").unwrap();
        assert_eq!(shout.line, 3);
        assert_eq!(shout.topics(), vec!["shout/run".to_string()]);
        let BackendSpec::Docker(docker) = &shout.backend else {
            panic!("not docker")
        };
        assert_eq!(docker.mode, Mode::Lambda);
        assert_eq!(
            docker.container.image,
            ImageSource::Image("test/shout:1".into())
        );
        assert_eq!(docker.container.env["A"], "1");
        assert_eq!(docker.container.env["B"], "dflt");
        assert_eq!(docker.container.memory, Some(256 << 20));
        assert_eq!(docker.container.pull, PullPolicy::Never);
        assert_eq!(docker.timeout, Some(Duration::from_secs(30)));
        assert!(docker.container.volumes[0].read_only);
        assert!(docker.container.volumes[0].source.ends_with("/data"));
        assert_eq!(docker.container.volumes[1].bind(), "cache:/cache");
        assert_eq!(docker.sidecars[0].name, "db");
        assert_eq!(
            docker.sidecars[0].ready,
            Some(vec!["test".into(), "-f".into(), "/ok".into()])
        );
        assert!(matches!(
            docker.sidecars[0].container.image,
            ImageSource::Build { .. }
        ));
    }

    #[test]
    fn errors_name_line_and_field() {
        let err = parse("services:\n  a:\n    docker:\n      image: x:1\n      memory: lots\n    actions: [run]\n")
            .unwrap_err();
        assert_eq!(err.line, Some(5), "{err}");
        assert_eq!(
            err.field.as_deref(),
            Some("services.a.docker.memory"),
            "{err}"
        );

        let err = parse("services:\n  a:\n    docker:\n      image: x:1\n").unwrap_err();
        assert!(err.message.contains("must list its actions"), "{err}");

        let err = parse("services:\n  a:\n    docker:\n      image: x:1\n      volumes: ['./x:/web']\n    actions: [run]\n")
            .unwrap_err();
        assert!(err.message.contains("mounted by the host"), "{err}");

        let err = parse("services:\n  a:\n    dokcer:\n      image: x:1\n").unwrap_err();
        assert_eq!(err.line, Some(3), "{err}");
        assert!(
            err.message.contains("dokcer") && !err.message.starts_with("error"),
            "{err}"
        );

        let err =
            parse("services:\n  a:\n    external: true\n    component: x.wasm\n    actions: [b]\n")
                .unwrap_err();
        assert!(err.message.contains("exactly one"), "{err}");

        let err = parse(
            "services:\n  a:\n    docker:\n      image: ${COPPER_TEST_NOT_SET}\n    actions: [b]\n",
        )
        .unwrap_err();
        assert!(err.message.contains("COPPER_TEST_NOT_SET"), "{err}");
    }

    #[test]
    fn memory_sizes() {
        assert_eq!(parse_memory(&json!("512m")), Ok(512 << 20));
        assert_eq!(parse_memory(&json!("2g")), Ok(2 << 30));
        assert_eq!(parse_memory(&json!(67108864)), Ok(64 << 20));
        assert!(parse_memory(&json!("1k")).is_err());
    }
}
