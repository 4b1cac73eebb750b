//! A run's folder, `.copper/runs/<id>/`: the workflow as run, its state (written
//! anew, atomically, after every change: `state.json` for the run, `steps/<id>.json`
//! for each step, so that a change costs the same in a run of 1,000 steps as in
//! one of 2) and its history of events (appended).
//! A host killed mid-run loses nothing that was written; `run --resume <id>` reads
//! them back.

use super::events::{RunEvent, Stamped, StepStatus};
use crate::protocol::Object;
use crate::secret::mask;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The state of a run, as `state.json` holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    /// The run's id.
    pub id: String,
    /// The workflow's name.
    pub workflow: String,
    /// The workflow file it was read from.
    pub source: PathBuf,
    /// `running`, `success`, `failed`; `interrupted` when read back after the
    /// process running it ended before the run did (it crashed or was killed).
    pub status: String,
    /// When it began (RFC 3339).
    pub started: String,
    /// When it ended.
    #[serde(default)]
    pub finished: Option<String>,
    /// What started it by itself, when something did (`kind`: `schedule`, `mqtt`…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<serde_json::Value>,
    /// Every step, by id (kept in `steps/<id>.json`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub steps: BTreeMap<String, StepState>,
}

/// The state of one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepState {
    /// Its action.
    pub action: String,
    /// `pending`, `running`, `success`, `failed`, `cached`, `skipped`.
    pub status: String,
    /// Tries so far.
    #[serde(default)]
    pub attempts: u32,
    /// How long it took, in milliseconds.
    #[serde(default)]
    pub duration_ms: u64,
    /// Its results.
    #[serde(default)]
    pub outputs: Object,
    /// Why it failed or was skipped.
    #[serde(default)]
    pub error: Option<String>,
}

impl RunState {
    /// The steps that succeeded (or were cached), with their results: what a resume keeps.
    pub fn succeeded(&self) -> BTreeMap<String, Object> {
        self.steps
            .iter()
            .filter(|(_, s)| s.status == "success" || s.status == "cached")
            .map(|(id, s)| (id.clone(), s.outputs.clone()))
            .collect()
    }
}

/// A run's folder, being written.
pub struct RunRecord {
    dir: PathBuf,
    events: std::fs::File,
    state: RunState,
    secrets: Vec<String>,
    /// The run's lock, held until the record is dropped.
    _lock: std::fs::File,
}

/// The folder holding every run under the cache folder.
pub fn runs_dir(cache: &Path) -> PathBuf {
    cache.join("runs")
}

/// A new run id: `<UTC date>-<time>-<8 hex>`, sortable by time, never the same twice in a process.
pub fn new_run_id() -> String {
    // A counter from a random start: ids made in one process never meet (a daemon
    // fires hundreds of runs a second), and two processes' rarely.
    static NEXT: std::sync::OnceLock<std::sync::atomic::AtomicU32> = std::sync::OnceLock::new();
    let next = NEXT
        .get_or_init(|| std::sync::atomic::AtomicU32::new(fastrand::u32(..)))
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let digits: String = now.chars().filter(char::is_ascii_digit).collect();
    format!("{}-{}-{next:08x}", &digits[..8], &digits[8..14])
}

impl RunRecord {
    /// Makes the folder of a new run of `workflow_text` (read from `source`), with
    /// every step pending; `secrets` are masked in everything written.
    pub fn create(
        cache: &Path,
        id: &str,
        name: &str,
        source: &Path,
        workflow_text: &str,
        steps: &[(String, String)],
        secrets: Vec<String>,
    ) -> std::io::Result<Self> {
        let dir = runs_dir(cache).join(id);
        std::fs::create_dir_all(dir.join("logs"))?;
        std::fs::create_dir_all(dir.join("steps"))?;
        std::fs::write(dir.join("workflow.yaml"), mask(workflow_text, &secrets))?;
        let state = RunState {
            id: id.to_string(),
            workflow: name.to_string(),
            source: source.to_path_buf(),
            status: "running".into(),
            started: now(),
            finished: None,
            trigger: None,
            steps: steps
                .iter()
                .map(|(step, action)| {
                    (
                        step.clone(),
                        StepState {
                            action: action.clone(),
                            status: "pending".into(),
                            attempts: 0,
                            duration_ms: 0,
                            outputs: Object::new(),
                            error: None,
                        },
                    )
                })
                .collect(),
        };
        let record = Self::open_with(dir, state, secrets)?;
        for step in record.state.steps.keys() {
            record.write_step(step)?;
        }
        Ok(record)
    }

