//! The runs a daemon has going on: launched in the background (over HTTP, by a
//! trigger), each recorded as any run, its events kept while it goes on for
//! whoever watches, cancellable; and a workflow's runs kept to its
//! `concurrency:` when a trigger fires ([`Host::fire`]).

use super::{Host, RunError};
use crate::runner::record::{RunRecord, RunState};
use crate::runner::{self, RunEvent, RunOptions, Stamped};
use crate::workflow::on::WhenBusy;
use crate::workflow::{Workflow, WorkflowError};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The runs going on, by id; and who hears of each run's end.
pub(super) struct LiveRuns {
    runs: Mutex<BTreeMap<String, Arc<LiveRun>>>,
    tracker: TaskTracker,
    ended: broadcast::Sender<Ended>,
    /// Told whenever a run ends (a queued trigger may start then).
    room: tokio::sync::Notify,
}

impl Default for LiveRuns {
    fn default() -> Self {
        Self {
            runs: Mutex::default(),
            tracker: TaskTracker::new(),
            ended: broadcast::channel(256).0,
            room: tokio::sync::Notify::new(),
        }
    }
}

/// One run going on.
pub struct LiveRun {
    workflow: String,
    seen: Mutex<Seen>,
    cancel: CancellationToken,
    reason: Mutex<String>,
    ended: CancellationToken,
}

#[derive(Default)]
struct Seen {
    events: Vec<Stamped>,
    watchers: Vec<mpsc::UnboundedSender<Stamped>>,
}

impl LiveRun {
    /// Its workflow's name.
    pub fn workflow(&self) -> &str {
        &self.workflow
    }

    /// The events so far, and a receiver of those to come.
    pub fn watch(&self) -> (Vec<Stamped>, mpsc::UnboundedReceiver<Stamped>) {
        let mut seen = self.seen.lock().expect("run lock");
        let (sender, receiver) = mpsc::unbounded_channel();
        seen.watchers.push(sender);
        (seen.events.clone(), receiver)
    }

    /// Cancels it, for `reason` (its history ends with `run.cancelled`).
    pub fn cancel(&self, reason: &str) {
        *self.reason.lock().expect("reason lock") = reason.to_string();
        self.cancel.cancel();
    }

    /// Resolves once it has ended and its record is written.
    pub async fn ended(&self) {
        self.ended.cancelled().await
    }

    /// True once its last event (`run.finished`, `run.cancelled`) is out: it is
    /// only writing its record then.
    pub fn told_its_end(&self) -> bool {
        let seen = self.seen.lock().expect("run lock");
        seen.events.last().is_some_and(|e| {
            matches!(
                e.event,
                RunEvent::RunFinished { .. } | RunEvent::RunCancelled { .. }
            )
        })
    }

    fn push(&self, event: &Stamped) {
        let mut seen = self.seen.lock().expect("run lock");
        seen.watchers.retain(|w| w.send(event.clone()).is_ok());
        seen.events.push(event.clone());
    }
}

/// A run that ended: what `workflow_run` triggers react to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    /// The run's id.
    pub id: String,
    /// Its workflow's name.
    pub workflow: String,
    /// `success`, `failed` or `cancelled`.
    pub status: String,
}

/// What a run begins from: a workflow's text, or an earlier run to go on with.
pub enum Begin {
    /// A new run of this text.
    New(String),
    /// The run of this state, resumed.
    Resume(RunState),
}

/// Why a run cannot be launched.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// The workflow does not check here (a service it needs is not served).
    #[error(transparent)]
    Invalid(WorkflowError),
    /// The broker cannot be reached, or the run cannot be recorded.
    #[error("{0}")]
    Unavailable(String),
}

/// What a trigger did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fired {
    /// A run started, of this id.
    Started(String),
    /// As many runs as the workflow may have go on: this one waits its turn.
    Queued,
    /// As many runs as the workflow may have go on: nothing started.
    Skipped,
}

impl Host {
    /// Checks, records and starts a run of `workflow` in the background; its id,
    /// once it has begun. Its events are kept for watchers while it goes on.
    pub async fn launch(
        self: &Arc<Self>,
        workflow: Workflow,
        begin: Begin,
        mut options: RunOptions,
        cache: bool,
    ) -> Result<String, LaunchError> {
        // Checked here, for the caller to hear what is wrong; checked again as it runs.
        match self.check(&workflow, &options).await {
            Ok(_) => {}
            Err(RunError::Invalid(error)) => return Err(LaunchError::Invalid(error)),
            Err(error) => return Err(LaunchError::Unavailable(error.to_string())),
        }
        let id = options.run_id.clone();
        let secrets = runner::secret_values(&workflow, &options.env);
        let recorded = match begin {
            Begin::New(text) => {
                RunRecord::of_workflow(self.cache(), &id, &workflow, &text, secrets)
            }
            Begin::Resume(state) => RunRecord::resume(self.cache(), &id, state, secrets),
        };
        let record = recorded
            .map_err(|e| LaunchError::Unavailable(format!("cannot record run {id}: {e}")))?;
        options.cache = cache.then(|| self.step_cache());
        let live = Arc::new(LiveRun {
            workflow: workflow.name.clone(),
            seen: Mutex::default(),
            cancel: CancellationToken::new(),
            reason: Mutex::default(),
            ended: CancellationToken::new(),
        });
        self.live
            .runs
            .lock()
            .expect("runs lock")
            .insert(id.clone(), live.clone());
        let host = self.clone();
        let run_id = id.clone();
        self.live.tracker.spawn(async move {
            let status = host.go_on(workflow, options, record, &live).await;
            {
                // Only this run: a resumed one may already stand under its id.
                let mut runs = host.live.runs.lock().expect("runs lock");
                if runs.get(&run_id).is_some_and(|r| Arc::ptr_eq(r, &live)) {
                    runs.remove(&run_id);
                }
            }
            live.ended.cancel();
            host.live.room.notify_waiters();
            crate::telemetry::run_ended(&live.workflow, &status);
            let _ = host.live.ended.send(Ended {
                id: run_id,
                workflow: live.workflow.clone(),
                status,
            });
        });
        Ok(id)
    }

