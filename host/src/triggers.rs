//! Workflows that start themselves (docs/triggers.md): the `on:` of each workflow
//! a daemon keeps, fired. A room over the host, as the HTTP API is.
//!
//! - `schedule`: each cron expression waits for its next time (in its time zone)
//!   and fires; a time that fell due while the daemon was down fires once at
//!   start when the schedule says `missed: run-once` (the last time fired is kept
//!   in `<cache>/triggers/<workflow>.json`).
//! - `mqtt` and `resource`: a subscription each; every message fires, with its
//!   topic and payload (JSON when it reads as JSON, else text). A retained
//!   message the broker hands over on subscribing (an old one) fires nothing.
//! - `workflow_run`: every run of the daemon that ends is matched against the
//!   workflows and statuses named.
//! - `watch`: the folders the globs start in are watched ([`crate::file_watch`]);
//!   once changes stop for the debounce, the paths that match fire one run (a
//!   file read is no change: a run reading what it watches does not start again).
//!
//! When the workflows are read again, the triggers are set up anew for the new set.
//!
//! Each firing goes through [`Host::fire`], which keeps to the workflow's
//! `concurrency:`. Webhooks come through the HTTP API (`POST /hooks/<workflow>`).

use crate::Host;
use crate::bus::{BusError, Message};
use crate::host::KeptWorkflow;
use crate::workflow::on::{Missed, Schedule};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The triggers being listened for; [`Triggering::stop`] ends them.
pub struct Triggering {
    stop: CancellationToken,
    tracker: TaskTracker,
}

impl Triggering {
    /// Stops firing; the host is no longer held once it returns.
    pub async fn stop(self) {
        self.stop.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}

/// Why the triggers cannot be listened for.
#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    /// The bus failed.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// A folder of `on.watch` cannot be watched.
    #[error("workflow `{workflow}` cannot watch {folder}")]
    Watch {
        /// The workflow.
        workflow: String,
        /// The folder.
        folder: PathBuf,
        /// Why.
        #[source]
        source: crate::file_watch::WatchError,
    },
}

/// Starts listening for the triggers of every workflow `host` keeps; when they
/// change ([`Host::reload_workflows`]), the triggers of the new set replace the old.
pub async fn start(host: Arc<Host>) -> Result<Triggering, TriggerError> {
    let mut changed = host.workflows_changed();
    changed.mark_unchanged();
    let first = listen(host.clone()).await?;
    let stop = CancellationToken::new();
    let tracker = TaskTracker::new();
    tracker.spawn(follow(host, first, changed, stop.clone()));
    Ok(Triggering { stop, tracker })
}

/// Listens with `current` until the workflows change, then with the new set's.
async fn follow(
    host: Arc<Host>,
    current: Triggering,
    mut changed: tokio::sync::watch::Receiver<u64>,
    stop: CancellationToken,
) {
    let mut current = Some(current);
    loop {
        tokio::select! {
            result = changed.changed() => if result.is_err() { break },
            () = stop.cancelled() => break,
        }
        if let Some(old) = current.take() {
            old.stop().await;
        }
        match listen(host.clone()).await {
            Ok(new) => current = Some(new),
            Err(error) => {
                let detail = crate::error_chain::error_chain(&error);
                host.note_reload("triggers", false, format!("{detail}; no trigger fires"));
            }
        }
    }
    if let Some(current) = current {
        current.stop().await;
    }
}

/// Listens for the triggers of the workflows `host` keeps now.
async fn listen(host: Arc<Host>) -> Result<Triggering, TriggerError> {
    let stop = CancellationToken::new();
    let tracker = TaskTracker::new();
    match listen_on(host, &stop, &tracker).await {
        Ok(()) => Ok(Triggering { stop, tracker }),
        Err(error) => {
            // What was set up before the error stops with it.
            Triggering { stop, tracker }.stop().await;
            Err(error)
        }
    }
}

