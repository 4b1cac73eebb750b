//! The scheduler: one registry of services, served on the bus alike whatever runs them.
//!
//! Each service is one MQTT client, subscribed to its action topics through a
//! shared subscription so that several hosts on one broker split the work. A host
//! with an id of its own keeps persistent sessions: requests come at QoS 1 and are
//! acknowledged only once answered, so that what a host took and never answered
//! stays at the broker. Every host announces its presence (`presence`); when one
//! dies, a live one adopts its sessions (`adopt.rs`) and hands their requests back
//! to the pool. Requests run concurrently, up to a bound per service, each answered
//! once however often it is delivered (`answers.rs`, `dispatch.rs`). What the
//! broker is (shared subscriptions or not, acknowledgements in order or not) is
//! probed first (`probe.rs`). A service whose queue is full stops taking messages
//! until there is room, so they wait at the broker; a trap, a timeout or an input
//! that fails the schema becomes a `failed` finish. [`Calls`] run requests given
//! within the process (the HTTP API) through the same lanes. A service can be
//! paused, stopped, started and reloaded while the host runs (`lifecycle.rs`);
//! every request taken is listed, and can be stopped (`workers.rs`).

mod adopt;
mod answers;
mod dispatch;
mod lifecycle;
mod probe;
mod workers;

use crate::bus::{Bus, BusError, ConnectOptions, Will};
use crate::component::ComponentService;
use crate::connector::{Broker, Connector};
use crate::docker::lambda::LambdaService;
use crate::presence::{self, HostPresence, HostState, Hosts, ServedHere};
use crate::protocol::{self, Object};
use crate::schema::ActionSchemas;
use crate::service::{Failure, ServiceInfo};
use answers::Answers;
pub use dispatch::Load;
use dispatch::{Dispatch, Lane};
pub use lifecycle::{Command, LifecycleError, ServiceState};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
pub use workers::{Worker, Workers};

/// What runs a service.
pub enum Backend {
    /// A WASI component.
    Component(Box<ComponentService>),
    /// A Docker container per request.
    Container(Box<LambdaService>),
}

/// A service ready to be served.
pub struct Service {
    info: ServiceInfo,
    backend: Backend,
    /// Its actions' compiled schemas, by topic.
    actions: BTreeMap<String, Arc<ActionSchemas>>,
    /// Deadline of a request that gives none (else the scheduler's default).
    default_timeout: Option<Duration>,
    /// Its share of the workers: requests running at once (else the scheduler's).
    concurrency: Option<usize>,
}

impl Service {
    /// The same service, running at most `concurrency` requests at once when given
    /// (its share of the host's workers; the scheduler's `concurrency` otherwise).
    pub fn with_concurrency(mut self, concurrency: Option<usize>) -> Self {
        self.concurrency = concurrency;
        self
    }

    /// A service run by a component.
    pub fn component(component: ComponentService) -> Self {
        let info = component.info().clone();
        Self::new(info, Backend::Component(Box::new(component)), None)
    }

    /// A service run by a container per request; `timeout` is its requests' default deadline.
    pub fn container(lambda: LambdaService, timeout: Option<Duration>) -> Self {
        let info = lambda.info.clone();
        Self::new(info, Backend::Container(Box::new(lambda)), timeout)
    }

    fn new(info: ServiceInfo, backend: Backend, default_timeout: Option<Duration>) -> Self {
        let actions = info
            .actions
            .iter()
            .map(|action| {
                let compiled = ActionSchemas::compile(action)
                    .expect("schemas are checked when a service is loaded");
                (info.topic(action), Arc::new(compiled))
            })
            .collect();
        Self {
            info,
            backend,
            actions,
            default_timeout,
            concurrency: None,
        }
    }

    /// What it is.
    pub fn info(&self) -> &ServiceInfo {
        &self.info
    }

    /// What runs it: `component` or `container`.
    pub fn backend(&self) -> &'static str {
        match self.backend {
            Backend::Component(_) => "component",
            Backend::Container(_) => "container",
        }
    }
}

/// The services this host serves, by name.
#[derive(Default)]
pub struct Registry {
    services: BTreeMap<String, Arc<Service>>,
}

