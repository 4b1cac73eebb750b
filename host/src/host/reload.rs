//! Taking changes in while serving: the workflows folder read again, a component
//! read again from its file, the services file's components given their new
//! sources and grants. What does not read or check leaves the old version in
//! place; every reload, done or refused, is noted ([`Host::reloads`]).

use super::kept::{self, KeptWorkflow};
use super::{Host, Origin};
use crate::scheduler::{Command, LifecycleError};
use crate::services_file::{BackendSpec, ComponentSource, ServiceSpec};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// How many reloads [`Host::reloads`] remembers.
const REMEMBERED: usize = 64;

/// One reload, done or refused.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Reload {
    /// Its place among the host's reloads, from 1.
    pub seq: u64,
    /// When, in RFC 3339.
    pub at: String,
    /// What was read again: `workflows`, or `service <name>`.
    pub what: String,
    /// True when the new version took over; false when the old one stays.
    pub ok: bool,
    /// What changed, or why nothing did (with the file, line and field).
    pub detail: String,
}

/// The workflows a host keeps, as they are now.
pub type Workflows = Arc<BTreeMap<String, KeptWorkflow>>;

/// What taking a services file in did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServicesChange {
    /// Components given a new source or grants, and reloaded.
    pub reloaded: Vec<String>,
    /// Services added, removed or changed otherwise: applied at the next start.
    pub not_applied: Vec<String>,
}

impl Host {
    /// The workflows kept (`HostConfig::workflows`), by name, as last read.
    pub fn workflows(&self) -> Workflows {
        self.workflows.read().expect("not poisoned").clone()
    }

    /// Tells of every change of the kept workflows (the count of changes so far).
    pub fn workflows_changed(&self) -> tokio::sync::watch::Receiver<u64> {
        self.workflows_changed.subscribe()
    }

    /// The folder of the kept workflows, when there is one.
    pub fn workflows_folder(&self) -> Option<&std::path::Path> {
        self.workflows_folder.as_deref()
    }

    /// The last reloads, oldest first.
    pub fn reloads(&self) -> Vec<Reload> {
        self.reloads
            .lock()
            .expect("not poisoned")
            .iter()
            .cloned()
            .collect()
    }

    /// The reloads after the one numbered `seq` (those still remembered).
    pub fn reloads_after(&self, seq: u64) -> Vec<Reload> {
        let reloads = self.reloads.lock().expect("not poisoned");
        reloads.iter().filter(|r| r.seq > seq).cloned().collect()
    }

    /// Reads the workflows folder again; the new set replaces the old only when
    /// every file checks. Says what changed.
    pub fn reload_workflows(&self) -> Result<String, kept::KeptError> {
        let Some(folder) = &self.workflows_folder else {
            return Ok("no workflows folder".into());
        };
        let read = kept::read_folder(folder);
        let new = match read {
            Ok(new) => {
                // A pipeline's containers are services: served as they were at start.
                let served = |spec: &ServiceSpec| {
                    self.services.iter().any(|s| {
                        s.name == spec.name
                            && format!("{:?}", s.backend) == format!("{:?}", spec.backend)
                    })
                };
                let missing: Vec<&str> = new
                    .services
                    .iter()
                    .filter(|spec| !served(spec))
                    .map(|s| s.name.as_str())
                    .collect();
                if !missing.is_empty() {
                    let detail = format!(
                        "the containers of a copili pipeline, new or changed, are served as they are from the next start: {}",
                        missing.join(", ")
                    );
                    self.note_reload("workflows", false, detail);
                }
                new.workflows
            }
            Err(error) => {
                let detail = crate::error_chain::error_chain(&error);
                self.note_reload(
                    "workflows",
                    false,
                    format!("{detail}; the workflows as they were stay"),
                );
                return Err(error);
            }
        };
        let old = self.workflows();
        let changed = |name: &String| old.get(name).is_none_or(|o| o.text != new[name].text);
        let added: Vec<&str> = new
            .keys()
            .filter(|n| !old.contains_key(*n))
            .map(|n| n.as_str())
            .collect();
        let altered: Vec<&str> = new
            .keys()
            .filter(|n| old.contains_key(*n) && changed(n))
            .map(|n| n.as_str())
            .collect();
        let removed: Vec<&str> = old
            .keys()
            .filter(|n| !new.contains_key(*n))
            .map(|n| n.as_str())
            .collect();
        if added.is_empty() && altered.is_empty() && removed.is_empty() {
            return Ok("no change".into());
        }
        let mut parts = Vec::new();
        for (label, names) in [
            ("added", &added),
            ("changed", &altered),
            ("removed", &removed),
        ] {
            if !names.is_empty() {
                parts.push(format!("{label} {}", names.join(", ")));
            }
        }
        let detail = parts.join("; ");
        *self.workflows.write().expect("not poisoned") = Arc::new(new);
        self.workflows_changed.send_modify(|n| *n += 1);
        tracing::info!(%detail, "workflows reloaded");
        self.note_reload("workflows", true, detail.clone());
        Ok(detail)
    }

