//! The runner: runs a workflow's steps as their needs allow, each published on
//! its action topic and awaited until its finish.
//!
//! As copper's runner it publishes `runner/status`, then for each step
//! `runner/start`, the request, and `runner/finish`. Steps whose needs have ended
//! start at once (no waiting for a whole layer), up to `max_parallel` at a time.
//! A failed step skips the steps that need it, unless they ask for `failure()` or
//! `always()`; independent branches go on. Every change is an event: shown,
//! written to the run's folder, published on `copper/runs/<id>/events`.
//!
//! - [`request`](mod@request): one request over the bus.
//! - [`events`]: what happens in a run; [`record`]: the run's folder.
//! - [`cache`]: steps reused from an earlier success (incremental runs).
//! - [`check`]: what is checked before anything runs.

pub mod cache;
pub mod check;
pub mod events;
pub mod record;
pub mod request;

pub use events::{RunEvent, Stamped, StepStatus};
pub use request::{
    Pending, RequestError, ServiceUp, request, request_among, runner_will, services_up,
};

use crate::bus::{Bus, BusError};
use crate::protocol::{Object, Status};
use crate::schema::{self, ActionSchemas};
use crate::secret;
use crate::workflow::expression::{self, ConditionScope, Scope, StepView};
use crate::workflow::graph::Graph;
use crate::workflow::{Step, Workflow};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// How a run goes.
///
/// ```
/// use copper_wasm::runner::RunOptions;
/// let options = RunOptions {
///     max_parallel: 4,
///     // copper's services say `up` but not what they answer.
///     external: vec!["legacy".into()],
///     ..RunOptions::default()
/// };
/// assert!(options.done.is_empty() && options.cache.is_none());
/// ```
pub struct RunOptions {
    /// The run's id (its folder, its events topic).
    pub run_id: String,
    /// Steps running at once, at most.
    pub max_parallel: usize,
    /// The environment the workflow sees (the process's, then a `.env` file).
    pub env: BTreeMap<String, String>,
    /// Schemas of the actions, by topic (those known); [`crate::Host::run`] fills them.
    pub schemas: BTreeMap<String, std::sync::Arc<ActionSchemas>>,
    /// Services served by others that need not say what they answer (copper's, which
    /// only say `up`): any action of theirs is taken.
    pub external: Vec<String>,
    /// Steps that already succeeded (a resumed run), with their results: not run again.
    pub done: BTreeMap<String, Object>,
    /// Earlier successes to reuse (none: every step runs).
    pub cache: Option<cache::StepCache>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            run_id: record::new_run_id(),
            max_parallel: 16,
            env: std::env::vars().collect(),
            schemas: BTreeMap::new(),
            external: Vec::new(),
            done: BTreeMap::new(),
            cache: None,
        }
    }
}

/// What became of one step.
#[derive(Debug, Clone)]
pub struct StepReport {
    /// Its id.
    pub id: String,
    /// Position in the workflow, from 1.
    pub number: usize,
    /// Its action topic.
    pub action: String,
    /// How it ended.
    pub status: StepStatus,
    /// Why it failed or was skipped.
    pub error: Option<String>,
    /// Time from its first request to its end.
    pub duration: Duration,
    /// Its results (the finish entry: the request updated with results).
    pub outputs: Object,
    /// Tries it took.
    pub attempts: u32,
    /// True when it failed with `continue_on_error`.
    pub continued: bool,
}

impl StepReport {
    /// The step's service.
    pub fn service(&self) -> &str {
        crate::protocol::service_of(&self.action)
    }
}

/// What became of a whole run.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// The run's id.
    pub run_id: String,
    /// The workflow's name.
    pub workflow: String,
    /// Every step, in file order.
    pub steps: Vec<StepReport>,
    /// Wall time of the run.
    pub duration: Duration,
}

impl RunReport {
    /// True when no step failed (but those with `continue_on_error`).
    pub fn success(&self) -> bool {
        self.steps
            .iter()
            .all(|s| s.status != StepStatus::Failed || s.continued)
    }
}

/// What a running step tells the run loop.
enum Note {
    Started(u32),
    Progress(String),
    Retried {
        attempt: u32,
        delay: Duration,
        error: String,
    },
}

/// How one step's tries ended.
struct Ended {
    index: usize,
    /// Its key for reuse, when it has one.
    key: Option<String>,
    result: Result<Object, String>,
    attempts: u32,
    started: Instant,
}