/// A service that cannot be registered.
#[derive(Debug, thiserror::Error)]
#[error("two services are named `{0}`")]
pub struct DuplicateService(pub String);

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a service.
    pub fn add(&mut self, service: Service) -> Result<(), DuplicateService> {
        let name = service.info.name.clone();
        if self.services.contains_key(&name) {
            return Err(DuplicateService(name));
        }
        self.services.insert(name, Arc::new(service));
        Ok(())
    }

    /// Every service, by name.
    pub fn services(&self) -> impl Iterator<Item = &ServiceInfo> {
        self.services.values().map(|s| &s.info)
    }

    /// The compiled schemas of every action served, by topic.
    pub fn schemas(&self) -> impl Iterator<Item = (&String, &Arc<ActionSchemas>)> {
        self.services.values().flat_map(|s| s.actions.iter())
    }

    /// The service named `name`.
    pub fn get(&self, name: &str) -> Option<&Service> {
        self.services.get(name).map(|s| &**s)
    }

    /// Every action topic served.
    pub fn topics(&self) -> Vec<String> {
        self.services
            .values()
            .flat_map(|s| s.info.topics())
            .collect()
    }
}

/// How requests are scheduled.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// Requests of one service running at once.
    pub concurrency: usize,
    /// Requests of one service waiting behind those. When every place is taken the
    /// service stops taking messages from the bus (they wait at the broker), and
    /// calls from within the process are refused (`busy`: HTTP 429).
    pub queue: usize,
    /// Requests running at once on the whole host, all services together (none: only
    /// each service's `concurrency` bounds them).
    pub workers: Option<usize>,
    /// Deadline of a request that gives no `timeout`.
    pub default_timeout: Duration,
    /// The shared-subscription group hosts of one deployment join.
    pub share_group: String,
    /// This host's id, the same across its restarts: its services then keep
    /// persistent sessions at the broker, so that what it took and did not answer
    /// survives its death. None: a random id and clean sessions (a one-shot run).
    pub host_id: Option<String>,
    /// Finishes kept per service to answer a repeated request (same correlation id) from.
    pub recent: usize,
    /// How often the host's connections are checked; the broker declares a host gone
    /// (its last will) after 1.5 times this without a word.
    pub keep_alive: Duration,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            concurrency: 16,
            queue: 1024,
            workers: None,
            default_timeout: Duration::from_secs(300),
            share_group: "copper-wasm".into(),
            host_id: None,
            recent: 4096,
            keep_alive: Duration::from_secs(5),
        }
    }
}

impl SchedulerConfig {
    /// The shared subscription one action topic is served through. One group per
    /// topic: rumqttd keys shared groups by name alone, so two topics sharing a
    /// group name would share one cursor and lose requests.
    pub fn filter(&self, topic: &str) -> String {
        format!(
            "$share/{}.{}/{topic}",
            self.share_group,
            topic.replace('/', ".")
        )
    }
}

/// One service being served.
struct Served {
    name: String,
    bus: Bus,
    filters: Vec<String>,
    lane: Arc<Lane>,
}

/// The services of a host, called from within its process (the HTTP API): each
/// request goes straight to its service's lane, not round the broker.
#[derive(Clone, Default)]
pub struct Calls {
    by_topic: Arc<BTreeMap<String, Arc<Dispatch>>>,
    by_service: Arc<BTreeMap<String, Arc<Dispatch>>>,
    workers: Arc<Workers>,
}

impl Calls {
    /// True when a service of this host answers `topic`.
    pub fn serves(&self, topic: &str) -> bool {
        self.by_topic.contains_key(topic)
    }

    /// Runs one request of `topic` (its fields, as a message on the bus would carry
    /// them) and returns its results; None when no service here answers `topic`.
    /// A service with every place of its queue taken refuses it at once (`busy`).
    pub async fn call(&self, topic: &str, request: Object) -> Option<Result<Object, Failure>> {
        let dispatch = self.by_topic.get(topic)?;
        Some(dispatch.call(topic, request).await)
    }

    /// How busy the service `name` is, when it is served here.
    pub fn load(&self, name: &str) -> Option<Load> {
        self.by_service.get(name).map(|d| d.lane.load())
    }

    /// Where the service `name` is in its life, when it is served here.
    pub fn state(&self, name: &str) -> Option<ServiceState> {
        self.by_service.get(name).map(|d| d.lane.state())
    }

    /// What the service `name` is now (a reload changes its version).
    pub fn info(&self, name: &str) -> Option<ServiceInfo> {
        self.by_service.get(name).map(|d| d.current().info.clone())
    }

    /// Every request taken here and not yet answered.
    pub fn workers(&self) -> &Workers {
        &self.workers
    }
}

