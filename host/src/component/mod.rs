//! The component backend: WASI components on wasmtime, one fresh instance per request.
//!
//! A component is compiled once and the artifact cached on disk, keyed by the
//! component's hash and the engine's configuration; instances come from an
//! `InstancePre` and the pooling allocator. Each request gets its own store with
//! an epoch deadline and a memory cap, so a component that loops or eats memory
//! is stopped and the host keeps serving. A component granted `reuse` answers
//! several requests in turn in one instance (`warm.rs`).

mod warm;

use crate::capability::{self, KNOWN, MemoryCap, RequestState, git::GitConfig, grants::Grants};
use crate::job::Job;
use crate::protocol::Object;
use crate::sandbox::Sandbox;
use crate::service::{ActionInfo, Failure, FailureKind, ServiceInfo};
use crate::wit::{self, GitPlugin, GitPluginPre};
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use wasmtime::component::{Component, ResourceTable};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, Trap};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

/// How often the epoch advances: the granularity of deadlines.
const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Epoch ticks a request runs before it yields to the others (5 ms).
const SLICE_TICKS: u64 = 1;

/// Instances' memories given back to the system at once, at most (see `Runtime::new`).
const DECOMMIT_BATCH: usize = 32;

/// Bytes of each linear memory reset by `memset` rather than given back (see `Runtime::new`).
const KEEP_RESIDENT: usize = 1 << 20;

/// Output a component may print per request before the rest is dropped.
const MAX_OUTPUT: usize = 64 * 1024;

/// The default folder of compiled components, shared by every project of the user:
/// `$COPPER_COMPILED_CACHE`, else `$XDG_CACHE_HOME/copper-wasm/compiled`, else
/// `~/.cache/copper-wasm/compiled`, else `.copper/compiled`.
pub fn default_compiled_cache() -> PathBuf {
    let env = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(dir) = env("COPPER_COMPILED_CACHE") {
        return dir;
    }
    env("XDG_CACHE_HOME")
        .or_else(|| env("HOME").map(|home| home.join(".cache")))
        .map(|cache| cache.join("copper-wasm").join("compiled"))
        .unwrap_or_else(|| PathBuf::from(".copper/compiled"))
}

/// Limits applied to every component.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest linear memory of one instance, in bytes.
    pub memory: usize,
    /// Instances alive at once, across all components.
    pub instances: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory: 256 << 20,
            instances: 128,
        }
    }
}

/// Why a component cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Not a component, or compiled for something else.
    #[error("not a loadable WebAssembly component")]
    Compile(#[source] wasmtime::Error),
    /// `describe` trapped or the instance could not be made.
    #[error("its `describe` failed")]
    Describe(#[source] wasmtime::Error),
    /// `describe` gave something unusable.
    #[error("its `describe` is not valid: {0}")]
    Invalid(String),
    /// It imports what the host does not grant it.
    #[error(
        "service `{service}` imports something the host does not grant it (capabilities declared: {declared:?})"
    )]
    Imports {
        /// The service.
        service: String,
        /// What it declared.
        declared: Vec<String>,
        /// The linker's complaint.
        #[source]
        source: wasmtime::Error,
    },
    /// It declares a capability the operator did not grant it.
    #[error(
        "service `{service}` asks for the capability `{capability}`, which is not granted to it: add it to `grants.capabilities` of its entry in the services file"
    )]
    NotGranted {
        /// The service.
        service: String,
        /// What it asked for.
        capability: String,
    },
    /// The cache folder cannot be used.
    #[error("the compiled-component cache at {path} cannot be used")]
    Cache {
        /// The folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The wasmtime engine shared by every component, with its epoch ticker.
pub struct Runtime {
    engine: Engine,
    sandbox: Sandbox,
    compiled: PathBuf,
    git: GitConfig,
    limits: Limits,
    stop_ticker: Arc<AtomicBool>,
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop_ticker.store(true, Ordering::Relaxed);
    }
}

