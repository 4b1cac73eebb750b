//! Whether a step whose needs have ended runs, and with what: its environment,
//! its conditions, its input.

use crate::protocol::Object;
use crate::workflow::Step;
use crate::workflow::expression::{self, ConditionScope, Scope, StepView};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

/// A run's or a step's environment, shared by the steps that add nothing to it
/// (each step cloned the process's whole environment before).
pub(super) type Env = Arc<BTreeMap<String, String>>;

/// The environment of one step: the run's, the workflow's `env`, the step's `env`.
pub(super) struct StepScope<'a> {
    /// The variables it sees.
    pub(super) env: Env,
    /// Ended steps (only a success has results).
    pub(super) steps: &'a BTreeMap<String, StepView>,
    /// The names of the workflow's secrets.
    pub(super) secrets: &'a [String],
    /// What started the run.
    pub(super) trigger: Option<&'a Value>,
    /// In a `for_each` step: the item a request is made for, and its position.
    pub(super) item: Option<(&'a Value, usize)>,
}

impl Scope for StepScope<'_> {
    fn output(&self, step: &str, field: &str) -> Option<Value> {
        self.steps.get(step)?.outputs.get(field).cloned()
    }
    fn env(&self, name: &str) -> Option<String> {
        self.env.get(name).cloned()
    }
    fn is_secret(&self, name: &str) -> bool {
        self.secrets.iter().any(|s| s == name)
    }
    fn trigger(&self, path: &[String]) -> Option<Value> {
        expression::field_at(self.trigger?, path)
    }
    fn item(&self) -> Option<(&Value, usize)> {
        self.item
    }
}

/// `base` with `extra` over it, each of `extra`'s values interpolated against `base`.
pub(super) fn layered(
    base: &Env,
    extra: &BTreeMap<String, String>,
    secrets: &[String],
) -> Result<Env, String> {
    if extra.is_empty() {
        return Ok(base.clone());
    }
    let mut env = BTreeMap::clone(base);
    let no_steps = BTreeMap::new();
    let scope = StepScope {
        env: base.clone(),
        steps: &no_steps,
        secrets,
        trigger: None,
        item: None,
    };
    for (key, value) in extra {
        let resolved = expression::resolve(&Value::String(value.clone()), &scope)
            .map_err(|why| format!("env `{key}`: {why}"))?;
        env.insert(
            key.clone(),
            resolved.as_str().unwrap_or_default().to_string(),
        );
    }
    Ok(Arc::new(env))
}

/// The fields a step sends, resolved; its deadline shortened to what is left of the run's.
pub(super) fn step_input(
    step: &Step,
    scope: &StepScope<'_>,
    run_deadline: Option<Instant>,
) -> Result<Object, String> {
    let resolved = expression::resolve(&Value::Object(step.entry.clone()), scope)?;
    let Value::Object(mut input) = resolved else {
        unreachable!("an object resolves to an object")
    };
    if let Some(deadline) = run_deadline {
        let left = deadline.saturating_duration_since(Instant::now());
        if step.timeout().is_none_or(|own| own > left) {
            input.insert("timeout".into(), Value::from(left.as_secs_f64().max(0.001)));
        }
    }
    Ok(input)
}

/// What to do with a step whose needs have ended.
pub(super) enum Decision {
    /// Run it, with this environment.
    Run(Env),
    /// Skip it, for this reason.
    Skip(String),
    /// Take these results from the run being resumed.
    Done(Object),
    /// It cannot run.
    Fail(String),
}

/// What the run knows when a step's needs have ended.
pub(super) struct Known<'a> {
    /// True when every step it needs succeeded (or failed with `continue_on_error`).
    pub(super) success: bool,
    /// The run's environment (the workflow's `env` over the options').
    pub(super) env: &'a Env,
    /// What the ended steps show.
    pub(super) views: &'a BTreeMap<String, StepView>,
    /// Steps done in the run being resumed, with their results.
    pub(super) done: &'a BTreeMap<String, Object>,
    /// The names of the workflow's secrets.
    pub(super) secrets: &'a [String],
}

/// Whether `step` runs: resumed, skipped after a failure, by `ENV` or by its
/// condition, or run with its environment.
pub(super) fn decide(step: &Step, known: &Known<'_>) -> Decision {
    if let Some(kept) = known.done.get(&step.id) {
        return Decision::Done(kept.clone());
    }
    let after_failure = step
        .condition
        .as_ref()
        .is_some_and(|c| c.runs_after_failure());
    if !known.success && !after_failure {
        return Decision::Skip(format!(
            "a step it needs did not succeed ({})",
            step.needs.join(", ")
        ));
    }
    let env = match layered(known.env, &step.env, known.secrets) {
        Ok(env) => env,
        Err(why) => return Decision::Fail(why),
    };
    if let Some(reason) = env_excludes(step, &env) {
        return Decision::Skip(reason);
    }
    if let Some(condition) = &step.condition {
        let scope = ConditionScope {
            steps: known.views,
            env: &env,
            success: known.success,
        };
        match condition.evaluate(&scope) {
            Ok(true) => {}
            Ok(false) => {
                return Decision::Skip(format!("its condition `{}` is false", condition.text));
            }
            Err(why) => return Decision::Fail(why),
        }
    }
    Decision::Run(env)
}

/// Why `step` does not run in this `ENV` (`only_in_env`, `exclude_in_env`), if so.
fn env_excludes(step: &Step, env: &BTreeMap<String, String>) -> Option<String> {
    let env_name = env.get("ENV").map(String::as_str);
    if !step.only_in_env.is_empty()
        && !env_name.is_some_and(|e| step.only_in_env.iter().any(|o| o == e))
    {
        return Some(format!(
            "it runs only when ENV is {} (ENV is {})",
            step.only_in_env.join(" or "),
            env_name.unwrap_or("not set")
        ));
    }
    let name = env_name.filter(|e| step.exclude_in_env.iter().any(|x| x == e))?;
    Some(format!("it is excluded when ENV is {name}"))
}
