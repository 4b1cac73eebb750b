//! The workflow model: copper's YAML list of actions, read and checked before anything runs.
//!
//! A workflow is a YAML list of entries, each with an `action` (the MQTT topic
//! `<service>/<action>`) and the action's fields; or a mapping with `name`,
//! `env`, `secrets`, `timeout` and `steps` holding that list. Steps may have an
//! `id`, `needs` (or copili's `dependencies`), `if`, `retry`, `continue_on_error`,
//! `env`, `only_in_env` and `exclude_in_env`; without any `needs`, each step needs
//! the one before it, as in copper. Every error names the file, the line and the field.
//!
//! - [`expression`]: `${{ … }}` references, `${VAR}` and `if:` conditions.
//! - [`graph`]: the steps' order: needs, cycles, ancestors.

pub mod expression;
pub mod graph;

use crate::protocol::{Object, is_action_topic};
use crate::timeout;
use expression::{Condition, Reference};
use serde::Deserialize;
use serde_json::Value;
use serde_saphyr::Spanned;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How often a failed step is tried again, and how long to wait in between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Tries in all (1: no retry).
    pub attempts: u32,
    /// The wait before the second try; doubled for each further one.
    pub backoff: Duration,
    /// The longest wait.
    pub max_delay: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Self {
            attempts: 1,
            backoff: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
        }
    }
}

impl Retry {
    /// The wait before try `attempt` (from 2): exponential, capped, with jitter
    /// (between half and all of it), so that retries of many steps spread out.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(2).min(30);
        let full = self
            .backoff
            .saturating_mul(1u32 << exponent)
            .min(self.max_delay);
        full.mul_f64(0.5 + fastrand::f64() / 2.0)
    }
}

/// One action of a workflow.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Position in the workflow, from 1.
    pub number: usize,
    /// Its id (`id`, or `step<number>`).
    pub id: String,
    /// The topic the request is published on.
    pub action: String,
    /// The fields sent to the service: `action` and the action's fields, as written.
    pub entry: Object,
    /// The line the entry starts on.
    pub line: u64,
    /// The line of each field.
    pub field_lines: BTreeMap<String, u64>,
    /// The ids of the steps that must end first.
    pub needs: Vec<String>,
    /// `if:`: when it may run.
    pub condition: Option<Condition>,
    /// `retry:`.
    pub retry: Retry,
    /// `continue_on_error: true`: a failure does not stop its dependents.
    pub continue_on_error: bool,
    /// The step's own `env` (over the workflow's).
    pub env: BTreeMap<String, String>,
    /// Runs only when `ENV` is one of these (when any).
    pub only_in_env: Vec<String>,
    /// Skipped when `ENV` is one of these.
    pub exclude_in_env: Vec<String>,
}

impl Step {
    /// The service answering this step (the action's first level).
    pub fn service(&self) -> &str {
        crate::protocol::service_of(&self.action)
    }

    /// The step's `timeout`, if it has one.
    pub fn timeout(&self) -> Option<Duration> {
        self.entry
            .get("timeout")
            .and_then(|v| timeout::parse(v).ok())
    }

    /// The line of `field`, else of the step.
    pub fn line_of(&self, field: &str) -> u64 {
        self.field_lines.get(field).copied().unwrap_or(self.line)
    }
}

/// A checked workflow.
#[derive(Debug, Clone, PartialEq)]
pub struct Workflow {
    /// Its `name`, or the file's stem.
    pub name: String,
    /// Where it came from (a path, or `<string>`).
    pub source: PathBuf,
    /// Its steps, in file order.
    pub steps: Vec<Step>,
    /// Workflow-level `env`.
    pub env: BTreeMap<String, String>,
    /// Names of environment variables whose values are secret.
    pub secrets: Vec<String>,
    /// The whole run's deadline.
    pub timeout: Option<Duration>,
}

/// A workflow that cannot run, with where and why.
///
/// ```
/// use copper_wasm::Workflow;
/// let yaml = "- action: fetcher/fetch\n- action: markdown/build\n  needs: nowhere\n";
/// let error = Workflow::parse(yaml, std::path::Path::new("site.yaml")).unwrap_err();
/// assert_eq!(error.file, std::path::Path::new("site.yaml"));
/// assert_eq!(error.line, Some(3));
/// println!("{error}"); // site.yaml:3: ...
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct WorkflowError {
    /// The file.
    pub file: PathBuf,
    /// The line (from 1), when known.
    pub line: Option<u64>,
    /// The column (from 1), when known.
    pub column: Option<u64>,
    /// The field at fault, when there is one (`steps[2].action`).
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for WorkflowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        write!(f, ": ")?;
        if let Some(field) = &self.field {
            write!(f, "field `{field}`: ")?;
        }
        write!(f, "{}", self.message)
    }
}