/// [`listen`]'s work: each trigger's task spawned on `tracker`, stopped by `stop`.
async fn listen_on(
    host: Arc<Host>,
    stop: &CancellationToken,
    tracker: &TaskTracker,
) -> Result<(), TriggerError> {
    let kept: Vec<KeptWorkflow> = host.workflows().values().cloned().collect();
    let needs_bus = kept
        .iter()
        .any(|k| !k.workflow.on.mqtt.is_empty() || !k.workflow.on.resources.is_empty());
    let bus = match needs_bus {
        true => Some(
            host.connect(&format!("copper-wasm-{}-triggers", host.id()), None)
                .await?,
        ),
        false => None,
    };
    if let Some(bus) = bus.clone() {
        // Closed when the triggers stop, an error while setting them up included.
        let stop = stop.clone();
        tracker.spawn(async move {
            stop.cancelled().await;
            bus.close().await;
        });
    }
    for kept in &kept {
        let name = kept.workflow.name.clone();
        let on = &kept.workflow.on;
        for (index, schedule) in on.schedules.iter().enumerate() {
            let (host, name, schedule) = (host.clone(), name.clone(), schedule.clone());
            tracker.spawn(scheduled(host, name, index, schedule, stop.clone()));
        }
        let topics = on
            .mqtt
            .iter()
            .map(|f| (f, "mqtt"))
            .chain(on.resources.iter().map(|r| (r, "resource")));
        for (filter, kind) in topics {
            let bus = bus.as_ref().expect("connected for the topics");
            let subscription = bus.subscribe(filter).await?;
            let (host, name, stop) = (host.clone(), name.clone(), stop.clone());
            tracker.spawn(async move {
                let mut subscription = subscription;
                loop {
                    let message = tokio::select! {
                        message = subscription.recv() => match message { Some(m) => m, None => return },
                        () = stop.cancelled() => return,
                    };
                    if message.retain {
                        continue;
                    }
                    fire(&host, &name, message_trigger(kind, &message)).await;
                }
            });
        }
        if let Some(watch) = &on.watch {
            watching(&host, &name, watch, tracker, stop)?;
        }
        if let Some(after) = &on.workflow_run {
            let mut ended = host.runs_ended();
            let (host, name, after, stop) =
                (host.clone(), name.clone(), after.clone(), stop.clone());
            tracker.spawn(async move {
                loop {
                    let ended = tokio::select! {
                        ended = ended.recv() => match ended {
                            Ok(ended) => ended,
                            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                                tracing::warn!(workflow = %name, "missed {n} ends of runs");
                                continue;
                            }
                            Err(_) => return,
                        },
                        () = stop.cancelled() => return,
                    };
                    let named = after.workflows.contains(&ended.workflow);
                    let counts = after.status.is_empty() || after.status.contains(&ended.status);
                    if named && counts {
                        let trigger = json!({
                            "kind": "workflow_run",
                            "workflow": ended.workflow,
                            "run": ended.id,
                            "status": ended.status,
                        });
                        fire(&host, &name, trigger).await;
                    }
                }
            });
        }
    }
    Ok(())
}

/// The folder a glob starts in: its leading levels without a wildcard.
fn folder_of(glob: &str) -> PathBuf {
    let literal: Vec<&str> = glob
        .split('/')
        .take_while(|level| !level.contains(['*', '?', '[', '{']))
        .collect();
    // The last literal level of a glob with no wildcard is a file: watch its folder.
    let levels = if literal.len() == glob.split('/').count() {
        &literal[..literal.len().saturating_sub(1)]
    } else {
        &literal[..]
    };
    levels.iter().collect()
}

