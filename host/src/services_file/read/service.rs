//! Reading one service: its name, the backend that runs it, and its actions.

use super::Reader;
use crate::capability::grants::{Folder, Grants, RESERVED_GUEST_PATHS};
use crate::service::ActionInfo;
use crate::services_file::ServicesFileError;
use crate::services_file::raw::{RawAction, RawActions, RawGrants, RawService};
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
        let grants = match raw.grants {
            None => Grants::default(),
            Some(grants) if matches!(backend, BackendSpec::Component(_)) => {
                self.grants(grants, &format!("{field}.grants"))?
            }
            Some(grants) => {
                return Err(self.error(
                    Some(grants.referenced.line()),
                    &format!("{field}.grants"),
                    "grants are for components (a container gets what its `docker` says)",
                ));
            }
        };
        let concurrency = match raw.concurrency {
            None => None,
            Some(n) if (1..=4096).contains(&n.value) => Some(n.value as usize),
            Some(n) => {
                return Err(self.error(
                    Some(n.referenced.line()),
                    &format!("{field}.concurrency"),
                    "must be a whole number from 1 to 4096",
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
            grants,
            concurrency,
        })
    }

    /// `grants:` of a component: capabilities it may use, folders, environment variables.
    fn grants(&self, raw: Spanned<RawGrants>, field: &str) -> Result<Grants, ServicesFileError> {
        let line = Some(raw.referenced.line());
        let raw = raw.value;
        for capability in &raw.capabilities {
            if !crate::capability::KNOWN.contains(&capability.as_str()) {
                return Err(self.error(
                    line,
                    &format!("{field}.capabilities"),
                    format!(
                        "`{capability}` is not a capability; the host offers {}",
                        crate::capability::KNOWN.join(", ")
                    ),
                ));
            }
        }
        for name in &raw.env {
            let plain = !name.is_empty()
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !plain {
                return Err(self.error(
                    line,
                    &format!("{field}.env"),
                    format!("`{name}` is not the name of an environment variable"),
                ));
            }
        }
        let mut folders = Vec::new();
        for (n, folder) in raw.folders.into_iter().enumerate() {
            let at = format!("{field}.folders[{n}]");
            let guest = folder.guest.trim_end_matches('/');
            let plain = guest.starts_with('/')
                && guest[1..]
                    .split('/')
                    .all(|part| !part.is_empty() && part != "." && part != "..");
            let reserved = RESERVED_GUEST_PATHS
                .iter()
                .any(|r| guest == *r || guest.starts_with(&format!("{r}/")));
            if !plain || reserved {
                return Err(self.error(
                    line,
                    &format!("{at}.guest"),
                    format!(
                        "`{}` must be an absolute path of plain names, not under {}",
                        folder.guest,
                        RESERVED_GUEST_PATHS.join(", ")
                    ),
                ));
            }
            let host = self.dir.join(&folder.host);
            if !host.is_dir() {
                return Err(self.error(
                    line,
                    &format!("{at}.host"),
                    format!("no folder {}", host.display()),
                ));
            }
            folders.push(Folder {
                host,
                guest: guest.to_string(),
                write: folder.write,
            });
        }
        let reuse = match raw.reuse {
            None => 0,
            Some(n) if (1..=1_000_000).contains(&n.value) => n.value as u32,
            Some(n) => {
                return Err(self.error(
                    Some(n.referenced.line()),
                    &format!("{field}.reuse"),
                    "must be a whole number from 1 to 1000000 (requests one instance answers)",
                ));
            }
        };
        if reuse > 1 && raw.capabilities.iter().any(|c| c == crate::capability::GIT) {
            return Err(self.error(
                line,
                &format!("{field}.reuse"),
                "a component granted `git` gets a fresh instance for every request (each has a /scratch of its own)",
            ));
        }
        Ok(Grants {
            trusted: false,
            capabilities: raw.capabilities,
            folders,
            env: raw.env,
            reuse,
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
