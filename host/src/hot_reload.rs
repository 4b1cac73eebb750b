//! Hot reload (docs/triggers.md): a daemon takes in changes to its files without
//! a restart and without losing a request. A room over the host, as the triggers are.
//!
//! Watched ([`crate::file_watch`]): the workflows folder, the services file and every
//! component read from a file. A change reads what changed again through the
//! host: the workflows folder as a whole ([`Host::reload_workflows`]), a component
//! compiled off the request path and swapped in ([`Host::reload_service`]), the
//! services file's components given their new sources ([`Host::take_services`]).
//! What does not read or check leaves the old version running; every reload is
//! logged, kept by the host ([`Host::reloads`], `GET /v1/reloads`) and published
//! on `copper-wasm/hosts/<id>/reloads`. SIGHUP reads everything again.

use crate::Host;
use crate::bus::{Bus, BusError};
use crate::services_file::ServicesFile;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long files must stay still before they are read again.
pub const QUIET: Duration = Duration::from_millis(200);

/// Reloads being watched for; [`Reloading::stop`] ends them.
pub struct Reloading {
    stop: CancellationToken,
    tracker: TaskTracker,
}

impl Reloading {
    /// Stops watching; the host is no longer held once it returns.
    pub async fn stop(self) {
        self.stop.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}

/// Why changes cannot be watched for.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The bus failed.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// A folder cannot be watched.
    #[error("cannot watch {folder} for changes")]
    Watch {
        /// The folder.
        folder: PathBuf,
        /// Why.
        #[source]
        source: crate::file_watch::WatchError,
    },
    /// SIGHUP cannot be listened for.
    #[error("cannot listen for SIGHUP")]
    Signal(#[source] std::io::Error),
}

/// What is read again, and what made it so.
enum Cause {
    /// These files changed.
    Files(Vec<PathBuf>),
    /// SIGHUP, or someone asked: everything.
    Everything,
}

/// Watches `host`'s workflows folder, component files and `services_file` (when
/// given) and reads each again when it changes, and everything on SIGHUP.
pub async fn start(
    host: Arc<Host>,
    services_file: Option<PathBuf>,
) -> Result<Reloading, ReloadError> {
    let stop = CancellationToken::new();
    let tracker = TaskTracker::new();
    let (mut files, mut changed) =
        crate::file_watch::watch(QUIET).map_err(|source| ReloadError::Watch {
            folder: PathBuf::from("."),
            source,
        })?;
    let services_file = services_file.map(|p| absolute(&p));
    for folder in folders(&host, services_file.as_deref()) {
        files
            .add(&folder, false)
            .map_err(|source| ReloadError::Watch {
                folder: folder.clone(),
                source,
            })?;
    }
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .map_err(ReloadError::Signal)?;
    let bus = host
        .connect(&format!("copper-wasm-{}-reloads", host.id()), None)
        .await?;
    let (looping, stopped) = (host.clone(), stop.clone());
    tracker.spawn(async move {
        let mut files = files;
        let host = looping;
        let mut watched = folders(&host, services_file.as_deref());
        // The last reload published (those noted elsewhere go out with the next).
        let mut published = host.reloads().last().map_or(0, |r| r.seq);
        loop {
            let cause = tokio::select! {
                paths = changed.recv() => match paths { Some(p) => Cause::Files(p), None => break },
                _ = hangup.recv() => Cause::Everything,
                () = stopped.cancelled() => break,
            };
            take(&host, services_file.as_deref(), cause).await;
            published = publish(&bus, &host, published).await;
            // A services file may have pointed a component at another file.
            let now = folders(&host, services_file.as_deref());
            for folder in now.difference(&watched) {
                if let Err(error) = files.add(folder, false) {
                    tracing::warn!(folder = %folder.display(), "cannot watch: {error}");
                }
            }
            watched = now;
        }
        bus.close().await;
    });
    Ok(Reloading { stop, tracker })
}

/// Reads again what `cause` says changed.
async fn take(host: &Host, services_file: Option<&Path>, cause: Cause) {
    let everything = matches!(cause, Cause::Everything);
    let changed: BTreeSet<PathBuf> = match cause {
        Cause::Files(paths) => paths.iter().map(|p| absolute(p)).collect(),
        Cause::Everything => BTreeSet::new(),
    };
    if let Some(folder) = host.workflows_folder() {
        let folder = folder_path(folder);
        let touched = changed
            .iter()
            .any(|p| p.parent() == Some(&folder) && is_kept(p));
        if everything || touched {
            // Refused or not, the host has noted it.
            let _ = host.reload_workflows();
        }
    }
    if let Some(file) = services_file
        && (everything || changed.contains(file))
    {
        match ServicesFile::load(file) {
            Ok(read) => {
                host.take_services(&read.services).await;
            }
            Err(error) => {
                let detail = format!("{error}; the services as they were stay");
                host.note_reload("services file", false, detail);
            }
        }
    }
    for (name, path) in host.component_files() {
        if everything || changed.contains(&absolute(&path)) {
            // Refused or not, the host has noted it.
            let _ = host.reload_service(&name).await;
        }
    }
}

/// Publishes the reloads noted after the one numbered `published`, each on its
/// own; the number of the last.
async fn publish(bus: &Bus, host: &Host, published: u64) -> u64 {
    let topic = format!("copper-wasm/hosts/{}/reloads", host.id());
    let mut last = published;
    for reload in host.reloads_after(published) {
        last = reload.seq;
        let payload = serde_json::to_string(&reload).expect("JSON serializes");
        if let Err(error) = bus.publish(&topic, payload, false).await {
            tracing::warn!("cannot publish a reload: {error}");
        }
    }
    last
}

/// The folders to watch: the workflows folder, and the folders of the services
/// file and of each component file (files are often replaced, not written over).
fn folders(host: &Host, services_file: Option<&Path>) -> BTreeSet<PathBuf> {
    let mut folders = BTreeSet::new();
    if let Some(folder) = host.workflows_folder() {
        folders.insert(folder_path(folder));
    }
    let files = host
        .component_files()
        .into_iter()
        .map(|(_, p)| absolute(&p));
    for file in files.chain(services_file.map(Path::to_path_buf)) {
        if let Some(parent) = file.parent() {
            folders.insert(parent.to_path_buf());
        }
    }
    folders
}

/// `path` made absolute, its folder's links resolved (as notify reports paths).
fn absolute(path: &Path) -> PathBuf {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => std::fs::canonicalize(parent)
            .map(|p| p.join(name))
            .unwrap_or(path),
        _ => path,
    }
}

/// A folder with its links resolved, as notify reports the paths in it.
fn folder_path(folder: &Path) -> PathBuf {
    std::fs::canonicalize(folder).unwrap_or_else(|_| absolute(folder))
}

/// A file the workflows folder keeps: a workflow, or a copili pipeline in JSON.
fn is_kept(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
}
