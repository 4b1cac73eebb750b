//! The host, wired in one place: the broker (embedded or external), the wasmtime
//! runtime, the services it hosts and the scheduler serving them.

use crate::broker::{BrokerError, EmbeddedBroker};
use crate::bus::{BrokerAddress, Bus, BusError, Connector, Will};
use crate::capability::git::GitConfig;
use crate::component::{Limits, LoadError, Runtime, default_compiled_cache};
use crate::sandbox::Sandbox;
use crate::scheduler::{self, DuplicateService, Registry, SchedulerConfig, Service, Serving};
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
        }
    }
}

/// Why a host cannot start.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The embedded broker failed.
    #[error(transparent)]
    Broker(#[from] BrokerError),
    /// The bus failed.
    #[error(transparent)]
    Bus(#[from] BusError),
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
}

/// Loads the configured components into a registry, without serving them.
pub async fn load_registry(config: &HostConfig) -> Result<Registry, HostError> {
    let sandbox =
        Sandbox::new(&config.cache, &config.workspace).map_err(|source| HostError::Cache {
            path: config.cache.clone(),
            source,
        })?;
    let git = GitConfig {
        github_url: config.github_url.clone(),
        workspace: sandbox.workspace().to_path_buf(),
    };
    let runtime = Runtime::new(
        sandbox,
        config.compiled_cache.clone(),
        git,
        config.limits.clone(),
    )
    .map_err(HostError::Runtime)?;
    let mut registry = Registry::new();
    if config.builtins {
        for (name, bytes) in crate::builtin::ALL {
            let component = runtime
                .load(bytes)
                .await
                .map_err(|source| HostError::Load {
                    name: format!("`{name}` (built in)"),
                    source,
                })?;
            registry.add(Service::component(component))?;
        }
    }
    for path in &config.components {
        let bytes = std::fs::read(path).map_err(|source| HostError::Read {
            path: path.clone(),
            source,
        })?;
        let component = runtime
            .load(&bytes)
            .await
            .map_err(|source| HostError::Load {
                name: path.display().to_string(),
                source,
            })?;
        registry.add(Service::component(component))?;
    }
    Ok(registry)
}

/// In-process links kept for clients of the host beyond its services (a runner, a caller).
const SPARE_LINKS: usize = 4;

/// A running host: its broker (if embedded) and its services on the bus.
pub struct Host {
    connector: Connector,
    registry: Arc<Registry>,
    serving: Serving,
    shutdown: CancellationToken,
}

impl Host {
    /// Loads the components, starts the broker (if embedded) and serves them until `shutdown`.
    pub async fn start(config: HostConfig, shutdown: CancellationToken) -> Result<Host, HostError> {
        let registry = Arc::new(load_registry(&config).await?);
        let connector = match &config.broker {
            BrokerChoice::Embedded(addr) => {
                let links = registry.services().count() + SPARE_LINKS;
                Connector::Embedded(EmbeddedBroker::start(*addr, links)?)
            }
            BrokerChoice::External(address) => Connector::Tcp(address.clone()),
        };
        let serving = scheduler::serve(
            registry.clone(),
            &connector,
            config.scheduler.clone(),
            shutdown.child_token(),
        )
        .await?;
        Ok(Host {
            connector,
            registry,
            serving,
            shutdown,
        })
    }

    /// The broker clients connect to.
    pub fn address(&self) -> BrokerAddress {
        self.connector.address()
    }

    /// The services hosted here.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// A new client on the host's broker.
    pub async fn connect(&self, client_id: &str, will: Option<Will>) -> Result<Bus, BusError> {
        self.connector
            .connect(client_id, will, self.shutdown.child_token())
            .await
    }

    /// Stops serving: running requests finish, services say `down`.
    pub async fn stop(self) {
        self.serving.stop().await;
    }
}
