//! The host, wired in one place: the broker (embedded or external), the wasmtime
//! runtime, the services it hosts and the scheduler serving them.
//!
//! `run.rs`: what a host is asked to do: [`Host::check`] and [`Host::run`] a
//! workflow, [`Host::call`] one action. `lifecycle.rs`: a service started, stopped,
//! paused, resumed or reloaded while the host runs ([`Host::command`]).
//! `load.rs`: the components read, compiled and registered, and where each
//! came from ([`load_registry`]). `kept.rs`: the workflows a daemon keeps, by name ([`Host::workflows`]).
//! `reload.rs`: changes taken in while serving: the workflows folder, a
//! component's file, the services file ([`Host::reload_workflows`]).
//! `live.rs`: runs launched in the background, watched and cancelled, and
//! triggers fired by a workflow's `concurrency:` ([`Host::launch`], [`Host::fire`]).

mod kept;
mod lifecycle;
mod live;
mod load;
mod reload;
mod run;

pub use kept::{Kept, KeptError, KeptWorkflow};
pub use live::{Begin, Ended, Fired, LaunchError, LiveRun};
pub use load::load_registry;
use load::{Loaded, Origin, load_components, read_source};
pub use reload::{Reload, ServicesChange, Workflows};
pub use run::{Checked, RunError};

use crate::access::{AccessError, Credentials};
use crate::broker::{BrokerError, EmbeddedBroker};
use crate::bus::{BrokerAddress, Bus, BusError, Will};
use crate::component::{Limits, LoadError, Runtime, default_compiled_cache};
use crate::connector::{Broker, Connector};
use crate::docker::{
    self, DockerError, Engine, lambda::LambdaService, long_running, sidecar::Sidecars,
};
use crate::presence::Hosts;
use crate::sandbox::Sandbox;
use crate::scheduler::{
    self, Calls, DuplicateService, Registry, SchedulerConfig, ServeError, Service, Serving,
};
use crate::schema::ActionSchemas;
use crate::service::ServiceInfo;
use crate::services_file::{BackendSpec, DockerSpec, Mode, ServiceSpec};
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Which broker the host uses.
#[derive(Debug, Clone)]
pub enum BrokerChoice {
    /// A broker inside this process, listening on this address (port 0: any free port).
    Embedded(SocketAddr),
    /// A broker somewhere else.
    External(BrokerAddress),
}

/// Everything a host is made from.
///
/// Components, containers and external services as a services file declares them,
/// on a broker shared with other hosts:
///
/// ```no_run
/// # async fn example() -> anyhow::Result<()> {
/// use copper_wasm::bus::BrokerAddress;
/// use copper_wasm::environment::Environment;
/// use copper_wasm::services_file::ServicesFile;
/// use copper_wasm::{BrokerChoice, Host, HostConfig};
/// let file = ServicesFile::parse(
///     "services:
///   wordcount:
///     component: plugins/wordcount.wasm
///   sitemap:
///     docker:
///       image: busybox:1.36
///       command: [sh, /app/sitemap.sh]
///     actions: [build]
///   legacy:
///     external: true
///     actions: [convert]
/// ",
///     std::path::Path::new("copper.yaml"),
///     Environment::default(),
/// )?;
/// let config = HostConfig {
///     broker: BrokerChoice::External(BrokerAddress::parse("mqtt://127.0.0.1:1883")?),
///     services: file.services,
///     ..HostConfig::default()
/// };
/// let host = Host::start(config, Default::default()).await?;
/// println!("serving {}", host.registry().topics().join(", "));
/// host.stop().await;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// The broker.
    pub broker: BrokerChoice,
    /// Where `/fetch`, `/web` and scratch folders live.
    pub cache: PathBuf,
    /// Where compiled components are cached (see [`default_compiled_cache`]).
    pub compiled_cache: PathBuf,
    /// The folder served read-only at `/workspace`, and where local git paths start.
    pub workspace: PathBuf,
    /// Limits on components.
    pub limits: Limits,
    /// How requests are scheduled.
    pub scheduler: SchedulerConfig,
    /// Replaces `https://github.com/` in clones (from `COPPER_GITHUB_URL`).
    pub github_url: Option<String>,
    /// Host the built-in components (`fetcher`, `markdown`).
    pub builtins: bool,
    /// More components to host, as files.
    pub components: Vec<PathBuf>,
    /// More components to host, given as bytes (an embedder's own plugins).
    pub component_bytes: Vec<Vec<u8>>,
    /// Services of a services file: components, containers and external services.
    pub services: Vec<ServiceSpec>,
    /// Who may connect to the embedded broker (default `<cache>/credentials.yaml`,
    /// made at first start; see [`crate::access`]).
    pub credentials: Option<PathBuf>,
    /// A folder of workflows to keep, each run by name (`serve --workflows DIR`).
    pub workflows: Option<PathBuf>,
    /// Record who publishes and subscribes to what ([`crate::trace`]; on by default).
    pub trace: bool,
}