    /// [`RunRecord::create`] for `workflow`, as read from `text`.
    pub fn of_workflow(
        cache: &Path,
        id: &str,
        workflow: &crate::workflow::Workflow,
        text: &str,
        secrets: Vec<String>,
    ) -> std::io::Result<Self> {
        let steps: Vec<(String, String)> = workflow
            .steps
            .iter()
            .map(|s| (s.id.clone(), s.action.clone()))
            .collect();
        Self::create(
            cache,
            id,
            &workflow.name,
            &workflow.source,
            text,
            &steps,
            secrets,
        )
    }

    /// Opens the folder of run `id` to go on with it from `state` (see [`state`]).
    pub fn resume(
        cache: &Path,
        id: &str,
        mut state: RunState,
        secrets: Vec<String>,
    ) -> std::io::Result<Self> {
        state.status = "running".into();
        state.finished = None;
        Self::open_with(runs_dir(cache).join(id), state, secrets)
    }

    fn open_with(dir: PathBuf, state: RunState, secrets: Vec<String>) -> std::io::Result<Self> {
        // Held while the run goes on: a `running` run whose lock nobody holds was interrupted.
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(LOCK_FILE))?;
        if lock.try_lock().is_err() {
            return Err(std::io::Error::other(format!(
                "run {} is going on in another process",
                state.id
            )));
        }
        let events = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("events.jsonl"))?;
        let record = Self {
            dir,
            events,
            state,
            secrets,
            _lock: lock,
        };
        record.write_state()?;
        Ok(record)
    }

    /// The run's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends an event to the history and updates the state.
    pub fn record(&mut self, stamped: &Stamped) -> std::io::Result<()> {
        let line = serde_json::to_string(stamped).expect("events serialize");
        writeln!(self.events, "{}", mask(&line, &self.secrets))?;
        self.events.flush()?;
        match self.apply(stamped) {
            Changed::Step(step) => self.write_step(&step),
            Changed::Run => self.write_state(),
            Changed::Everything => {
                let steps: Vec<String> = self.state.steps.keys().cloned().collect();
                for step in steps {
                    self.write_step(&step)?;
                }
                self.write_state()
            }
            Changed::Nothing => Ok(()),
        }
    }

    /// Applies an event to the state; says what changed.
    fn apply(&mut self, stamped: &Stamped) -> Changed {
        let changed = match &stamped.event {
            RunEvent::StepStarted { step, .. }
            | RunEvent::StepRetried { step, .. }
            | RunEvent::StepFinished { step, .. }
            | RunEvent::StepSkipped { step, .. } => Changed::Step(step.clone()),
            RunEvent::RunFinished { .. } => Changed::Run,
            RunEvent::RunCancelled { .. } => Changed::Everything,
            RunEvent::RunStarted {
                trigger: Some(_), ..
            } => Changed::Run,
            RunEvent::RunStarted { .. } | RunEvent::StepProgress { .. } => Changed::Nothing,
        };
        match &stamped.event {
            RunEvent::RunStarted { trigger, .. } => {
                if trigger.is_some() {
                    self.state.trigger = trigger.clone();
                }
            }
            RunEvent::StepStarted { step, attempt, .. } => {
                if let Some(s) = self.state.steps.get_mut(step) {
                    s.status = "running".into();
                    s.attempts = *attempt;
                    s.error = None;
                }
            }
            RunEvent::StepProgress { step, message } => {
                let path = self.dir.join("logs").join(format!("{step}.log"));
                let line = format!("{} {}\n", stamped.at, mask(message, &self.secrets));
                let _ = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .and_then(|mut f| f.write_all(line.as_bytes()));
            }
            RunEvent::StepRetried { step, error, .. } => {
                if let Some(s) = self.state.steps.get_mut(step) {
                    s.error = Some(error.clone());
                }
            }
            RunEvent::StepFinished {
                step,
                status,
                duration_ms,
                outputs,
                error,
                attempts,
            } => {
                if let Some(s) = self.state.steps.get_mut(step) {
                    s.status = status.as_str().into();
                    s.duration_ms = *duration_ms;
                    s.outputs = outputs.clone();
                    s.error = error.clone();
                    s.attempts = *attempts;
                }
            }
            RunEvent::StepSkipped { step, reason } => {
                if let Some(s) = self.state.steps.get_mut(step) {
                    s.status = StepStatus::Skipped.as_str().into();
                    s.error = Some(reason.clone());
                }
            }
            RunEvent::RunFinished { success, .. } => {
                self.state.status = if *success { "success" } else { "failed" }.into();
                self.state.finished = Some(stamped.at.clone());
            }
            RunEvent::RunCancelled { reason } => {
                self.state.status = "cancelled".into();
                self.state.finished = Some(stamped.at.clone());
                for step in self.state.steps.values_mut() {
                    if step.status == "running" || step.status == "pending" {
                        step.status = "cancelled".into();
                        step.error = Some(reason.clone());
                    }
                }
            }
        }
        changed
    }

    /// Writes `steps/<step>.json` whole, then renames it into place.
    fn write_step(&self, step: &str) -> std::io::Result<()> {
        let Some(state) = self.state.steps.get(step) else {
            return Ok(());
        };
        let text = serde_json::to_string_pretty(state).expect("state serializes");
        write_whole(
            &self.dir.join("steps").join(format!("{step}.json")),
            &mask(&text, &self.secrets),
        )
    }

    /// Writes `state.json` (the run, without its steps) whole, then renames it into place.
    fn write_state(&self) -> std::io::Result<()> {
        let head = RunState {
            steps: BTreeMap::new(),
            ..self.state.clone()
        };
        let text = serde_json::to_string_pretty(&head).expect("state serializes");
        write_whole(&self.dir.join("state.json"), &mask(&text, &self.secrets))
    }
}