/// Watches the folders of `watch`'s globs under the working folder; fires
/// `name` with the paths that changed and match, once they stop changing.
fn watching(
    host: &Arc<Host>,
    name: &str,
    watch: &crate::workflow::on::Watch,
    tracker: &TaskTracker,
    stop: &CancellationToken,
) -> Result<(), TriggerError> {
    let root = std::fs::canonicalize(host.workspace()).unwrap_or_else(|_| host.workspace().into());
    let mut globs = globset::GlobSetBuilder::new();
    for path in &watch.paths {
        globs.add(globset::Glob::new(path).expect("checked when the workflow was read"));
    }
    let globs = globs.build().expect("checked when the workflow was read");
    let (mut files, mut changed) =
        crate::file_watch::watch(watch.debounce).map_err(|source| TriggerError::Watch {
            workflow: name.to_string(),
            folder: root.clone(),
            source,
        })?;
    let mut folders: Vec<PathBuf> = watch
        .paths
        .iter()
        .map(|p| root.join(folder_of(p)))
        .collect();
    folders.sort();
    folders.dedup();
    for folder in folders {
        files
            .add(&folder, true)
            .map_err(|source| TriggerError::Watch {
                workflow: name.to_string(),
                folder: folder.clone(),
                source,
            })?;
    }
    let (host, name, stop) = (host.clone(), name.to_string(), stop.clone());
    let quiet = watch.debounce;
    tracker.spawn(async move {
        // Watching for as long as this task lives.
        let _files = files;
        loop {
            let mut events = tokio::select! {
                events = changed.recv() => match events { Some(e) => e, None => return },
                () = stop.cancelled() => return,
            };
            // A burst the debouncer handed over in pieces is one change: take
            // what comes until it has been quiet as long again.
            while let Ok(Some(more)) = tokio::time::timeout(quiet, changed.recv()).await {
                events.extend(more);
            }
            let mut paths: Vec<String> = events
                .iter()
                .filter_map(|path| path.strip_prefix(&root).ok())
                .filter(|p| globs.is_match(p))
                .map(|p| p.to_string_lossy().into_owned())
                .collect();
            paths.sort();
            paths.dedup();
            if !paths.is_empty() {
                fire(&host, &name, json!({"kind": "watch", "paths": paths})).await;
            }
        }
    });
    Ok(())
}

/// What an MQTT message or a resource tells the run it starts.
fn message_trigger(kind: &str, message: &Message) -> Value {
    let payload = serde_json::from_slice::<Value>(&message.payload)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&message.payload).into_owned()));
    let mut trigger = json!({"kind": kind, "topic": message.topic, "payload": payload});
    if kind == "resource" {
        let mut levels = message.topic.split('/');
        trigger["service"] = json!(levels.next());
        trigger["resource"] = json!(levels.nth(1));
    }
    trigger
}

/// Fires `name` for `trigger`, saying in the log what came of it.
async fn fire(host: &Arc<Host>, name: &str, trigger: Value) {
    let kind = trigger["kind"].as_str().unwrap_or_default().to_string();
    match host.fire(name, trigger).await {
        Ok(fired) => tracing::info!(workflow = %name, %kind, ?fired, "triggered"),
        Err(error) => {
            tracing::error!(workflow = %name, %kind, %error, "triggered, but no run started")
        }
    }
}

/// Where the last time each schedule of `workflow` fired is kept.
fn state_file(host: &Host, workflow: &str) -> PathBuf {
    host.cache()
        .join("triggers")
        .join(format!("{workflow}.json"))
}

/// Fires `name` at every time of `schedule`, until `stop`.
async fn scheduled(
    host: Arc<Host>,
    name: String,
    index: usize,
    schedule: Schedule,
    stop: CancellationToken,
) {
    let Ok(cron) = crate::workflow::on::cron_of(&schedule.cron) else {
        return; // Checked when the workflow was read.
    };
    let zone: chrono_tz::Tz = schedule
        .timezone
        .as_deref()
        .and_then(|z| z.parse().ok())
        .unwrap_or(chrono_tz::UTC);
    let file = state_file(&host, &name);
    let key = index.to_string();
    let last = std::fs::read_to_string(&file)
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|v| v[&key].as_str().map(str::to_string))
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok());
    let now = chrono::Utc::now().with_timezone(&zone);
    if let Some(due) = missed(
        &cron,
        schedule.missed,
        last.map(|l| l.with_timezone(&zone)),
        now,
    ) {
        tracing::info!(workflow = %name, missed = %due, "a scheduled time passed while the daemon was down: running once");
        fire_at(&host, &name, &schedule.cron, &due, &file, &key).await;
    }
    loop {
        let now = chrono::Utc::now().with_timezone(&zone);
        let Ok(next) = cron.find_next_occurrence(&now, false) else {
            tracing::warn!(workflow = %name, cron = %schedule.cron, "the schedule has no time to come");
            return;
        };
        let wait = (next - now).to_std().unwrap_or_default();
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = stop.cancelled() => return,
        }
        fire_at(&host, &name, &schedule.cron, &next, &file, &key).await;
    }
}

