//! One step's tries: publish, await, check against the schemas; wait and try again.

use super::events::RunEvent;
use super::request::{Pending, request_among};
use crate::bus::Bus;
use crate::protocol::{Object, Status};
use crate::schema::{self, ActionSchemas};
use crate::workflow::Step;
use serde_json::Value;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// What a running step tells the run loop.
pub(super) enum Note {
    /// A try begins (from 1).
    Started(u32),
    /// Its service reported progress.
    Progress(String),
    /// A try failed; `attempt` comes after `delay`.
    Retried {
        attempt: u32,
        delay: Duration,
        error: String,
    },
}

impl Note {
    /// The event for what `step` said.
    pub(super) fn event(self, step: &Step) -> RunEvent {
        match self {
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
}

/// Where a running step's notes go: its index in the workflow, and the note.
pub(super) type Notes = mpsc::UnboundedSender<(usize, Note)>;

/// How one step's tries ended.
pub(super) struct Ended {
    /// The step's index in the workflow.
    pub(super) index: usize,
    /// Its key for reuse, when it has one.
    pub(super) key: Option<String>,
    /// Its results, or why its last try failed.
    pub(super) result: Result<Object, String>,
    /// Tries it took.
    pub(super) attempts: u32,
    /// When its first try began.
    pub(super) started: Instant,
}

/// Runs a step's tries: publish, await, check; wait and try again on failure.
pub(super) async fn attempts(
    bus: &Bus,
    step: &Step,
    input: Object,
    key: Option<String>,
    schemas: Option<&ActionSchemas>,
    pending: Pending,
    notes: Notes,
) -> Ended {
    let started = Instant::now();
    let (result, attempts) = tries(bus, step, &input, schemas, &pending, &notes, None).await;
    Ended {
        index: step.number - 1,
        key,
        result,
        attempts,
        started,
    }
}

/// The tries of one request of `step`: its result (or its last error) and how many
/// tries it took. `item` names the item of a `for_each` step the request is for:
/// what it says then goes out as the step's progress, each line with that name.
pub(super) async fn tries(
    bus: &Bus,
    step: &Step,
    input: &Object,
    schemas: Option<&ActionSchemas>,
    pending: &Pending,
    notes: &Notes,
    item: Option<&str>,
) -> (Result<Object, String>, u32) {
    let index = step.number - 1;
    let mut attempt = 1;
    let result = loop {
        if item.is_none() {
            let _ = notes.send((index, Note::Started(attempt)));
        }
        let span = tracing::info_span!(
            "step",
            step = %step.id,
            action = %step.action,
            attempt,
            item = item.unwrap_or_default(),
        );
        let tried = tracing::Instrument::instrument(
            one_try(bus, step, input, schemas, pending, notes, item),
            span,
        )
        .await;
        match tried {
            Err(Try::Failed(error)) if attempt < step.retry.attempts => {
                let delay = step.retry.delay(attempt + 1);
                attempt += 1;
                let error = match item {
                    Some(item) => format!("{item}: {error}"),
                    None => error,
                };
                let retried = Note::Retried {
                    attempt,
                    delay,
                    error,
                };
                let _ = notes.send((index, retried));
                tokio::time::sleep(delay).await;
            }
            Err(Try::Failed(error) | Try::Final(error)) => break Err(error),
            Ok(outputs) => break Ok(outputs),
        }
    };
    (result, attempt)
}

/// Why a try failed: worth another try, or not (invalid input).
enum Try {
    Failed(String),
    Final(String),
}

/// One try: check the input, publish `runner/start`, await the finish, publish
/// `runner/finish`, check the results.
async fn one_try(
    bus: &Bus,
    step: &Step,
    input: &Object,
    schemas: Option<&ActionSchemas>,
    pending: &Pending,
    notes: &Notes,
    item: Option<&str>,
) -> Result<Object, Try> {
    let index = step.number - 1;
    if let Some(schemas) = schemas {
        check_input(step, schemas, input)?;
    }
    let published = serde_json::to_string(input).expect("JSON serializes");
    bus.publish("runner/start", published, false)
        .await
        .map_err(|e| Try::Failed(e.to_string()))?;
    let on_progress = |message: String| {
        let message = match item {
            Some(item) => format!("{item}: {message}"),
            None => message,
        };
        let _ = notes.send((index, Note::Progress(message)));
    };
    let wait = answer_wait(step, input);
    let answer = request_among(bus, &step.action, input, wait, on_progress, pending).await;
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
        check_output(step, schemas, &outputs)?;
    }
    Ok(outputs)
}

/// How long a try waits for its finish: the step's timeout (or the one its input
/// carries, the run's deadline), and some more for the answer to come back.
fn answer_wait(step: &Step, input: &Object) -> Option<Duration> {
    step.timeout()
        .or_else(|| {
            input
                .get("timeout")
                .and_then(|t| crate::timeout::parse(t).ok())
        })
        .map(|t| t + Duration::from_secs(10))
}

/// The step's input against its action's input schema: no use trying again if not.
fn check_input(step: &Step, schemas: &ActionSchemas, input: &Object) -> Result<(), Try> {
    schema::check(&schemas.input, &Value::Object(input.clone())).map_err(|why| {
        Try::Final(format!(
            "step `{}` (line {}): its input does not match the schema of `{}`: {why}",
            step.id, step.line, step.action
        ))
    })
}

/// The step's results against its action's output schema.
fn check_output(step: &Step, schemas: &ActionSchemas, outputs: &Object) -> Result<(), Try> {
    schema::check(&schemas.output, &Value::Object(outputs.clone())).map_err(|why| {
        Try::Failed(format!(
            "the results of `{}` do not match its schema: {why}",
            step.action
        ))
    })
}