impl Runtime {
    /// An engine with the pooling allocator and epoch interruption; compiled
    /// components are cached in the folder `compiled`.
    pub fn new(
        sandbox: Sandbox,
        compiled: PathBuf,
        git: GitConfig,
        limits: Limits,
    ) -> wasmtime::Result<Arc<Self>> {
        let mut pooling = PoolingAllocationConfig::default();
        pooling
            .total_component_instances(limits.instances)
            .total_core_instances(limits.instances * 4)
            .total_memories(limits.instances * 2)
            .total_tables(limits.instances * 4)
            // One async stack per instance running (wasmtime's default of 1000
            // cost ~3 ms at every start, to map and guard them all).
            .total_stacks(limits.instances)
            .max_memory_size(limits.memory)
            // An instance's end gave its memory back with one madvise each, and each
            // made the kernel flush the other cores' TLBs: on a wide run that took
            // a third of the CPU. Batched, and the first pages reset by memset (they
            // are touched again at once by the next instance), it takes little.
            .decommit_batch_size(DECOMMIT_BATCH)
            .linear_memory_keep_resident(KEEP_RESIDENT)
            .table_keep_resident(KEEP_RESIDENT / 16)
            .pagemap_scan(wasmtime::Enabled::Auto);
        let mut config = Config::new();
        config
            .epoch_interruption(true)
            .wasm_component_model(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
        let engine = Engine::new(&config)?;
        let stop_ticker = Arc::new(AtomicBool::new(false));
        let (ticking, stop) = (engine.clone(), stop_ticker.clone());
        std::thread::Builder::new()
            .name("epoch-ticker".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    ticking.increment_epoch();
                }
            })?;
        Ok(Arc::new(Self {
            engine,
            sandbox,
            compiled,
            git,
            limits,
            stop_ticker,
        }))
    }

    /// The sandbox requests run in.
    pub fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }

    /// Compiles (or takes from the cache) a component, asks it to describe itself,
    /// and links what it declared, when `grants` allow it.
    pub async fn load(
        self: &Arc<Self>,
        bytes: &[u8],
        grants: Grants,
    ) -> Result<ComponentService, LoadError> {
        let sha256 = format!("{:x}", Sha256::digest(bytes));
        self.load_hashed(bytes, &sha256, grants).await
    }

    /// [`Runtime::load`] of a component whose sha256 (in hex) is known already (a
    /// built-in one, hashed when the binary was built).
    pub async fn load_hashed(
        self: &Arc<Self>,
        bytes: &[u8],
        sha256: &str,
        grants: Grants,
    ) -> Result<ComponentService, LoadError> {
        let (component, key) = self.compile(bytes, sha256)?;
        let info = self.described(&component, &key).await?;
        if let Some(capability) = grants.refused(&info.capabilities) {
            return Err(LoadError::NotGranted {
                service: info.name.clone(),
                capability: capability.to_string(),
            });
        }
        let mut linker = capability::base_linker(&self.engine).map_err(LoadError::Compile)?;
        capability::link_declared(&mut linker, &info.capabilities).map_err(LoadError::Compile)?;
        let pre = linker
            .instantiate_pre(&component)
            .and_then(GitPluginPre::new)
            .map_err(|source| LoadError::Imports {
                service: info.name.clone(),
                declared: info.capabilities.clone(),
                source,
            })?;
        Ok(ComponentService {
            runtime: self.clone(),
            pre,
            info,
            warm: warm::Warm::new(grants.reuse),
            grants,
        })
    }

    /// What the component of cache key `key` says of itself: kept beside its
    /// compiled artifact once asked (a start asked every built-in component anew,
    /// an instance and its schemas' checks each), asked otherwise.
    async fn described(&self, component: &Component, key: &str) -> Result<ServiceInfo, LoadError> {
        let path = self.compiled.join(format!("{key}.describe.json"));
        let kept = std::fs::read(&path).ok();
        if let Some(info) = kept.and_then(|text| serde_json::from_slice(&text).ok()) {
            return Ok(info);
        }
        let info = self.describe(component).await?;
        // Not kept is only slower: the next start asks again.
        let text = serde_json::to_vec(&info).expect("service info serializes");
        let _ = write_whole(&path, &text);
        Ok(info)
    }

    /// The compiled `bytes` (whose sha256 is `sha256`), from the cache when it has
    /// them, and their key in the cache.
    fn compile(&self, bytes: &[u8], sha256: &str) -> Result<(Component, String), LoadError> {
        let mut engine_hash = std::collections::hash_map::DefaultHasher::new();
        self.engine
            .precompile_compatibility_hash()
            .hash(&mut engine_hash);
        let mut digest = Sha256::new();
        digest.update(sha256);
        digest.update(engine_hash.finish().to_le_bytes());
        digest.update(env!("CARGO_PKG_VERSION"));
        let key = format!("{:x}", digest.finalize());
        let dir = self.compiled.clone();
        let path = dir.join(format!("{key}.cwasm"));
        if path.exists() {
            // SAFETY: the file was written by `precompile_component` of an engine with the
            // same compatibility hash (it is in the key), renamed into place only when whole.
            #[expect(
                unsafe_code,
                reason = "loading our own precompiled artifact is what makes the cache fast"
            )]
            match unsafe { Component::deserialize_file(&self.engine, &path) } {
                Ok(component) => return Ok((component, key)),
                Err(error) => {
                    tracing::warn!(path = %path.display(), %error, "recompiling a stale cached component")
                }
            }
        }
        let compiled = self
            .engine
            .precompile_component(bytes)
            .map_err(LoadError::Compile)?;
        let cache_error = |source| LoadError::Cache {
            path: dir.clone(),
            source,
        };
        std::fs::create_dir_all(&dir).map_err(cache_error)?;
        write_whole(&path, &compiled).map_err(cache_error)?;
        // SAFETY: `compiled` was produced just above by this engine.
        #[expect(unsafe_code, reason = "deserializing what this engine just compiled")]
        let component = unsafe { Component::deserialize(&self.engine, &compiled) };
        Ok((component.map_err(LoadError::Compile)?, key))
    }

    fn store(
        &self,
        service: &str,
        wasi: WasiCtxBuilder,
        scratch: Option<PathBuf>,
    ) -> Store<RequestState> {
        let mut wasi = wasi;
        let state = RequestState {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            memory: MemoryCap::new(self.limits.memory),
            service: service.to_string(),
            // A request's own, set when it begins (an instance may answer several).
            events: None,
            scratch,
            git: self.git.clone(),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.memory);
        store
    }

    async fn describe(&self, component: &Component) -> Result<ServiceInfo, LoadError> {
        // Capabilities are not granted yet: the describing instance gets every host
        // import (a clone is refused, having no /scratch) and traps for anything
        // else, so that `load` can then say which import is not granted.
        let mut linker = capability::base_linker(&self.engine).map_err(LoadError::Describe)?;
        capability::link_declared(&mut linker, &[capability::GIT.to_string()])
            .map_err(LoadError::Describe)?;
        // Traps only when something is missing: they are defined by exact name, and
        // would shadow the semver-compatible WASI the linker has (a component built
        // against wasi@0.2.9 is served by wasi@0.2.12).
        if linker.instantiate_pre(component).is_err() {
            linker
                .define_unknown_imports_as_traps(component)
                .map_err(LoadError::Describe)?;
        }
        let mut store = self.store("describe", WasiCtxBuilder::new(), None);
        store.set_epoch_deadline(ticks(Duration::from_secs(10)));
        store.epoch_deadline_trap();
        let bindings = GitPlugin::instantiate_async(&mut store, component, &linker)
            .await
            .map_err(LoadError::Describe)?;
        let raw = bindings
            .copper_service_service()
            .call_describe(&mut store)
            .await
            .map_err(LoadError::Describe)?;
        convert_info(raw)
    }
}

