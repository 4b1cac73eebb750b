//! The `markdown` service: `markdown/build` turns a folder of markdown under
//! `/fetch` into an HTML site under `/web`.
//!
//! Layout: `page` renders one page (front matter, GFM, link rewriting), `site`
//! walks a folder and writes the pages, the assets and an index.

pub mod include;
pub mod layout;
pub mod links;
pub mod nav;
pub mod page;
pub mod site;

/// Checks a virtual path: absolute, under `root` (`/fetch` or `/web`), no `..`.
pub fn virtual_path(field: &str, path: &str, root: &str) -> Result<String, String> {
    let trimmed = path.trim_end_matches('/');
    let inside = trimmed == root || trimmed.starts_with(&format!("{root}/"));
    if !inside || trimmed.split('/').any(|part| part == ".." || part == ".") {
        return Err(format!(
            "field `{field}` must be a path under {root}, got `{path}`"
        ));
    }
    Ok(trimmed.to_string())
}

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ path: "../../wit", world: "plugin" });

    use copper::service::host::{self, Level};
    use copper::service::types::{ActionInfo, ErrorKind, Request, ServiceError, ServiceInfo};
    use serde_json::{Value, json};
    use std::path::Path;

    struct Markdown;

    fn invalid(message: impl Into<String>) -> ServiceError {
        ServiceError {
            kind: ErrorKind::InvalidInput,
            message: message.into(),
        }
    }

    fn field(input: &Value, name: &str) -> Result<Option<String>, ServiceError> {
        match input.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(invalid(format!(
                "field `{name}` must be a string, got {other}"
            ))),
        }
    }

    impl exports::copper::service::service::Guest for Markdown {
        fn describe() -> ServiceInfo {
            ServiceInfo {
                name: "markdown".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                actions: vec![ActionInfo {
                    name: "build".into(),
                    doc: "Build an HTML site from the markdown under `path` (in /fetch) into `out` (in /web)".into(),
                    input_schema: json!({
                        "type": "object",
                        "required": ["path"],
                        "properties": {
                            "resource": {"type": "string", "pattern": "^[A-Za-z0-9_-][A-Za-z0-9._-]*$"},
                            "path": {"type": "string", "pattern": "^/fetch(/|$)"},
                            "out": {"type": "string", "pattern": "^/web(/|$)"}
                        }
                    })
                    .to_string(),
                    output_schema: json!({
                        "type": "object",
                        "required": ["out", "pages", "assets", "bytes", "broken_links", "duration_ms"],
                        "properties": {
                            "out": {"type": "string"},
                            "pages": {"type": "integer", "minimum": 0},
                            "assets": {"type": "integer", "minimum": 0},
                            "bytes": {"type": "integer", "minimum": 0},
                            "broken_links": {"type": "integer", "minimum": 0},
                            "broken": {"type": "array", "items": {"type": "string"}},
                            "duration_ms": {"type": "integer", "minimum": 0}
                        }
                    })
                    .to_string(),
                }],
                capabilities: vec![],
            }
        }

        fn handle(req: Request) -> Result<String, ServiceError> {
            let input: Value = serde_json::from_str(&req.input)
                .map_err(|e| invalid(format!("input is not JSON: {e}")))?;
            let path = field(&input, "path")?.ok_or_else(|| invalid("field `path` is required"))?;
            let path = super::virtual_path("path", &path, "/fetch").map_err(invalid)?;
            let resource = field(&input, "resource")?;
            let out = match (field(&input, "out")?, &resource) {
                (Some(out), _) => out,
                (None, Some(resource)) => format!("/web/{resource}"),
                (None, None) => return Err(invalid("field `out` or `resource` is required")),
            };
            let out = super::virtual_path("out", &out, "/web").map_err(invalid)?;
            if out == "/web" {
                return Err(invalid(
                    "field `out` must name a folder under /web, not /web itself",
                ));
            }
            if !Path::new(&path).is_dir() {
                return Err(invalid(format!("field `path`: `{path}` is not a folder")));
            }
            let name = resource
                .clone()
                .unwrap_or_else(|| out.rsplit('/').next().unwrap_or("site").to_string());
            host::progress(&format!("building {path} into {out}"));
            let built = super::site::build(Path::new(&path), Path::new(&out), &name).map_err(
                |message| ServiceError {
                    kind: ErrorKind::Failed,
                    message,
                },
            )?;
            host::log(
                Level::Info,
                &format!(
                    "{} pages, {} assets, {} bytes into {out}",
                    built.pages, built.assets, built.bytes
                ),
            );
            if built.broken_links > 0 {
                host::log(
                    Level::Warn,
                    &format!(
                        "{} broken links, the first: {}",
                        built.broken_links,
                        built.broken.join("; ")
                    ),
                );
            }
            let output = json!({
                "out": out, "pages": built.pages, "assets": built.assets, "bytes": built.bytes,
                "broken_links": built.broken_links, "broken": built.broken, "duration_ms": built.duration_ms,
            });
            if let Some(resource) = resource {
                let mut entry = input.clone();
                if let (Some(entry), Some(results)) = (entry.as_object_mut(), output.as_object()) {
                    entry.extend(results.clone());
                }
                host::announce_resource(&resource, &Value::Array(vec![entry]).to_string())
                    .map_err(|message| ServiceError {
                        kind: ErrorKind::Failed,
                        message,
                    })?;
            }
            Ok(output.to_string())
        }
    }

    export!(Markdown);
}

#[cfg(test)]
mod tests {
    use super::virtual_path;

    #[test]
    fn virtual_paths_stay_in_their_root() {
        assert_eq!(
            virtual_path("path", "/fetch/site/content/", "/fetch").unwrap(),
            "/fetch/site/content"
        );
        assert!(virtual_path("path", "/fetch/../etc", "/fetch").is_err());
        assert!(virtual_path("path", "/etc", "/fetch").is_err());
        assert!(virtual_path("path", "/fetcher", "/fetch").is_err());
        assert!(virtual_path("out", "/web/./x", "/web").is_err());
    }
}
