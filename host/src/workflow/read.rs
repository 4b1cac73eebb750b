//! The workflow's YAML read: the document's shape, its header, its entries by the step reader.

use super::step_reader::{StepReader, env_map};
use super::{Step, Workflow, WorkflowError, yaml_options};
use crate::timeout;
use serde::Deserialize;
use serde_json::Value;
use serde_saphyr::Spanned;
use std::collections::BTreeMap;
use std::path::Path;

/// A step's entry as written, with the line of each field.
pub(super) type SpannedEntry = Spanned<BTreeMap<String, Spanned<Value>>>;

/// A workflow written as a mapping: its fields beside the list of `steps`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Named {
    name: Option<String>,
    #[serde(default)]
    env: BTreeMap<String, Value>,
    #[serde(default)]
    secrets: Vec<String>,
    timeout: Option<Value>,
    #[serde(rename = "on")]
    on: Option<super::on::RawOn>,
    concurrency: Option<super::on::RawConcurrency>,
    steps: Vec<SpannedEntry>,
}

/// The document: its steps' entries, and the mapping around them when it is one.
struct Document {
    /// The mapping's fields (`steps` taken out), if the workflow is one.
    named: Option<Named>,
    /// The steps' entries, in file order.
    entries: Vec<SpannedEntry>,
    /// Where the entries are, for field paths: `steps`, or empty for a bare list.
    list_field: &'static str,
}

/// Reads and checks a workflow given as text; `source` names it in errors.
pub(super) fn workflow(text: &str, source: &Path) -> Result<Workflow, WorkflowError> {
    let document = document(text, source)?;
    let mut steps = Vec::with_capacity(document.entries.len());
    let mut conditions = Vec::with_capacity(document.entries.len());
    for (index, entry) in document.entries.into_iter().enumerate() {
        let (step, condition) =
            StepReader::new(source, document.list_field, index, entry).read()?;
        steps.push(step);
        conditions.push(condition);
    }
    let mut workflow = around(document.named.unwrap_or_default(), steps, source, text)?;
    workflow.link(conditions, document.list_field)?;
    Ok(workflow)
}

/// `[2].field` in a bare list, `steps[2].field` in a mapping.
pub(super) fn field_path(list_field: &str, index: usize, field: &str) -> String {
    format!("{list_field}[{index}].{field}")
}

/// An error in `source`, at a line and column, or a field, when known.
pub(super) fn error(
    source: &Path,
    line: Option<u64>,
    column: Option<u64>,
    field: Option<&str>,
    message: impl Into<String>,
) -> WorkflowError {
    WorkflowError {
        file: source.to_path_buf(),
        line,
        column,
        field: field.map(str::to_string),
        message: message.into(),
    }
}

/// A YAML error, at the place the YAML library names.
fn syntax_error(source: &Path, e: serde_saphyr::Error) -> WorkflowError {
    let location = e.location();
    let message = super::yaml_message(&e);
    let (line, column) = (location.map(|l| l.line()), location.map(|l| l.column()));
    error(source, line, column, None, message)
}

/// The document's shape: a list of entries, or a mapping with `steps`; not empty.
fn document(text: &str, source: &Path) -> Result<Document, WorkflowError> {
    let syntax = |e| syntax_error(source, e);
    let shape: Value = serde_saphyr::from_str_with_options(text, yaml_options()).map_err(syntax)?;
    let document = match shape {
        Value::Array(_) => Document {
            named: None,
            entries: serde_saphyr::from_str_with_options(text, yaml_options()).map_err(syntax)?,
            list_field: "",
        },
        Value::Object(map) if map.contains_key("steps") => {
            let mut named: Named =
                serde_saphyr::from_str_with_options(text, yaml_options()).map_err(syntax)?;
            let entries = std::mem::take(&mut named.steps);
            Document {
                named: Some(named),
                entries,
                list_field: "steps",
            }
        }
        Value::Null => return Err(error(source, None, None, None, "the workflow is empty")),
        _ => {
            return Err(error(
                source,
                Some(1),
                Some(1),
                None,
                "a workflow is a list of actions, or a mapping with `steps`",
            ));
        }
    };
    if document.entries.is_empty() {
        return Err(error(source, None, None, None, "the workflow has no steps"));
    }
    Ok(document)
}

/// The workflow around `steps`: the mapping's `name` (else the file's stem), `env`,
/// `secrets` and `timeout`; a bare list's are all defaults.
fn around(
    named: Named,
    steps: Vec<Step>,
    source: &Path,
    text: &str,
) -> Result<Workflow, WorkflowError> {
    let at_field = |field, why| error(source, top_level_line(text, field), None, Some(field), why);
    let env = env_map(&Value::Object(named.env.into_iter().collect()))
        .map_err(|why| at_field("env", why))?;
    let timeout = named
        .timeout
        .map(|value| timeout::parse(&value))
        .transpose()
        .map_err(|why| at_field("timeout", why))?;
    let on = match named.on {
        Some(raw) => super::on::triggers(raw, source)?,
        None => super::on::Triggers::default(),
    };
    let concurrency = match named.concurrency {
        Some(raw) => super::on::concurrency(raw, source, top_level_line(text, "concurrency"))?,
        None => super::on::Concurrency::default(),
    };
    let name = named.name.unwrap_or_else(|| {
        source
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "workflow".into())
    });
    Ok(Workflow {
        name,
        source: source.to_path_buf(),
        steps,
        env,
        secrets: named.secrets,
        timeout,
        on,
        concurrency,
        env_line: top_level_line(text, "env"),
    })
}

/// The line of the workflow's top-level key `field` (a mapping's `field:` at the
/// start of a line), when there is one.
fn top_level_line(text: &str, field: &str) -> Option<u64> {
    let key = format!("{field}:");
    text.lines()
        .position(|line| line.starts_with(&key))
        .map(|index| index as u64 + 1)
}

#[cfg(test)]
mod tests {
    /// The document's shape and the mapping's own fields, each error with its place.
    #[test]
    fn the_document_and_its_header_are_checked() {
        let cases = [
            ("", "w.yaml: the workflow is empty"),
            (
                "a: 1\n",
                "w.yaml:1:1: a workflow is a list of actions, or a mapping with `steps`",
            ),
            ("steps: []\n", "w.yaml: the workflow has no steps"),
            ("[]\n", "w.yaml: the workflow has no steps"),
            (
                "env: {A: [1]}\nsteps:\n  - action: a/b\n",
                "w.yaml:1: field `env`: `A` must be a text, got [1]",
            ),
            (
                "timeout: 0\nsteps:\n  - action: a/b\n",
                "w.yaml:1: field `timeout`: must be a positive number of seconds, got 0",
            ),
            (
                "env: {A: [1]}\ntimeout: soon\nsteps:\n  - action: a/b\n",
                "w.yaml:1: field `env`: `A` must be a text, got [1]",
            ),
            (
                "env: {A: [1]}\nsteps:\n  - action: 3\n",
                "w.yaml:3: field `steps[0].action`: must be a topic `<service>/<action>`, got 3",
            ),
        ];
        crate::workflow::tests::assert_errors(&cases);
    }
}
