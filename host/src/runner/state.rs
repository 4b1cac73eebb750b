//! A run as a state machine: its steps waiting, running and ended, and what each
//! phase of the run does to them.

use super::RunOptions;
use super::decide::{Decision, Env, Known, StepScope, decide, layered, step_input};
use super::emit::Emitter;
use super::events::{RunEvent, Stamped, StepStatus};
use super::fan_out;
use super::ready::Waiting;
use super::report::{RunReport, StepReport};
use super::request::Pending;
use super::step::{self, Ended, Note, Notes};
use crate::bus::Bus;
use crate::protocol::Object;
use crate::workflow::expression::{self, StepView};
use crate::workflow::for_each;
use crate::workflow::graph::Graph;
use crate::workflow::{Step, Workflow};
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use std::collections::BTreeMap;
use std::time::Instant;
use tokio::sync::mpsc;

/// What woke the run up.
pub(super) enum Wake {
    /// A running step (by index) said something.
    Said(usize, Note),
    /// A running step's tries ended.
    Ended(Ended),
    /// The workflow's timeout passed.
    Deadline,
}

/// One run under way.
///
/// Step futures are polled only in [`RunState::next`]; every other phase awaits
/// the bus alone (publishing events) and holds no lock while it does, so a step
/// never waits on the loop that polls it.
pub(super) struct RunState<'a, F> {
    workflow: &'a Workflow,
    bus: &'a Bus,
    options: &'a RunOptions,
    graph: Graph,
    /// The run's environment, or why the workflow's `env` cannot be made.
    env: Result<Env, String>,
    /// When the workflow's timeout passes.
    deadline: Option<Instant>,
    /// Requests under way, shared by the running steps.
    requests: Pending,
    /// Steps not started.
    waiting: Waiting,
    /// For each step, whether it started (ran, or ended at once).
    started: Vec<bool>,
    /// The running steps' tries.
    running: FuturesUnordered<BoxFuture<'a, Ended>>,
    notes: mpsc::UnboundedReceiver<(usize, Note)>,
    /// Given to each running step, to say what it does.
    notes_tx: Notes,
    /// For each step, how it ended, once it has.
    reports: Vec<Option<StepReport>>,
    /// What the ended steps show to the steps after them, by id.
    views: BTreeMap<String, StepView>,
    events: Emitter<'a, F>,
}

impl<'a, F: FnMut(&Stamped)> RunState<'a, F> {
    /// `workflow`'s run, nothing started yet; its events go to `events`.
    pub(super) fn new(
        workflow: &'a Workflow,
        bus: &'a Bus,
        options: &'a RunOptions,
        events: Emitter<'a, F>,
    ) -> Self {
        let steps = workflow.steps.len();
        let graph = Graph::new(&workflow.steps);
        let env = layered(
            &Env::new(options.env.clone()),
            &workflow.env,
            &workflow.secrets,
        )
        .map_err(|why| format!("the workflow's {why}"));
        let (notes_tx, notes) = mpsc::unbounded_channel();
        RunState {
            workflow,
            bus,
            options,
            waiting: Waiting::new(&graph, steps),
            graph,
            env,
            deadline: workflow.timeout.and_then(|t| Instant::now().checked_add(t)),
            requests: Pending::default(),
            started: vec![false; steps],
            running: FuturesUnordered::new(),
            notes,
            notes_tx,
            reports: vec![None; steps],
            views: BTreeMap::new(),
            events,
        }
    }

    /// True when no step runs: nothing more can happen.
    pub(super) fn idle(&self) -> bool {
        self.running.is_empty()
    }

    /// Starts (or skips, fails, takes from the resumed run) every step whose
    /// needs have ended, in file order, while fewer than `max_parallel` run.
    ///
    /// A step ended at once may make later steps ready, taken in the same pass,
    /// and earlier ones, taken in the next.
    pub(super) async fn start_ready(&mut self) {
        let room = self.options.max_parallel.max(1);
        let mut changed = true;
        while changed {
            changed = false;
            let mut from = 0;
            while let Some(index) = self.waiting.ready_from(from) {
                if self.running.len() >= room {
                    return;
                }
                from = index + 1;
                changed = true;
                self.start(index).await;
            }
        }
    }