/// The environment of one step: the run's, the workflow's `env`, the step's `env`.
struct StepScope<'a> {
    env: BTreeMap<String, String>,
    /// Ended steps (only a success has results).
    steps: &'a BTreeMap<String, StepView>,
    secrets: &'a [String],
}

impl Scope for StepScope<'_> {
    fn output(&self, step: &str, field: &str) -> Option<Value> {
        self.steps.get(step)?.outputs.get(field).cloned()
    }
    fn env(&self, name: &str) -> Option<String> {
        self.env.get(name).cloned()
    }
    fn is_secret(&self, name: &str) -> bool {
        self.secrets.iter().any(|s| s == name)
    }
}

/// `base` with `extra` over it, each of `extra`'s values interpolated against `base`.
fn layered(
    base: &BTreeMap<String, String>,
    extra: &BTreeMap<String, String>,
    secrets: &[String],
) -> Result<BTreeMap<String, String>, String> {
    let mut env = base.clone();
    if extra.is_empty() {
        return Ok(env);
    }
    let no_steps = BTreeMap::new();
    let scope = StepScope {
        env: base.clone(),
        steps: &no_steps,
        secrets,
    };
    for (key, value) in extra {
        let resolved = expression::resolve(&Value::String(value.clone()), &scope)
            .map_err(|why| format!("env `{key}`: {why}"))?;
        env.insert(
            key.clone(),
            resolved.as_str().unwrap_or_default().to_string(),
        );
    }
    Ok(env)
}

/// The values of the workflow's secrets in `env`, to be masked wherever they would show.
pub fn secret_values(workflow: &Workflow, env: &BTreeMap<String, String>) -> Vec<String> {
    workflow
        .secrets
        .iter()
        .filter_map(|name| env.get(name).cloned())
        .filter(|value| !value.is_empty())
        .collect()
}

/// The fields a step sends, resolved; its deadline shortened to what is left of the run's.
fn step_input(
    step: &Step,
    scope: &StepScope<'_>,
    run_deadline: Option<Instant>,
) -> Result<Object, String> {
    let resolved = expression::resolve(&Value::Object(step.entry.clone()), scope)?;
    let Value::Object(mut input) = resolved else {
        unreachable!("an object resolves to an object")
    };
    if let Some(deadline) = run_deadline {
        let left = deadline.saturating_duration_since(Instant::now());
        if step.timeout().is_none_or(|own| own > left) {
            input.insert("timeout".into(), Value::from(left.as_secs_f64().max(0.001)));
        }
    }
    Ok(input)
}

/// Runs a step's tries: publish, await, check; wait and try again on failure.
async fn attempts(
    bus: &Bus,
    step: &Step,
    input: Object,
    key: Option<String>,
    schemas: Option<&ActionSchemas>,
    pending: &Pending,
    notes: mpsc::UnboundedSender<(usize, Note)>,
) -> Ended {
    let index = step.number - 1;
    let started = Instant::now();
    let mut attempt = 1;
    loop {
        let _ = notes.send((index, Note::Started(attempt)));
        let result = one_try(bus, step, &input, schemas, pending, &notes).await;
        match result {
            Err(Try::Failed(error)) if attempt < step.retry.attempts => {
                let delay = step.retry.delay(attempt + 1);
                attempt += 1;
                let _ = notes.send((
                    index,
                    Note::Retried {
                        attempt,
                        delay,
                        error,
                    },
                ));
                tokio::time::sleep(delay).await;
            }
            Err(Try::Failed(error) | Try::Final(error)) => {
                return Ended {
                    index,
                    key,
                    result: Err(error),
                    attempts: attempt,
                    started,
                };
            }
            Ok(outputs) => {
                return Ended {
                    index,
                    key,
                    result: Ok(outputs),
                    attempts: attempt,
                    started,
                };
            }
        }
    }
}

/// Why a try failed: worth another try, or not (invalid input).
enum Try {
    Failed(String),
    Final(String),
}

