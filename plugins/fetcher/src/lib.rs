//! The `fetcher` service: `fetcher/fetch` brings a repository (or a local folder)
//! into `/fetch/<resource>`, keeping the files its `filter` selects.
//!
//! The clone itself is done by the host (capability `git`) into `/scratch`;
//! the filtering and copying happen here, inside the sandbox.
//!
//! Layout: `input` parses and checks the request, `select` walks and filters
//! the tree, `report` formats sizes and durations as copper did.

mod input;
mod report;
mod select;

pub use input::{FetchInput, Source, input_schema, output_schema};
pub use report::{duration_text, size_text, timedelta_text};
pub use select::{Filter, Selection, copy_selection, select_files};

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ path: "../../wit", world: "git-plugin" });

    use copper::service::host::{self, Level};
    use copper::service::types::{ActionInfo, ErrorKind, Request, ServiceError, ServiceInfo};
    use std::path::Path;
    use std::time::Instant;

    struct Fetcher;

    fn invalid(message: impl Into<String>) -> ServiceError {
        ServiceError {
            kind: ErrorKind::InvalidInput,
            message: message.into(),
        }
    }

    fn failed(message: impl Into<String>) -> ServiceError {
        ServiceError {
            kind: ErrorKind::Failed,
            message: message.into(),
        }
    }

    impl exports::copper::service::service::Guest for Fetcher {
        fn describe() -> ServiceInfo {
            ServiceInfo {
                name: "fetcher".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                actions: vec![ActionInfo {
                    name: "fetch".into(),
                    doc: "Fetch a git repository or local folder into /fetch/<resource>, keeping the files that match `filter`".into(),
                    input_schema: super::input_schema().to_string(),
                    output_schema: super::output_schema().to_string(),
                }],
                capabilities: vec!["git".into(), "workspace".into()],
            }
        }

        fn handle(req: Request) -> Result<String, ServiceError> {
            let started = Instant::now();
            let value: serde_json::Value = serde_json::from_str(&req.input)
                .map_err(|e| invalid(format!("input is not JSON: {e}")))?;
            let input = super::FetchInput::from_json(&value).map_err(invalid)?;
            let filter = super::Filter::new(&input.filter).map_err(invalid)?;

            let (root, commit) = match &input.source {
                super::Source::Git { url } => {
                    host::progress(&format!("cloning {url}"));
                    let dest = "/scratch/repo";
                    let done = copper::service::git::clone(url, input.reference.as_deref(), dest)
                        .map_err(|e| failed(format!("clone of {url} failed: {e}")))?;
                    (dest.to_string(), Some(done.commit))
                }
                super::Source::Local { path } => (format!("/workspace/{path}"), None),
            };

            let selection = super::select_files(Path::new(&root), &filter).map_err(failed)?;
            host::progress(&format!(
                "{} of {} files selected",
                selection.files.len(),
                selection.total_files
            ));
            let dest = format!("/fetch/{}", input.dest);
            let size_bytes = super::copy_selection(Path::new(&root), &selection, Path::new(&dest))
                .map_err(failed)?;
            let elapsed = started.elapsed();
            host::log(
                Level::Info,
                &format!(
                    "{} files ({size_bytes} bytes) into {dest}",
                    selection.files.len()
                ),
            );

            let mut output = serde_json::json!({
                "path": dest,
                "total_files": selection.total_files,
                "filtered_files": selection.files.len(),
                "size_bytes": size_bytes,
                "size_text": super::size_text(size_bytes),
                "duration": super::timedelta_text(elapsed),
                "duration_text": super::duration_text(elapsed),
            });
            if let Some(commit) = commit {
                output["commit"] = commit.into();
            }
            // copper publishes the updated entry on <service>/resources/<resource>.
            let mut entry = value.clone();
            if let (Some(entry), Some(results)) = (entry.as_object_mut(), output.as_object()) {
                entry.extend(results.clone());
            }
            host::announce_resource(
                &input.resource,
                &serde_json::Value::Array(vec![entry]).to_string(),
            )
            .map_err(failed)?;
            Ok(output.to_string())
        }
    }

    export!(Fetcher);
}