/// The time to fire once at start, for a schedule last fired at `last`: the first
/// time due after it, when that has passed by `now` and the schedule says
/// `missed: run-once`.
fn missed(
    cron: &croner::Cron,
    policy: Missed,
    last: Option<chrono::DateTime<chrono_tz::Tz>>,
    now: chrono::DateTime<chrono_tz::Tz>,
) -> Option<chrono::DateTime<chrono_tz::Tz>> {
    if policy != Missed::RunOnce {
        return None;
    }
    let due = cron.find_next_occurrence(&last?, false).ok()?;
    (due < now).then_some(due)
}

/// Fires a schedule's time `at`, and keeps it as the last one fired.
async fn fire_at(
    host: &Arc<Host>,
    name: &str,
    cron: &str,
    at: &chrono::DateTime<chrono_tz::Tz>,
    file: &std::path::Path,
    key: &str,
) {
    let at = at.to_rfc3339();
    let mut kept = std::fs::read_to_string(file)
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    kept[key] = json!(at);
    let written = std::fs::create_dir_all(file.parent().expect("a folder"))
        .and_then(|()| std::fs::write(file, kept.to_string()));
    if let Err(error) = written {
        tracing::warn!(file = %file.display(), %error, "cannot keep when the schedule last fired");
    }
    fire(
        host,
        name,
        json!({"kind": "schedule", "cron": cron, "at": at}),
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;

    fn at(zone: chrono_tz::Tz, text: &str) -> chrono::DateTime<chrono_tz::Tz> {
        let naive = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").unwrap();
        zone.from_local_datetime(&naive).single().unwrap()
    }

    #[test]
    fn a_glob_is_watched_from_its_first_wildcard() {
        assert_eq!(folder_of("docs/**/*.md"), PathBuf::from("docs"));
        assert_eq!(folder_of("*.md"), PathBuf::from(""));
        assert_eq!(
            folder_of("site/pages/index.md"),
            PathBuf::from("site/pages")
        );
        assert_eq!(folder_of("a/b*/c"), PathBuf::from("a"));
    }

    #[test]
    fn a_schedule_falls_due_in_its_own_time_zone_to_the_second() {
        let zurich: chrono_tz::Tz = "Europe/Zurich".parse().unwrap();
        let daily = crate::workflow::on::cron_of("0 30 9 * * *").unwrap();
        let now = at(zurich, "2026-12-03 10:00:00");
        let next = daily.find_next_occurrence(&now, false).unwrap();
        assert_eq!(next, at(zurich, "2026-12-04 09:30:00"));
        // 09:30 in Zurich is 08:30 UTC in winter.
        assert_eq!(
            next.with_timezone(&chrono::Utc).format("%H:%M").to_string(),
            "08:30"
        );
        let every_two = crate::workflow::on::cron_of("*/2 * * * * *").unwrap();
        let next = every_two
            .find_next_occurrence(&at(zurich, "2026-12-03 10:00:01"), false)
            .unwrap();
        assert_eq!(next, at(zurich, "2026-12-03 10:00:02"));
    }

    #[test]
    fn a_time_missed_while_down_fires_once_only_when_asked() {
        let utc = chrono_tz::UTC;
        let hourly = crate::workflow::on::cron_of("0 0 * * * *").unwrap();
        let last = Some(at(utc, "2026-12-03 07:00:00"));
        let now = at(utc, "2026-12-03 10:15:00");
        // Three times passed (8, 9, 10 o'clock): one run, for the first.
        assert_eq!(
            missed(&hourly, Missed::RunOnce, last, now),
            Some(at(utc, "2026-12-03 08:00:00"))
        );
        assert_eq!(missed(&hourly, Missed::Skip, last, now), None);
        // Nothing passed since the last time fired, or never fired: nothing to make up.
        let recent = Some(at(utc, "2026-12-03 10:00:00"));
        assert_eq!(missed(&hourly, Missed::RunOnce, recent, now), None);
        assert_eq!(missed(&hourly, Missed::RunOnce, None, now), None);
    }
}
