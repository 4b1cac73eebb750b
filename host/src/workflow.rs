//! The workflow model: copper's YAML list of actions, read and checked before anything runs.
//!
//! A workflow is a YAML list of entries, each with an `action` (the MQTT topic
//! `<service>/<action>`) and the action's fields; or a mapping with `name` and
//! `steps` holding that list. Every error names the file, the line and the field.

use crate::protocol::{Object, is_action_topic};
use serde::Deserialize;
use serde_json::Value;
use serde_saphyr::Spanned;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One action of a workflow.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Position in the workflow, from 1.
    pub number: usize,
    /// The topic the request is published on.
    pub action: String,
    /// The entry as written: `action` and every other field.
    pub entry: Object,
    /// The line the entry starts on.
    pub line: u64,
    /// The line of each field.
    pub field_lines: BTreeMap<String, u64>,
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
            .and_then(|v| parse_timeout(v).ok())
    }
}

/// A checked workflow.
#[derive(Debug, Clone, PartialEq)]
pub struct Workflow {
    /// Its `name`, or the file's stem.
    pub name: String,
    /// Where it came from (a path, or `<string>`).
    pub source: PathBuf,
    /// Its steps, in order.
    pub steps: Vec<Step>,
}

/// A workflow that cannot run, with where and why.
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

/// Reads a `timeout`: seconds as a number, or a duration text such as `90s` or `2m`.
pub fn parse_timeout(value: &Value) -> Result<Duration, String> {
    let duration = match value {
        Value::Number(n) => n
            .as_f64()
            .filter(|s| s.is_finite() && *s > 0.0 && *s < 1e9)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| format!("must be a positive number of seconds, got {n}"))?,
        Value::String(s) => humantime::parse_duration(s.trim())
            .map_err(|e| format!("must be a duration such as `30s` or `5m`, got `{s}`: {e}"))?,
        other => {
            return Err(format!(
                "must be seconds or a duration such as `30s`, got {other}"
            ));
        }
    };
    if duration.is_zero() {
        return Err("must be more than zero".into());
    }
    Ok(duration)
}

type SpannedEntry = Spanned<BTreeMap<String, Spanned<Value>>>;

#[derive(Deserialize)]
struct Named {
    name: Option<String>,
    steps: Vec<SpannedEntry>,
}

impl Workflow {
    /// Reads and checks a workflow file.
    pub fn load(path: &Path) -> Result<Workflow, WorkflowError> {
        let text = std::fs::read_to_string(path).map_err(|e| WorkflowError {
            file: path.to_path_buf(),
            line: None,
            column: None,
            field: None,
            message: format!("cannot read the workflow: {e}"),
        })?;
        Self::parse(&text, path)
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
        let shape: Value = serde_saphyr::from_str(text).map_err(syntax)?;
        let (name, entries, list_field) = match shape {
            Value::Array(_) => (
                None,
                serde_saphyr::from_str::<Vec<SpannedEntry>>(text).map_err(syntax)?,
                "",
            ),
            Value::Object(map) if map.contains_key("steps") => {
                let named: Named = serde_saphyr::from_str(text).map_err(syntax)?;
                (named.name, named.steps, "steps")
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
                parse_timeout(timeout).map_err(|message| {
                    error(
                        field_lines.get("timeout").copied(),
                        None,
                        at("timeout"),
                        message,
                    )
                })?;
            }
            steps.push(Step {
                number,
                action,
                entry,
                line,
                field_lines,
            });
        }
        let name = name.unwrap_or_else(|| {
            source
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "workflow".into())
        });
        Ok(Workflow {
            name,
            source: source.to_path_buf(),
            steps,
        })
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
            return Err(WorkflowError {
                file: self.source.clone(),
                line: step.field_lines.get("action").copied().or(Some(step.line)),
                column: None,
                field: Some("action".to_string()),
                message: format!(
                    "step {} asks for `{}`, which no service answers; known actions: {}",
                    step.number,
                    step.action,
                    if listed.is_empty() {
                        "none".to_string()
                    } else {
                        listed.join(", ")
                    }
                ),
            });
        }
        Ok(())
    }
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
