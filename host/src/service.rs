//! What a service is, whatever runs it: its actions with their schemas, and how a request fails.

use serde_json::Value;
use std::fmt;

/// A service and the actions it answers.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ServiceInfo {
    /// Name: the first topic level.
    pub name: String,
    /// Version of the plugin or image.
    pub version: String,
    /// Its actions.
    pub actions: Vec<ActionInfo>,
    /// Host capabilities it was granted.
    pub capabilities: Vec<String>,
}

/// One action of a service.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ActionInfo {
    /// The topic suffix.
    pub name: String,
    /// What it does, in one line.
    pub doc: String,
    /// JSON Schema of its input.
    pub input_schema: Value,
    /// JSON Schema of its results.
    pub output_schema: Value,
}

impl ServiceInfo {
    /// The topic of one of its actions.
    pub fn topic(&self, action: &ActionInfo) -> String {
        format!("{}/{}", self.name, action.name)
    }

    /// The topics of all its actions.
    pub fn topics(&self) -> Vec<String> {
        self.actions.iter().map(|a| self.topic(a)).collect()
    }
}

/// Why a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureKind {
    /// The input is wrong (bad JSON, fails the schema, refused by the service).
    InvalidInput,
    /// The service tried and failed.
    Failed,
    /// The component trapped (a panic, an illegal operation).
    Trapped,
    /// The request ran past its deadline and was stopped.
    TimedOut,
    /// The component ran past its memory limit.
    OutOfMemory,
    /// The service's queue was full.
    Busy,
    /// The service is paused or stopped on this host.
    Unavailable,
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::InvalidInput => "invalid input",
            Self::Failed => "failed",
            Self::Trapped => "trapped",
            Self::TimedOut => "timed out",
            Self::OutOfMemory => "out of memory",
            Self::Busy => "busy",
            Self::Unavailable => "unavailable",
        })
    }
}

impl FailureKind {
    /// Every kind.
    pub const ALL: [FailureKind; 7] = [
        Self::InvalidInput,
        Self::Failed,
        Self::Trapped,
        Self::TimedOut,
        Self::OutOfMemory,
        Self::Busy,
        Self::Unavailable,
    ];

    /// The kind a finish's `error` names (`timed out: …`), as a [`Failure`] of this
    /// host writes it; None for another's error.
    pub fn of_error(error: &str) -> Option<FailureKind> {
        Self::ALL.into_iter().find(|kind| {
            error
                .strip_prefix(&kind.to_string())
                .is_some_and(|rest| rest.starts_with(": "))
        })
    }
}

/// A failed request, as reported in its finish.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct Failure {
    /// What kind of failure.
    pub kind: FailureKind,
    /// What happened.
    pub message: String,
    /// The exit code of the process that failed (a container), when there is one.
    pub exit_code: Option<i64>,
}

impl Failure {
    /// A failure of `kind`.
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            exit_code: None,
        }
    }

    /// The same failure, with the exit code of the process that failed.
    pub fn with_exit_code(mut self, code: i64) -> Self {
        self.exit_code = Some(code);
        self
    }
}