/// Writes a file of the compiled-component cache whole, then renames it into
/// place. The partial file has a name of its own: two loads of one component at
/// once (two hosts of one process, or two processes) must not rename each
/// other's.
fn write_whole(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let partial = path.with_file_name(format!("{name}.{}.partial", uuid::Uuid::new_v4().simple()));
    let written = std::fs::write(&partial, bytes).and_then(|()| std::fs::rename(&partial, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    written
}

fn ticks(timeout: Duration) -> u64 {
    let ticks = (timeout.as_nanos() / EPOCH_TICK.as_nanos()).max(1) + 1;
    // wasmtime adds this to the current epoch: keep far from overflowing it.
    u64::try_from(ticks).unwrap_or(u64::MAX).min(u64::MAX / 4)
}

fn convert_info(raw: wit::ServiceInfo) -> Result<ServiceInfo, LoadError> {
    if !crate::protocol::is_service_name(&raw.name) {
        return Err(LoadError::Invalid(format!(
            "service name `{}` is not a plain name",
            raw.name
        )));
    }
    for capability in &raw.capabilities {
        if !KNOWN.contains(&capability.as_str()) {
            return Err(LoadError::Invalid(format!(
                "service `{}` asks for capability `{capability}`; the host offers {KNOWN:?}",
                raw.name
            )));
        }
    }
    let mut actions = Vec::new();
    for action in raw.actions {
        let topic = format!("{}/{}", raw.name, action.name);
        if crate::protocol::RESERVED_ACTIONS.contains(&action.name.as_str()) {
            return Err(LoadError::Invalid(format!(
                "action `{topic}` uses a reserved name"
            )));
        }
        if !crate::protocol::is_action_topic(&topic) {
            return Err(LoadError::Invalid(format!(
                "action `{topic}` is not a plain topic"
            )));
        }
        let schema = |which: &str, text: &str| {
            let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
                LoadError::Invalid(format!("{which} schema of `{topic}` is not JSON: {e}"))
            })?;
            jsonschema::validator_for(&value).map_err(|e| {
                LoadError::Invalid(format!(
                    "{which} schema of `{topic}` is not a JSON Schema: {e}"
                ))
            })?;
            Ok::<_, LoadError>(value)
        };
        actions.push(ActionInfo {
            input_schema: schema("input", &action.input_schema)?,
            output_schema: schema("output", &action.output_schema)?,
            name: action.name,
            doc: action.doc,
        });
    }
    Ok(ServiceInfo {
        name: raw.name,
        version: raw.version,
        actions,
        capabilities: raw.capabilities,
    })
}

