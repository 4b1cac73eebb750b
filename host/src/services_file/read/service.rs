//! Reading one service: its name, the backend that runs it, and its actions.

use super::Reader;
use crate::service::ActionInfo;
use crate::services_file::ServicesFileError;
use crate::services_file::raw::{RawAction, RawActions, RawService};
use crate::services_file::service::{BackendSpec, ComponentSource, ServiceSpec};
use serde_json::{Value, json};
use serde_saphyr::Spanned;

impl Reader<'_> {
    /// The service `name` (`services.<name>`).
    pub(super) fn service(
        &self,
        name: String,
        raw: Spanned<RawService>,
    ) -> Result<ServiceSpec, ServicesFileError> {
        let line = raw.referenced.line();
        let field = format!("services.{name}");
        if !crate::protocol::is_service_name(&name) {
            return Err(self.error(
                Some(line),
                &field,
                format!("`{name}` is not a plain service name (letters, digits, `_`, `-`)"),
            ));
        }
        let raw = raw.value;
        let actions = self.actions(raw.actions, &format!("{field}.actions"))?;
        let backend = match (raw.component, raw.docker, raw.external) {
            (Some(component), None, false) => {
                BackendSpec::Component(self.component(&component, &format!("{field}.component"))?)
            }
            (None, Some(docker), false) => {
                BackendSpec::Docker(Box::new(self.docker(docker, &format!("{field}.docker"))?))
            }
            (None, None, true) => BackendSpec::External,
            _ => {
                return Err(self.error(
                    Some(line),
                    &field,
                    "give exactly one of `component`, `docker` or `external: true`",
                ));
            }
        };
        if !matches!(backend, BackendSpec::Component(_)) && actions.is_none() {
            return Err(self.error(
                Some(line),
                &format!("{field}.actions"),
                "a docker or external service must list its actions",
            ));
        }
        Ok(ServiceSpec {
            name,
            file: self.path.to_path_buf(),
            line,
            backend,
            actions,
        })
    }

    /// `component:`, a file path or a `url` pinned by its `sha256`.
    fn component(
        &self,
        raw: &Spanned<Value>,
        field: &str,
    ) -> Result<ComponentSource, ServicesFileError> {
        let line = Some(raw.referenced.line());
        let text = |key: &str| raw.value.get(key).and_then(Value::as_str);
        let keys_ok = raw
            .value
            .as_object()
            .is_some_and(|o| o.keys().all(|k| k == "url" || k == "sha256"));
        match (&raw.value, text("url"), text("sha256")) {
            (Value::String(path), _, _) => {
                let file = self.dir.join(path);
                if !file.is_file() {
                    return Err(self.error(
                        line,
                        field,
                        format!("no component file {}", file.display()),
                    ));
                }
                Ok(ComponentSource::File(file))
            }
            (Value::Object(_), Some(url), Some(sha256)) if keys_ok => {
                let (url, sha256) = (url.to_string(), sha256.to_string());
                if !(url.starts_with("https://") || url.starts_with("http://")) {
                    return Err(self.error(
                        line,
                        &format!("{field}.url"),
                        "must be an http:// or https:// URL",
                    ));
                }
                if sha256.len() != 64 || !sha256.chars().all(|c| c.is_ascii_hexdigit()) {
                    return Err(self.error(
                        line,
                        &format!("{field}.sha256"),
                        "must be the component's sha256 in hex (64 characters)",
                    ));
                }
                Ok(ComponentSource::Url { url, sha256 })
            }
            _ => Err(self.error(
                line,
                field,
                "give a file path, or `url` and `sha256` (quoted, as text)",
            )),
        }
    }

    /// `actions:`, names or described actions with their JSON Schemas.
    fn actions(
        &self,
        raw: Option<Spanned<RawActions>>,
        field: &str,
    ) -> Result<Option<Vec<ActionInfo>>, ServicesFileError> {
        let Some(raw) = raw else { return Ok(None) };
        let line = Some(raw.referenced.line());
        let described: Vec<(String, RawAction)> = match raw.value {
            RawActions::Names(names) => names
                .into_iter()
                .map(|n| (n, RawAction::default()))
                .collect(),
            RawActions::Described(map) => map.into_iter().collect(),
        };
        let mut actions = Vec::new();
        for (name, action) in described {
            let at = format!("{field}.{name}");
            if crate::protocol::RESERVED_ACTIONS.contains(&name.as_str())
                || !crate::protocol::is_action_topic(&format!("x/{name}"))
            {
                return Err(self.error(line, &at, format!("`{name}` cannot be an action name")));
            }
            actions.push(ActionInfo {
                input_schema: self.schema(action.input, line, &format!("{at}.input"))?,
                output_schema: self.schema(action.output, line, &format!("{at}.output"))?,
                name,
                doc: action.doc,
            });
        }
        if actions.is_empty() {
            return Err(self.error(line, field, "lists no action"));
        }
        Ok(Some(actions))
    }

    /// An action's `input` or `output`: a JSON Schema, any object by default.
    fn schema(
        &self,
        value: Option<Value>,
        line: Option<u64>,
        field: &str,
    ) -> Result<Value, ServicesFileError> {
        let value = value.unwrap_or_else(|| json!({"type": "object"}));
        jsonschema::validator_for(&value)
            .map_err(|e| self.error(line, field, format!("not a JSON Schema: {e}")))?;
        Ok(value)
    }
}