async fn one_try(
    bus: &Bus,
    step: &Step,
    input: &Object,
    schemas: Option<&ActionSchemas>,
    pending: &Pending,
    notes: &mpsc::UnboundedSender<(usize, Note)>,
) -> Result<Object, Try> {
    let index = step.number - 1;
    if let Some(schemas) = schemas {
        schema::check(&schemas.input, &Value::Object(input.clone())).map_err(|why| {
            Try::Final(format!(
                "step `{}` (line {}): its input does not match the schema of `{}`: {why}",
                step.id, step.line, step.action
            ))
        })?;
    }
    let published = serde_json::to_string(input).expect("JSON serializes");
    bus.publish("runner/start", published, false)
        .await
        .map_err(|e| Try::Failed(e.to_string()))?;
    let wait = step
        .timeout()
        .or_else(|| {
            input
                .get("timeout")
                .and_then(|t| crate::timeout::parse(t).ok())
        })
        .map(|t| t + Duration::from_secs(10));
    let answer = request_among(
        bus,
        &step.action,
        input,
        wait,
        |message| {
            let _ = notes.send((index, Note::Progress(message)));
        },
        pending,
    )
    .await;
    let outcome = match answer {
        Ok(finish) => match finish.status {
            Status::Success => Ok(finish.entry),
            Status::Failed => Err(finish.error.unwrap_or_else(|| "failed".into())),
        },
        Err(error) => Err(error.to_string()),
    };
    let entry = match &outcome {
        Ok(entry) if !entry.is_empty() => entry,
        _ => input,
    };
    let finished = serde_json::to_string(entry).expect("JSON serializes");
    let _ = bus.publish("runner/finish", finished, false).await;
    let outputs = outcome.map_err(Try::Failed)?;
    if let Some(schemas) = schemas {
        schema::check(&schemas.output, &Value::Object(outputs.clone())).map_err(|why| {
            Try::Failed(format!(
                "the results of `{}` do not match its schema: {why}",
                step.action
            ))
        })?;
    }
    Ok(outputs)
}