/// A loaded component, ready to answer requests.
pub struct ComponentService {
    runtime: Arc<Runtime>,
    pre: GitPluginPre<RequestState>,
    info: ServiceInfo,
    grants: Grants,
    /// Instances that answered and may answer again (with `reuse`).
    warm: warm::Warm,
}

impl ComponentService {
    /// What it said of itself.
    pub fn info(&self) -> &ServiceInfo {
        &self.info
    }

    fn wasi(&self, scratch: Option<&Path>) -> std::io::Result<WasiCtxBuilder> {
        let sandbox = self.runtime.sandbox();
        let io = |e: wasmtime::Error| std::io::Error::other(format!("{e:#}"));
        let mut wasi = WasiCtxBuilder::new();
        wasi.allow_blocking_current_thread(true);
        wasi.preopened_dir(sandbox.fetch_dir(), "/fetch", FsPerms::ReadWrite)
            .map_err(io)?;
        wasi.preopened_dir(sandbox.web_dir(), "/web", FsPerms::ReadWrite)
            .map_err(io)?;
        if let Some(scratch) = scratch {
            wasi.preopened_dir(scratch, "/scratch", FsPerms::ReadWrite)
                .map_err(io)?;
        }
        if self
            .info
            .capabilities
            .iter()
            .any(|c| c == capability::WORKSPACE)
        {
            wasi.preopened_dir(sandbox.workspace(), "/workspace", FsPerms::ReadOnly)
                .map_err(io)?;
        }
        for folder in &self.grants.folders {
            let perms = match folder.write {
                true => FsPerms::ReadWrite,
                false => FsPerms::ReadOnly,
            };
            wasi.preopened_dir(&folder.host, &folder.guest, perms)
                .map_err(io)?;
        }
        for name in &self.grants.env {
            if let Ok(value) = std::env::var(name) {
                wasi.env(name, value);
            }
        }
        Ok(wasi)
    }

