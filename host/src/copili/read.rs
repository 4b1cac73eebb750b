//! Reading a pipeline's containers, field by field, each under the names copili
//! knows it by, every mistake named with its line and field.

use super::*;

/// One container description, read.
pub(super) struct Container {
    pub(super) name: String,
    pub(super) index: usize,
    pub(super) line: u64,
    pub(super) field_lines: BTreeMap<String, u64>,
    pub(super) is_service: bool,
    pub(super) dependencies: Vec<String>,
    pub(super) exclude_in_env: Vec<String>,
    pub(super) service: ServiceSpec,
}

/// Reads the descriptions of one pipeline file.
pub(super) struct Reader<'a> {
    pub(super) path: &'a Path,
    pub(super) pipeline: &'a str,
    pub(super) env: &'a Environment,
}

impl Reader<'_> {
    pub(super) fn error(
        &self,
        line: u64,
        field: String,
        message: impl Into<String>,
    ) -> WorkflowError {
        problem(self.path, Some(line), Some(field), message.into())
    }

    /// Description `index` of the pipeline.
    pub(super) fn container(
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
    pub(super) fn secret(
        &self,
        value: Value,
        line: u64,
        at: &str,
    ) -> Result<String, WorkflowError> {
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
    pub(super) fn either(
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
    pub(super) fn env_vars(
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
    pub(super) fn volumes(
        &self,
        value: Option<(Value, u64)>,
        at: &str,
    ) -> Result<Vec<Volume>, WorkflowError> {
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
    pub(super) fn command(
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
    pub(super) fn sidecar(
        &self,
        item: Value,
        line: u64,
        at: &str,
    ) -> Result<SidecarSpec, WorkflowError> {
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
    pub(super) fn check_names(&self, containers: &[Container]) -> Result<(), WorkflowError> {
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
    pub(super) fn workflow(
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

pub(super) fn problem(
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