impl Default for HostConfig {
    fn default() -> Self {
        Self {
            broker: BrokerChoice::Embedded(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))),
            cache: PathBuf::from(".copper"),
            compiled_cache: default_compiled_cache(),
            workspace: PathBuf::from("."),
            limits: Limits::default(),
            scheduler: SchedulerConfig::default(),
            github_url: std::env::var("COPPER_GITHUB_URL")
                .ok()
                .filter(|s| !s.is_empty()),
            builtins: true,
            components: Vec::new(),
            component_bytes: Vec::new(),
            services: Vec::new(),
            credentials: None,
            workflows: None,
            trace: true,
        }
    }
}

impl HostConfig {
    /// The embedded broker's credentials file.
    pub fn credentials_file(&self) -> PathBuf {
        self.credentials
            .clone()
            .unwrap_or_else(|| self.cache.join(crate::access::file::FILE_NAME))
    }
}

/// The embedded broker's users: the credentials file, made when missing with a
/// user for each external service.
fn broker_credentials(config: &HostConfig) -> Result<Credentials, AccessError> {
    let external: Vec<String> = config
        .services
        .iter()
        .filter(|s| matches!(s.backend, BackendSpec::External))
        .map(|s| s.name.clone())
        .collect();
    let path = config.credentials_file();
    let credentials = Credentials::load_or_create(&path, &external)?;
    for service in &external {
        let grant = crate::access::Grant::Serve(service.clone());
        if !credentials
            .users()
            .any(|(_, grants)| grants.contains(&grant))
        {
            tracing::warn!(
                file = %path.display(),
                "no user of the embedded broker may serve `{service}`: add one granted `serve {service}`"
            );
        }
    }
    Ok(credentials)
}

