//! What a workflow may compute: `${{ … }}` references in step fields, `${VAR}`
//! from the environment, and `if:` conditions (CEL, the Common Expression Language).
//!
//! - `${{ steps.<id>.outputs.<field> }}`: a result of an earlier step. A field that
//!   is exactly one reference takes the result's JSON value; inside a longer text
//!   the value is written as text.
//! - `${{ env.<NAME> }}` and `${VAR}` / `${VAR:-default}`: the environment.
//! - `${{ trigger.<field>… }}`: what started the run (`trigger.kind`, an MQTT
//!   message's `trigger.topic` and `trigger.payload.…`, a webhook's body…).
//! - `${{ item }}`, `${{ item.<field>… }}` and `${{ item_index }}`: in a step with
//!   `for_each`, the item this request is for, and its position (from 0).
//! - `${{ secrets.<NAME> }}` (or `${NAME}` for a name listed in `secrets:`): kept as
//!   a placeholder on the bus and in every file; the host serving the action puts
//!   the value in, from its own environment, and masks it in what comes back.
//! - `if:` is a CEL expression over `steps` (each with `outputs` and `status`) and
//!   `env`, with `success()`, `failure()` and `always()`.

use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// One `${{ … }}` reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// `steps.<id>.outputs.<field>`.
    Output {
        /// The step's id.
        step: String,
        /// The result field.
        field: String,
    },
    /// `env.<NAME>`.
    Env(String),
    /// `secrets.<NAME>`.
    Secret(String),
    /// `trigger.<field>…`: a field (at any depth) of what started the run.
    Trigger(Vec<String>),
    /// `item` or `item.<field>…`: in a `for_each` step, this request's item.
    Item(Vec<String>),
    /// `item_index`: in a `for_each` step, this request's item's position, from 0.
    ItemIndex,
}

/// A piece of a text with references.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Reference(Reference),
}

