//! Incremental runs: a step whose service version, resolved input and input files
//! are the same as at its last success is not run again; its recorded results are
//! reused.
//!
//! Input files are the `/fetch/…` and `/web/…` paths its input names (their whole
//! content, hashed); a step that names none (a fetch from a remote) always runs,
//! and so decides for the steps after it. A recorded success counts only while the
//! files its results name are still as it left them.

use crate::protocol::Object;
use crate::workflow::Step;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Recorded successes under `<cache>/steps`, for the services hosted here.
pub struct StepCache {
    cache: PathBuf,
    versions: BTreeMap<String, String>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Entry<'a> {
    outputs: std::borrow::Cow<'a, Object>,
    /// Hash of the files the results name, when recorded.
    files: String,
}

impl StepCache {
    /// Successes of steps served by `versions` (service name -> version), with
    /// `/fetch` and `/web` under `cache`.
    pub fn new(cache: &Path, versions: BTreeMap<String, String>) -> Self {
        Self {
            cache: cache.to_path_buf(),
            versions,
        }
    }

    fn entry_path(&self, key: &str) -> PathBuf {
        self.cache.join("steps").join(format!("{key}.json"))
    }

    /// The step's key, when it can be reused at all (a service hosted here, input files named).
    pub fn key(&self, step: &Step, input: &Object) -> Option<String> {
        let version = self.versions.get(step.service())?;
        let files = paths(input);
        if files.is_empty() {
            return None;
        }
        let mut digest = Sha256::new();
        digest.update(step.action.as_bytes());
        digest.update([0]);
        digest.update(version.as_bytes());
        digest.update([0]);
        // serde_json's maps are sorted: the same input gives the same text.
        digest.update(
            serde_json::to_string(input)
                .expect("JSON serializes")
                .as_bytes(),
        );
        digest.update(self.hash_paths(&files).as_bytes());
        Some(format!("{:x}", digest.finalize()))
    }

    /// The results recorded under `key`, if the files they name are unchanged.
    pub fn lookup(&self, key: &str) -> Option<Object> {
        let text = std::fs::read_to_string(self.entry_path(key)).ok()?;
        let entry: Entry = serde_json::from_str(&text).ok()?;
        let named = paths(&entry.outputs);
        (self.hash_paths(&named) == entry.files).then(|| entry.outputs.into_owned())
    }

    /// Records a success.
    pub fn store(&self, key: &str, outputs: &Object) {
        let named = paths(outputs);
        let entry = Entry {
            outputs: std::borrow::Cow::Borrowed(outputs),
            files: self.hash_paths(&named),
        };
        let path = self.entry_path(key);
        let written = path
            .parent()
            .map(std::fs::create_dir_all)
            .transpose()
            .and_then(|_| {
                let partial = path.with_extension("partial");
                std::fs::write(
                    &partial,
                    serde_json::to_vec(&entry).expect("entries serialize"),
                )?;
                std::fs::rename(partial, &path)
            });
        if let Err(error) = written {
            tracing::warn!(path = %path.display(), %error, "cannot record a step for reuse");
        }
    }

    /// A hash of the content of every path (a file, or a folder's whole tree).
    fn hash_paths(&self, paths: &[String]) -> String {
        let mut digest = Sha256::new();
        for guest in paths {
            digest.update(guest.as_bytes());
            let host = self.host_path(guest);
            match host {
                Some(host) => hash_tree(&host, &host, &mut digest),
                None => digest.update(b"outside"),
            }
        }
        format!("{:x}", digest.finalize())
    }

    /// `/fetch/x` -> `<cache>/fetch/x`, never outside it.
    fn host_path(&self, guest: &str) -> Option<PathBuf> {
        ["/fetch", "/web"].iter().find_map(|root| {
            crate::sandbox::map_guest_path(guest, root, &self.cache.join(&root[1..]))
        })
    }
}

/// The `/fetch/…` and `/web/…` paths among the strings of `object`, sorted.
fn paths(object: &Object) -> Vec<String> {
    let mut found = Vec::new();
    object.values().for_each(|v| collect_paths(v, &mut found));
    found.sort();
    found.dedup();
    found
}

fn collect_paths(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::String(text)
            if text == "/fetch"
                || text == "/web"
                || text.starts_with("/fetch/")
                || text.starts_with("/web/") =>
        {
            found.push(text.clone())
        }
        Value::Array(items) => items.iter().for_each(|v| collect_paths(v, found)),
        Value::Object(map) => map.values().for_each(|v| collect_paths(v, found)),
        _ => {}
    }
}

fn hash_tree(root: &Path, path: &Path, digest: &mut Sha256) {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        digest.update(b"\0missing");
        return;
    };
    let relative = path.strip_prefix(root).unwrap_or(path);
    digest.update(relative.to_string_lossy().as_bytes());
    if meta.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        entries.sort();
        digest.update(b"\0dir");
        for entry in entries {
            hash_tree(root, &entry, digest);
        }
    } else if meta.is_file() {
        digest.update(meta.len().to_le_bytes());
        match std::fs::read(path) {
            Ok(bytes) => digest.update(&bytes),
            Err(_) => digest.update(b"\0unreadable"),
        }
    } else {
        digest.update(b"\0other");
    }
}
