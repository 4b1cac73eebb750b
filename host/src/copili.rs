//! copili's pipeline files, run as they are: a mapping of a pipeline's name to its
//! container descriptions, read as a workflow of container steps.
//!
//! ```yaml
//! ExamplePipeline:
//!   - name: dataloader_01
//!     image_repo: stakater/exit-container
//!   - name: dataloader_02
//!     image_repo: stakater/exit-container
//!     dependencies: [dataloader_01]
//!     env_vars: {EXIT_CODE: 0}
//!   - name: servicecontainer01
//!     image_repo: hello-world
//!     is_service_container: true
//! service_schedule: "*/10 * * * *"   # copper-wasm's: when service containers run
//! ```
//!
//! Each description becomes a Docker service of its own, `<name>`, with one action
//! `<name>/run` that runs the container once per request (it succeeds when it exits
//! 0), and a step of that action: `dependencies` are its `needs`, `exlude_in_env`
//! its `exclude_in_env`, `sidecars` its sidecars, `volumes` (docker-py's shape) its
//! mounts, `image_reg_username`/`_password` the login its image is pulled with.
//! The static containers make the workflow `<pipeline>`; the service containers
//! make `<pipeline>-services`, run by a daemon on `service_schedule` (copili's
//! default: daily at 00:00) and after each successful run of the pipeline.
//! `${VAR}` in the descriptions come from the environment and the `.env` beside.

use crate::environment::Environment;
use crate::service::ActionInfo;
use crate::services_file::{
    BackendSpec, ContainerSpec, DockerSpec, ImageSource, Mode, PullPolicy, RegistryLogin,
    ServiceSpec, SidecarSpec, Volume,
};
use crate::workflow::{Workflow, WorkflowError, yaml_message};
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::{Value, json};
use serde_saphyr::Spanned;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// When service containers run, as copili does by default: daily at 00:00.
pub const DEFAULT_SERVICE_SCHEDULE: &str = "0 0 * * *";

/// A copili pipeline file, read.
#[derive(Debug, Clone)]
pub struct Pipeline {
    /// The pipeline's name.
    pub name: String,
    /// Its static containers, as a workflow named after the pipeline.
    pub workflow: Workflow,
    /// That workflow in copper-wasm's own form (a run records it, a resume reads it).
    pub text: String,
    /// Its service containers, as a scheduled workflow `<pipeline>-services` (with
    /// its text in copper-wasm's form), if any.
    pub services_workflow: Option<(Workflow, String)>,
    /// A Docker service per container description.
    pub services: Vec<ServiceSpec>,
}

/// A field of a description as written, with its line (none: not given).
type Field = Option<(Value, u64)>;

/// One container description as written, with the line of each field.
type Description = Spanned<BTreeMap<String, Spanned<Value>>>;

/// The document: the pipeline's descriptions and copper-wasm's `service_schedule`.
struct Document {
    pipelines: Vec<(String, u64, Vec<Description>)>,
    schedule: Option<(String, u64)>,
}

impl<'de> serde::Deserialize<'de> for Document {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> Visitor<'de> for Fields {
            type Value = Document;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a mapping of a pipeline's name to its list of containers")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Document, A::Error> {
                let mut document = Document {
                    pipelines: Vec::new(),
                    schedule: None,
                };
                while let Some(key) = map.next_key::<String>()? {
                    if key == "service_schedule" {
                        let value: Spanned<String> = map.next_value()?;
                        document.schedule = Some((value.value, value.referenced.line()));
                    } else {
                        let list: Spanned<Vec<Description>> = map.next_value()?;
                        let line = list.referenced.line();
                        document.pipelines.push((key, line, list.value));
                    }
                }
                Ok(document)
            }
        }
        deserializer.deserialize_map(Fields)
    }
}

/// The fields of a container description copili knows, and their aliases in its
/// README's examples.
const FIELDS: &[&str] = &[
    "name",
    "info_link",
    "desc",
    "image_repo",
    "repo",
    "image_reg_username",
    "image_reg_password",
    "tag",
    "is_service_container",
    "env_vars",
    "dependencies",
    "dependency",
    "exlude_in_env",
    "exclude_in_env",
    "volumes",
    "command",
    "sidecars",
];

