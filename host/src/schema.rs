//! The actions' JSON Schemas, compiled once, and the check of a value against one.
//!
//! The scheduler checks a request's input before its backend sees it and its results
//! after; the runner checks a step's input before sending it. Both use the same
//! compiled [`ActionSchemas`], shared by `Arc`.

use crate::service::{ActionInfo, ServiceInfo};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// An action's schemas, compiled: its input is checked before it is sent or handled,
/// its results after.
pub struct ActionSchemas {
    /// The input's.
    pub input: jsonschema::Validator,
    /// The results'.
    pub output: jsonschema::Validator,
}

impl ActionSchemas {
    /// Compiles the schemas of `action` (none when one is not a JSON Schema).
    pub fn compile(action: &ActionInfo) -> Option<Self> {
        Some(Self {
            input: jsonschema::validator_for(&action.input_schema).ok()?,
            output: jsonschema::validator_for(&action.output_schema).ok()?,
        })
    }
}

/// Checks `value` against a compiled schema; the error lists every violation with its field.
pub fn check(validator: &jsonschema::Validator, value: &Value) -> Result<(), String> {
    if validator.is_valid(value) {
        return Ok(());
    }
    let problems: Vec<String> = validator
        .iter_errors(value)
        .take(8)
        .map(|error| {
            let path = error.instance_path().to_string();
            if path.is_empty() {
                error.to_string()
            } else {
                format!(
                    "field `{}`: {error}",
                    path.trim_start_matches('/').replace('/', ".")
                )
            }
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// The compiled schemas of the actions of `services`, by topic (those that compile).
pub fn compile_all<'a>(
    services: impl IntoIterator<Item = &'a ServiceInfo>,
) -> BTreeMap<String, Arc<ActionSchemas>> {
    let mut schemas = BTreeMap::new();
    for service in services {
        for action in &service.actions {
            if let Some(compiled) = ActionSchemas::compile(action) {
                schemas.insert(service.topic(action), Arc::new(compiled));
            }
        }
    }
    schemas
}