    /// The components hosted here that were read from a file, with the file.
    pub fn component_files(&self) -> Vec<(String, PathBuf)> {
        let origins = self.origins.read().expect("not poisoned");
        origins
            .iter()
            .filter_map(|(name, origin)| match origin {
                Origin::Source(ComponentSource::File(path), _) => {
                    Some((name.clone(), path.clone()))
                }
                _ => None,
            })
            .collect()
    }

    /// Reads the component `name` again and swaps it in ([`Command::Reload`]), noting
    /// the outcome; requests in flight finish on the old version.
    pub async fn reload_service(&self, name: &str) -> Result<String, LifecycleError> {
        let what = format!("service {name}");
        match self.command(name, Command::Reload).await {
            Ok(_) => {
                let version = self.registry_version(name);
                self.note_reload(&what, true, format!("now at version {version}"));
                Ok(version)
            }
            Err(error) => {
                let detail = crate::error_chain::error_chain(&error);
                self.note_reload(
                    &what,
                    false,
                    format!("{detail}; the old version goes on serving"),
                );
                Err(error)
            }
        }
    }

    /// Takes a services file read again: a component given a new file, URL or
    /// grants is reloaded with them; what else differs is listed as applied at the
    /// next start.
    pub async fn take_services(&self, services: &[ServiceSpec]) -> ServicesChange {
        let mut change = ServicesChange::default();
        let taken = std::mem::replace(
            &mut *self.services_taken.lock().expect("not poisoned"),
            services.to_vec(),
        );
        let old: BTreeMap<&str, &ServiceSpec> =
            taken.iter().map(|s| (s.name.as_str(), s)).collect();
        let new: BTreeMap<&str, &ServiceSpec> =
            services.iter().map(|s| (s.name.as_str(), s)).collect();
        for name in old.keys().filter(|n| !new.contains_key(*n)) {
            change.not_applied.push(format!("{name} (removed)"));
        }
        for (name, spec) in &new {
            let Some(before) = old.get(name) else {
                change.not_applied.push(format!("{name} (added)"));
                continue;
            };
            let same_else = before.concurrency == spec.concurrency
                && format!("{:?}", before.actions) == format!("{:?}", spec.actions);
            let source = match (&before.backend, &spec.backend) {
                (BackendSpec::Component(was), BackendSpec::Component(now)) if same_else => {
                    if was == now && before.grants == spec.grants {
                        continue;
                    }
                    now
                }
                (was, now) => {
                    if same_else && format!("{was:?}") == format!("{now:?}") {
                        continue;
                    }
                    change.not_applied.push(format!("{name} (changed)"));
                    continue;
                }
            };
            let origin = Origin::Source(source.clone(), spec.grants.clone());
            let previous = self
                .origins
                .write()
                .expect("not poisoned")
                .insert(name.to_string(), origin);
            match self.reload_service(name).await {
                Ok(_) => change.reloaded.push(name.to_string()),
                Err(_) => {
                    if let Some(previous) = previous {
                        let mut origins = self.origins.write().expect("not poisoned");
                        origins.insert(name.to_string(), previous);
                    }
                    // Not taken in: the next reading tries it again.
                    let mut taken = self.services_taken.lock().expect("not poisoned");
                    if let Some(spec) = taken.iter_mut().find(|s| s.name == *name) {
                        *spec = (*before).clone();
                    }
                }
            }
        }
        if !change.not_applied.is_empty() {
            let detail = format!(
                "the services file changed; applied at the next start: {}",
                change.not_applied.join(", ")
            );
            tracing::warn!("{detail}");
            self.note_reload("services file", false, detail);
        }
        change
    }

    /// The version the service `name` serves now.
    fn registry_version(&self, name: &str) -> String {
        self.serving
            .current(name)
            .map(|s| s.info().version.clone())
            .unwrap_or_default()
    }

    /// Remembers a reload, done (`ok`) or refused, with what it did or why not.
    pub fn note_reload(&self, what: &str, ok: bool, detail: String) {
        let mut reloads = self.reloads.lock().expect("not poisoned");
        let reload = Reload {
            seq: reloads.back().map_or(1, |r| r.seq + 1),
            at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            what: what.to_string(),
            ok,
            detail,
        };
        if !ok {
            tracing::error!(what = %reload.what, "reload refused: {}", reload.detail);
        }
        if reloads.len() == REMEMBERED {
            reloads.pop_front();
        }
        reloads.push_back(reload);
    }
}