/// True when `text` reads as a copili pipeline: a mapping whose values are lists of
/// mappings with a `name` and an `image_repo` (or `repo`), and no `action`.
pub fn is_pipeline(text: &str) -> bool {
    let Ok(Value::Object(top)) = serde_saphyr::from_str::<Value>(text) else {
        return false;
    };
    let lists: Vec<&Vec<Value>> = top.values().filter_map(Value::as_array).collect();
    !lists.is_empty()
        && lists.iter().all(|list| {
            !list.is_empty()
                && list.iter().all(|item| {
                    item.get("name").is_some()
                        && (item.get("image_repo").is_some() || item.get("repo").is_some())
                        && item.get("action").is_none()
                })
        })
}

/// Reads the copili pipeline in `path`; `${VAR}` from the environment and the
/// `.env` file beside it.
pub fn load(path: &Path) -> Result<Pipeline, WorkflowError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| problem(path, None, None, format!("cannot read the pipeline: {e}")))?;
    let folder = path.parent().unwrap_or(Path::new("."));
    let env = Environment::load(folder).map_err(|why| problem(path, None, None, why))?;
    parse(&text, path, &env)
}

/// Reads a copili pipeline given as text; `path` names it in errors and is where
/// relative volume paths start.
pub fn parse(text: &str, path: &Path, env: &Environment) -> Result<Pipeline, WorkflowError> {
    let document: Document =
        serde_saphyr::from_str_with_options(text, crate::workflow::yaml_options()).map_err(
            |e| {
                let line = e.location().map(|l| l.line());
                problem(path, line, None, yaml_message(&e))
            },
        )?;
    let (name, line, descriptions) = match <[_; 1]>::try_from(document.pipelines) {
        Ok([one]) => one,
        Err(many) => {
            let message = format!(
                "a pipeline file holds one pipeline, this one holds {}",
                many.len()
            );
            return Err(problem(path, Some(1), None, message));
        }
    };
    let reader = Reader {
        path,
        pipeline: &name,
        env,
    };
    let containers = descriptions
        .into_iter()
        .enumerate()
        .map(|(index, d)| reader.container(index, d))
        .collect::<Result<Vec<_>, _>>()?;
    reader.check_names(&containers)?;
    let schedule = match document.schedule {
        Some((cron, at)) => {
            crate::workflow::on::cron_of(&cron)
                .map_err(|why| problem(path, Some(at), Some("service_schedule".into()), why))?;
            cron
        }
        None => DEFAULT_SERVICE_SCHEDULE.to_string(),
    };
    let (services, statics): (Vec<&Container>, Vec<&Container>) =
        containers.iter().partition(|c| c.is_service);
    let (workflow, text) = reader.workflow(&name, &statics, None, line)?;
    let services_workflow = match services.is_empty() {
        true => None,
        false => {
            let on = json!({
                "schedule": [{"cron": schedule}],
                "workflow_run": {"workflows": [name], "status": ["success"]},
            });
            let named = format!("{name}-services");
            Some(reader.workflow(&named, &services, Some(on), line)?)
        }
    };
    Ok(Pipeline {
        name: name.clone(),
        workflow,
        text,
        services_workflow,
        services: containers.into_iter().map(|c| c.service).collect(),
    })
}

/// One container description, read.
struct Container {
    name: String,
    index: usize,
    line: u64,
    field_lines: BTreeMap<String, u64>,
    is_service: bool,
    dependencies: Vec<String>,
    exclude_in_env: Vec<String>,
    service: ServiceSpec,
}

/// Reads the descriptions of one pipeline file.
struct Reader<'a> {
    path: &'a Path,
    pipeline: &'a str,
    env: &'a Environment,
}

