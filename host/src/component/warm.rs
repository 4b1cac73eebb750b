//! Warm instances: a component granted `reuse: N` answers up to N requests, one
//! after another, in one instance, instead of a fresh instance for each.
//!
//! What that gives up: a request sees what the ones before it left in the
//! instance's memory (globals, caches, anything a bug leaks). What it keeps:
//! each request still has its own deadline, its own events, and the memory
//! cap; an instance that failed in any way (a trap, a timeout, an error, results
//! that are not JSON) is dropped, never given again; one that reached its count
//! is dropped too, and the next request gets a fresh one. A component granted
//! `git` is never reused (each clone has a `/scratch` of its own).

use crate::capability::RequestState;
use crate::wit::GitPlugin;
use bytes::Bytes;
use std::sync::Mutex;
use wasmtime::Store;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

/// Idle instances kept per component, at most: more requests at once than this
/// get fresh instances, dropped after them.
const MAX_IDLE: usize = 16;

/// What one instance may print in all its requests together, at most.
const MAX_REUSED_OUTPUT: usize = 4 << 20;

/// One instance and its store, with the requests it answered.
pub(super) struct Instance {
    pub(super) store: Store<RequestState>,
    /// Its bindings, once instantiated (a fresh one is instantiated under its
    /// first request's deadline).
    pub(super) bindings: Option<GitPlugin>,
    /// Requests it answered.
    served: u32,
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
    /// Bytes of its stdout and stderr already logged.
    logged: (usize, usize),
}

impl Instance {
    /// An instance to be made in `store`, printing to `stdout` and `stderr`.
    pub(super) fn new(
        store: Store<RequestState>,
        stdout: MemoryOutputPipe,
        stderr: MemoryOutputPipe,
    ) -> Self {
        Self {
            store,
            bindings: None,
            served: 0,
            stdout,
            stderr,
            logged: (0, 0),
        }
    }

    /// What it printed since the last call: stdout, stderr.
    pub(super) fn output(&mut self) -> (Bytes, Bytes) {
        let (out, err) = (self.stdout.contents(), self.stderr.contents());
        let new = (
            out.slice(self.logged.0.min(out.len())..),
            err.slice(self.logged.1.min(err.len())..),
        );
        self.logged = (out.len(), err.len());
        new
    }
}

/// The idle instances of one component, each good for `reuse` requests.
pub(super) struct Warm {
    reuse: u32,
    idle: Mutex<Vec<Instance>>,
}

impl Warm {
    /// Instances good for `reuse` requests each (0 or 1: none is kept).
    pub(super) fn new(reuse: u32) -> Self {
        Self {
            reuse,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// What a new instance may print: `per_request` for one request, more for an
    /// instance that answers several.
    pub(super) fn output_room(&self, per_request: usize) -> usize {
        let requests = usize::try_from(self.reuse.max(1)).unwrap_or(usize::MAX);
        per_request
            .saturating_mul(requests)
            .min(MAX_REUSED_OUTPUT.max(per_request))
    }

    /// An idle instance, if one is kept (the one used last: its memory is warm).
    pub(super) fn take(&self) -> Option<Instance> {
        if self.reuse <= 1 {
            return None;
        }
        self.idle.lock().expect("idle lock").pop()
    }

    /// Takes back an instance that just answered: kept for the next request while
    /// it has requests left (and there is room), dropped otherwise.
    pub(super) fn give(&self, mut instance: Instance) {
        instance.served += 1;
        if instance.served >= self.reuse {
            return;
        }
        instance.store.data_mut().events = None;
        let mut idle = self.idle.lock().expect("idle lock");
        if idle.len() < MAX_IDLE {
            idle.push(instance);
        }
    }
}
