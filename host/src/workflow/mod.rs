//! The workflow model: copper's YAML list of actions, read and checked before anything runs.
//!
//! A workflow is a YAML list of entries, each with an `action` (the MQTT topic
//! `<service>/<action>`) and the action's fields; or a mapping with `name`,
//! `env`, `secrets`, `timeout` and `steps` holding that list. Steps may have an
//! `id`, `needs` (or copili's `dependencies`), `if`, `retry`, `continue_on_error`,
//! `env`, `only_in_env`, `exclude_in_env` and `for_each` (with `max_parallel`); without any `needs`, each step needs
//! the one before it, as in copper. Every error names the file, the line and the field.
//!
//! - [`expression`]: `${{ … }}` references, `${VAR}` and `if:` conditions.
//! - [`for_each`]: a step run once per item of a list, its results gathered.
//! - [`graph`]: the steps' order: needs, cycles, ancestors.
//! - [`on`]: `on:` (schedules, MQTT messages, resources, webhooks, file changes,
//!   other runs) and `concurrency:`, for a daemon to start it by itself.
//! - `read`: the YAML read, each entry by the step reader (`step_reader`);
//!   `retry`: [`Retry`]; `link`: the checks across steps (ids, needs, cycles,
//!   conditions, references).

pub mod expression;
pub mod for_each;
pub mod graph;
mod link;
pub mod on;
mod read;
mod retry;
mod step_reader;

pub use for_each::ForEach;
pub use retry::Retry;

use crate::protocol::Object;
use crate::timeout;
use expression::Condition;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

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
    /// `for_each`: one request per item of a list, the results gathered (none: one request).
    pub for_each: Option<ForEach>,
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
    /// `on:`: what starts it by itself (a daemon's business).
    pub on: on::Triggers,
    /// `concurrency:`: its runs at once, and what a trigger does beyond that.
    pub concurrency: on::Concurrency,
    /// The line of its `env` mapping, when it has one.
    env_line: Option<u64>,
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
        read::workflow(text, source)
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

    /// An error at variable `name` of the workflow's own `env`.
    pub fn env_problem(&self, name: &str, message: impl Into<String>) -> WorkflowError {
        WorkflowError {
            file: self.source.clone(),
            line: self.env_line,
            column: None,
            field: Some(format!("env.{name}")),
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

/// The YAML library's error in words for the file's author: no location (the
/// caller puts file and line in front), no advice about the library's options.
pub fn yaml_message(error: &serde_saphyr::Error) -> String {
    use serde_saphyr::budget::BudgetBreach;
    let mut inner = error;
    while let serde_saphyr::Error::WithSnippet { error, .. } = inner {
        inner = error;
    }
    if let serde_saphyr::Error::Budget { breach, .. } = inner {
        let what = match breach {
            BudgetBreach::Nodes { .. } => "too many values".to_string(),
            BudgetBreach::Depth { depth } => format!("nested {depth} levels deep"),
            BudgetBreach::ScalarBytes { .. } | BudgetBreach::InputBytes { .. } => {
                "too much text".to_string()
            }
            BudgetBreach::AliasAnchorRatio { .. } | BudgetBreach::MergeKeys { .. } => {
                "too many aliases or merges".to_string()
            }
            _ => "too large".to_string(),
        };
        return format!(
            "the document is too large or too deep for a workflow or services file ({what})"
        );
    }
    let mut options = serde_saphyr::RenderOptions::new(&serde_saphyr::UserMessageFormatter);
    options.snippets = serde_saphyr::SnippetMode::Off;
    let text = error.render_with_options(options);
    let mut first = text.lines().next().unwrap_or_default();
    while let Some(rest) = first.strip_prefix("error: ") {
        first = rest;
    }
    let first = match first
        .strip_prefix("line ")
        .and_then(|rest| rest.split_once(": "))
    {
        Some((_, message)) => message,
        None => first,
    };
    // A plain message ends with its own ` at line L, column C`.
    match first.rfind(" at line ") {
        Some(at) => first[..at].to_string(),
        None => first.to_string(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::Value;

    /// Each workflow text of `cases`, parsed as `w.yaml`, is refused with its error text.
    pub(crate) fn assert_errors(cases: &[(&str, &str)]) {
        for (yaml, expected) in cases {
            let error = Workflow::parse(yaml, Path::new("w.yaml")).unwrap_err();
            assert_eq!(error.to_string(), *expected, "{yaml}");
        }
    }

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

    #[test]
    fn yaml_errors_speak_to_the_author_not_of_the_library() {
        let parse = |text: &str| {
            Workflow::parse(text, Path::new("w.yaml"))
                .unwrap_err()
                .to_string()
        };
        let duplicate = parse("- action: a/b\n  x: 1\n  x: 2\n");
        assert!(
            duplicate.starts_with("w.yaml:3")
                && duplicate.contains("duplicate")
                && !duplicate.contains("DuplicateKeyPolicy")
                && !duplicate.contains("error:"),
            "{duplicate}"
        );
        let values = vec!["1"; 300_000].join(",");
        let big = parse(&format!("- action: a/b\n  list: [{values}]\n"));
        assert!(
            big.contains("too large") && !big.contains("Nodes") && !big.contains("error:"),
            "{big}"
        );
    }
}

#[cfg(test)]
mod timeout_tests {
    use super::*;

    #[test]
    fn a_timeout_too_long_for_a_deadline_is_refused_at_its_line() {
        let cases = [
            (
                "- action: testkit/spin\n  timeout: '18446744073709551615s'\n",
                "w.yaml:2",
            ),
            (
                "timeout: 99999999999h\nsteps:\n  - action: testkit/echo\n",
                "w.yaml:1",
            ),
        ];
        for (yaml, at) in cases {
            let error = Workflow::parse(yaml, Path::new("w.yaml"))
                .unwrap_err()
                .to_string();
            assert!(
                error.starts_with(at) && error.contains("must be at most 366 days"),
                "{error}"
            );
        }
    }
}
