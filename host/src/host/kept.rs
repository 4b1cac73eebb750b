//! The workflows a daemon keeps (`serve --workflows DIR`): every `*.yaml` and
//! `*.yml` of the folder (and each copili pipeline in `*.json`), read and checked when the host starts, each known by its
//! name, to be run by name (and, by their `on:`, to start by themselves). A copili
//! pipeline file gives its workflows (the static containers, and the scheduled
//! service containers) and a container service per description.

use crate::services_file::ServiceSpec;
use crate::workflow::{Workflow, WorkflowError};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One workflow kept: as checked, and its text (recorded with each run).
#[derive(Debug, Clone)]
pub struct KeptWorkflow {
    /// The workflow.
    pub workflow: Workflow,
    /// Its text, as its file holds it.
    pub text: String,
}

/// Why the workflows folder cannot be kept.
#[derive(Debug, thiserror::Error)]
pub enum KeptError {
    /// The folder (or a file in it) cannot be read.
    #[error("cannot read the workflows in {path}")]
    Read {
        /// The folder or file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A workflow does not check (its file, line and field).
    #[error(transparent)]
    Invalid(#[from] WorkflowError),
    /// Two files give the same name.
    #[error("{second} names its workflow `{name}`, as {first} does: names must differ")]
    SameName {
        /// The name.
        name: String,
        /// The file read first.
        first: PathBuf,
        /// The other.
        second: PathBuf,
    },
}

/// The workflows of a folder, and the services its copili pipelines bring.
#[derive(Debug, Clone, Default)]
pub struct Kept {
    /// The workflows, by name.
    pub workflows: BTreeMap<String, KeptWorkflow>,
    /// A container service per description of each copili pipeline.
    pub services: Vec<ServiceSpec>,
}

/// Reads every workflow of `dir` (not its subfolders), by name.
pub fn read_folder(dir: &Path) -> Result<Kept, KeptError> {
    let failed = |path: &Path| {
        let path = path.to_path_buf();
        move |source| KeptError::Read { path, source }
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(failed(dir))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            let kept = ["yaml", "yml", "json"];
            path.is_file()
                && path
                    .extension()
                    .is_some_and(|e| kept.iter().any(|k| e == *k))
        })
        .collect();
    files.sort();
    let mut kept = Kept::default();
    for path in files {
        let text = std::fs::read_to_string(&path).map_err(failed(&path))?;
        let json = path.extension().is_some_and(|e| e == "json");
        let read = match crate::copili::is_pipeline(&text) {
            // A JSON file is kept when it is a copili pipeline, and skipped otherwise.
            false if json => continue,
            false => vec![(Workflow::parse(&text, &path)?, text)],
            true => {
                let pipeline = crate::copili::load(&path)?;
                kept.services.extend(pipeline.services);
                let statics = (pipeline.workflow, pipeline.text);
                std::iter::once(statics)
                    .chain(pipeline.services_workflow)
                    .collect()
            }
        };
        for (workflow, text) in read {
            if let Some(first) = kept.workflows.get(&workflow.name) {
                return Err(KeptError::SameName {
                    name: workflow.name.clone(),
                    first: first.workflow.source.clone(),
                    second: path,
                });
            }
            let name = workflow.name.clone();
            kept.workflows.insert(name, KeptWorkflow { workflow, text });
        }
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_is_kept_by_name_and_a_bad_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        write(
            "site.yaml",
            "name: site\nsteps:\n  - action: testkit/echo\n",
        );
        write("other.yml", "- action: testkit/echo\n");
        write("notes.txt", "not a workflow");
        let kept = read_folder(dir.path()).unwrap().workflows;
        assert_eq!(kept.keys().collect::<Vec<_>>(), ["other", "site"]);
        assert!(kept["site"].text.contains("name: site"));

        write(
            "again.yaml",
            "name: site\nsteps:\n  - action: testkit/echo\n",
        );
        let same = read_folder(dir.path()).unwrap_err();
        assert!(
            same.to_string().contains("names its workflow `site`"),
            "{same}"
        );
        std::fs::remove_file(dir.path().join("again.yaml")).unwrap();

        write(
            "broken.yaml",
            "- action: testkit/echo\n  needs: [nowhere]\n",
        );
        let KeptError::Invalid(error) = read_folder(dir.path()).unwrap_err() else {
            panic!("not the workflow's error")
        };
        assert!(error.file.ends_with("broken.yaml"));
        assert_eq!(error.line, Some(2), "{error}");
    }
}
