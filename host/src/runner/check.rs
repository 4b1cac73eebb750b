//! What a run checks before anything runs: every action has a service, every
//! `${VAR}` is set, and inputs without references match their action's schema.
//!
//! [`crate::Host::check`] gathers what is known of the services (here and on the
//! broker) and calls these.

use crate::schema::{self, ActionSchemas};
use crate::workflow::expression::{self, Scope};
use crate::workflow::{Workflow, WorkflowError};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Checks the workflow's own env (each `${VAR}` it names is set in `env`) and every
/// step's input: each `${VAR}` is set (in `env` or the workflow's and step's own),
/// and an input without references matches its action's schema.
pub fn check_inputs(
    workflow: &Workflow,
    env: &BTreeMap<String, String>,
    schemas: &BTreeMap<String, Arc<ActionSchemas>>,
) -> Result<(), WorkflowError> {
    struct Dry<'a> {
        env: BTreeMap<String, String>,
        secrets: &'a [String],
    }
    impl Scope for Dry<'_> {
        fn output(&self, _: &str, _: &str) -> Option<Value> {
            Some(Value::Null)
        }
        fn env(&self, name: &str) -> Option<String> {
            self.env.get(name).cloned()
        }
        fn is_secret(&self, name: &str) -> bool {
            self.secrets.iter().any(|s| s == name)
        }
        fn trigger(&self, _: &[String]) -> Option<Value> {
            Some(Value::Null)
        }
        fn item(&self) -> Option<(&Value, usize)> {
            static NULL: Value = Value::Null;
            Some((&NULL, 0))
        }
        fn item_field(&self, _: &[String]) -> Option<Value> {
            Some(Value::Null)
        }
    }
    // The workflow's own env, interpolated as the run will: against `env`.
    let base = super::decide::Env::new(env.clone());
    for (name, value) in &workflow.env {
        let one = BTreeMap::from([(name.clone(), value.clone())]);
        super::decide::layered(&base, &one, &workflow.secrets).map_err(|why| {
            let prefix = format!("env `{name}`: ");
            workflow.env_problem(name, why.strip_prefix(&prefix).unwrap_or(&why))
        })?;
    }
    let mut run_env = env.clone();
    run_env.extend(workflow.env.clone());
    for step in &workflow.steps {
        let mut step_env = run_env.clone();
        step_env.extend(step.env.clone());
        let dry = Dry {
            env: step_env,
            secrets: &workflow.secrets,
        };
        let mut plain = true;
        let for_each = step.for_each.as_ref().map(|f| ("for_each", &f.items));
        let fields = step.entry.iter().map(|(f, v)| (f.as_str(), v));
        for (field, value) in for_each.into_iter().chain(fields) {
            expression::resolve(value, &dry).map_err(|why| workflow.problem(step, field, why))?;
            plain &= !value.to_string().contains('$');
        }
        if let Some(schemas) = schemas.get(&step.action)
            && plain
        {
            schema::check(&schemas.input, &Value::Object(step.entry.clone())).map_err(|why| {
                workflow.problem(
                    step,
                    "action",
                    format!(
                        "the input of step `{}` does not match the schema of `{}`: {why}",
                        step.id, step.action
                    ),
                )
            })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn the_workflows_own_env_is_checked_before_anything_runs() {
        let yaml = "name: w\nenv:\n  A: ${B}\n  B: ${A}\nsteps:\n  - action: testkit/echo\n";
        let workflow = Workflow::parse(yaml, Path::new("w.yaml")).unwrap();
        let error = check_inputs(&workflow, &BTreeMap::new(), &BTreeMap::new()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "w.yaml:2: field `env.A`: variable `B` is not set"
        );
        let env = BTreeMap::from([("A".to_string(), "1".to_string()), ("B".into(), "2".into())]);
        check_inputs(&workflow, &env, &BTreeMap::new()).unwrap();
    }
}
