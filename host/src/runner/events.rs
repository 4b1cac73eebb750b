//! What happens in a run, as events: shown live, appended to the run's history,
//! published on `copper/runs/<id>/events`.

use crate::protocol::Object;
use crate::secret::{mask, mask_value};
use serde::{Deserialize, Serialize};

/// One thing that happened in a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event")]
pub enum RunEvent {
    /// The run began (or was resumed).
    #[serde(rename = "run.started")]
    RunStarted {
        /// The run's id.
        run: String,
        /// The workflow's name.
        workflow: String,
        /// True when an earlier run is resumed.
        resumed: bool,
        /// What started it by itself (a schedule, a message, a webhook…), when something did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        trigger: Option<serde_json::Value>,
    },
    /// A step's request was published.
    #[serde(rename = "step.started")]
    StepStarted {
        /// The step's id.
        step: String,
        /// Its action.
        action: String,
        /// Which try, from 1.
        attempt: u32,
    },
    /// A step's service reported progress.
    #[serde(rename = "step.progress")]
    StepProgress {
        /// The step's id.
        step: String,
        /// What it said.
        message: String,
    },
    /// A try failed and another comes after a wait.
    #[serde(rename = "step.retried")]
    StepRetried {
        /// The step's id.
        step: String,
        /// The try that comes next.
        attempt: u32,
        /// The wait before it, in milliseconds.
        delay_ms: u64,
        /// Why the last try failed.
        error: String,
    },
    /// A step ended: it ran, or its recorded results were reused.
    #[serde(rename = "step.finished")]
    StepFinished {
        /// The step's id.
        step: String,
        /// `success`, `failed` or `cached`.
        status: StepStatus,
        /// Time from its first request to its end, in milliseconds.
        duration_ms: u64,
        /// Its results.
        outputs: Object,
        /// Why it failed.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        error: Option<String>,
        /// Tries it took.
        attempts: u32,
    },
    /// A step was not run.
    #[serde(rename = "step.skipped")]
    StepSkipped {
        /// The step's id.
        step: String,
        /// Why.
        reason: String,
    },
    /// The run was cancelled: the steps under way were stopped, the others not run.
    #[serde(rename = "run.cancelled")]
    RunCancelled {
        /// Who or what cancelled it.
        reason: String,
    },
    /// The run ended.
    #[serde(rename = "run.finished")]
    RunFinished {
        /// True when no step failed (steps with `continue_on_error` aside).
        success: bool,
        /// Wall time, in milliseconds.
        duration_ms: u64,
    },
}

impl RunEvent {
    /// The same event with the values of `secrets` masked in all it says: its kind,
    /// status and numbers stay, so that it still reads back (a secret may well be
    /// `success`).
    pub fn masked(mut self, secrets: &[String]) -> Self {
        if secrets.is_empty() {
            return self;
        }
        let hide = |text: &mut String| *text = mask(text, secrets);
        match &mut self {
            RunEvent::RunStarted {
                run,
                workflow,
                trigger,
                ..
            } => {
                hide(run);
                hide(workflow);
                if let Some(trigger) = trigger {
                    mask_value(trigger, secrets);
                }
            }
            RunEvent::StepStarted { step, action, .. } => {
                hide(step);
                hide(action);
            }
            RunEvent::StepProgress { step, message } => {
                hide(step);
                hide(message);
            }
            RunEvent::StepRetried { step, error, .. } => {
                hide(step);
                hide(error);
            }
            RunEvent::StepFinished {
                step,
                outputs,
                error,
                ..
            } => {
                hide(step);
                outputs.values_mut().for_each(|v| mask_value(v, secrets));
                if let Some(error) = error {
                    hide(error);
                }
            }
            RunEvent::StepSkipped { step, reason } => {
                hide(step);
                hide(reason);
            }
            RunEvent::RunCancelled { reason } => hide(reason),
            RunEvent::RunFinished { .. } => {}
        }
        self
    }
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    /// Its service reported success.
    Success,
    /// It failed (after its retries).
    Failed,
    /// Not run: its results were taken from an earlier success (same service
    /// version, input and input files), or from the run being resumed.
    Cached,
    /// Not run.
    Skipped,
}

impl StepStatus {
    /// True when dependents may count on its results.
    pub fn succeeded(self) -> bool {
        matches!(self, StepStatus::Success | StepStatus::Cached)
    }

    /// Its name, as in events and conditions.
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Success => "success",
            StepStatus::Failed => "failed",
            StepStatus::Cached => "cached",
            StepStatus::Skipped => "skipped",
        }
    }
}

/// An event with the time it happened, as written to the history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stamped {
    /// RFC 3339, UTC.
    pub at: String,
    /// The event.
    #[serde(flatten)]
    pub event: RunEvent,
}

impl Stamped {
    /// `event`, now.
    pub fn now(event: RunEvent) -> Self {
        Self {
            at: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
            event,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_that_is_also_a_word_of_the_events_leaves_them_readable() {
        let secrets = vec!["success".to_string(), "e".to_string()];
        let mut outputs = Object::new();
        outputs.insert("rate".into(), "success rate".into());
        let event = RunEvent::StepFinished {
            step: "deploy".into(),
            status: StepStatus::Success,
            duration_ms: 5,
            outputs,
            error: None,
            attempts: 1,
        }
        .masked(&secrets);
        let text = serde_json::to_string(&Stamped::now(event)).unwrap();
        let back: Stamped = serde_json::from_str(&text).unwrap();
        let RunEvent::StepFinished {
            step,
            status,
            outputs,
            ..
        } = back.event
        else {
            panic!("{text}")
        };
        assert_eq!((step.as_str(), status), ("d***ploy", StepStatus::Success));
        assert_eq!(outputs["rate"], "*** rat***");
    }
}