    /// Runs one request in a fresh instance (or, with `reuse`, a warm one);
    /// returns the result fields.
    pub async fn handle(&self, job: Job<'_>) -> Result<Object, Failure> {
        let failed = |message: String| Failure::new(FailureKind::Failed, message);
        let scratch = if self.info.capabilities.iter().any(|c| c == capability::GIT) {
            let id = uuid::Uuid::new_v4().simple().to_string();
            Some(
                self.runtime
                    .sandbox()
                    .scratch(&id)
                    .map_err(|e| failed(format!("cannot make a scratch folder: {e}")))?,
            )
        } else {
            None
        };
        let reused = if scratch.is_none() {
            self.warm.take()
        } else {
            None
        };
        let mut instance = match reused {
            Some(instance) => instance,
            None => {
                let scratch = scratch.as_ref().map(|s| s.path());
                let mut wasi = self
                    .wasi(scratch)
                    .map_err(|e| failed(format!("cannot open the sandbox folders: {e}")))?;
                let room = self.warm.output_room(MAX_OUTPUT);
                let (stdout, stderr) = (MemoryOutputPipe::new(room), MemoryOutputPipe::new(room));
                wasi.stdout(stdout.clone()).stderr(stderr.clone());
                let scratch = scratch.map(Path::to_path_buf);
                let store = self.runtime.store(&self.info.name, wasi, scratch);
                warm::Instance::new(store, stdout, stderr)
            }
        };
        let store = &mut instance.store;
        store.data_mut().events = Some(job.events);
        // Guest code runs in slices: at the end of each it yields to the other
        // requests (a CPU-bound one shares the cores), and past its deadline it stops.
        let deadline = std::time::Instant::now().checked_add(job.left);
        store.set_epoch_deadline(SLICE_TICKS);
        store.epoch_deadline_callback(move |_| {
            Ok(match deadline {
                Some(deadline) if std::time::Instant::now() >= deadline => {
                    wasmtime::UpdateDeadline::Interrupt
                }
                _ => wasmtime::UpdateDeadline::Yield(SLICE_TICKS),
            })
        });
        let request = wit::Request {
            id: job.id.to_string(),
            topic: job.topic.to_string(),
            input: serde_json::to_string(job.input).expect("a JSON object serializes"),
        };
        // The epoch deadline stops guest code; this one also bounds time spent in host calls.
        let outcome = tokio::time::timeout(job.left + Duration::from_secs(1), async {
            let warm::Instance {
                store, bindings, ..
            } = &mut instance;
            if bindings.is_none() {
                *bindings = Some(self.pre.instantiate_async(&mut *store).await?);
            }
            let bindings = bindings.as_ref().expect("instantiated");
            bindings
                .copper_service_service()
                .call_handle(&mut *store, &request)
                .await
        })
        .await;
        let (stdout, stderr) = instance.output();
        self.log_output(&stdout, "stdout", job.secrets);
        self.log_output(&stderr, "stderr", job.secrets);
        let timed_out = || {
            Failure::new(
                FailureKind::TimedOut,
                format!(
                    "stopped after its timeout of {}",
                    humantime::format_duration(job.timeout)
                ),
            )
        };
        // Whatever failed, the instance goes with it: only an answer gives it back.
        let text = match outcome {
            Err(_) => return Err(timed_out()),
            Ok(Err(trap)) => {
                if trap.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
                    return Err(timed_out());
                }
                if instance.store.data().memory.hit() {
                    return Err(Failure::new(
                        FailureKind::OutOfMemory,
                        format!(
                            "ran past its memory limit of {} MiB and was stopped",
                            self.runtime.limits.memory >> 20
                        ),
                    ));
                }
                let reason = trap
                    .downcast_ref::<Trap>()
                    .map(|t| t.to_string())
                    .unwrap_or_else(|| format!("{trap:#}"));
                let panic = String::from_utf8_lossy(&stderr)
                    .lines()
                    .rev()
                    .find(|l| l.contains("panicked"))
                    .map(str::to_string);
                return Err(Failure::new(
                    FailureKind::Trapped,
                    match panic {
                        Some(panic) => format!("trapped ({reason}): {panic}"),
                        None => format!("trapped: {reason}"),
                    },
                ));
            }
            Ok(Ok(Err(error))) => {
                let kind = match error.kind {
                    wit::ErrorKind::InvalidInput => FailureKind::InvalidInput,
                    wit::ErrorKind::Failed => FailureKind::Failed,
                };
                return Err(Failure::new(kind, error.message));
            }
            Ok(Ok(Ok(text))) => text,
        };
        match serde_json::from_str(&text) {
            Ok(serde_json::Value::Object(results)) => {
                if scratch.is_none() {
                    self.warm.give(instance);
                }
                Ok(results)
            }
            _ => Err(failed(format!(
                "service `{}` returned results that are not a JSON object",
                self.info.name
            ))),
        }
    }

    fn log_output(&self, contents: &[u8], stream: &str, secrets: &[String]) {
        for line in String::from_utf8_lossy(contents)
            .lines()
            .filter(|l| !l.trim().is_empty())
        {
            let line = crate::secret::mask(line, secrets);
            tracing::info!(target: "component", service = %self.info.name, stream, "{line}");
        }
    }
}