/// Why a host cannot start.
///
/// ```
/// use copper_wasm::{Host, HostConfig, HostError};
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let cache = tempfile::tempdir().unwrap();
/// let config = HostConfig {
///     cache: cache.path().to_path_buf(),
///     builtins: false,
///     component_bytes: vec![b"not a component".to_vec()],
///     ..HostConfig::default()
/// };
/// let started = Host::start(config, Default::default()).await;
/// let Err(HostError::Load { name, source }) = started else { panic!("loaded") };
/// assert_eq!(name, "component #1 given as bytes");
/// eprintln!("{name}: {source}");
/// # });
/// ```
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The embedded broker failed.
    #[error(transparent)]
    Broker(#[from] BrokerError),
    /// The embedded broker's credentials file cannot be used.
    #[error(transparent)]
    Access(#[from] AccessError),
    /// The bus failed.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// The services cannot be served (another host has this one's id).
    #[error(transparent)]
    Serve(#[from] ServeError),
    /// A component failed to load.
    #[error("cannot load component {name}")]
    Load {
        /// The component (built-in name or file).
        name: String,
        /// Why.
        #[source]
        source: LoadError,
    },
    /// A component file cannot be read.
    #[error("cannot read component {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The cache folder cannot be made.
    #[error("cannot prepare the cache folder {path}")]
    Cache {
        /// The folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The wasmtime engine cannot be made.
    #[error("cannot start the WebAssembly runtime")]
    Runtime(#[source] wasmtime::Error),
    /// Two services share a name.
    #[error(transparent)]
    Duplicate(#[from] DuplicateService),
    /// A component of the services file calls itself by another name.
    #[error("the services file names `{declared}`, but {path} describes itself as `{described}`")]
    Misnamed {
        /// The name in the services file.
        declared: String,
        /// The component's file or URL.
        path: String,
        /// The name it gave.
        described: String,
    },
    /// A component named by a URL cannot be had.
    #[error("service `{service}` cannot be loaded")]
    Url {
        /// The service.
        service: String,
        /// Why.
        #[source]
        source: crate::component_url::UrlError,
    },
    /// The workflows to keep cannot be read, or one does not check.
    #[error(transparent)]
    Workflows(#[from] KeptError),
    /// A Docker service cannot be served.
    #[error("service `{service}` cannot run in Docker")]
    Docker {
        /// The service.
        service: String,
        /// Why.
        #[source]
        source: DockerError,
    },
}

impl HostError {
    /// The service at fault, when one is.
    pub fn service(&self) -> Option<&str> {
        match self {
            HostError::Docker { service, .. }
            | HostError::Url { service, .. }
            | HostError::Misnamed {
                declared: service, ..
            } => Some(service),
            _ => None,
        }
    }
}

/// The Docker side of a host: the engine, lambdas' sidecars, long-running containers.
struct Containers {
    engine: Engine,
    /// The folders containers see (`/fetch`, `/web`) and their logs.
    sandbox: Sandbox,
    sidecars: Vec<Sidecars>,
    /// The long-running containers up now (a stop takes one out, a start puts it back).
    running: tokio::sync::Mutex<Vec<long_running::Running>>,
    /// Cancelled when the host stops: running lambdas are killed.
    stopping: CancellationToken,
}

impl Containers {
    /// Removes everything this host made in Docker.
    async fn stop(self) {
        self.stopping.cancel();
        for running in self.running.into_inner() {
            running.stop(&self.engine).await;
        }
        for sidecars in self.sidecars {
            sidecars.stop().await;
        }
        self.engine.remove_all_owned().await;
    }
}

/// The schemas of the actions served by `registry`, and of those the services file
/// declares for services it does not serve (external ones, long-running containers).
fn known_schemas(
    registry: &Registry,
    services: &[ServiceSpec],
) -> BTreeMap<String, Arc<ActionSchemas>> {
    let elsewhere: Vec<ServiceInfo> = services
        .iter()
        .filter(|s| !matches!(s.backend, BackendSpec::Component(_)))
        .filter(|s| registry.services().all(|r| r.name != s.name))
        .map(ServiceSpec::info)
        .collect();
    let mut schemas = crate::schema::compile_all(&elsewhere);
    schemas.extend(
        registry
            .schemas()
            .map(|(topic, compiled)| (topic.clone(), compiled.clone())),
    );
    schemas
}

fn docker_specs(config: &HostConfig) -> impl Iterator<Item = (&ServiceSpec, &DockerSpec)> {
    config
        .services
        .iter()
        .filter_map(|spec| match &spec.backend {
            BackendSpec::Docker(docker) => Some((spec, &**docker)),
            _ => None,
        })
}

/// Connects to Docker when a service needs it, and registers the lambda services.
async fn add_lambdas(
    config: &HostConfig,
    registry: &mut Registry,
) -> Result<Option<Containers>, HostError> {
    let Some((first, _)) = docker_specs(config).next() else {
        return Ok(None);
    };
    let engine = Engine::connect()
        .await
        .map_err(|source| HostError::Docker {
            service: first.name.clone(),
            source,
        })?;
    let sandbox =
        Sandbox::new(&config.cache, &config.workspace).map_err(|source| HostError::Cache {
            path: config.cache.clone(),
            source,
        })?;
    let mut containers = Containers {
        engine: engine.clone(),
        sandbox: sandbox.clone(),
        sidecars: Vec::new(),
        running: Default::default(),
        stopping: CancellationToken::new(),
    };
    for (spec, docker) in docker_specs(config).filter(|(_, d)| d.mode == Mode::Lambda) {
        let failed = |source| HostError::Docker {
            service: spec.name.clone(),
            source,
        };
        let prepared = async {
            let image = docker::image::ensure(&engine, &spec.name, &docker.container).await?;
            let sidecars = Sidecars::start(&engine, &spec.name, docker).await?;
            Ok::<_, DockerError>((image, sidecars))
        };
        let (image, sidecars) = match prepared.await {
            Ok(prepared) => prepared,
            Err(source) => {
                containers.stop().await;
                return Err(failed(source));
            }
        };
        let lambda = LambdaService {
            engine: engine.clone(),
            info: ServiceInfo {
                name: spec.name.clone(),
                version: image.clone(),
                actions: spec.actions.clone().unwrap_or_default(),
                capabilities: Vec::new(),
            },
            image,
            container: docker.container.clone(),
            network: sidecars.network.name().map(str::to_string),
            sandbox: sandbox.clone(),
            logs: sandbox.cache().join("logs"),
            shutdown: containers.stopping.child_token(),
        };
        containers.sidecars.push(sidecars);
        let service = Service::container(lambda, docker.timeout).with_concurrency(spec.concurrency);
        if let Err(error) = registry.add(service) {
            containers.stop().await;
            return Err(error.into());
        }
    }
    Ok(Some(containers))
}

/// In-process links kept for clients of the host beyond its services: its presence,
/// a runner, a caller.
const SPARE_LINKS: usize = 5;

/// A running host: its broker (if embedded), its services on the bus, its containers.
pub struct Host {
    connector: Connector,
    registry: Arc<Registry>,
    serving: Serving,
    shutdown: CancellationToken,
    containers: Option<Containers>,
    /// The services file's services (containers and external ones are checked by name).
    services: Vec<ServiceSpec>,
    /// The schemas of every action known here, compiled once: those served here and
    /// those the services file declares for services served elsewhere.
    schemas: BTreeMap<String, Arc<ActionSchemas>>,
    /// Whether the broker is another's (other hosts may serve actions).
    remote: bool,
    /// Where `/fetch`, `/web` and the step cache live.
    cache: PathBuf,
    /// What loaded the components, to load them again on reload.
    runtime: Arc<Runtime>,
    /// Where each component came from (a services file read again may change it).
    origins: std::sync::RwLock<BTreeMap<String, Origin>>,
    /// The workflows kept, by name, as last read.
    workflows: std::sync::RwLock<reload::Workflows>,
    /// Where they are read from.
    workflows_folder: Option<PathBuf>,
    /// Counts the changes of `workflows`.
    workflows_changed: tokio::sync::watch::Sender<u64>,
    /// The services file as last taken in ([`Host::take_services`]).
    services_taken: std::sync::Mutex<Vec<ServiceSpec>>,
    /// The last reloads.
    reloads: std::sync::Mutex<std::collections::VecDeque<Reload>>,
    /// The runs launched in the background and going on.
    live: live::LiveRuns,
    /// The working folder (`/workspace`, where `on.watch` paths start).
    workspace: PathBuf,
    /// Where downloaded components are kept.
    compiled_cache: PathBuf,
    /// The client [`Host::call`] asks through, made at the first call and shared
    /// by all (a client of its own per call cost a connection and its
    /// subscriptions every time), with the calls under way.
    caller: tokio::sync::OnceCell<(Bus, crate::runner::Pending)>,
}

impl Host {
    /// Loads the components, starts the broker (if embedded) and serves them until `shutdown`.
    ///
    /// Docker services are made ready first (images found, built or pulled, sidecars
    /// started); long-running containers are started last and awaited until `up`.
    pub async fn start(
        mut config: HostConfig,
        shutdown: CancellationToken,
    ) -> Result<Host, HostError> {
        let kept = match &config.workflows {
            Some(dir) => kept::read_folder(dir)?,
            None => Default::default(),
        };
        let services_taken = config.services.clone();
        // A copili pipeline kept brings a container service per description.
        config.services.extend(kept.services);
        let workflows = kept.workflows;
        let Loaded {
            mut registry,
            runtime,
            origins,
        } = load_components(&config).await?;
        let containers = add_lambdas(&config, &mut registry).await?;
        let registry = Arc::new(registry);
        let schemas = known_schemas(&registry, &config.services);
        let started = async {
            let trace = if config.trace {
                crate::trace::Trace::new()
            } else {
                crate::trace::Trace::off()
            };
            let broker = match &config.broker {
                BrokerChoice::Embedded(addr) => {
                    let links = registry.services().count() + SPARE_LINKS;
                    let credentials = broker_credentials(&config)?;
                    Broker::Embedded(EmbeddedBroker::start(
                        *addr,
                        links,
                        credentials,
                        trace.clone(),
                    )?)
                }
                BrokerChoice::External(address) => Broker::Tcp(address.clone()),
            };
            let connector = Connector::new(broker, trace);
            let serving = scheduler::serve(
                registry.clone(),
                &connector,
                config.scheduler.clone(),
                shutdown.child_token(),
            )
            .await?;
            Ok::<_, HostError>((connector, serving))
        };
        let (connector, serving) = match started.await {
            Ok(started) => started,
            Err(error) => {
                if let Some(containers) = containers {
                    containers.stop().await;
                }
                return Err(error);
            }
        };
        let mut host = Host {
            connector,
            registry,
            serving,
            shutdown,
            containers,
            services: config.services.clone(),
            schemas,
            remote: matches!(config.broker, BrokerChoice::External(_)),
            cache: config.cache.clone(),
            runtime,
            origins: std::sync::RwLock::new(origins),
            workflows: std::sync::RwLock::new(Arc::new(workflows)),
            workflows_folder: config.workflows.clone(),
            workflows_changed: tokio::sync::watch::channel(0).0,
            services_taken: std::sync::Mutex::new(services_taken),
            reloads: Default::default(),
            live: Default::default(),
            workspace: config.workspace.clone(),
            compiled_cache: config.compiled_cache.clone(),
            caller: tokio::sync::OnceCell::new(),
        };
        if let Err(error) = host.start_long_running(&config).await {
            host.stop().await;
            return Err(error);
        }
        Ok(host)
    }

    /// Starts the long-running containers, each awaited until it says `up`.
    async fn start_long_running(&mut self, config: &HostConfig) -> Result<(), HostError> {
        let Some(mut containers) = self.containers.take() else {
            return Ok(());
        };
        let started = self.start_each_long_running(config, &mut containers).await;
        self.containers = Some(containers);
        started
    }

    async fn start_each_long_running(
        &self,
        config: &HostConfig,
        containers: &mut Containers,
    ) -> Result<(), HostError> {
        let services: Vec<_> = docker_specs(config)
            .filter(|(_, d)| d.mode == Mode::Service)
            .collect();
        if services.is_empty() {
            return Ok(());
        }
        let sandbox = containers.sandbox.clone();
        let bus = self.connect("copper-wasm-docker", None).await?;
        for (spec, docker) in services {
            let address = self
                .connector
                .address_for(&crate::access::Grant::Serve(spec.name.clone()));
            let running = long_running::start(
                &containers.engine,
                &spec.name,
                docker,
                &address,
                &bus,
                &sandbox,
                &sandbox.cache().join("logs"),
            )
            .await
            .map_err(|source| HostError::Docker {
                service: spec.name.clone(),
                source,
            });
            match running {
                Ok(running) => containers.running.get_mut().push(running),
                Err(error) => {
                    bus.close().await;
                    return Err(error);
                }
            }
        }
        bus.close().await;
        Ok(())
    }

    /// What the host's clients (and, on the embedded broker, every client) published
    /// and subscribed to so far.
    pub fn trace(&self) -> crate::trace::Recorded {
        self.connector.trace().recorded()
    }

    /// The recorder of [`Host::trace`] (to pause it, say).
    pub fn tracer(&self) -> &crate::trace::Trace {
        self.connector.trace()
    }

    /// The broker clients connect to.
    pub fn address(&self) -> BrokerAddress {
        self.connector.address()
    }

    /// The services hosted here.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The services hosted here, called from within this process without the broker.
    pub fn calls(&self) -> &Calls {
        self.serving.calls()
    }

    /// The hosts on the broker (this one among them when it serves anything).
    pub fn hosts(&self) -> &Hosts {
        self.serving.hosts()
    }

    /// This host's presence as it is now (a service stopped here has left it).
    pub fn presence(&self) -> crate::presence::HostPresence {
        self.serving.presence()
    }

    /// This host's id on the broker.
    pub fn id(&self) -> &str {
        self.serving.id()
    }

    /// Where `/fetch`, `/web`, the step cache and the runs live.
    pub fn cache(&self) -> &std::path::Path {
        &self.cache
    }

    /// The working folder: served at `/workspace`, where `on.watch` paths start.
    pub fn workspace(&self) -> &std::path::Path {
        &self.workspace
    }

    /// The services of the services file (containers, external ones and components).
    pub fn declared(&self) -> &[ServiceSpec] {
        &self.services
    }

    /// The schemas of every action known here, by topic.
    pub fn schemas(&self) -> &BTreeMap<String, Arc<ActionSchemas>> {
        &self.schemas
    }

    /// A new client on the host's broker.
    pub async fn connect(&self, client_id: &str, will: Option<Will>) -> Result<Bus, BusError> {
        self.connector
            .connect(client_id, will, self.shutdown.child_token())
            .await
    }

    /// A new client whose connection closes (cleanly) when the guard is dropped.
    async fn connect_guarded(
        &self,
        client_id: &str,
        will: Option<Will>,
    ) -> Result<(Bus, tokio_util::sync::DropGuard), BusError> {
        let token = self.shutdown.child_token();
        let bus = self
            .connector
            .connect(client_id, will, token.clone())
            .await?;
        Ok((bus, token.drop_guard()))
    }

    /// Stops serving: running components finish, running containers are killed,
    /// services say `down`, and every container and network of this host is removed.
    pub async fn stop(self) {
        if let Some((caller, _)) = self.caller.get() {
            caller.close().await;
        }
        if let Some(containers) = &self.containers {
            containers.stopping.cancel();
        }
        self.serving.stop().await;
        if let Some(containers) = self.containers {
            containers.stop().await;
        }
    }
}