/// What an event changed.
enum Changed {
    Step(String),
    Run,
    /// The run and every step (a cancel ends them all).
    Everything,
    Nothing,
}

/// Writes a file whole, then renames it into place: never half written.
fn write_whole(path: &Path, text: &str) -> std::io::Result<()> {
    // No fsync: what survives the process being killed is what was written; an
    // operating system crash may cost the last changes, never a half-written file.
    let partial = path.with_extension("json.partial");
    std::fs::write(&partial, text)?;
    std::fs::rename(partial, path)
}

fn now() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

/// The file a run's process keeps locked while the run goes on.
const LOCK_FILE: &str = "lock";

/// True while some process holds the run's lock.
fn going_on(dir: &Path) -> bool {
    std::fs::File::open(dir.join(LOCK_FILE)).is_ok_and(|file| file.try_lock_shared().is_err())
}

fn read_state(dir: &Path) -> std::io::Result<RunState> {
    let text = std::fs::read_to_string(dir.join("state.json"))?;
    let mut state: RunState = serde_json::from_str(&text).map_err(std::io::Error::other)?;
    if state.status == "running" && !going_on(dir) {
        state.status = "interrupted".into();
    }
    for entry in std::fs::read_dir(dir.join("steps"))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "json")
            && let Some(step) = path.file_stem().map(|s| s.to_string_lossy().into_owned())
        {
            let text = std::fs::read_to_string(&path)?;
            let step_state = serde_json::from_str(&text).map_err(std::io::Error::other)?;
            state.steps.insert(step, step_state);
        }
    }
    Ok(state)
}

/// Every run under the cache folder, oldest first.
pub fn list(cache: &Path) -> Vec<RunState> {
    let Ok(entries) = std::fs::read_dir(runs_dir(cache)) else {
        return Vec::new();
    };
    let mut runs: Vec<RunState> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| read_state(&e.path()).ok())
        .collect();
    runs.sort_by(|a, b| a.id.cmp(&b.id));
    runs
}

/// One run's state, as its folder holds it. An id that is not a plain name (a
/// path) is no run.
pub fn state(cache: &Path, id: &str) -> std::io::Result<RunState> {
    read_state(&run_dir(cache, id)?)
}

/// The folder of run `id`, when `id` is a run's name and not a path.
fn run_dir(cache: &Path, id: &str) -> std::io::Result<PathBuf> {
    let plain = !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !plain {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("`{id}` is not a run id"),
        ));
    }
    Ok(runs_dir(cache).join(id))
}

/// One run's state and its history of events.
pub fn show(cache: &Path, id: &str) -> std::io::Result<(RunState, Vec<Stamped>)> {
    let state = state(cache, id)?;
    let history = std::fs::read_to_string(run_dir(cache, id)?.join("events.jsonl"))?
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    Ok((state, history))
}

#[cfg(test)]
mod tests {
    /// A daemon fires runs faster than one a millisecond: their ids never meet.
    #[test]
    fn run_ids_made_in_a_row_are_all_different() {
        let ids: std::collections::BTreeSet<String> =
            (0..20_000).map(|_| super::new_run_id()).collect();
        assert_eq!(ids.len(), 20_000);
    }
}
