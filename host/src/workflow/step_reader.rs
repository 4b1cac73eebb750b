//! The step reader: one entry read into a [`Step`] field by field, each error at its line and path.

use super::for_each::{self, ForEach};
use super::read::{SpannedEntry, error, field_path};
use super::{Step, WorkflowError, expression, retry};
use crate::protocol::{Object, is_action_topic};
use crate::timeout;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// One step's entry being read: its fields are checked, and copper-wasm's own taken
/// out, one by one; each error names the file, the field's line (else the entry's)
/// and the field's path.
pub(super) struct StepReader<'a> {
    /// The workflow's file, for errors.
    source: &'a Path,
    /// Where the entries are, for field paths: `steps`, or empty.
    list_field: &'a str,
    /// The entry's position, from 0.
    index: usize,
    /// The line the entry starts on.
    line: u64,
    /// The fields not yet taken out.
    entry: Object,
    /// The line of each field, taken out or not.
    field_lines: BTreeMap<String, u64>,
}

impl<'a> StepReader<'a> {
    /// A reader of entry `index` of the list at `list_field` in `source`.
    pub(super) fn new(
        source: &'a Path,
        list_field: &'a str,
        index: usize,
        spanned: SpannedEntry,
    ) -> Self {
        let mut entry = Object::new();
        let mut field_lines = BTreeMap::new();
        for (key, value) in spanned.value {
            field_lines.insert(key.clone(), value.referenced.line());
            entry.insert(key, value.value);
        }
        Self {
            source,
            list_field,
            index,
            line: spanned.referenced.line(),
            entry,
            field_lines,
        }
    }

    /// The step, and its `if:` as written (compiled once every id is known).
    pub(super) fn read(mut self) -> Result<(Step, Option<String>), WorkflowError> {
        let number = self.index + 1;
        let action = self.action()?;
        self.check_timeout()?;
        // Taken out in this order: the first wrong field is the one reported.
        let id = self.take("id", name)?;
        let needs = self.needs()?;
        let condition = self.take("if", condition)?;
        let retry = self.take("retry", retry::parse)?;
        let continue_on_error = self.take("continue_on_error", boolean)?;
        let env = self.take("env", env_map)?;
        let only_in_env = self.take("only_in_env", words)?;
        let exclude_in_env = self.take("exclude_in_env", words)?;
        let for_each = self.for_each()?;
        let step = Step {
            number,
            id: id.unwrap_or_else(|| format!("step{number}")),
            action,
            entry: self.entry,
            line: self.line,
            field_lines: self.field_lines,
            needs,
            condition: None,
            retry: retry.unwrap_or_default(),
            continue_on_error: continue_on_error.unwrap_or(false),
            env: env.unwrap_or_default(),
            only_in_env: only_in_env.unwrap_or_default(),
            exclude_in_env: exclude_in_env.unwrap_or_default(),
            for_each,
        };
        Ok((step, condition))
    }

    /// An error at `field`: its line (else the entry's), its path.
    fn error(&self, field: &str, message: impl Into<String>) -> WorkflowError {
        let line = self.field_lines.get(field).copied().unwrap_or(self.line);
        let path = field_path(self.list_field, self.index, field);
        error(self.source, Some(line), None, Some(&path), message)
    }

    /// Takes `field` out of the entry, if it is there, and reads it with `read`.
    fn take<T>(
        &mut self,
        field: &str,
        read: impl FnOnce(&Value) -> Result<T, String>,
    ) -> Result<Option<T>, WorkflowError> {
        let Some(value) = self.entry.remove(field) else {
            return Ok(None);
        };
        read(&value).map(Some).map_err(|why| self.error(field, why))
    }

    /// `action`: a topic `<service>/<action>`. It stays in the entry: it is sent.
    fn action(&self) -> Result<String, WorkflowError> {
        match self.entry.get("action") {
            Some(Value::String(action)) if is_action_topic(action) => Ok(action.clone()),
            Some(Value::String(action)) => Err(self.error(
                "action",
                format!(
                    "must be a topic `<service>/<action>` (plain names, no wildcards), got `{action}`"
                ),
            )),
            Some(other) => Err(self.error(
                "action",
                format!("must be a topic `<service>/<action>`, got {other}"),
            )),
            None => Err(self.error(
                "action",
                format!("step {} has no `action`", self.index + 1),
            )),
        }
    }

