//! The request of `fetcher/fetch`, as copper wrote it, checked.

use serde_json::{Value, json};

/// Where the files come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A git repository: a URL or a local path, cloned by the host.
    Git {
        /// What to clone.
        url: String,
    },
    /// A folder of the workspace, read through `/workspace`.
    Local {
        /// Relative path inside the workspace.
        path: String,
    },
}

/// A checked `fetcher/fetch` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchInput {
    /// Where the files come from.
    pub source: Source,
    /// Branch or tag to check out.
    pub reference: Option<String>,
    /// Globs a file's path must match (any of them); empty keeps every file.
    pub filter: Vec<String>,
    /// The resource id.
    pub resource: String,
    /// Folder under `/fetch` (defaults to the resource).
    pub dest: String,
}

/// True for names that are safe as one path component: letters, digits, `.`, `_`, `-`,
/// not starting with a dot.
pub fn is_safe_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// True when a relative path stays inside its root: no `..`, no absolute path.
fn is_contained(path: &str) -> bool {
    !path.starts_with('/') && !path.contains('\\') && path.split('/').all(|part| part != "..")
}

fn string_field(value: &Value, name: &str) -> Result<Option<String>, String> {
    match value.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!("field `{name}` must be a string, got {other}")),
    }
}

fn required(value: &Value, name: &str) -> Result<String, String> {
    string_field(value, name)?.ok_or_else(|| format!("field `{name}` is required"))
}

impl FetchInput {
    /// Reads and checks a request.
    pub fn from_json(value: &Value) -> Result<Self, String> {
        let kind = string_field(value, "type")?.unwrap_or_else(|| "github".into());
        let source = match kind.as_str() {
            "github" => {
                let repository = required(value, "repository")?;
                let mut parts = repository.split('/');
                let ok = matches!(
                    (parts.next(), parts.next(), parts.next()),
                    (Some(org), Some(repo), None) if is_safe_name(org) && is_safe_name(repo)
                );
                if !ok {
                    return Err(format!(
                        "field `repository` must be `org/repo`, got `{repository}`"
                    ));
                }
                let repo = repository.trim_end_matches(".git");
                Source::Git {
                    url: format!("https://github.com/{repo}.git"),
                }
            }
            "git" => {
                let url = match string_field(value, "url")? {
                    Some(url) => url,
                    None => required(value, "repository")
                        .map_err(|_| "field `url` is required for type `git`".to_string())?,
                };
                Source::Git { url }
            }
            "local" => {
                let path = required(value, "path")?;
                let path = path.trim_start_matches("./").trim_end_matches('/');
                if !is_contained(path) {
                    return Err(format!(
                        "field `path` must stay inside the workspace, got `{path}`"
                    ));
                }
                Source::Local {
                    path: if path.is_empty() {
                        ".".into()
                    } else {
                        path.into()
                    },
                }
            }
            other => {
                return Err(format!(
                    "type not supported: `{other}` (expected github, git or local)"
                ));
            }
        };
        let filter = match value.get("filter") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| {
                    item.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| format!("field `filter` must hold strings, got {item}"))
                })
                .collect::<Result<_, _>>()?,
            Some(other) => {
                return Err(format!(
                    "field `filter` must be a glob or a list of globs, got {other}"
                ));
            }
        };
        for glob in &filter {
            if !is_contained(glob) {
                return Err(format!(
                    "field `filter` must match paths inside the repository, got `{glob}`"
                ));
            }
        }
        let resource = required(value, "resource")?;
        if !is_safe_name(&resource) {
            return Err(format!(
                "field `resource` must be a safe name (letters, digits, `.`, `_`, `-`), got `{resource}`"
            ));
        }
        let dest = string_field(value, "dest")?.unwrap_or_else(|| resource.clone());
        if !is_safe_name(&dest) {
            return Err(format!(
                "field `dest` must be a safe name (letters, digits, `.`, `_`, `-`), got `{dest}`"
            ));
        }
        Ok(Self {
            source,
            reference: string_field(value, "ref")?,
            filter,
            resource,
            dest,
        })
    }
}

/// JSON Schema of the input.
pub fn input_schema() -> Value {
    json!({
        "type": "object",
        "required": ["resource"],
        "properties": {
            "type": {"enum": ["github", "git", "local"], "description": "where the files come from (default github)"},
            "repository": {"type": "string", "description": "github: org/repo; git: a URL or path"},
            "url": {"type": "string", "description": "git: a URL, or the path of a repository inside the workspace"},
            "path": {"type": "string", "description": "local: a folder inside the workspace"},
            "ref": {"type": "string", "description": "branch or tag"},
            "filter": {
                "description": "glob(s) of the paths to keep; `*` also matches `/` as in copper",
                "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]
            },
            "resource": {"type": "string", "pattern": "^[A-Za-z0-9_-][A-Za-z0-9._-]*$"},
            "dest": {"type": "string", "pattern": "^[A-Za-z0-9_-][A-Za-z0-9._-]*$"}
        }
    })
}

/// JSON Schema of the results.
pub fn output_schema() -> Value {
    json!({
        "type": "object",
        "required": ["path", "total_files", "filtered_files", "size_bytes", "size_text", "duration", "duration_text"],
        "properties": {
            "path": {"type": "string"},
            "total_files": {"type": "integer", "minimum": 0},
            "filtered_files": {"type": "integer", "minimum": 0},
            "size_bytes": {"type": "integer", "minimum": 0},
            "size_text": {"type": "string"},
            "duration": {"type": "string"},
            "duration_text": {"type": "string"},
            "commit": {"type": "string"}
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copper_readme_entry_is_accepted() {
        let input = FetchInput::from_json(&json!({
            "action": "fetcher/fetch", "type": "github", "repository": "MicroWebStacks/astro-big-doc",
            "ref": "main", "filter": "content/*", "resource": "test-website"
        }))
        .unwrap();
        assert_eq!(
            input.source,
            Source::Git {
                url: "https://github.com/MicroWebStacks/astro-big-doc.git".into()
            }
        );
        assert_eq!(input.filter, vec!["content/*".to_string()]);
        assert_eq!(input.dest, "test-website");
        assert_eq!(input.reference.as_deref(), Some("main"));
    }

    #[test]
    fn unsafe_names_and_paths_are_refused() {
        let refuse = |v: Value| FetchInput::from_json(&v).unwrap_err();
        assert!(
            refuse(json!({"type": "local", "path": ".", "resource": "../x"})).contains("resource")
        );
        assert!(
            refuse(json!({"type": "local", "path": ".", "resource": "a", "dest": ".."}))
                .contains("dest")
        );
        assert!(
            refuse(json!({"type": "local", "path": "../etc", "resource": "a"})).contains("path")
        );
        assert!(
            refuse(json!({"type": "local", "path": ".", "resource": "a", "filter": "../*"}))
                .contains("filter")
        );
        assert!(
            refuse(json!({"type": "local", "path": ".", "resource": "a", "filter": "/etc/*"}))
                .contains("filter")
        );
        assert!(
            refuse(json!({"type": "github", "repository": "a/b/c", "resource": "a"}))
                .contains("repository")
        );
        assert!(refuse(json!({"type": "svn", "resource": "a"})).contains("type not supported"));
    }

    #[test]
    fn filter_may_be_a_list() {
        let input = FetchInput::from_json(&json!({
            "type": "git", "url": "git://127.0.0.1/x", "resource": "r", "filter": ["a/*", "**/*.md"]
        }))
        .unwrap();
        assert_eq!(input.filter.len(), 2);
    }
}
