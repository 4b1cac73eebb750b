//! What runs now on this host's workers, and stopping one of them (leprechaun's
//! `workers:list` and `workers:kill`).
//!
//! Every request taken, from the bus or from within the process, is listed from
//! the moment it has a place in its service's lane until it is answered. Stopping
//! one interrupts it where it runs (a component's instance is dropped, a container
//! is killed and removed); it is answered `failed`, as any other failure.

use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;
use tokio_util::sync::CancellationToken;

/// One request on this host, as listed.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Worker {
    /// Its number on this host, to stop it by.
    pub id: u64,
    /// The service.
    pub service: String,
    /// The action's topic.
    pub action: String,
    /// The request's correlation id, when it has one.
    pub correlation_id: Option<String>,
    /// How it came: `bus` or `call` (from within the process: the HTTP API).
    pub via: &'static str,
    /// `queued` (waiting for a worker) or `running`.
    pub state: &'static str,
    /// When it was taken (RFC 3339).
    pub since: String,
}

/// Everything taken and not yet answered on this host.
#[derive(Default)]
pub struct Workers {
    next: AtomicU64,
    /// Each request, when it was taken (written out only when listed), and its stop.
    taken: Mutex<BTreeMap<u64, (Worker, SystemTime, CancellationToken)>>,
}

/// A request's place in [`Workers`]; it leaves the list when dropped.
pub(super) struct Listed<'a> {
    workers: &'a Workers,
    id: u64,
    /// Cancelled when an operator stops it.
    pub stop: CancellationToken,
}

impl Workers {
    /// Lists a request taken now.
    pub(super) fn list(&self, mut worker: Worker) -> Listed<'_> {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        worker.id = id;
        let stop = CancellationToken::new();
        self.taken
            .lock()
            .expect("workers lock")
            .insert(id, (worker, SystemTime::now(), stop.clone()));
        Listed {
            workers: self,
            id,
            stop,
        }
    }

    /// Every request taken and not answered, oldest first.
    pub fn all(&self) -> Vec<Worker> {
        let taken = self.taken.lock().expect("workers lock");
        taken
            .values()
            .map(|(worker, since, _)| Worker {
                since: humantime::format_rfc3339_millis(*since).to_string(),
                ..worker.clone()
            })
            .collect()
    }

    /// Stops request `id`; false when no such request runs or waits here.
    pub fn kill(&self, id: u64) -> bool {
        let taken = self.taken.lock().expect("workers lock");
        match taken.get(&id) {
            Some((_, _, stop)) => {
                stop.cancel();
                true
            }
            None => false,
        }
    }
}

impl Workers {
    /// Stops the request of `action` with `correlation_id` (its runner gave up on
    /// it); false when it neither runs nor waits here.
    pub fn kill_request(&self, action: &str, correlation_id: &str) -> bool {
        let taken = self.taken.lock().expect("workers lock");
        let found = taken.values().find(|(w, _, _)| {
            w.action == action && w.correlation_id.as_deref() == Some(correlation_id)
        });
        match found {
            Some((_, _, stop)) => {
                stop.cancel();
                true
            }
            None => false,
        }
    }
}

/// Stops each request whose runner gave up on it (`<topic>/cancel`), until `shutdown`.
pub(super) async fn watch_cancels(
    mut cancels: crate::bus::Subscription,
    workers: std::sync::Arc<Workers>,
    shutdown: CancellationToken,
) {
    loop {
        let message = tokio::select! {
            message = cancels.recv() => match message { Some(m) => m, None => return },
            () = shutdown.cancelled() => return,
        };
        let Some(action) = message.topic.strip_suffix("/cancel") else {
            continue;
        };
        let body: serde_json::Value = serde_json::from_slice(&message.payload).unwrap_or_default();
        let Some(id) = body
            .get(crate::protocol::CORRELATION_FIELD)
            .and_then(serde_json::Value::as_str)
        else {
            continue;
        };
        if workers.kill_request(action, id) {
            tracing::info!(%action, correlation_id = %id, "stopped: its runner gave up on it");
        }
    }
}

impl Listed<'_> {
    /// Marks it running (it has a worker).
    pub fn running(&self) {
        let mut taken = self.workers.taken.lock().expect("workers lock");
        if let Some((worker, _, _)) = taken.get_mut(&self.id) {
            worker.state = "running";
        }
    }
}

impl Drop for Listed<'_> {
    fn drop(&mut self) {
        self.workers
            .taken
            .lock()
            .expect("workers lock")
            .remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker() -> Worker {
        Worker {
            id: 0,
            service: "testkit".into(),
            action: "testkit/sleep".into(),
            correlation_id: None,
            via: "call",
            state: "queued",
            since: String::new(),
        }
    }

    #[test]
    fn listed_until_dropped_and_killed_by_id() {
        let workers = Workers::default();
        let first = workers.list(worker());
        let second = workers.list(worker());
        second.running();
        let all = workers.all();
        assert_eq!(all.len(), 2);
        assert_eq!((all[0].id, all[0].state), (1, "queued"));
        assert_eq!((all[1].id, all[1].state), (2, "running"));
        assert!(workers.kill(2));
        assert!(second.stop.is_cancelled() && !first.stop.is_cancelled());
        drop(second);
        assert!(!workers.kill(2), "gone once answered");
        assert_eq!(workers.all().len(), 1);
    }
}