/// Runs the workflow's steps as their needs allow; `on_event` sees every event
/// (already masked), which is also published on `copper/runs/<id>/events`.
pub async fn run(
    workflow: &Workflow,
    bus: &Bus,
    options: RunOptions,
    mut on_event: impl FnMut(&Stamped),
) -> Result<RunReport, BusError> {
    let began = Instant::now();
    let secrets = secret_values(workflow, &options.env);
    let events_topic = format!("copper/runs/{}/events", options.run_id);
    // Every event is masked here, once, whatever it carries.
    let mut emit = async |event: RunEvent| {
        let stamped = Stamped::now(event);
        let (stamped, text) = if secrets.is_empty() {
            let text = serde_json::to_string(&stamped).expect("events serialize");
            (stamped, text)
        } else {
            let mut value = serde_json::to_value(&stamped).expect("events serialize");
            secret::mask_value(&mut value, &secrets);
            let text = value.to_string();
            (serde_json::from_value(value).expect("a masked event"), text)
        };
        on_event(&stamped);
        if let Err(error) = bus.publish(&events_topic, text, false).await {
            tracing::warn!(%error, "cannot publish a run event");
        }
    };
    bus.publish("runner/status", "connected", true).await?;
    emit(RunEvent::RunStarted {
        run: options.run_id.clone(),
        workflow: workflow.name.clone(),
        resumed: !options.done.is_empty(),
    })
    .await;

    let steps = &workflow.steps;
    let graph = Graph::new(steps);
    let (run_env, env_error) = match layered(&options.env, &workflow.env, &workflow.secrets) {
        Ok(env) => (env, None),
        Err(why) => (options.env.clone(), Some(format!("the workflow's {why}"))),
    };
    let deadline = workflow.timeout.map(|t| Instant::now() + t);
    let pending = Pending::default();
    let mut reports: Vec<Option<StepReport>> = vec![None; steps.len()];
    let mut views: BTreeMap<String, StepView> = BTreeMap::new();
    let mut started = vec![false; steps.len()];
    let mut running = FuturesUnordered::new();
    let (notes_tx, mut notes) = mpsc::unbounded_channel::<(usize, Note)>();

    loop {
        // Start, skip or take from the resumed run every step whose needs have ended.
        let mut changed = true;
        while changed {
            changed = false;
            for index in 0..steps.len() {
                if started[index] || running.len() >= options.max_parallel.max(1) {
                    continue;
                }
                let needs = graph.needs(index);
                if needs.iter().any(|&n| reports[n].is_none()) {
                    continue;
                }
                started[index] = true;
                changed = true;
                let step = &steps[index];
                let success = needs.iter().all(|&n| {
                    let report = reports[n].as_ref().expect("ended");
                    report.status.succeeded() || report.continued
                });
                let decision = match &env_error {
                    Some(why) => Decision::Fail(why.clone()),
                    None => decide(
                        step,
                        success,
                        &run_env,
                        &views,
                        &options.done,
                        &workflow.secrets,
                    ),
                };
                let report = match decision {
                    Decision::Run(env) => {
                        let scope = StepScope {
                            env,
                            steps: &views,
                            secrets: &workflow.secrets,
                        };
                        match step_input(step, &scope, deadline) {
                            Ok(input) => {
                                let key = options.cache.as_ref().and_then(|c| c.key(step, &input));
                                let kept = key
                                    .as_deref()
                                    .zip(options.cache.as_ref())
                                    .and_then(|(key, cache)| cache.lookup(key));
                                if let Some(kept) = kept {
                                    ended(step, StepStatus::Cached, None, kept, 0, Duration::ZERO)
                                } else {
                                    let schemas = options.schemas.get(&step.action).map(|s| &**s);
                                    running.push(attempts(
                                        bus,
                                        step,
                                        input,
                                        key,
                                        schemas,
                                        &pending,
                                        notes_tx.clone(),
                                    ));
                                    continue;
                                }
                            }
                            Err(why) => ended(
                                step,
                                StepStatus::Failed,
                                Some(format!("cannot make its input: {why}")),
                                Object::new(),
                                0,
                                Duration::ZERO,
                            ),
                        }
                    }
                    Decision::Skip(reason) => {
                        emit(RunEvent::StepSkipped {
                            step: step.id.clone(),
                            reason: reason.clone(),
                        })
                        .await;
                        ended(
                            step,
                            StepStatus::Skipped,
                            Some(reason),
                            Object::new(),
                            0,
                            Duration::ZERO,
                        )
                    }
                    Decision::Done(kept) => {
                        ended(step, StepStatus::Cached, None, kept, 0, Duration::ZERO)
                    }
                    Decision::Fail(why) => ended(
                        step,
                        StepStatus::Failed,
                        Some(why),
                        Object::new(),
                        0,
                        Duration::ZERO,
                    ),
                };
                if report.status != StepStatus::Skipped {
                    emit(finished_event(&report)).await;
                }
                record_end(&mut views, &report);
                reports[index] = Some(report);
            }
        }
        if running.is_empty() {
            break;
        }
        let timer = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            Some((index, note)) = notes.recv() => {
                emit(note_event(&steps[index], note)).await;
            }
            Some(end) = running.next() => {
                // What the step said before it ended comes first.
                while let Ok((index, note)) = notes.try_recv() {
                    emit(note_event(&steps[index], note)).await;
                }
                let step = &steps[end.index];
                let duration = end.started.elapsed();
                let report = match end.result {
                    Ok(results) => {
                        if let (Some(key), Some(cache)) = (&end.key, &options.cache) {
                            cache.store(key, &results);
                        }
                        ended(step, StepStatus::Success, None, results, end.attempts, duration)
                    }
                    Err(error) => {
                        let mut report = ended(step, StepStatus::Failed, Some(error), Object::new(), end.attempts, duration);
                        report.continued = step.continue_on_error;
                        report
                    }
                };
                emit(finished_event(&report)).await;
                record_end(&mut views, &report);
                reports[end.index] = Some(report);
            }
            () = timer => {
                while let Ok((index, note)) = notes.try_recv() {
                    emit(note_event(&steps[index], note)).await;
                }
                let limit = humantime::format_duration(workflow.timeout.unwrap_or_default());
                drop(std::mem::take(&mut running));
                for (index, step) in steps.iter().enumerate() {
                    if reports[index].is_some() {
                        continue;
                    }
                    let report = if started[index] {
                        ended(step, StepStatus::Failed, Some(format!("the workflow ran past its timeout of {limit}")), Object::new(), 1, Duration::ZERO)
                    } else {
                        let reason = format!("the workflow ran past its timeout of {limit}");
                        emit(RunEvent::StepSkipped { step: step.id.clone(), reason: reason.clone() }).await;
                        ended(step, StepStatus::Skipped, Some(reason), Object::new(), 0, Duration::ZERO)
                    };
                    if report.status == StepStatus::Failed {
                        emit(finished_event(&report)).await;
                    }
                    reports[index] = Some(report);
                }
                break;
            }
        }
    }
    let reports: Vec<StepReport> = reports
        .into_iter()
        .zip(steps)
        .map(|(report, step)| {
            report.unwrap_or_else(|| {
                ended(
                    step,
                    StepStatus::Skipped,
                    Some("not reached".into()),
                    Object::new(),
                    0,
                    Duration::ZERO,
                )
            })
        })
        .collect();
    let report = RunReport {
        run_id: options.run_id.clone(),
        workflow: workflow.name.clone(),
        steps: reports,
        duration: began.elapsed(),
    };
    emit(RunEvent::RunFinished {
        success: report.success(),
        duration_ms: report.duration.as_millis() as u64,
    })
    .await;
    Ok(report)
}

