//! The `markdown` service: `markdown/build` turns a folder of markdown under
//! `/fetch` into an HTML site under `/web`.
//!
//! Layout: `page` renders one page (front matter, GFM, link rewriting, headings),
//! `highlight` its code, `include` resolves mdBook's includes inside the tree,
//! `nav` orders the pages (SUMMARY.md or folders), `layout` draws the frame
//! around a page (sidebar, breadcrumbs, contents, pager), `links` finds broken
//! links, `search` writes the search index, and `site` walks a folder and
//! writes it all.

pub mod files;
pub mod highlight;
pub mod include;
pub mod layout;
pub mod links;
pub mod nav;
pub mod page;
pub mod search;
pub mod site;

/// The tree includes may read from when none is named: the fetched folder that
/// holds `path` (`/fetch/book` for `/fetch/book/src`), and `path` inside it.
pub fn default_tree(path: &str) -> (String, String) {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        [fetch, top, rest @ ..] => (format!("/{fetch}/{top}"), rest.join("/")),
        _ => (path.to_string(), String::new()),
    }
}

/// A base URL as given (`https://example.org/book`, `/book`), ending in `/`.
pub fn base_url(url: &str) -> Result<String, String> {
    let url = url.trim();
    let scheme = url.starts_with("https://") || url.starts_with("http://");
    if !(scheme || url.starts_with('/')) || url.contains(['"', '<', '>', ' ']) {
        return Err(format!(
            "field `base_url` must be an http(s) address or a path starting with /, got `{url}`"
        ));
    }
    Ok(if url.ends_with('/') {
        url.to_string()
    } else {
        format!("{url}/")
    })
}

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
    use std::path::{Path, PathBuf};

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
                            "out": {"type": "string", "pattern": "^/web(/|$)"},
                            "title": {"type": "string"},
                            "base_url": {"type": "string", "pattern": "^(https?://|/)"},
                            "theme": {"type": "string", "pattern": "^/fetch(/|$)"},
                            "root": {"type": "string", "pattern": "^/fetch(/|$)"}
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
                            "sections": {"type": "integer", "minimum": 0},
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
            let title = match field(&input, "title")? {
                Some(title) => title,
                None => resource
                    .clone()
                    .unwrap_or_else(|| out.rsplit('/').next().unwrap_or("site").to_string()),
            };
            let base_url = field(&input, "base_url")?
                .map(|url| super::base_url(&url))
                .transpose()
                .map_err(invalid)?;
            let theme = match field(&input, "theme")? {
                Some(theme) => {
                    let theme = super::virtual_path("theme", &theme, "/fetch").map_err(invalid)?;
                    if !Path::new(&theme).is_dir() {
                        return Err(invalid(format!("field `theme`: `{theme}` is not a folder")));
                    }
                    Some(PathBuf::from(theme))
                }
                None => None,
            };
            let (tree, inside) = match field(&input, "root")? {
                Some(root) => {
                    let root = super::virtual_path("root", &root, "/fetch").map_err(invalid)?;
                    let inside = match path.strip_prefix(&root) {
                        Some("") => String::new(),
                        Some(rest) if rest.starts_with('/') => rest[1..].to_string(),
                        _ => {
                            return Err(invalid(format!(
                                "field `root`: `{root}` does not hold `path` ({path})"
                            )));
                        }
                    };
                    (root, inside)
                }
                None => super::default_tree(&path),
            };
            let options = super::site::Options {
                title,
                base_url,
                theme,
                tree: Some((PathBuf::from(tree), inside)),
            };
            host::progress(&format!("building {path} into {out}"));
            let built = super::site::build(Path::new(&path), Path::new(&out), &options).map_err(
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
                "broken_links": built.broken_links, "broken": built.broken,
                "sections": built.sections, "duration_ms": built.duration_ms,
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
    use super::{base_url, default_tree, virtual_path};

    #[test]
    fn includes_read_from_the_fetched_folder_and_base_urls_end_in_a_slash() {
        assert_eq!(
            default_tree("/fetch/book/src"),
            ("/fetch/book".to_string(), "src".to_string())
        );
        assert_eq!(
            default_tree("/fetch/book"),
            ("/fetch/book".to_string(), String::new())
        );
        assert_eq!(
            default_tree("/fetch"),
            ("/fetch".to_string(), String::new())
        );
        assert_eq!(base_url("/book").unwrap(), "/book/");
        assert_eq!(
            base_url("https://example.org/").unwrap(),
            "https://example.org/"
        );
        assert!(base_url("javascript:alert(1)").is_err());
        assert!(base_url("/a\"b").is_err());
    }

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
