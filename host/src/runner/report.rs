//! What became of each step and of the whole run, as the run reports it.

use super::events::{RunEvent, StepStatus};
use crate::protocol::Object;
use crate::workflow::Step;
use crate::workflow::expression::StepView;
use std::time::Duration;

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

    /// How `step` ended after `attempts` tries in `duration`.
    pub(super) fn ran(
        step: &Step,
        status: StepStatus,
        error: Option<String>,
        outputs: Object,
        attempts: u32,
        duration: Duration,
    ) -> Self {
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

    /// `step` ended without a try: skipped or failed, for `why`.
    pub(super) fn not_run(step: &Step, status: StepStatus, why: String) -> Self {
        Self::ran(step, status, Some(why), Object::new(), 0, Duration::ZERO)
    }

    /// `step`'s results taken without a try: from the run being resumed, or an
    /// earlier success.
    pub(super) fn reused(step: &Step, outputs: Object) -> Self {
        Self::ran(step, StepStatus::Cached, None, outputs, 0, Duration::ZERO)
    }

    /// The event saying the step ended.
    pub(super) fn finished_event(&self) -> RunEvent {
        RunEvent::StepFinished {
            step: self.id.clone(),
            status: self.status,
            duration_ms: self.duration.as_millis() as u64,
            outputs: self.outputs.clone(),
            error: self.error.clone(),
            attempts: self.attempts,
        }
    }

    /// What the step shows to the steps after it: references and conditions.
    pub(super) fn view(&self) -> StepView {
        StepView {
            status: self.status.as_str().to_string(),
            // Only a success has results others may reference.
            outputs: if self.status.succeeded() {
                self.outputs.clone()
            } else {
                Object::new()
            },
        }
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

impl RunReport {
    /// The report of a run of `workflow` told by its `events` (a run watched on a
    /// daemon): each step as its last `step.finished` or `step.skipped` says; a
    /// step with neither was not run.
    pub fn from_events(workflow: &crate::workflow::Workflow, events: &[RunEvent]) -> Self {
        let mut report = RunReport {
            run_id: String::new(),
            workflow: workflow.name.clone(),
            steps: Vec::new(),
            duration: Duration::ZERO,
        };
        for event in events {
            match event {
                RunEvent::RunStarted { run, .. } => report.run_id = run.clone(),
                RunEvent::RunFinished { duration_ms, .. } => {
                    report.duration = Duration::from_millis(*duration_ms);
                }
                _ => {}
            }
        }
        for step in &workflow.steps {
            let ended = events.iter().rev().find_map(|event| match event {
                RunEvent::StepFinished {
                    step: id,
                    status,
                    duration_ms,
                    outputs,
                    error,
                    attempts,
                } if *id == step.id => Some(StepReport::ran(
                    step,
                    *status,
                    error.clone(),
                    outputs.clone(),
                    *attempts,
                    Duration::from_millis(*duration_ms),
                )),
                RunEvent::StepSkipped { step: id, reason } if *id == step.id => Some(
                    StepReport::not_run(step, StepStatus::Skipped, reason.clone()),
                ),
                _ => None,
            });
            let mut ended = ended.unwrap_or_else(|| {
                StepReport::not_run(step, StepStatus::Skipped, "not run".into())
            });
            ended.continued = ended.status == StepStatus::Failed && step.continue_on_error;
            report.steps.push(ended);
        }
        report
    }
}