/// The event for what a running step said.
fn note_event(step: &Step, note: Note) -> RunEvent {
    match note {
        Note::Started(attempt) => RunEvent::StepStarted {
            step: step.id.clone(),
            action: step.action.clone(),
            attempt,
        },
        Note::Progress(message) => RunEvent::StepProgress {
            step: step.id.clone(),
            message,
        },
        Note::Retried {
            attempt,
            delay,
            error,
        } => RunEvent::StepRetried {
            step: step.id.clone(),
            attempt,
            delay_ms: delay.as_millis() as u64,
            error,
        },
    }
}

/// What to do with a step whose needs have ended.
enum Decision {
    /// Run it, with this environment.
    Run(BTreeMap<String, String>),
    /// Skip it, for this reason.
    Skip(String),
    /// Take these results from the run being resumed.
    Done(Object),
    /// It cannot run.
    Fail(String),
}

fn decide(
    step: &Step,
    success: bool,
    run_env: &BTreeMap<String, String>,
    views: &BTreeMap<String, StepView>,
    done: &BTreeMap<String, Object>,
    secrets: &[String],
) -> Decision {
    if let Some(kept) = done.get(&step.id) {
        return Decision::Done(kept.clone());
    }
    let after_failure = step
        .condition
        .as_ref()
        .is_some_and(|c| c.runs_after_failure());
    if !success && !after_failure {
        return Decision::Skip(format!(
            "a step it needs did not succeed ({})",
            step.needs.join(", ")
        ));
    }
    let env = match layered(run_env, &step.env, secrets) {
        Ok(env) => env,
        Err(why) => return Decision::Fail(why),
    };
    let env_name = env.get("ENV").map(String::as_str);
    if !step.only_in_env.is_empty()
        && !env_name.is_some_and(|e| step.only_in_env.iter().any(|o| o == e))
    {
        return Decision::Skip(format!(
            "it runs only when ENV is {} (ENV is {})",
            step.only_in_env.join(" or "),
            env_name.unwrap_or("not set")
        ));
    }
    if let Some(name) = env_name.filter(|e| step.exclude_in_env.iter().any(|x| x == e)) {
        return Decision::Skip(format!("it is excluded when ENV is {name}"));
    }
    if let Some(condition) = &step.condition {
        let scope = ConditionScope {
            steps: views,
            env: &env,
            success,
        };
        match condition.evaluate(&scope) {
            Ok(true) => {}
            Ok(false) => {
                return Decision::Skip(format!("its condition `{}` is false", condition.text));
            }
            Err(why) => return Decision::Fail(why),
        }
    }
    Decision::Run(env)
}

fn ended(
    step: &Step,
    status: StepStatus,
    error: Option<String>,
    outputs: Object,
    attempts: u32,
    duration: Duration,
) -> StepReport {
    StepReport {
        id: step.id.clone(),
        number: step.number,
        action: step.action.clone(),
        status,
        error,
        duration,
        outputs,
        attempts,
        continued: false,
    }
}

fn finished_event(report: &StepReport) -> RunEvent {
    RunEvent::StepFinished {
        step: report.id.clone(),
        status: report.status,
        duration_ms: report.duration.as_millis() as u64,
        outputs: report.outputs.clone(),
        error: report.error.clone(),
        attempts: report.attempts,
    }
}

/// Keeps what an ended step shows to the steps after it: references and conditions.
fn record_end(views: &mut BTreeMap<String, StepView>, report: &StepReport) {
    views.insert(
        report.id.clone(),
        StepView {
            status: report.status.as_str().to_string(),
            // Only a success has results others may reference.
            outputs: if report.status.succeeded() {
                report.outputs.clone()
            } else {
                Object::new()
            },
        },
    );
}