type SpannedEntry = Spanned<BTreeMap<String, Spanned<Value>>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Named {
    name: Option<String>,
    #[serde(default)]
    env: BTreeMap<String, Value>,
    #[serde(default)]
    secrets: Vec<String>,
    timeout: Option<Value>,
    steps: Vec<SpannedEntry>,
}

impl Workflow {
    /// Reads and checks a workflow file.
    pub fn load(path: &Path) -> Result<Workflow, WorkflowError> {
        Self::read(path).map(|(workflow, _)| workflow)
    }

    /// Reads and checks the workflow in `path`, and gives its text too (a run keeps it).
    pub fn read(path: &Path) -> Result<(Workflow, String), WorkflowError> {
        let text = std::fs::read_to_string(path).map_err(|e| WorkflowError {
            file: path.to_path_buf(),
            line: None,
            column: None,
            field: None,
            message: format!("cannot read the workflow: {e}"),
        })?;
        Ok((Self::parse(&text, path)?, text))
    }

    /// Reads and checks a workflow given as text; `source` names it in errors.
    pub fn parse(text: &str, source: &Path) -> Result<Workflow, WorkflowError> {
        let error = |line: Option<u64>,
                     column: Option<u64>,
                     field: Option<String>,
                     message: String| WorkflowError {
            file: source.to_path_buf(),
            line,
            column,
            field,
            message,
        };
        let syntax = |e: serde_saphyr::Error| {
            let location = e.location();
            let message = e.to_string();
            // The library's text leads with its own location; ours is in front already.
            let message = message.lines().next().unwrap_or_default().to_string();
            error(
                location.map(|l| l.line()),
                location.map(|l| l.column()),
                None,
                message,
            )
        };
        let shape: Value =
            serde_saphyr::from_str_with_options(text, crate::workflow::yaml_options())
                .map_err(syntax)?;
        let (named, entries, list_field) = match shape {
            Value::Array(_) => (
                None,
                serde_saphyr::from_str_with_options::<Vec<SpannedEntry>>(text, yaml_options())
                    .map_err(syntax)?,
                "",
            ),
            Value::Object(map) if map.contains_key("steps") => {
                let mut named: Named =
                    serde_saphyr::from_str_with_options(text, crate::workflow::yaml_options())
                        .map_err(syntax)?;
                let steps = std::mem::take(&mut named.steps);
                (Some(named), steps, "steps")
            }
            Value::Null => return Err(error(None, None, None, "the workflow is empty".into())),
            _ => {
                return Err(error(
                    Some(1),
                    Some(1),
                    None,
                    "a workflow is a list of actions, or a mapping with `steps`".into(),
                ));
            }
        };
        if entries.is_empty() {
            return Err(error(None, None, None, "the workflow has no steps".into()));
        }
        let mut steps = Vec::with_capacity(entries.len());
        let mut conditions = Vec::with_capacity(entries.len());
        for (index, spanned) in entries.into_iter().enumerate() {
            let number = index + 1;
            let line = spanned.referenced.line();
            let at = |field: &str| {
                let prefix = if list_field.is_empty() {
                    format!("[{index}]")
                } else {
                    format!("{list_field}[{index}]")
                };
                Some(format!("{prefix}.{field}"))
            };
            let mut entry = Object::new();
            let mut field_lines = BTreeMap::new();
            for (key, value) in spanned.value {
                field_lines.insert(key.clone(), value.referenced.line());
                entry.insert(key, value.value);
            }
            let action = match entry.get("action") {
                Some(Value::String(action)) => action.clone(),
                Some(other) => {
                    return Err(error(
                        field_lines.get("action").copied(),
                        None,
                        at("action"),
                        format!("must be a topic `<service>/<action>`, got {other}"),
                    ));
                }
                None => {
                    return Err(error(
                        Some(line),
                        None,
                        at("action"),
                        format!("step {number} has no `action`"),
                    ));
                }
            };
            if !is_action_topic(&action) {
                return Err(error(
                    field_lines.get("action").copied(),
                    None,
                    at("action"),
                    format!(
                        "must be a topic `<service>/<action>` (plain names, no wildcards), got `{action}`"
                    ),
                ));
            }
            if let Some(timeout) = entry.get("timeout") {
                timeout::parse(timeout).map_err(|message| {
                    error(
                        field_lines.get("timeout").copied(),
                        None,
                        at("timeout"),
                        message,
                    )
                })?;
            }
            let control = |field: &str, why: String| {
                error(
                    Some(field_lines.get(field).copied().unwrap_or(line)),
                    None,
                    at(field),
                    why,
                )
            };
            let id = match entry.remove("id") {
                None => format!("step{number}"),
                Some(Value::String(id)) if expression::is_name(&id) => id,
                Some(other) => {
                    return Err(control(
                        "id",
                        format!("must be a name of letters, digits, `_` and `-`, got {other}"),
                    ));
                }
            };
            let needs = match (entry.remove("needs"), entry.remove("dependencies")) {
                (Some(_), Some(_)) => {
                    return Err(control(
                        "needs",
                        "give `needs` or `dependencies`, not both".into(),
                    ));
                }
                (Some(value), None) => words(&value).map_err(|why| control("needs", why))?,
                (None, Some(value)) => words(&value).map_err(|why| control("dependencies", why))?,
                (None, None) => Vec::new(),
            };
            let condition_text = match entry.remove("if") {
                None => None,
                Some(Value::String(text)) => Some(text),
                Some(Value::Bool(b)) => Some(b.to_string()),
                Some(other) => {
                    return Err(control("if", format!("must be a condition, got {other}")));
                }
            };
            let retry = match entry.remove("retry") {
                None => Retry::default(),
                Some(value) => parse_retry(&value).map_err(|why| control("retry", why))?,
            };
            let continue_on_error = match entry.remove("continue_on_error") {
                None => false,
                Some(Value::Bool(b)) => b,
                Some(other) => {
                    return Err(control(
                        "continue_on_error",
                        format!("must be true or false, got {other}"),
                    ));
                }
            };
            let env = match entry.remove("env") {
                None => BTreeMap::new(),
                Some(value) => env_map(&value).map_err(|why| control("env", why))?,
            };
            let only_in_env = match entry.remove("only_in_env") {
                None => Vec::new(),
                Some(value) => words(&value).map_err(|why| control("only_in_env", why))?,
            };
            let exclude_in_env = match entry.remove("exclude_in_env") {
                None => Vec::new(),
                Some(value) => words(&value).map_err(|why| control("exclude_in_env", why))?,
            };
            steps.push(Step {
                number,
                id,
                action,
                entry,
                line,
                field_lines,
                needs,
                condition: None,
                retry,
                continue_on_error,
                env,
                only_in_env,
                exclude_in_env,
            });
            conditions.push(condition_text);
        }
        let (name, env, secrets, timeout) = match named {
            Some(named) => (
                named.name,
                env_map(&Value::Object(named.env.into_iter().collect()))
                    .map_err(|why| error(None, None, Some("env".into()), why))?,
                named.secrets,
                match named.timeout {
                    Some(value) => Some(
                        timeout::parse(&value)
                            .map_err(|why| error(None, None, Some("timeout".into()), why))?,
                    ),
                    None => None,
                },
            ),
            None => (None, BTreeMap::new(), Vec::new(), None),
        };
        let name = name.unwrap_or_else(|| {
            source
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "workflow".into())
        });
        let mut workflow = Workflow {
            name,
            source: source.to_path_buf(),
            steps,
            env,
            secrets,
            timeout,
        };
        workflow.link(conditions, list_field)?;
        Ok(workflow)
    }

    /// Checks ids, needs (no unknown step, no cycle), conditions and references.
    fn link(
        &mut self,
        conditions: Vec<Option<String>>,
        list_field: &str,
    ) -> Result<(), WorkflowError> {
        let at = |step: &Step, field: &str| {
            let index = step.number - 1;
            Some(if list_field.is_empty() {
                format!("[{index}].{field}")
            } else {
                format!("{list_field}[{index}].{field}")
            })
        };
        let error = |step: &Step, field: &str, message: String| WorkflowError {
            file: self.source.clone(),
            line: Some(step.line_of(field)),
            column: None,
            field: at(step, field),
            message,
        };
        let ids: Vec<String> = self.steps.iter().map(|s| s.id.clone()).collect();
        for (index, step) in self.steps.iter().enumerate() {
            if ids[..index].contains(&step.id) {
                return Err(error(
                    step,
                    "id",
                    format!("two steps have the id `{}`", step.id),
                ));
            }
        }
        // A copper list: each step needs the one before it.
        let declares_needs = |s: &Step| {
            s.field_lines.contains_key("needs") || s.field_lines.contains_key("dependencies")
        };
        if !self.steps.iter().any(declares_needs) {
            for index in 1..self.steps.len() {
                let previous = self.steps[index - 1].id.clone();
                self.steps[index].needs.push(previous);
            }
        }
        for step in &self.steps {
            let field = if step.field_lines.contains_key("dependencies") {
                "dependencies"
            } else {
                "needs"
            };
            if let Some(unknown) = step.needs.iter().find(|n| !ids.contains(n)) {
                return Err(error(
                    step,
                    field,
                    format!(
                        "step `{}` needs `{unknown}`, which this workflow does not have (its steps: {})",
                        step.id,
                        ids.join(", ")
                    ),
                ));
            }
        }
        let graph = graph::Graph::new(&self.steps);
        if let Some(cycle) = graph.cycle() {
            let first = &self.steps[cycle[0]];
            let names: Vec<&str> = cycle.iter().map(|&i| self.steps[i].id.as_str()).collect();
            return Err(error(
                first,
                "needs",
                format!(
                    "the steps {} need each other in a cycle",
                    names.join(" -> ")
                ),
            ));
        }
        for (index, text) in conditions.into_iter().enumerate() {
            if let Some(text) = text {
                let step = &self.steps[index];
                let condition =
                    Condition::parse(&text, &ids).map_err(|why| error(step, "if", why))?;
                self.steps[index].condition = Some(condition);
            }
        }
        for (index, step) in self.steps.iter().enumerate() {
            let ancestors = graph.ancestors(index);
            for (field, value) in &step.entry {
                let references =
                    expression::references(value).map_err(|why| error(step, field, why))?;
                for reference in references {
                    if let Reference::Output { step: other, .. } = &reference {
                        match ids.iter().position(|id| id == other) {
                            None => {
                                return Err(error(
                                    step,
                                    field,
                                    format!(
                                        "refers to step `{other}`, which this workflow does not have"
                                    ),
                                ));
                            }
                            Some(at) if !ancestors.contains(&at) => {
                                return Err(error(
                                    step,
                                    field,
                                    format!(
                                        "refers to step `{other}`, which step `{}` does not need: add it to `needs`",
                                        step.id
                                    ),
                                ));
                            }
                            Some(_) => {}
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// An error at `field` of `step` (its line, the field's name).
    pub fn problem(&self, step: &Step, field: &str, message: impl Into<String>) -> WorkflowError {
        WorkflowError {
            file: self.source.clone(),
            line: Some(step.line_of(field)),
            column: None,
            field: Some(field.to_string()),
            message: message.into(),
        }
    }

    /// Checks that some service answers every action: `known` lists the actions
    /// known to be served, `open_services` the services taken to answer any action
    /// (copper's services announce only that they are `up`).
    pub fn check_actions(
        &self,
        known: &[String],
        open_services: &[String],
    ) -> Result<(), WorkflowError> {
        for step in &self.steps {
            if known.contains(&step.action) || open_services.iter().any(|s| s == step.service()) {
                continue;
            }
            let mut listed: Vec<String> = known.to_vec();
            listed.extend(
                open_services
                    .iter()
                    .map(|s| format!("{s}/* (up on the broker)")),
            );
            return Err(self.problem(
                step,
                "action",
                format!(
                    "step {} asks for `{}`, which no service answers; known actions: {}",
                    step.number,
                    step.action,
                    if listed.is_empty() {
                        "none".to_string()
                    } else {
                        listed.join(", ")
                    }
                ),
            ));
        }
        Ok(())
    }
}

/// How workflow and services files are read: YAML 1.2 booleans (`true`, `false`),
/// so that `y`, `no` or `on` stay the texts they look like (an id, a country code).
pub fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::options! { strict_booleans: true }
}

/// One word or a list of words.
fn words(value: &Value) -> Result<Vec<String>, String> {
    match value {
        Value::String(word) => Ok(vec![word.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(word) => Ok(word.clone()),
                other => Err(format!("must be names, got {other}")),
            })
            .collect(),
        other => Err(format!("must be a name or a list of names, got {other}")),
    }
}

/// `retry: 3` or `retry: {attempts: 3, backoff: 2s, max_delay: 1m}`.
fn parse_retry(value: &Value) -> Result<Retry, String> {
    let attempts = |v: &Value| {
        v.as_u64()
            .filter(|n| (1..=100).contains(n))
            .map(|n| n as u32)
            .ok_or_else(|| format!("attempts must be a number from 1 to 100, got {v}"))
    };
    match value {
        Value::Number(_) => Ok(Retry {
            attempts: attempts(value)?,
            ..Retry::default()
        }),
        Value::Object(map) => {
            let mut retry = Retry::default();
            for (key, v) in map {
                match key.as_str() {
                    "attempts" => retry.attempts = attempts(v)?,
                    "backoff" => {
                        retry.backoff = timeout::parse(v).map_err(|w| format!("backoff {w}"))?
                    }
                    "max_delay" => {
                        retry.max_delay = timeout::parse(v).map_err(|w| format!("max_delay {w}"))?
                    }
                    other => {
                        return Err(format!(
                            "unknown field `{other}`; a retry has `attempts`, `backoff` and `max_delay`"
                        ));
                    }
                }
            }
            Ok(retry)
        }
        other => Err(format!(
            "must be a number of attempts or {{attempts, backoff, max_delay}}, got {other}"
        )),
    }
}

/// An `env` mapping; numbers and booleans are taken as written.
fn env_map(value: &Value) -> Result<BTreeMap<String, String>, String> {
    let Value::Object(map) = value else {
        return Err(format!("must be a mapping of names to values, got {value}"));
    };
    map.iter()
        .map(|(key, v)| {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                other => return Err(format!("`{key}` must be a text, got {other}")),
            };
            Ok((key.clone(), text))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const COPPER: &str = "\
- action: fetcher/fetch
  type: github
  repository: MicroWebStacks/astro-big-doc
  ref: main
  filter: content/*
  resource: test-website
- action: markdown/build
  resource: test-website
  path: /fetch/test-website/content
";

    #[test]
    fn copper_list() {
        let wf = Workflow::parse(COPPER, Path::new("website.yaml")).unwrap();
        assert_eq!(wf.name, "website");
        assert_eq!(wf.steps.len(), 2);
        assert_eq!(wf.steps[0].action, "fetcher/fetch");
        assert_eq!(wf.steps[0].entry["filter"], Value::from("content/*"));
        assert_eq!(wf.steps[1].line, 7);
        assert_eq!(wf.steps[1].field_lines["path"], 9);
    }

    #[test]
    fn named_mapping() {
        let wf = Workflow::parse(
            "name: site\nsteps:\n  - action: a/b\n    timeout: 2s\n",
            Path::new("w.yaml"),
        )
        .unwrap();
        assert_eq!(wf.name, "site");
        assert_eq!(wf.steps[0].timeout(), Some(Duration::from_secs(2)));
    }

    #[test]
    fn malformed_yaml_has_line_and_column() {
        let err =
            Workflow::parse("- action: a/b\n  x: [1, 2\n- y\n", Path::new("bad.yaml")).unwrap_err();
        assert_eq!(err.file, Path::new("bad.yaml"));
        assert!(err.line.is_some() && err.column.is_some(), "{err:?}");
        assert!(err.to_string().starts_with("bad.yaml:"), "{err}");
    }

    #[test]
    fn bad_entries_name_line_and_field() {
        let err = Workflow::parse("- action: a/b\n- type: git\n", Path::new("w.yaml")).unwrap_err();
        assert_eq!(
            (err.line, err.field.as_deref()),
            (Some(2), Some("[1].action"))
        );
        let err = Workflow::parse("- action: a/#\n", Path::new("w.yaml")).unwrap_err();
        assert!(err.message.contains("wildcards"), "{err}");
        let err =
            Workflow::parse("- action: a/b\n  timeout: soon\n", Path::new("w.yaml")).unwrap_err();
        assert_eq!(
            (err.line, err.field.as_deref()),
            (Some(2), Some("[0].timeout"))
        );
        let err =
            Workflow::parse("- action: a/b\n  k: 1\n  k: 2\n", Path::new("w.yaml")).unwrap_err();
        assert!(err.line.is_some(), "{err}");
    }

    fn parse_err(text: &str) -> WorkflowError {
        Workflow::parse(text, Path::new("w.yaml")).unwrap_err()
    }

    #[test]
    fn a_copper_list_runs_in_order_and_a_dag_as_its_needs_say() {
        let wf = Workflow::parse(COPPER, Path::new("w.yaml")).unwrap();
        assert_eq!(wf.steps[0].id, "step1");
        assert_eq!(wf.steps[1].needs, vec!["step1".to_string()]);
        let wf = Workflow::parse(
            "steps:\n  - action: a/b\n    id: site\n    needs: fetch\n  - action: a/c\n    id: fetch\n  - action: a/d\n    id: other\n",
            Path::new("w.yaml"),
        )
        .unwrap();
        assert_eq!(wf.steps[0].needs, vec!["fetch".to_string()]);
        assert!(wf.steps[1].needs.is_empty() && wf.steps[2].needs.is_empty());
        assert!(!wf.steps[0].entry.contains_key("needs") && !wf.steps[0].entry.contains_key("id"));
    }

    #[test]
    fn needs_cycles_and_references_are_checked_with_lines() {
        let err = parse_err("- action: a/b\n  id: x\n  needs: [nope]\n");
        assert_eq!(
            (err.line, err.field.as_deref()),
            (Some(3), Some("[0].needs")),
            "{err}"
        );
        assert!(err.message.contains("nope"), "{err}");
        let err = parse_err(
            "- action: a/b\n  id: first\n  needs: second\n- action: a/c\n  id: second\n  dependencies: [first]\n",
        );
        assert!(err.message.contains("cycle"), "{err}");
        assert!(err.line.is_some(), "{err}");
        let err = parse_err(
            "- action: a/b\n  id: x\n  needs: []\n- action: a/c\n  id: y\n  needs: []\n  path: ${{ steps.x.outputs.path }}\n",
        );
        assert_eq!(err.line, Some(7), "{err}");
        assert!(err.message.contains("does not need"), "{err}");
        let err =
            parse_err("- action: a/b\n- action: a/c\n  path: ${{ steps.ghost.outputs.path }}\n");
        assert!(err.message.contains("ghost"), "{err}");
        let err = parse_err("- action: a/b\n- action: a/c\n  if: steps.step1.outputs.n >\n");
        assert_eq!(
            (err.line, err.field.as_deref()),
            (Some(3), Some("[1].if")),
            "{err}"
        );
        let err = parse_err("- action: a/b\n  retry: {attempts: 0}\n");
        assert_eq!(err.field.as_deref(), Some("[0].retry"), "{err}");
        let err = parse_err("- action: a/b\n  id: x\n- action: a/c\n  id: x\n");
        assert!(err.message.contains("two steps"), "{err}");
    }

    #[test]
    fn retries_wait_longer_each_time_up_to_their_cap() {
        let wf = Workflow::parse(
            "- action: a/b\n  retry: {attempts: 4, backoff: 1s, max_delay: 3s}\n",
            Path::new("w.yaml"),
        )
        .unwrap();
        let retry = wf.steps[0].retry;
        assert_eq!(retry.attempts, 4);
        let d2 = retry.delay(2);
        assert!(
            d2 >= Duration::from_millis(500) && d2 <= Duration::from_secs(1),
            "{d2:?}"
        );
        let d4 = retry.delay(4);
        assert!(
            d4 >= Duration::from_millis(1500) && d4 <= Duration::from_secs(3),
            "{d4:?}"
        );
    }

    #[test]
    fn unknown_action_lists_known_ones() {
        let wf = Workflow::parse(COPPER, Path::new("w.yaml")).unwrap();
        let err = wf
            .check_actions(&["fetcher/fetch".into()], &[])
            .unwrap_err();
        assert_eq!(err.line, Some(7));
        assert!(
            err.message.contains("markdown/build") && err.message.contains("fetcher/fetch"),
            "{err}"
        );
        wf.check_actions(&["fetcher/fetch".into()], &["markdown".into()])
            .unwrap();
    }
}
