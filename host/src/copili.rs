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

mod read;
use read::{Container, Reader, problem};

#[cfg(test)]
mod tests;