    /// Runs it to its end (or its cancel); the status it ended with.
    async fn go_on(
        &self,
        workflow: Workflow,
        options: RunOptions,
        mut record: RunRecord,
        live: &LiveRun,
    ) -> String {
        let id = options.run_id.clone();
        let mut keep = |event: &Stamped| {
            if let Err(error) = record.record(event) {
                tracing::error!(run = %id, %error, "cannot write the run's history");
            }
            live.push(event);
        };
        let outcome = {
            // Dropped when cancelled: each step under way asks its host to stop it.
            let report = self.run(&workflow, options, &mut keep);
            tokio::select! {
                report = report => Some(report),
                () = live.cancel.cancelled() => None,
            }
        };
        match outcome {
            Some(Ok(report)) if report.success() => "success".into(),
            Some(Ok(_)) => "failed".into(),
            Some(Err(error)) => {
                tracing::error!(run = %id, %error, "the run could not go on");
                "failed".into()
            }
            None => {
                let reason = live.reason.lock().expect("reason lock").clone();
                tracing::info!(run = %id, %reason, "cancelled");
                keep(&Stamped::now(RunEvent::RunCancelled { reason }));
                "cancelled".into()
            }
        }
    }

    /// The run `id`, while it goes on.
    pub fn live_run(&self, id: &str) -> Option<Arc<LiveRun>> {
        self.live.runs.lock().expect("runs lock").get(id).cloned()
    }

    /// The runs of `workflow` going on, oldest first (ids sort by their start).
    pub fn live_runs_of(&self, workflow: &str) -> Vec<(String, Arc<LiveRun>)> {
        let runs = self.live.runs.lock().expect("runs lock");
        runs.iter()
            .filter(|(_, run)| run.workflow == workflow)
            .map(|(id, run)| (id.clone(), run.clone()))
            .collect()
    }

    /// Each run's end, from now on.
    pub fn runs_ended(&self) -> broadcast::Receiver<Ended> {
        self.live.ended.subscribe()
    }

    /// Waits at most `grace` for the runs going on to end; launches no more.
    pub async fn drain_runs(&self, grace: Duration) -> bool {
        self.live.tracker.close();
        tokio::time::timeout(grace, self.live.tracker.wait())
            .await
            .is_ok()
    }

    /// Starts a run of the kept workflow `name` for `trigger` (`kind` and what
    /// fired), as its `concurrency:` says: now, after a run of it ends (`queue`),
    /// not at all (`skip`), or once its oldest run is cancelled (`cancel-oldest`).
    pub async fn fire(self: &Arc<Self>, name: &str, trigger: Value) -> Result<Fired, LaunchError> {
        let kind = trigger["kind"].as_str().unwrap_or("manual").to_string();
        let fired = self.fire_kept(name, trigger).await;
        let outcome = match &fired {
            Ok(Fired::Started(_)) => "started",
            Ok(Fired::Queued) => "queued",
            Ok(Fired::Skipped) => "skipped",
            Err(_) => "refused",
        };
        crate::telemetry::triggered(name, &kind, outcome);
        fired
    }

    /// [`Self::fire`] without its measurement.
    async fn fire_kept(self: &Arc<Self>, name: &str, trigger: Value) -> Result<Fired, LaunchError> {
        let Some(kept) = self.workflows().get(name).cloned() else {
            return Err(LaunchError::Unavailable(format!(
                "no workflow `{name}` is kept"
            )));
        };
        let policy = kept.workflow.concurrency;
        let busy = self.live_runs_of(name).len() >= policy.max;
        let launch = |host: Arc<Self>| async move {
            let options = RunOptions {
                trigger: Some(trigger),
                ..RunOptions::default()
            };
            // As kept when it starts: a run queued before a reload takes the new version.
            let kept = host
                .workflows()
                .get(&kept.workflow.name)
                .cloned()
                .unwrap_or(kept);
            host.launch(kept.workflow, Begin::New(kept.text), options, true)
                .await
        };
        if !busy {
            return launch(self.clone()).await.map(Fired::Started);
        }
        match policy.when_busy {
            WhenBusy::Skip => {
                tracing::info!(workflow = %name, "skipped: as many runs as it may have go on");
                Ok(Fired::Skipped)
            }
            WhenBusy::CancelOldest => {
                if let Some((_, oldest)) = self.live_runs_of(name).into_iter().next() {
                    oldest.cancel("cancelled for a newer trigger (concurrency: cancel-oldest)");
                    oldest.ended().await;
                }
                launch(self.clone()).await.map(Fired::Started)
            }
            WhenBusy::Queue => {
                let host = self.clone();
                let name = name.to_string();
                self.live.tracker.spawn(async move {
                    loop {
                        let room = host.live.room.notified();
                        tokio::pin!(room);
                        room.as_mut().enable();
                        if host.live_runs_of(&name).len() < policy.max {
                            break;
                        }
                        room.await;
                    }
                    if let Err(error) = launch(host).await {
                        tracing::error!(workflow = %name, %error, "a queued trigger could not start its run");
                    }
                });
                Ok(Fired::Queued)
            }
        }
    }
}
