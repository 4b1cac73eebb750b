//! One request as a backend runs it, and what the backend reports while it runs.
//!
//! The scheduler makes a [`Job`] of each request it takes off the bus, whatever
//! backend serves it (a component, a container); the backend sends [`ServiceEvent`]s
//! back while it works, which the scheduler publishes.

use crate::protocol::Object;
use std::time::Duration;
use tokio::sync::mpsc;

/// One request for a backend.
#[derive(Debug)]
pub struct Job<'a> {
    /// Correlation id ("" when none).
    pub id: &'a str,
    /// The topic it came on.
    pub topic: &'a str,
    /// Its fields.
    pub input: &'a Object,
    /// Its timeout, as the request gave it (what messages say).
    pub timeout: Duration,
    /// What is left of it once the request's wait for a worker is taken off: the
    /// time the backend may take.
    pub left: Duration,
    /// Where progress and resources go.
    pub events: mpsc::Sender<ServiceEvent>,
    /// Secret values in the input, to be masked in logs.
    pub secrets: &'a [String],
}

/// Something a backend reported while handling a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceEvent {
    /// A progress line, for `<topic>/status`.
    Progress(String),
    /// A produced resource, for `<service>/resources/<name>`.
    Resource {
        /// Resource name (checked safe).
        name: String,
        /// JSON payload.
        payload: String,
    },
    /// A line of a container's log, for `<topic>/log`.
    Log(String),
}
