//! What the host grants a component, one module per capability.
//!
//! Every component gets WASI 0.2 (with only the preopens its request needs, no
//! network, no host environment) and `host` (log, progress, resources). The
//! others are linked only for components whose `describe` names them:
//! `git` (clone into `/scratch`) and `workspace` (the working directory,
//! read-only at `/workspace`).

pub mod git;
pub mod grants;
pub mod host;

use crate::job::ServiceEvent;
use crate::wit;
use std::path::PathBuf;
use tokio::sync::mpsc;
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, ResourceLimiter};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Capability name: clone git repositories into `/scratch`.
pub const GIT: &str = "git";
/// Capability name: read the working directory at `/workspace`.
pub const WORKSPACE: &str = "workspace";
/// Every capability the host can grant.
pub const KNOWN: [&str; 2] = [GIT, WORKSPACE];

/// Refuses memory growth past a limit, and remembers that it did.
#[derive(Debug)]
pub struct MemoryCap {
    limit: usize,
    hit: bool,
}

impl MemoryCap {
    /// A cap of `limit` bytes per linear memory.
    pub fn new(limit: usize) -> Self {
        Self { limit, hit: false }
    }

    /// True once a growth was refused.
    pub fn hit(&self) -> bool {
        self.hit
    }
}

/// Table elements one instance may have; stops a guest from growing tables without bound.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.hit = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// The state of one store: one request of one component.
pub struct RequestState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) memory: MemoryCap,
    /// The service, to tag logs.
    pub(crate) service: String,
    /// Where progress and resources go (none while describing).
    pub(crate) events: Option<mpsc::Sender<ServiceEvent>>,
    /// The host folder behind `/scratch`, when the request has one.
    pub(crate) scratch: Option<PathBuf>,
    /// How clones are made.
    pub(crate) git: git::GitConfig,
}

impl WasiView for RequestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl wit::copper::service::types::Host for RequestState {}

/// A linker with what every component gets: WASI and `host`.
pub fn base_linker(engine: &Engine) -> wasmtime::Result<Linker<RequestState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wit::copper::service::types::add_to_linker::<RequestState, HasSelf<RequestState>>(
        &mut linker,
        |s| s,
    )?;
    wit::copper::service::host::add_to_linker::<RequestState, HasSelf<RequestState>>(
        &mut linker,
        |s| s,
    )?;
    Ok(linker)
}

/// Links the capabilities a component declared (`workspace` needs no import: it is a preopen).
pub fn link_declared(
    linker: &mut Linker<RequestState>,
    declared: &[String],
) -> wasmtime::Result<()> {
    if declared.iter().any(|c| c == GIT) {
        wit::copper::service::git::add_to_linker::<RequestState, HasSelf<RequestState>>(
            linker,
            |s| s,
        )?;
    }
    Ok(())
}