    /// `timeout`, checked. It stays in the entry: the service reads it too.
    fn check_timeout(&self) -> Result<(), WorkflowError> {
        match self.entry.get("timeout") {
            Some(value) => timeout::parse(value)
                .map(drop)
                .map_err(|why| self.error("timeout", why)),
            None => Ok(()),
        }
    }

    /// `for_each`, and `max_parallel` (only beside it).
    fn for_each(&mut self) -> Result<Option<ForEach>, WorkflowError> {
        let items = self.take("for_each", for_each::items)?;
        let max_parallel = self.take("max_parallel", for_each::max_parallel)?;
        match (items, max_parallel) {
            (None, Some(_)) => Err(self.error(
                "max_parallel",
                "bounds the items of `for_each`, which this step does not have",
            )),
            (None, None) => Ok(None),
            (Some(items), max_parallel) => Ok(Some(ForEach {
                items,
                max_parallel: max_parallel.unwrap_or(for_each::DEFAULT_PARALLEL),
            })),
        }
    }

    /// `needs`, or copili's `dependencies` (not both); none if neither.
    fn needs(&mut self) -> Result<Vec<String>, WorkflowError> {
        if self.entry.contains_key("needs") && self.entry.contains_key("dependencies") {
            return Err(self.error("needs", "give `needs` or `dependencies`, not both"));
        }
        let needs = self.take("needs", words)?;
        let dependencies = self.take("dependencies", words)?;
        Ok(needs.or(dependencies).unwrap_or_default())
    }
}

/// The longest step id: ids name files of the run's folder.
const MAX_ID: usize = 128;

/// An `id`: letters, digits, `_` and `-`, at most [`MAX_ID`] of them.
fn name(value: &Value) -> Result<String, String> {
    match value {
        Value::String(id) if id.len() > MAX_ID => Err(format!(
            "must be at most {MAX_ID} characters, got {} (`{}…`)",
            id.chars().count(),
            id.chars().take(16).collect::<String>()
        )),
        Value::String(id) if expression::is_name(id) => Ok(id.clone()),
        other => Err(format!(
            "must be a name of letters, digits, `_` and `-`, got {other}"
        )),
    }
}