    /// Step `index`, whose needs have ended: it runs, or ends at once.
    async fn start(&mut self, index: usize) {
        self.waiting.start(index);
        self.started[index] = true;
        let workflow = self.workflow;
        let step = &workflow.steps[index];
        let decision = match &self.env {
            Err(why) => Decision::Fail(why.clone()),
            Ok(env) => {
                let known = Known {
                    success: self.needs_succeeded(index),
                    env,
                    views: &self.views,
                    done: &self.options.done,
                    secrets: &workflow.secrets,
                };
                decide(step, &known)
            }
        };
        let report = match decision {
            Decision::Run(env) => match self.launch(step, env) {
                Some(report) => report,
                None => return,
            },
            Decision::Skip(reason) => {
                let skipped = RunEvent::StepSkipped {
                    step: step.id.clone(),
                    reason: reason.clone(),
                };
                self.events.emit(skipped).await;
                StepReport::not_run(step, StepStatus::Skipped, reason)
            }
            Decision::Done(kept) => StepReport::reused(step, kept),
            Decision::Fail(why) => StepReport::not_run(step, StepStatus::Failed, why),
        };
        if report.status != StepStatus::Skipped {
            self.events.emit(report.finished_event()).await;
        }
        self.record(index, report);
    }

    /// True when every step `index` needs succeeded, or failed with `continue_on_error`.
    fn needs_succeeded(&self, index: usize) -> bool {
        self.graph.needs(index).iter().all(|&need| {
            let report = self.reports[need].as_ref().expect("ended");
            report.status.succeeded() || report.continued
        })
    }

    /// Makes `step`'s input and sends its tries on their way: `None` once it runs;
    /// its report when it ends at once (an earlier success reused, or no input).
    fn launch(&mut self, step: &'a Step, env: Env) -> Option<StepReport> {
        if step.for_each.is_some() {
            return self.launch_items(step, env);
        }
        let scope = StepScope {
            env,
            steps: &self.views,
            secrets: &self.workflow.secrets,
            trigger: self.options.trigger.as_ref(),
            item: None,
        };
        let input = match step_input(step, &scope, self.deadline) {
            Ok(input) => input,
            Err(why) => {
                let why = format!("cannot make its input: {why}");
                return Some(StepReport::not_run(step, StepStatus::Failed, why));
            }
        };
        let options = self.options;
        let cache = options.cache.as_ref();
        let key = cache.and_then(|cache| cache.key(step, &input));
        let kept = key.as_deref().zip(cache);
        if let Some(kept) = kept.and_then(|(key, cache)| cache.lookup(key)) {
            return Some(StepReport::reused(step, kept));
        }
        let schemas = options.schemas.get(&step.action).map(|s| &**s);
        let requests = self.requests.clone();
        let notes = self.notes_tx.clone();
        let tries = step::attempts(self.bus, step, input, key, schemas, requests, notes);
        self.running.push(tries.boxed());
        None
    }

    /// [`Self::launch`] for a `for_each` step: its list resolved, one input per item.
    fn launch_items(&mut self, step: &'a Step, env: Env) -> Option<StepReport> {
        let for_each = step.for_each.as_ref().expect("a for_each step");
        let mut scope = StepScope {
            env,
            steps: &self.views,
            secrets: &self.workflow.secrets,
            trigger: self.options.trigger.as_ref(),
            item: None,
        };
        let list = expression::resolve(&for_each.items, &scope)
            .map_err(|why| format!("cannot make its `for_each` list: {why}"))
            .and_then(for_each::resolved_items);
        let list = match list {
            Ok(list) => list,
            Err(why) => return Some(StepReport::not_run(step, StepStatus::Failed, why)),
        };
        let cache = self.options.cache.as_ref();
        let mut items = Vec::with_capacity(list.len());
        for (at, item) in list.iter().enumerate() {
            scope.item = Some((item, at));
            let input = match step_input(step, &scope, self.deadline) {
                Ok(input) => input,
                Err(why) => {
                    let why = format!("cannot make the input of item {}: {why}", at + 1);
                    return Some(StepReport::not_run(step, StepStatus::Failed, why));
                }
            };
            let key = cache.and_then(|cache| cache.key(step, &input));
            let label = short(item);
            items.push(fan_out::Item { input, key, label });
        }
        let schemas = self.options.schemas.get(&step.action).map(|s| &**s);
        let requests = self.requests.clone();
        let notes = self.notes_tx.clone();
        let tries = fan_out::fan_out(self.bus, step, items, cache, schemas, requests, notes);
        self.running.push(tries.boxed());
        None
    }

