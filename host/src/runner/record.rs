//! A run's folder, `.copper/runs/<id>/`: the workflow as run, its history of
//! events (`events.jsonl`, the run's journal: one line appended per event, in
//! one write) and its state (`state.json`, the run and every step, written whole
//! when the run begins and when it ends).
//!
//! The journal is what counts: a run read back while it goes on, or after the
//! process running it was killed, is its last `state.json` with the journal
//! replayed over it, so a host killed mid-run loses nothing that was written and
//! a change costs one appended line, in a run of 1,000 steps as in one of 2.
//! `run --resume <id>` reads them back.

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
    /// Every step, by id.
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
    /// `events.jsonl`, opened to append.
    journal: std::fs::File,
    /// The state, as the journal written so far makes it (masked as written).
    state: RunState,
    secrets: Vec<String>,
    /// One line of the journal, made anew for every event.
    line: Vec<u8>,
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
        std::fs::write(dir.join("workflow.yaml"), mask(workflow_text, &secrets))?;
        let hide = |text: &str| mask(text, &secrets);
        let state = RunState {
            id: id.to_string(),
            workflow: hide(name),
            source: PathBuf::from(hide(&source.to_string_lossy())),
            status: "running".into(),
            started: now(),
            finished: None,
            trigger: None,
            steps: steps
                .iter()
                .map(|(step, action)| (hide(step), StepState::pending(hide(action))))
                .collect(),
        };
        Self::open_with(dir, state, secrets)
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
        let journal = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(JOURNAL))?;
        let record = Self {
            dir,
            journal,
            state,
            secrets,
            line: Vec::new(),
            _lock: lock,
        };
        record.write_state()?;
        Ok(record)
    }

    /// The run's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends an event to the journal (masked, in one write) and applies it to the
    /// state; `state.json` is written anew when the run ends.
    pub fn record(&mut self, stamped: &Stamped) -> std::io::Result<()> {
        let masked;
        let stamped = if self.secrets.is_empty() {
            stamped
        } else {
            masked = Stamped {
                at: stamped.at.clone(),
                event: stamped.event.clone().masked(&self.secrets),
            };
            &masked
        };
        self.line.clear();
        serde_json::to_writer(&mut self.line, stamped).expect("events serialize");
        self.line.push(b'\n');
        self.journal.write_all(&self.line)?;
        if let RunEvent::StepProgress { step, message } = &stamped.event {
            let path = self.dir.join("logs").join(format!("{step}.log"));
            let line = format!("{} {message}\n", stamped.at);
            let _ = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .and_then(|mut f| f.write_all(line.as_bytes()));
        }
        apply(&mut self.state, stamped);
        match stamped.event {
            RunEvent::RunFinished { .. } | RunEvent::RunCancelled { .. } => self.write_state(),
            _ => Ok(()),
        }
    }

    /// Writes `state.json` whole, then renames it into place.
    fn write_state(&self) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(&self.state).expect("state serializes");
        write_whole(&self.dir.join(STATE), &text)
    }
}

impl StepState {
    /// A step of `action` not started yet.
    fn pending(action: String) -> Self {
        StepState {
            action,
            status: "pending".into(),
            attempts: 0,
            duration_ms: 0,
            outputs: Object::new(),
            error: None,
        }
    }
}

