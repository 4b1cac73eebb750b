//! Folders watched for changes to their files, as the triggers' `on.watch` and hot
//! reload need them: notify with its full debouncer, each burst handed over once
//! it has been quiet, and reads left out (a file opened is not a file changed: a
//! run reading what it watches would otherwise start itself again and again).

use notify_debouncer_full::notify::{EventKind, RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc;

/// Why a folder cannot be watched.
pub type WatchError = notify_debouncer_full::notify::Error;

/// Folders being watched, for as long as it lives.
pub struct FileWatch {
    debouncer: Debouncer<RecommendedWatcher, RecommendedCache>,
}

/// A watch whose changes, once `quiet` has passed without another, come as the
/// paths that were created, written, renamed or removed.
pub fn watch(
    quiet: Duration,
) -> Result<(FileWatch, mpsc::UnboundedReceiver<Vec<PathBuf>>), WatchError> {
    let (changes, changed) = mpsc::unbounded_channel();
    let debouncer =
        notify_debouncer_full::new_debouncer(quiet, None, move |result: DebounceEventResult| {
            let Ok(events) = result else {
                return;
            };
            let paths: Vec<PathBuf> = events
                .into_iter()
                .filter(|e| !matches!(e.kind, EventKind::Access(_)))
                .flat_map(|e| e.event.paths)
                .collect();
            if !paths.is_empty() {
                let _ = changes.send(paths);
            }
        })?;
    Ok((FileWatch { debouncer }, changed))
}

impl FileWatch {
    /// Watches `folder` (and, when `recursive`, the folders under it).
    pub fn add(&mut self, folder: &Path, recursive: bool) -> Result<(), WatchError> {
        let mode = match recursive {
            true => RecursiveMode::Recursive,
            false => RecursiveMode::NonRecursive,
        };
        self.debouncer.watch(folder, mode)
    }
}