    /// Waits for what happens next: a step says something, a step's tries end,
    /// or the workflow's timeout passes (what steps say comes first).
    pub(super) async fn next(&mut self) -> Wake {
        let deadline = self.deadline;
        let timer = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            Some((index, note)) = self.notes.recv() => Wake::Said(index, note),
            Some(end) = self.running.next() => Wake::Ended(end),
            () = timer => Wake::Deadline,
        }
    }

    /// Shows what step `index` said.
    pub(super) async fn on_note(&mut self, index: usize, note: Note) {
        let event = note.event(&self.workflow.steps[index]);
        self.events.emit(event).await;
    }

    /// Shows what running steps said and was not shown yet.
    async fn drain_notes(&mut self) {
        while let Ok((index, note)) = self.notes.try_recv() {
            self.on_note(index, note).await;
        }
    }

    /// Records how a running step's tries ended, after what it said before; a
    /// success is kept for reuse.
    pub(super) async fn on_step_ended(&mut self, end: Ended) {
        self.drain_notes().await;
        let step = &self.workflow.steps[end.index];
        let duration = end.started.elapsed();
        let report = match end.result {
            Ok(results) => {
                if let (Some(key), Some(cache)) = (&end.key, &self.options.cache) {
                    cache.store(key, &results);
                }
                let status = StepStatus::Success;
                StepReport::ran(step, status, None, results, end.attempts, duration)
            }
            Err(error) => {
                let status = StepStatus::Failed;
                let (error, outputs) = (Some(error), Object::new());
                let mut report =
                    StepReport::ran(step, status, error, outputs, end.attempts, duration);
                report.continued = step.continue_on_error;
                report
            }
        };
        self.events.emit(report.finished_event()).await;
        self.record(end.index, report);
    }

    /// Keeps how step `index` ended, what it shows the steps after it, and which
    /// of them may start now.
    fn record(&mut self, index: usize, report: StepReport) {
        self.views.insert(report.id.clone(), report.view());
        self.reports[index] = Some(report);
        self.waiting.ended(index);
    }

    /// Ends the run at the workflow's timeout: the running steps are dropped and
    /// fail, the steps not started are skipped.
    pub(super) async fn time_out(&mut self) {
        self.drain_notes().await;
        let limit = humantime::format_duration(self.workflow.timeout.unwrap_or_default());
        drop(std::mem::take(&mut self.running));
        let workflow = self.workflow;
        for (index, step) in workflow.steps.iter().enumerate() {
            if self.reports[index].is_some() {
                continue;
            }
            let reason = format!("the workflow ran past its timeout of {limit}");
            let report = if self.started[index] {
                let mut report = StepReport::not_run(step, StepStatus::Failed, reason);
                report.attempts = 1;
                self.events.emit(report.finished_event()).await;
                report
            } else {
                let skipped = RunEvent::StepSkipped {
                    step: step.id.clone(),
                    reason: reason.clone(),
                };
                self.events.emit(skipped).await;
                StepReport::not_run(step, StepStatus::Skipped, reason)
            };
            self.reports[index] = Some(report);
        }
    }

    /// The run's report, begun at `began` (a step never reached is skipped), after
    /// the event that says the run ended.
    pub(super) async fn finish(mut self, began: Instant) -> RunReport {
        let reports = std::mem::take(&mut self.reports);
        let steps = reports
            .into_iter()
            .zip(&self.workflow.steps)
            .map(|(report, step)| {
                let not_reached =
                    || StepReport::not_run(step, StepStatus::Skipped, "not reached".into());
                report.unwrap_or_else(not_reached)
            })
            .collect();
        let report = RunReport {
            run_id: self.options.run_id.clone(),
            workflow: self.workflow.name.clone(),
            steps,
            duration: began.elapsed(),
        };
        self.events
            .emit(RunEvent::RunFinished {
                success: report.success(),
                duration_ms: report.duration.as_millis() as u64,
            })
            .await;
        report
    }
}

/// `item` as JSON text, cut short: how a `for_each` step names it in what it says.
fn short(item: &serde_json::Value) -> String {
    let text = item.to_string();
    match text.char_indices().nth(40) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    }
}