/// `stamped` applied to `state`: what the event changed. Applying a run's events in
/// order to any state it had before them gives the state after them.
fn apply(state: &mut RunState, stamped: &Stamped) {
    match &stamped.event {
        RunEvent::RunStarted { trigger, .. } => {
            state.status = "running".into();
            state.finished = None;
            if trigger.is_some() {
                state.trigger = trigger.clone();
            }
        }
        RunEvent::StepStarted { step, attempt, .. } => {
            if let Some(s) = state.steps.get_mut(step) {
                s.status = "running".into();
                s.attempts = *attempt;
                s.error = None;
            }
        }
        RunEvent::StepProgress { .. } => {}
        RunEvent::StepRetried { step, error, .. } => {
            if let Some(s) = state.steps.get_mut(step) {
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
            if let Some(s) = state.steps.get_mut(step) {
                s.status = status.as_str().into();
                s.duration_ms = *duration_ms;
                s.outputs = outputs.clone();
                s.error = error.clone();
                s.attempts = *attempts;
            }
        }
        RunEvent::StepSkipped { step, reason } => {
            if let Some(s) = state.steps.get_mut(step) {
                s.status = StepStatus::Skipped.as_str().into();
                s.error = Some(reason.clone());
            }
        }
        RunEvent::RunFinished { success, .. } => {
            state.status = if *success { "success" } else { "failed" }.into();
            state.finished = Some(stamped.at.clone());
        }
        RunEvent::RunCancelled { reason } => {
            state.status = "cancelled".into();
            state.finished = Some(stamped.at.clone());
            for step in state.steps.values_mut() {
                if step.status == "running" || step.status == "pending" {
                    step.status = "cancelled".into();
                    step.error = Some(reason.clone());
                }
            }
        }
    }
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

/// The run's journal: its events, one JSON line each.
const JOURNAL: &str = "events.jsonl";

/// The run and its steps, as they were when last written whole.
const STATE: &str = "state.json";

/// True while some process holds the run's lock.
fn going_on(dir: &Path) -> bool {
    std::fs::File::open(dir.join(LOCK_FILE)).is_ok_and(|file| file.try_lock_shared().is_err())
}

/// The events of the journal in `dir`; a line cut short (the process killed while
/// writing it) or not an event is passed over.
fn journal(dir: &Path) -> std::io::Result<Vec<Stamped>> {
    Ok(std::fs::read_to_string(dir.join(JOURNAL))?
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect())
}

/// A run's state: its `state.json`, and, unless the run had ended when that was
/// written, its journal replayed over it.
fn read_state(dir: &Path) -> std::io::Result<RunState> {
    let text = std::fs::read_to_string(dir.join(STATE))?;
    let mut state: RunState = serde_json::from_str(&text).map_err(std::io::Error::other)?;
    read_old_steps(dir, &mut state)?;
    if state.status == "running" {
        for stamped in journal(dir)? {
            apply(&mut state, &stamped);
        }
    }
    if state.status == "running" && !going_on(dir) {
        state.status = "interrupted".into();
    }
    Ok(state)
}

/// The steps of a run recorded before the journal, one `steps/<id>.json` each.
fn read_old_steps(dir: &Path, state: &mut RunState) -> std::io::Result<()> {
    let Ok(entries) = std::fs::read_dir(dir.join("steps")) else {
        return Ok(());
    };
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "json")
            && let Some(step) = path.file_stem().map(|s| s.to_string_lossy().into_owned())
        {
            let text = std::fs::read_to_string(&path)?;
            let step_state = serde_json::from_str(&text).map_err(std::io::Error::other)?;
            state.steps.insert(step, step_state);
        }
    }
    Ok(())
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
    let history = journal(&run_dir(cache, id)?)?;
    Ok((state, history))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finished(step: &str, status: StepStatus) -> Stamped {
        let mut outputs = Object::new();
        outputs.insert("said".into(), "a success".into());
        Stamped::now(RunEvent::StepFinished {
            step: step.into(),
            status,
            duration_ms: 3,
            outputs,
            error: None,
            attempts: 1,
        })
    }

    fn started(step: &str) -> Stamped {
        Stamped::now(RunEvent::StepStarted {
            step: step.into(),
            action: "testkit/echo".into(),
            attempt: 1,
        })
    }

    /// A run whose process ended mid-run reads back from its journal: each step as
    /// its last event left it, the run interrupted; nothing but the journal was
    /// written after the start.
    #[test]
    fn a_run_cut_short_reads_back_from_its_journal() {
        let cache = tempfile::tempdir().unwrap();
        let steps = [("a", "testkit/echo"), ("b", "testkit/echo"), ("c", "x/y")]
            .map(|(s, a)| (s.to_string(), a.to_string()));
        let mut record = RunRecord::create(
            cache.path(),
            "r1",
            "w",
            Path::new("w.yaml"),
            "",
            &steps,
            vec![],
        )
        .unwrap();
        let written = std::fs::read(record.dir().join(STATE)).unwrap();
        record.record(&started("a")).unwrap();
        record.record(&finished("a", StepStatus::Success)).unwrap();
        record.record(&started("b")).unwrap();
        assert_eq!(std::fs::read(record.dir().join(STATE)).unwrap(), written);
        assert_eq!(state(cache.path(), "r1").unwrap().status, "running");
        drop(record);
        let back = state(cache.path(), "r1").unwrap();
        assert_eq!(back.status, "interrupted");
        let status = |s: &str| back.steps[s].status.clone();
        assert_eq!(
            [status("a"), status("b"), status("c")],
            ["success", "running", "pending"]
        );
        assert_eq!(back.steps["a"].outputs["said"], "a success");
        assert_eq!(back.succeeded().len(), 1);
    }

    /// A resumed run ends as its last run says, though the journal holds the end of
    /// the first one; a secret that is also a word of the journal (`success`) masks
    /// the values and leaves the journal readable.
    #[test]
    fn a_resumed_run_reads_as_its_last_end_with_its_secrets_masked() {
        let cache = tempfile::tempdir().unwrap();
        let steps = [("a".to_string(), "testkit/echo".to_string())];
        let secrets = vec!["success".to_string()];
        let mut record = RunRecord::create(
            cache.path(),
            "r2",
            "w",
            Path::new("w.yaml"),
            "",
            &steps,
            secrets.clone(),
        )
        .unwrap();
        let end = |success| {
            Stamped::now(RunEvent::RunFinished {
                success,
                duration_ms: 1,
            })
        };
        record.record(&finished("a", StepStatus::Failed)).unwrap();
        record.record(&end(false)).unwrap();
        drop(record);
        let first = state(cache.path(), "r2").unwrap();
        assert_eq!(first.status, "failed");
        let mut record = RunRecord::resume(cache.path(), "r2", first, secrets).unwrap();
        let again = Stamped::now(RunEvent::RunStarted {
            run: "r2".into(),
            workflow: "w".into(),
            resumed: true,
            trigger: None,
        });
        record.record(&again).unwrap();
        record.record(&finished("a", StepStatus::Success)).unwrap();
        drop(record);
        let cut = state(cache.path(), "r2").unwrap();
        assert_eq!((cut.status.as_str(), cut.finished), ("interrupted", None));
        assert_eq!(cut.steps["a"].status, "success");
        assert_eq!(cut.steps["a"].outputs["said"], "a ***");
        let (_, history) = show(cache.path(), "r2").unwrap();
        assert_eq!(history.len(), 4);
    }

    /// A daemon fires runs faster than one a millisecond: their ids never meet.
    #[test]
    fn run_ids_made_in_a_row_are_all_different() {
        let ids: std::collections::BTreeSet<String> =
            (0..20_000).map(|_| super::new_run_id()).collect();
        assert_eq!(ids.len(), 20_000);
    }
}