/// Services being served; [`Serving::stop`] ends it cleanly.
pub struct Serving {
    served: Vec<Served>,
    calls: Calls,
    /// This host's presence now (a stopped service leaves it).
    presence: std::sync::Mutex<HostPresence>,
    /// Its presence as it started: every service it hosts.
    initial: HostPresence,
    /// One change of a service's life at a time.
    lifecycle: tokio::sync::Mutex<()>,
    /// The connection carrying the presence (its last will says `dead`).
    presence_bus: Bus,
    hosts: Hosts,
    tracker: TaskTracker,
    shutdown: CancellationToken,
    /// The embedded broker, when the host is on its own.
    embedded: Option<crate::broker::EmbeddedBroker>,
}

/// Why services cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The bus failed.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// Another host runs with this host's id: two hosts of one id would take each
    /// other's sessions over, again and again.
    #[error(
        "host id `{0}` is in use by a host that is up on the broker; give each host its own --host-id"
    )]
    IdInUse(String),
}

/// Starts serving every service of `registry` on the broker; runs until `shutdown`.
pub async fn serve(
    registry: Arc<Registry>,
    connector: &Connector,
    config: SchedulerConfig,
    shutdown: CancellationToken,
) -> Result<Serving, ServeError> {
    let tracker = TaskTracker::new();
    let persistent = config.host_id.is_some();
    let host_id = config
        .host_id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string()[..12].to_string());
    // Before anything takes this host's client ids: is the id free, which broker is
    // it? On a connection of a random id of its own.
    let facts = match connector.broker() {
        Broker::Embedded(_) => probe::Facts {
            shared: true,
            ordered_acks: false,
        },
        Broker::Tcp(_) => {
            let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
            let bus = connector
                .connect(
                    &format!("copper-wasm-{host_id}-probe-{suffix}"),
                    None,
                    CancellationToken::new(),
                )
                .await?;
            let serves = !registry.services.is_empty();
            let facts = probe::look_around(&bus, &host_id, persistent, serves).await;
            bus.close().await;
            facts?
        }
    };
    let shared = facts.shared;
    if !shared {
        tracing::warn!(broker = %connector.address(), "the broker does not honour shared subscriptions: this host takes every request of its services, so run one host per service on it (docs/several-hosts.md)");
    }
    let presence = HostPresence {
        id: host_id.clone(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        state: HostState::Up,
        capacity: config.concurrency.max(1),
        persistent,
        services: registry
            .services
            .values()
            .map(|service| ServedHere {
                name: service.info.name.clone(),
                client_id: format!("copper-wasm-{host_id}-{}", service.info.name),
                filters: service
                    .actions
                    .keys()
                    .map(|t| if shared { config.filter(t) } else { t.clone() })
                    .collect(),
            })
            .collect(),
    };
    let topic = presence::host_topic(&host_id);
    let will = Will {
        topic: topic.clone(),
        payload: presence.with_state(HostState::Dead).to_json(),
    };
    // A host that serves nothing (a runner's) is no host to the others: no presence.
    let serves = !presence.services.is_empty();
    let options = ConnectOptions {
        will: serves.then_some(will),
        keep_alive: config.keep_alive,
        ..ConnectOptions::new(format!("copper-wasm-{host_id}"))
    };
    // The connections outlive `shutdown`: `stop` still answers and says goodbye on them.
    let presence_bus = connector
        .connect_with(options, CancellationToken::new())
        .await?;
    let hosts = Hosts::watch(&presence_bus).await?;
    let mut served = Vec::new();
    let workers = config
        .workers
        .map(|n| Arc::new(tokio::sync::Semaphore::new(n.max(1))));
    let (mut by_topic, mut by_service) = (BTreeMap::new(), BTreeMap::new());
    let workers_list = Arc::new(Workers::default());
    for (service, here) in registry.services.values().zip(&presence.services) {
        let options = ConnectOptions {
            persistent,
            keep_alive: config.keep_alive,
            ordered_acks: facts.ordered_acks,
            ..ConnectOptions::new(here.client_id.clone())
        };
        let bus = connector
            .connect_with(options, CancellationToken::new())
            .await?;
        let concurrency = service.concurrency.unwrap_or(config.concurrency);
        let lane = Arc::new(Lane::new(concurrency, config.queue, workers.clone()));
        let dispatch = Arc::new(Dispatch {
            service: std::sync::RwLock::new(service.clone()),
            workers: workers_list.clone(),
            bus: bus.clone(),
            lane: lane.clone(),
            answers: Arc::new(Answers::new(config.recent)),
            config: config.clone(),
            tracker: tracker.clone(),
            host_id: host_id.clone(),
        });
        for (topic, filter) in service.actions.keys().zip(&here.filters) {
            let subscription = bus.subscribe_work(filter).await?;
            tracing::debug!(%topic, %filter, "subscribed");
            tracker.spawn(dispatch.clone().run(subscription, shutdown.clone()));
            by_topic.insert(topic.clone(), dispatch.clone());
        }
        by_service.insert(service.info.name.clone(), dispatch.clone());
        let cancels = bus
            .subscribe(&format!("{}/+/cancel", service.info.name))
            .await?;
        tracker.spawn(workers::watch_cancels(
            cancels,
            workers_list.clone(),
            shutdown.clone(),
        ));
        let name = service.info.name.clone();
        let describe = serde_json::to_string(&service.info).expect("service info is JSON");
        bus.announce(&protocol::describe_topic(&name), describe)
            .await?;
        bus.announce(&protocol::status_topic(&name), "up").await?;
        tracing::info!(service = %name, topics = ?service.info.topics(), "serving");
        served.push(Served {
            name,
            bus,
            filters: here.filters.clone(),
            lane,
        });
    }
    if connector.embedded().is_some() {
        probe::describe_embedded(&presence_bus).await?;
    }
    if serves {
        presence_bus.announce(&topic, presence.to_json()).await?;
        tracker.spawn(adopt::adopt_the_dead(
            hosts.clone(),
            host_id.clone(),
            connector.clone(),
            presence_bus.clone(),
            shutdown.clone(),
        ));
    }
    Ok(Serving {
        served,
        calls: Calls {
            by_topic: Arc::new(by_topic),
            by_service: Arc::new(by_service),
            workers: workers_list,
        },
        presence: std::sync::Mutex::new(presence.clone()),
        initial: presence,
        lifecycle: tokio::sync::Mutex::new(()),
        presence_bus,
        hosts,
        tracker,
        shutdown,
        embedded: connector.embedded().cloned(),
    })
}