/// An `if:` as written: a text, or `true` or `false`.
fn condition(value: &Value) -> Result<String, String> {
    match value {
        Value::String(text) => Ok(text.clone()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(format!("must be a condition, got {other}")),
    }
}

/// `true` or `false`.
fn boolean(value: &Value) -> Result<bool, String> {
    match value {
        Value::Bool(b) => Ok(*b),
        other => Err(format!("must be true or false, got {other}")),
    }
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

/// An `env` mapping; numbers and booleans are taken as written.
pub(super) fn env_map(value: &Value) -> Result<BTreeMap<String, String>, String> {
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
    /// Each field's error, and which of several wrong fields is reported first.
    #[test]
    fn each_wrong_field_is_named_with_its_file_and_line() {
        let cases = [
            (
                "- type: git\n",
                "w.yaml:1: field `[0].action`: step 1 has no `action`",
            ),
            (
                "- action: 3\n",
                "w.yaml:1: field `[0].action`: must be a topic `<service>/<action>`, got 3",
            ),
            (
                "- action: a/#\n",
                "w.yaml:1: field `[0].action`: must be a topic `<service>/<action>` (plain names, no wildcards), got `a/#`",
            ),
            (
                "- action: a/b\n  timeout: 0\n",
                "w.yaml:2: field `[0].timeout`: must be a positive number of seconds, got 0",
            ),
            (
                "- action: a/b\n  timeout: [1]\n",
                "w.yaml:2: field `[0].timeout`: must be seconds or a duration such as `30s`, got [1]",
            ),
            (
                "- action: a/b\n  id: 'x y'\n",
                "w.yaml:2: field `[0].id`: must be a name of letters, digits, `_` and `-`, got \"x y\"",
            ),
            (
                "- action: a/b\n  id: 3\n",
                "w.yaml:2: field `[0].id`: must be a name of letters, digits, `_` and `-`, got 3",
            ),
            (
                Box::leak(
                    format!("- action: a/b\n  id: {}\n", "x".repeat(100_000)).into_boxed_str(),
                ),
                "w.yaml:2: field `[0].id`: must be at most 128 characters, got 100000 (`xxxxxxxxxxxxxxxx…`)",
            ),
            (
                "- action: a/b\n  needs: [x]\n  dependencies: [y]\n",
                "w.yaml:2: field `[0].needs`: give `needs` or `dependencies`, not both",
            ),
            (
                "- action: a/b\n  needs: {a: 1}\n",
                "w.yaml:2: field `[0].needs`: must be a name or a list of names, got {\"a\":1}",
            ),
            (
                "- action: a/b\n  needs: [1]\n",
                "w.yaml:2: field `[0].needs`: must be names, got 1",
            ),
            (
                "- action: a/b\n  dependencies: 3\n",
                "w.yaml:2: field `[0].dependencies`: must be a name or a list of names, got 3",
            ),
            (
                "- action: a/b\n  if: [1]\n",
                "w.yaml:2: field `[0].if`: must be a condition, got [1]",
            ),
            (
                "- action: a/b\n  retry: 0\n",
                "w.yaml:2: field `[0].retry`: attempts must be a number from 1 to 100, got 0",
            ),
            (
                "- action: a/b\n  retry: {max_delay: -1}\n",
                "w.yaml:2: field `[0].retry`: max_delay must be a positive number of seconds, got -1",
            ),
            (
                "- action: a/b\n  retry: {foo: 1}\n",
                "w.yaml:2: field `[0].retry`: unknown field `foo`; a retry has `attempts`, `backoff` and `max_delay`",
            ),
            (
                "- action: a/b\n  retry: yes\n",
                "w.yaml:2: field `[0].retry`: must be a number of attempts or {attempts, backoff, max_delay}, got \"yes\"",
            ),
            (
                "- action: a/b\n  continue_on_error: 'yes'\n",
                "w.yaml:2: field `[0].continue_on_error`: must be true or false, got \"yes\"",
            ),
            (
                "- action: a/b\n  env: [1]\n",
                "w.yaml:2: field `[0].env`: must be a mapping of names to values, got [1]",
            ),
            (
                "- action: a/b\n  env: {A: [1]}\n",
                "w.yaml:2: field `[0].env`: `A` must be a text, got [1]",
            ),
            (
                "- action: a/b\n  only_in_env: 3\n",
                "w.yaml:2: field `[0].only_in_env`: must be a name or a list of names, got 3",
            ),
            (
                "- action: a/b\n  exclude_in_env: [{a: 1}]\n",
                "w.yaml:2: field `[0].exclude_in_env`: must be names, got {\"a\":1}",
            ),
            (
                "steps:\n  - action: a/b\n    id: 'x y'\n",
                "w.yaml:3: field `steps[0].id`: must be a name of letters, digits, `_` and `-`, got \"x y\"",
            ),
            (
                "steps:\n  - action: a/b\n  - action: a/c\n    retry: 0\n",
                "w.yaml:4: field `steps[1].retry`: attempts must be a number from 1 to 100, got 0",
            ),
            (
                "- action: a/b\n  timeout: soon\n  id: 'x y'\n  retry: 0\n",
                "w.yaml:2: field `[0].timeout`: must be a duration such as `30s` or `5m`, got `soon`: expected number at 0",
            ),
            (
                "- id: 'x y'\n",
                "w.yaml:1: field `[0].action`: step 1 has no `action`",
            ),
            (
                "- action: a/b\n  id: 3\n  needs: 1\n",
                "w.yaml:2: field `[0].id`: must be a name of letters, digits, `_` and `-`, got 3",
            ),
            (
                "- action: a/b\n  needs: 1\n  if: [1]\n",
                "w.yaml:2: field `[0].needs`: must be a name or a list of names, got 1",
            ),
            (
                "- action: a/b\n  if: [1]\n  retry: 0\n",
                "w.yaml:2: field `[0].if`: must be a condition, got [1]",
            ),
            (
                "- action: a/b\n  retry: 0\n  continue_on_error: 1\n",
                "w.yaml:2: field `[0].retry`: attempts must be a number from 1 to 100, got 0",
            ),
            (
                "- action: a/b\n  continue_on_error: 1\n  env: 1\n",
                "w.yaml:2: field `[0].continue_on_error`: must be true or false, got 1",
            ),
            (
                "- action: a/b\n  env: 1\n  only_in_env: 1\n",
                "w.yaml:2: field `[0].env`: must be a mapping of names to values, got 1",
            ),
            (
                "- action: a/b\n  only_in_env: 1\n  exclude_in_env: 1\n",
                "w.yaml:2: field `[0].only_in_env`: must be a name or a list of names, got 1",
            ),
            (
                "- action: a/b\n  id: 3\n- action: 3\n",
                "w.yaml:2: field `[0].id`: must be a name of letters, digits, `_` and `-`, got 3",
            ),
        ];
        crate::workflow::tests::assert_errors(&cases);
    }
}