/// A name usable in a reference: a step id, an output field, a variable.
pub(crate) fn is_name(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Reads the inside of `${{ … }}`.
fn parse_reference(inner: &str) -> Result<Reference, String> {
    let parts: Vec<&str> = inner.trim().split('.').collect();
    match parts.as_slice() {
        ["steps", step, "outputs", field] if is_name(step) && is_name(field) => {
            Ok(Reference::Output {
                step: step.to_string(),
                field: field.to_string(),
            })
        }
        ["env", name] if is_name(name) => Ok(Reference::Env(name.to_string())),
        ["secrets", name] if is_name(name) => Ok(Reference::Secret(name.to_string())),
        ["trigger", path @ ..] if !path.is_empty() && path.iter().all(|p| is_name(p)) => Ok(
            Reference::Trigger(path.iter().map(|p| p.to_string()).collect()),
        ),
        ["item", path @ ..] if path.iter().all(|p| is_name(p)) => Ok(Reference::Item(
            path.iter().map(|p| p.to_string()).collect(),
        )),
        ["item_index"] => Ok(Reference::ItemIndex),
        _ => Err(format!(
            "`${{{{ {} }}}}` is not a reference: use `steps.<id>.outputs.<field>`, `env.<NAME>`, `secrets.<NAME>`, `trigger.<field>`, `item` or `item_index`",
            inner.trim()
        )),
    }
}

/// Splits a text into its literal parts and `${{ … }}` references.
fn pieces(text: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${{") {
        if start > 0 {
            pieces.push(Piece::Text(rest[..start].to_string()));
        }
        let after = &rest[start + 3..];
        let end = after
            .find("}}")
            .ok_or_else(|| format!("`{text}` opens `${{{{` without closing it"))?;
        pieces.push(Piece::Reference(parse_reference(&after[..end])?));
        rest = &after[end + 2..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest.to_string()));
    }
    Ok(pieces)
}

/// Every `${{ … }}` reference in `value` (strings, lists and maps, deeply).
pub fn references(value: &Value) -> Result<Vec<Reference>, String> {
    let mut found = Vec::new();
    visit_strings(value, &mut |text| {
        for piece in pieces(text)? {
            if let Piece::Reference(reference) = piece {
                found.push(reference);
            }
        }
        Ok(())
    })?;
    Ok(found)
}

fn visit_strings(
    value: &Value,
    f: &mut impl FnMut(&str) -> Result<(), String>,
) -> Result<(), String> {
    match value {
        Value::String(text) => f(text),
        Value::Array(items) => items.iter().try_for_each(|v| visit_strings(v, f)),
        Value::Object(map) => map.values().try_for_each(|v| visit_strings(v, f)),
        _ => Ok(()),
    }
}

/// What references resolve against.
pub trait Scope {
    /// The result `field` of step `step`, if it ran and has it.
    fn output(&self, step: &str, field: &str) -> Option<Value>;
    /// The value of an environment variable.
    fn env(&self, name: &str) -> Option<String>;
    /// Whether `name` is a secret (its `${NAME}` becomes a placeholder).
    fn is_secret(&self, name: &str) -> bool;
    /// The field at `path` of what started the run, when it has one.
    fn trigger(&self, path: &[String]) -> Option<Value> {
        let _ = path;
        None
    }
    /// In a `for_each` step: this request's item, and its position.
    fn item(&self) -> Option<(&Value, usize)> {
        None
    }
    /// The field at `path` of this request's item (the item itself when `path` is empty).
    fn item_field(&self, path: &[String]) -> Option<Value> {
        field_at(self.item()?.0, path)
    }
}

/// The field at `path` of `value` (objects by key, lists by index).
pub fn field_at(value: &Value, path: &[String]) -> Option<Value> {
    let mut here = value;
    for part in path {
        here = match here {
            Value::Object(map) => map.get(part)?,
            Value::Array(items) => items.get(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(here.clone())
}

/// Resolves every reference and `${VAR}` in `value`; secrets stay placeholders.
pub fn resolve(value: &Value, scope: &dyn Scope) -> Result<Value, String> {
    Ok(match value {
        Value::String(text) => resolve_text(text, scope)?,
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| resolve(v, scope))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), resolve(v, scope)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

fn resolve_text(text: &str, scope: &dyn Scope) -> Result<Value, String> {
    let pieces = pieces(text)?;
    let value_of = |reference: &Reference| -> Result<Value, String> {
        match reference {
            Reference::Output { step, field } => scope
                .output(step, field)
                .ok_or_else(|| format!("step `{step}` has no output `{field}`")),
            Reference::Env(name) => scope
                .env(name)
                .map(Value::String)
                .ok_or_else(|| format!("variable `{name}` is not set")),
            Reference::Secret(name) => Ok(Value::String(crate::secret::placeholder(name))),
            Reference::Trigger(path) => scope
                .trigger(path)
                .ok_or_else(|| format!("what started the run has no `trigger.{}`", path.join("."))),
            Reference::Item(path) => {
                let (item, _) = scope.item().ok_or_else(not_in_for_each)?;
                scope.item_field(path).ok_or_else(|| {
                    format!("item {} has no `item.{}`", compact(item), path.join("."))
                })
            }
            Reference::ItemIndex => Ok(Value::from(scope.item().ok_or_else(not_in_for_each)?.1)),
        }
    };
    if let [Piece::Reference(reference)] = pieces.as_slice() {
        return value_of(reference);
    }
    let mut out = String::new();
    for piece in &pieces {
        match piece {
            Piece::Text(text) => out.push_str(&expand_env(text, scope)?),
            Piece::Reference(reference) => match value_of(reference)? {
                Value::String(s) => out.push_str(&s),
                other => out.push_str(&other.to_string()),
            },
        }
    }
    Ok(Value::String(out))
}

/// Why `item` cannot be resolved here.
fn not_in_for_each() -> String {
    "`item` and `item_index` are known only in a step's fields when it has `for_each`".into()
}

/// `value` as JSON text, cut short when long (for errors).
fn compact(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(60) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    }
}

/// `${VAR}`, `$VAR`, `${VAR:-default}`; a secret's name becomes its placeholder.
fn expand_env(text: &str, scope: &dyn Scope) -> Result<String, String> {
    if !text.contains('$') {
        return Ok(text.to_string());
    }
    shellexpand::env_with_context(text, |name: &str| {
        if scope.is_secret(name) {
            return Ok(Some(crate::secret::placeholder(name)));
        }
        match scope.env(name) {
            Some(value) => Ok(Some(value)),
            None => Err(format!("variable `{name}` is not set")),
        }
    })
    .map(|expanded| expanded.into_owned())
    .map_err(|e| e.cause)
}

/// A checked `if:` condition.
#[derive(Clone)]
pub struct Condition {
    /// As written.
    pub text: String,
    program: Arc<cel::Program>,
}

impl std::fmt::Debug for Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Condition").field(&self.text).finish()
    }
}

impl PartialEq for Condition {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

/// What a condition sees of one step.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StepView {
    /// `success`, `failed`, `skipped`, `cached`.
    pub status: String,
    /// Its results.
    pub outputs: serde_json::Map<String, Value>,
}

/// What a condition is evaluated against.
pub struct ConditionScope<'a> {
    /// Steps that have ended, by id.
    pub steps: &'a BTreeMap<String, StepView>,
    /// The environment.
    pub env: &'a BTreeMap<String, String>,
    /// All of the step's needs succeeded.
    pub success: bool,
}

impl Condition {
    /// Compiles `text` (a bare expression, or one wrapped in `${{ }}`); the step ids
    /// it names must be in `known`.
    pub fn parse(text: &str, known: &[String]) -> Result<Condition, String> {
        let trimmed = text.trim();
        let inner = trimmed
            .strip_prefix("${{")
            .and_then(|t| t.strip_suffix("}}"))
            .unwrap_or(trimmed)
            .trim();
        let program = cel::Program::compile(inner)
            .map_err(|e| format!("`{inner}` is not a valid condition: {e}"))?;
        let references = program.references();
        for variable in references.variables() {
            if !matches!(variable, "steps" | "env") {
                return Err(format!(
                    "`{inner}` uses `{variable}`; a condition knows `steps`, `env`, `success()`, `failure()` and `always()`"
                ));
            }
        }
        let mut steps = Vec::new();
        step_ids(program.expression(), &mut steps);
        if let Some(unknown) = steps.iter().find(|s| !known.contains(s)) {
            return Err(format!(
                "`{inner}` names step `{unknown}`, which this workflow does not have"
            ));
        }
        Ok(Condition {
            text: inner.to_string(),
            program: Arc::new(program),
        })
    }

    /// True when it says the step may run.
    pub fn evaluate(&self, scope: &ConditionScope<'_>) -> Result<bool, String> {
        let mut context = cel::Context::default();
        let steps = cel::to_value(scope.steps).map_err(|e| e.to_string())?;
        context.add_variable_from_value("steps", steps);
        let env = cel::to_value(scope.env).map_err(|e| e.to_string())?;
        context.add_variable_from_value("env", env);
        let success = scope.success;
        context
            .add_function("success", move || success)
            .map_err(|e| e.to_string())?;
        context
            .add_function("failure", move || !success)
            .map_err(|e| e.to_string())?;
        context
            .add_function("always", || true)
            .map_err(|e| e.to_string())?;
        match self.program.execute(&context) {
            Ok(cel::Value::Bool(answer)) => Ok(answer),
            Ok(other) => Err(format!("`{}` gave {other:?}, not true or false", self.text)),
            Err(error) => Err(format!("`{}` cannot be evaluated: {error}", self.text)),
        }
    }

    /// True when it asks for `failure()` or `always()`: it may run after a failed need.
    pub fn runs_after_failure(&self) -> bool {
        let references = self.program.references();
        references.has_function("failure") || references.has_function("always")
    }
}

/// The ids of `steps.<id>` selections in an expression.
fn step_ids(expression: &cel::common::ast::IdedExpr, found: &mut Vec<String>) {
    use cel::common::ast::Expr;
    match &expression.expr {
        Expr::Select(select) => {
            if let Expr::Ident(name) = &select.operand.expr
                && name == "steps"
            {
                found.push(select.field.clone());
            }
            step_ids(&select.operand, found);
        }
        Expr::Call(call) => {
            if let Some(target) = &call.target {
                step_ids(target, found);
            }
            call.args.iter().for_each(|a| step_ids(a, found));
        }
        Expr::List(list) => list.elements.iter().for_each(|e| step_ids(e, found)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct TestScope;

    impl Scope for TestScope {
        fn output(&self, step: &str, field: &str) -> Option<Value> {
            (step == "fetch" && field == "total_files").then(|| json!(12))
        }
        fn env(&self, name: &str) -> Option<String> {
            (name == "SITE").then(|| "docs".to_string())
        }
        fn is_secret(&self, name: &str) -> bool {
            name == "TOKEN"
        }
    }

    #[test]
    fn references_resolve_with_their_types() {
        let value = json!({
            "count": "${{ steps.fetch.outputs.total_files }}",
            "label": "${{ env.SITE }} has ${{ steps.fetch.outputs.total_files }} files",
            "path": "/web/${SITE}/${MISSING:-x}",
            "token": "${TOKEN}",
            "list": ["${{ secrets.TOKEN }}"],
        });
        let resolved = resolve(&value, &TestScope).unwrap();
        assert_eq!(resolved["count"], json!(12));
        assert_eq!(resolved["label"], json!("docs has 12 files"));
        assert_eq!(resolved["path"], json!("/web/docs/x"));
        assert_eq!(resolved["token"], json!("${{ secrets.TOKEN }}"));
        assert_eq!(resolved["list"][0], json!("${{ secrets.TOKEN }}"));
        assert_eq!(references(&value).unwrap().len(), 4);
    }

    #[test]
    fn bad_references_are_errors() {
        assert!(resolve(&json!("${{ steps.x }}"), &TestScope).is_err());
        assert!(resolve(&json!("${{ steps.fetch.outputs.none }}"), &TestScope).is_err());
        assert!(resolve(&json!("${{ env.SITE"), &TestScope).is_err());
        assert!(resolve(&json!("${NOPE_NOT_SET}"), &TestScope).is_err());
    }

    #[test]
    fn conditions() {
        let known = vec!["fetch".to_string()];
        let condition = Condition::parse(
            "${{ steps.fetch.outputs.total_files > 10 && env.ENV == 'prod' }}",
            &known,
        )
        .unwrap();
        let mut steps = BTreeMap::new();
        let mut outputs = serde_json::Map::new();
        outputs.insert("total_files".into(), json!(12));
        steps.insert(
            "fetch".to_string(),
            StepView {
                status: "success".into(),
                outputs,
            },
        );
        let mut env = BTreeMap::new();
        env.insert("ENV".to_string(), "prod".to_string());
        let scope = ConditionScope {
            steps: &steps,
            env: &env,
            success: true,
        };
        assert!(condition.evaluate(&scope).unwrap());
        assert!(!condition.runs_after_failure());
        let failure = Condition::parse("failure()", &known).unwrap();
        assert!(!failure.evaluate(&scope).unwrap());
        assert!(failure.runs_after_failure());
        assert!(Condition::parse("steps.nope.status == 'success'", &known).is_err());
        assert!(Condition::parse("other.x", &known).is_err());
        assert!(Condition::parse("1 +", &known).is_err());
    }
}
