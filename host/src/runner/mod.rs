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
//! [`run`] drives a small state machine (`state.rs`): start the steps that are
//! ready, wait for what happens next (a step says something, ends, or the
//! workflow's timeout passes), take it in; at the end, the report.
//!
//! - [`request`](mod@request): one request over the bus; `listen.rs`: what comes
//!   back about a run's requests, handed to each by its id; [`discovery`]: which
//!   services are up on the broker.
//! - [`events`]: what happens in a run; [`record`]: the run's folder.
//! - [`cache`]: steps reused from an earlier success (incremental runs).
//! - [`check`]: what is checked before anything runs.
//! - `state.rs`: the run's state and its phases; `ready.rs`: which steps may start;
//!   `decide.rs`: whether a ready step runs, with what; `step.rs`: one step's
//!   tries; `fan_out.rs`: a `for_each` step's requests, one per item; `emit.rs`: events masked and sent; `report.rs`: what became of it all.

pub mod cache;
pub mod check;
mod decide;
pub mod discovery;
mod emit;
pub mod events;
mod fan_out;
mod listen;
mod ready;
pub mod record;
mod report;
pub mod request;
mod state;
mod step;

pub use discovery::{ServiceUp, services_up, services_up_for};
pub use events::{RunEvent, Stamped, StepStatus};
pub use report::{RunReport, StepReport};
pub use request::{Pending, RequestError, request, request_among, runner_will};

use crate::bus::{Bus, BusError};
use crate::protocol::Object;
use crate::schema::ActionSchemas;
use crate::workflow::Workflow;
use emit::Emitter;
use state::{RunState, Wake};
use std::collections::BTreeMap;
use std::time::Instant;

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
    /// What started the run (`${{ trigger.… }}`): a message, a webhook's body, a
    /// schedule's time; none when it was asked for.
    pub trigger: Option<serde_json::Value>,
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
            trigger: None,
        }
    }
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

/// Runs the workflow's steps as their needs allow; `on_event` sees every event
/// (already masked), which is also published on `copper/runs/<id>/events`.
pub async fn run(
    workflow: &Workflow,
    bus: &Bus,
    options: RunOptions,
    on_event: impl FnMut(&Stamped),
) -> Result<RunReport, BusError> {
    use tracing::Instrument as _;
    let span = tracing::info_span!(
        "run",
        run = %options.run_id,
        workflow = %workflow.name,
        success = tracing::field::Empty
    );
    let report = run_all(workflow, bus, options, on_event)
        .instrument(span.clone())
        .await;
    if let Ok(report) = &report {
        span.record("success", report.success());
    }
    report
}

/// [`run`] within its span.
async fn run_all(
    workflow: &Workflow,
    bus: &Bus,
    options: RunOptions,
    on_event: impl FnMut(&Stamped),
) -> Result<RunReport, BusError> {
    let began = Instant::now();
    let secrets = secret_values(workflow, &options.env);
    let mut events = Emitter::new(bus, &options.run_id, secrets, on_event);
    bus.publish("runner/status", "connected", true).await?;
    events
        .emit(RunEvent::RunStarted {
            run: options.run_id.clone(),
            workflow: workflow.name.clone(),
            resumed: !options.done.is_empty(),
            trigger: options.trigger.clone(),
        })
        .await;
    let mut run = RunState::new(workflow, bus, &options, events);
    loop {
        run.start_ready().await;
        if run.idle() {
            break;
        }
        match run.next().await {
            Wake::Said(index, note) => run.on_note(index, note).await,
            Wake::Ended(end) => run.on_step_ended(end).await,
            Wake::Deadline => {
                run.time_out().await;
                break;
            }
        }
    }
    Ok(run.finish(began).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run can be spawned: its future is `Send` when its callback is (checked
    /// when compiled, never called).
    #[allow(dead_code)]
    fn a_run_is_send(workflow: &Workflow, bus: &Bus) {
        fn send<T: Send>(_: T) {}
        send(run(workflow, bus, RunOptions::default(), |_| {}));
    }
}