impl Reader<'_> {
    fn error(&self, line: u64, field: String, message: impl Into<String>) -> WorkflowError {
        problem(self.path, Some(line), Some(field), message.into())
    }

    /// Description `index` of the pipeline.
    fn container(
        &self,
        index: usize,
        description: Description,
    ) -> Result<Container, WorkflowError> {
        let line = description.referenced.line();
        let at = |field: &str| format!("{}[{index}].{field}", self.pipeline);
        let mut fields: BTreeMap<String, (Value, u64)> = description
            .value
            .into_iter()
            .map(|(k, v)| (k, (v.value, v.referenced.line())))
            .collect();
        let field_lines = fields.iter().map(|(k, (_, l))| (k.clone(), *l)).collect();
        if let Some((unknown, (_, l))) = fields.iter().find(|(k, _)| !FIELDS.contains(&k.as_str()))
        {
            return Err(self.error(
                *l,
                at(unknown),
                format!(
                    "copili knows no `{unknown}`; a container description has {}",
                    FIELDS.join(", ")
                ),
            ));
        }
        let mut take = |field: &str| fields.remove(field);
        let name = match take("name") {
            Some((Value::String(name), l)) => {
                if !crate::protocol::is_action_topic(&format!("{name}/run"))
                    || !crate::workflow::expression::is_name(&name)
                {
                    return Err(self.error(
                        l,
                        at("name"),
                        format!("`{name}` cannot name a service: use letters, digits, `_` and `-`"),
                    ));
                }
                name
            }
            Some((other, l)) => {
                return Err(self.error(l, at("name"), format!("must be a text, got {other}")));
            }
            None => {
                return Err(self.error(line, at("name"), "a container description needs a `name`"));
            }
        };
        let text = |value: Option<(Value, u64)>,
                    field: &str|
         -> Result<Option<(String, u64)>, WorkflowError> {
            match value {
                None => Ok(None),
                Some((Value::String(s), l)) => {
                    let s = self
                        .env
                        .interpolate(&s)
                        .map_err(|why| self.error(l, at(field), why))?;
                    Ok(Some((s, l)))
                }
                Some((Value::Number(n), l)) => Ok(Some((n.to_string(), l))),
                Some((other, l)) => {
                    Err(self.error(l, at(field), format!("must be a text, got {other}")))
                }
            }
        };
        let (field, value) = self.either(
            &at,
            ("image_repo", take("image_repo")),
            ("repo", take("repo")),
        )?;
        let repo = text(value, field)?;
        let Some((repo, _)) = repo else {
            return Err(self.error(
                line,
                at("image_repo"),
                format!("container `{name}` needs an `image_repo`"),
            ));
        };
        let tag = text(take("tag"), "tag")?
            .map(|(t, _)| t)
            .unwrap_or_else(|| "latest".into());
        let image = if repo.contains('@') || has_tag(&repo) {
            repo.clone()
        } else {
            format!("{repo}:{tag}")
        };
        let username = text(take("image_reg_username"), "image_reg_username")?;
        let password = match take("image_reg_password") {
            None => None,
            Some((value, l)) => Some((self.secret(value, l, &at("image_reg_password"))?, l)),
        };
        let login = match (username, password) {
            (Some((username, _)), Some((password, _))) => {
                Some(RegistryLogin { username, password })
            }
            (None, None) => None,
            (Some((_, l)), None) | (None, Some((_, l))) => {
                return Err(self.error(
                    l,
                    at("image_reg_username"),
                    "give `image_reg_username` and `image_reg_password` together",
                ));
            }
        };
        let is_service = match take("is_service_container") {
            None => false,
            Some((Value::Bool(b), _)) => b,
            Some((other, l)) => {
                return Err(self.error(
                    l,
                    at("is_service_container"),
                    format!("must be true or false, got {other}"),
                ));
            }
        };
        let words =
            |value: Option<(Value, u64)>, field: &str| -> Result<Vec<String>, WorkflowError> {
                match value {
                    None => Ok(Vec::new()),
                    Some((Value::String(s), _)) => Ok(vec![s]),
                    Some((Value::Array(items), l)) => items
                        .into_iter()
                        .map(|item| match item {
                            Value::String(s) => Ok(s),
                            other => Err(self.error(
                                l,
                                at(field),
                                format!("must be a list of names, got {other}"),
                            )),
                        })
                        .collect(),
                    Some((other, l)) => Err(self.error(
                        l,
                        at(field),
                        format!("must be a list of names, got {other}"),
                    )),
                }
            };
        let (field, value) = self.either(
            &at,
            ("dependencies", take("dependencies")),
            ("dependency", take("dependency")),
        )?;
        let dependencies = words(value, field)?;
        let (field, value) = self.either(
            &at,
            ("exlude_in_env", take("exlude_in_env")),
            ("exclude_in_env", take("exclude_in_env")),
        )?;
        let exclude_in_env = words(value, field)?;
        let env = self.env_vars(take("env_vars"), &at("env_vars"))?;
        let volumes = self.volumes(take("volumes"), &at("volumes"))?;
        let command = self.command(take("command"), &at("command"))?;
        let sidecars = match take("sidecars") {
            None => Vec::new(),
            Some((Value::Array(items), l)) => items
                .into_iter()
                .enumerate()
                .map(|(i, item)| self.sidecar(item, l, &at(&format!("sidecars[{i}]"))))
                .collect::<Result<_, _>>()?,
            Some((other, l)) => {
                return Err(self.error(
                    l,
                    at("sidecars"),
                    format!("must be a list of container descriptions, got {other}"),
                ));
            }
        };
        // What it is for: the action's doc (never its input, which `${…}` would read).
        let _ = take("info_link");
        let doc = match take("desc") {
            Some((Value::String(desc), _)) => desc,
            _ => format!("Runs the container {image} once"),
        };
        let container = ContainerSpec {
            image: ImageSource::Image(image),
            command,
            entrypoint: None,
            env,
            volumes,
            memory: None,
            cpus: None,
            pull: PullPolicy::Missing,
            login,
        };
        let docker = DockerSpec {
            container,
            mode: Mode::Lambda,
            network: None,
            timeout: None,
            ready_timeout: Duration::from_secs(30),
            sidecars,
        };
        let service = ServiceSpec {
            name: name.clone(),
            file: self.path.to_path_buf(),
            line,
            backend: BackendSpec::Docker(Box::new(docker)),
            actions: Some(vec![ActionInfo {
                name: "run".into(),
                doc,
                input_schema: json!({"type": "object"}),
                output_schema: json!({"type": "object"}),
            }]),
            grants: Default::default(),
            concurrency: None,
        };
        Ok(Container {
            name,
            index,
            line,
            field_lines,
            is_service,
            dependencies,
            exclude_in_env,
            service,
        })
    }

    /// A password: `${VAR}` (or `$VAR`) from the environment, else taken as written;
    /// no error ever shows any of it.
    fn secret(&self, value: Value, line: u64, at: &str) -> Result<String, WorkflowError> {
        let Value::String(text) = value else {
            return Err(self.error(line, at.into(), "must be a text"));
        };
        let name = text
            .strip_prefix("${")
            .and_then(|t| t.strip_suffix('}'))
            .or_else(|| text.strip_prefix('$'))
            .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
        match name {
            Some(name) => self.env.get(name).ok_or_else(|| {
                self.error(line, at.into(), format!("variable `{name}` is not set"))
            }),
            None => Ok(text),
        }
    }

    /// A field copili knows by two names (its own and an alias): the one given,
    /// with its name; both given is an error at the second.
    fn either(
        &self,
        at: &dyn Fn(&str) -> String,
        first: (&'static str, Field),
        second: (&'static str, Field),
    ) -> Result<(&'static str, Field), WorkflowError> {
        match (first, second) {
            ((one, Some(_)), (other, Some((_, l)))) => {
                Err(self.error(l, at(other), format!("give `{one}` or `{other}`, not both")))
            }
            ((_, None), (other, Some(v))) => Ok((other, Some(v))),
            ((one, v), _) => Ok((one, v)),
        }
    }

    /// `env_vars`: a mapping of names to values (numbers and booleans as written).
    fn env_vars(
        &self,
        value: Option<(Value, u64)>,
        at: &str,
    ) -> Result<BTreeMap<String, String>, WorkflowError> {
        let Some((value, l)) = value else {
            return Ok(BTreeMap::new());
        };
        let Value::Object(map) = value else {
            return Err(self.error(
                l,
                at.into(),
                format!("must be a mapping of names to values, got {value}"),
            ));
        };
        map.into_iter()
            .map(|(k, v)| {
                let text = match v {
                    Value::String(s) => self
                        .env
                        .interpolate(&s)
                        .map_err(|why| self.error(l, format!("{at}.{k}"), why))?,
                    Value::Null => String::new(),
                    other => other.to_string(),
                };
                Ok((k, text))
            })
            .collect()
    }

    /// `volumes` in docker-py's shape: `{host: {bind: path, mode: rw|ro}}`, or a list
    /// of `host:path[:mode]`; a relative host path starts at the pipeline's folder.
    fn volumes(&self, value: Option<(Value, u64)>, at: &str) -> Result<Vec<Volume>, WorkflowError> {
        let Some((value, l)) = value else {
            return Ok(Vec::new());
        };
        let folder = self.path.parent().unwrap_or(Path::new("."));
        let source_of = |source: &str| -> String {
            let source = self
                .env
                .interpolate(source)
                .unwrap_or_else(|_| source.to_string());
            if source.starts_with('.') || source.contains('/') && !source.starts_with('/') {
                let joined: PathBuf =
                    std::path::absolute(folder.join(&source)).unwrap_or(folder.join(&source));
                joined.display().to_string()
            } else {
                source
            }
        };
        let bad = |why: String| self.error(l, at.into(), why);
        match value {
            Value::Object(map) => map
                .into_iter()
                .map(|(source, mount)| {
                    let bind = mount.get("bind").and_then(Value::as_str).ok_or_else(|| {
                        bad(format!(
                            "`{source}` needs a `bind`: the path inside the container"
                        ))
                    })?;
                    let mode = mount.get("mode").and_then(Value::as_str).unwrap_or("rw");
                    if mode != "rw" && mode != "ro" {
                        return Err(bad(format!(
                            "the mode of `{source}` is `rw` or `ro`, got `{mode}`"
                        )));
                    }
                    Ok(Volume {
                        source: source_of(&source),
                        target: match bind.trim_end_matches('/') {
                            "" => "/".to_string(),
                            trimmed => trimmed.to_string(),
                        },
                        read_only: mode == "ro",
                    })
                })
                .collect(),
            Value::Array(items) => items
                .into_iter()
                .map(|item| {
                    let text = item.as_str().ok_or_else(|| {
                        bad(format!("must be texts `host:path[:mode]`, got {item}"))
                    })?;
                    let parts: Vec<&str> = text.split(':').collect();
                    match parts.as_slice() {
                        [source, target] | [source, target, "rw"] => Ok(Volume {
                            source: source_of(source),
                            target: target.to_string(),
                            read_only: false,
                        }),
                        [source, target, "ro"] => Ok(Volume {
                            source: source_of(source),
                            target: target.to_string(),
                            read_only: true,
                        }),
                        _ => Err(bad(format!("`{text}` is not `host:path[:ro|rw]`"))),
                    }
                })
                .collect(),
            other => Err(bad(format!(
                "must be docker-py's volumes mapping, got {other}"
            ))),
        }
    }

    /// `command`: a list of words, or one line split as a shell would.
    fn command(
        &self,
        value: Option<(Value, u64)>,
        at: &str,
    ) -> Result<Option<Vec<String>>, WorkflowError> {
        match value {
            None => Ok(None),
            Some((Value::String(line), l)) => shlex::split(&line)
                .map(Some)
                .ok_or_else(|| self.error(l, at.into(), format!("`{line}` has an unclosed quote"))),
            Some((Value::Array(items), _)) => Ok(Some(
                items
                    .into_iter()
                    .map(|w| match w {
                        Value::String(s) => s,
                        other => other.to_string(),
                    })
                    .collect(),
            )),
            Some((other, l)) => Err(self.error(
                l,
                at.into(),
                format!("must be a list of words, got {other}"),
            )),
        }
    }

    /// A sidecar: a container description of its own (`name`, `image_repo`, `tag`,
    /// `env_vars`, `command`, `volumes`).
    fn sidecar(&self, item: Value, line: u64, at: &str) -> Result<SidecarSpec, WorkflowError> {
        let bad = |why: String| self.error(line, at.into(), why);
        let Value::Object(mut map) = item else {
            return Err(bad(format!("must be a container description, got {item}")));
        };
        let name = match map.remove("name") {
            Some(Value::String(n)) if crate::workflow::expression::is_name(&n) => n,
            other => {
                return Err(bad(format!(
                    "a sidecar needs a `name` of letters, digits, `_` and `-`, got {other:?}"
                )));
            }
        };
        let repo = match map.remove("image_repo").or_else(|| map.remove("repo")) {
            Some(Value::String(r)) => self.env.interpolate(&r).map_err(&bad)?,
            _ => return Err(bad(format!("sidecar `{name}` needs an `image_repo`"))),
        };
        let tag = match map.remove("tag") {
            Some(Value::String(t)) => t,
            Some(other) => other.to_string(),
            None => "latest".into(),
        };
        let image = if has_tag(&repo) || repo.contains('@') {
            repo
        } else {
            format!("{repo}:{tag}")
        };
        let env = self.env_vars(
            map.remove("env_vars").map(|v| (v, line)),
            &format!("{at}.env_vars"),
        )?;
        let volumes = self.volumes(
            map.remove("volumes").map(|v| (v, line)),
            &format!("{at}.volumes"),
        )?;
        let command = self.command(
            map.remove("command").map(|v| (v, line)),
            &format!("{at}.command"),
        )?;
        for ignored in ["desc", "info_link"] {
            map.remove(ignored);
        }
        if let Some(unknown) = map.keys().next() {
            return Err(bad(format!(
                "a sidecar knows no `{unknown}`: it has name, image_repo, tag, env_vars, command, volumes"
            )));
        }
        Ok(SidecarSpec {
            name,
            container: ContainerSpec {
                image: ImageSource::Image(image),
                command,
                entrypoint: None,
                env,
                volumes,
                memory: None,
                cpus: None,
                pull: PullPolicy::Missing,
                login: None,
            },
            ready: None,
            ready_timeout: Duration::from_secs(30),
        })
    }

    /// Names: each once; each dependency names a description.
    fn check_names(&self, containers: &[Container]) -> Result<(), WorkflowError> {
        let names: Vec<&str> = containers.iter().map(|c| c.name.as_str()).collect();
        for (i, c) in containers.iter().enumerate() {
            if names[..i].contains(&c.name.as_str()) {
                let line = c.field_lines.get("name").copied().unwrap_or(c.line);
                let at = format!("{}[{}].name", self.pipeline, c.index);
                return Err(self.error(line, at, format!("two containers are named `{}`", c.name)));
            }
            if let Some(unknown) = c.dependencies.iter().find(|d| !names.contains(&d.as_str())) {
                let field = ["dependencies", "dependency"]
                    .into_iter()
                    .find(|f| c.field_lines.contains_key(*f))
                    .unwrap_or("dependencies");
                let line = c.field_lines[field];
                let at = format!("{}[{}].{field}", self.pipeline, c.index);
                return Err(self.error(line, at, format!("`{}` depends on `{unknown}`, which this pipeline does not have (its containers: {})", c.name, names.join(", "))));
            }
        }
        Ok(())
    }

    /// The workflow `name` of `containers` (their dependencies among them only),
    /// with `on` when given; its steps carry the lines of their descriptions.
    fn workflow(
        &self,
        name: &str,
        containers: &[&Container],
        on: Option<Value>,
        line: u64,
    ) -> Result<(Workflow, String), WorkflowError> {
        let among: Vec<&str> = containers.iter().map(|c| c.name.as_str()).collect();
        let steps: Vec<Value> = containers
            .iter()
            .map(|c| {
                let needs: Vec<&String> = c
                    .dependencies
                    .iter()
                    .filter(|d| among.contains(&d.as_str()))
                    .collect();
                let mut step =
                    json!({"id": c.name, "action": format!("{}/run", c.name), "needs": needs});
                if !c.exclude_in_env.is_empty() {
                    step["exclude_in_env"] = json!(c.exclude_in_env);
                }
                step
            })
            .collect();
        let mut document = json!({"name": name, "steps": steps});
        if let Some(on) = on {
            document["on"] = on;
        }
        let text = serde_json::to_string_pretty(&document).expect("JSON serializes");
        let mut workflow = Workflow::parse(&text, self.path).map_err(|mut e| {
            // Found in the workflow made here: said at the description it came from.
            let index = e
                .field
                .as_deref()
                .and_then(|f| f.strip_prefix("steps["))
                .and_then(|f| f.split(']').next())
                .and_then(|i| i.parse::<usize>().ok());
            match index.and_then(|i| containers.get(i)) {
                Some(c) => {
                    let field = ["dependencies", "dependency"]
                        .into_iter()
                        .find(|f| c.field_lines.contains_key(*f))
                        .unwrap_or("name");
                    e.line = c.field_lines.get(field).copied().or(Some(c.line));
                    e.field = Some(format!("{}[{}].{field}", self.pipeline, c.index));
                }
                None => {
                    e.line = Some(line);
                    e.field = None;
                }
            }
            e.column = None;
            e
        })?;
        for (step, c) in workflow.steps.iter_mut().zip(containers) {
            step.line = c.line;
            step.field_lines = c.field_lines.clone();
            if let Some(&l) = c.field_lines.get("dependency") {
                step.field_lines.insert("dependencies".into(), l);
            }
        }
        Ok((workflow, text))
    }
}

/// True when an image name ends in a tag (`repo:tag`; a registry's port is not one).
fn has_tag(image: &str) -> bool {
    image
        .rsplit_once(':')
        .is_some_and(|(_, tag)| !tag.contains('/'))
}

fn problem(
    path: &Path,
    line: Option<u64>,
    field: Option<String>,
    message: String,
) -> WorkflowError {
    WorkflowError {
        file: path.to_path_buf(),
        line,
        column: None,
        field,
        message,
    }
}

#[cfg(test)]
mod tests;