/// How long a stopping host waits for its backlog to stop arriving.
const QUIET: Duration = Duration::from_millis(300);

/// How long [`Serving::stop`] waits, once nothing is in flight, for requests
/// still on their way: [`QUIET`], unless the broker is the embedded one and no
/// client ever came in over TCP. Then every client is in this process, none
/// asks anything more of a host that stops, and the broker ends with it.
fn quiet(embedded: Option<&crate::broker::EmbeddedBroker>) -> Duration {
    match embedded {
        Some(broker) if broker.tcp_clients() == 0 => Duration::ZERO,
        _ => QUIET,
    }
}

impl Serving {
    /// This host's presence now.
    pub fn presence(&self) -> HostPresence {
        self.presence.lock().expect("presence lock").clone()
    }

    /// This host's id on the broker.
    pub fn id(&self) -> &str {
        &self.initial.id
    }

    /// Its services, to be called from within this process.
    pub fn calls(&self) -> &Calls {
        &self.calls
    }

    /// The hosts on the broker, as this one sees them.
    pub fn hosts(&self) -> &Hosts {
        &self.hosts
    }

    /// Stops cleanly, losing nothing: says `stopping`, asks the broker for no more
    /// requests, answers every one taken (and those the broker had queued for us),
    /// waits until the broker has every finish, clears its presence and disconnects.
    /// `<service>/status` says `down` only when no other host serves the service.
    pub async fn stop(self) {
        let topic = presence::host_topic(self.id());
        let serves = !self.initial.services.is_empty();
        if serves {
            let stopping = self.presence().with_state(HostState::Stopping).to_json();
            let _ = self.presence_bus.announce(&topic, stopping).await;
        }
        for served in &self.served {
            for filter in &served.filters {
                served.bus.stop_receiving(filter);
            }
        }
        let quiet = quiet(self.embedded.as_ref());
        while !self.served.iter().all(|s| s.lane.idle(quiet)) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.shutdown.cancel();
        self.tracker.close();
        self.tracker.wait().await;
        let others: Vec<HostPresence> = self
            .hosts
            .live()
            .into_iter()
            .filter(|h| h.id != self.initial.id && h.state == HostState::Up)
            .collect();
        for served in &self.served {
            if !others.iter().any(|h| h.serves(&served.name)) {
                let status = protocol::status_topic(&served.name);
                let _ = served.bus.announce(&status, "down").await;
            }
            served.bus.close().await;
        }
        if serves {
            let _ = self.presence_bus.announce(&topic, "").await;
        }
        self.presence_bus.close().await;
    }
}
