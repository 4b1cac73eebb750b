//! The scheduler: one registry of services, served on the bus alike whatever runs them.
//!
//! Each service is one MQTT client (its last will sets `<service>/status` to
//! `down`), subscribed to its action topics through a shared subscription so
//! that several hosts on one broker split the work. Requests run concurrently,
//! up to a bound per service, with a bounded queue behind it; a full queue, a
//! trap, a timeout or an input that fails the schema becomes a `failed` finish.

use crate::bus::{Bus, BusError, Message, Will};
use crate::component::ComponentService;
use crate::connector::Connector;
use crate::docker::lambda::LambdaService;
use crate::job::{Job, ServiceEvent};
use crate::protocol::{self, CORRELATION_FIELD, Object};
use crate::schema::{self, ActionSchemas};
use crate::secret;
use crate::service::{Failure, FailureKind, ServiceInfo};
use crate::timeout;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What runs a service.
pub enum Backend {
    /// A WASI component.
    Component(ComponentService),
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
}

impl Service {
    /// A service run by a component.
    pub fn component(component: ComponentService) -> Self {
        let info = component.info().clone();
        Self::new(info, Backend::Component(component), None)
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
        }
    }

    /// What it is.
    pub fn info(&self) -> &ServiceInfo {
        &self.info
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
    /// Requests of one service waiting behind those; more are answered `busy`.
    pub queue: usize,
    /// Deadline of a request that gives no `timeout`.
    pub default_timeout: Duration,
    /// The shared-subscription group hosts of one deployment join.
    pub share_group: String,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            concurrency: 16,
            queue: 1024,
            default_timeout: Duration::from_secs(300),
            share_group: "copper-wasm".into(),
        }
    }
}

/// Services being served; [`Serving::stop`] ends it cleanly.
pub struct Serving {
    buses: Vec<(String, Bus)>,
    tracker: TaskTracker,
    shutdown: CancellationToken,
}

/// Starts serving every service of `registry` on the broker; runs until `shutdown`.
pub async fn serve(
    registry: Arc<Registry>,
    connector: &Connector,
    config: SchedulerConfig,
    shutdown: CancellationToken,
) -> Result<Serving, BusError> {
    let tracker = TaskTracker::new();
    let mut buses = Vec::new();
    let host_id = uuid::Uuid::new_v4().simple().to_string();
    for service in registry.services.values() {
        let name = service.info.name.clone();
        let will = Will {
            topic: protocol::status_topic(&name),
            payload: "down".into(),
        };
        let client_id = format!("copper-wasm-{name}-{}", &host_id[..12]);
        // The connection outlives `shutdown`: `stop` still says `down` on it, then closes it.
        let bus = connector
            .connect(&client_id, Some(will), CancellationToken::new())
            .await?;
        let lane = Arc::new(Lane {
            permits: Semaphore::new(config.concurrency.max(1)),
            pending: AtomicUsize::new(0),
            limit: config.concurrency.max(1) + config.queue,
        });
        for topic in service.actions.keys() {
            // One group per topic: rumqttd keys shared groups by name alone, so two
            // topics sharing a group name would share one cursor and lose requests.
            let filter = format!(
                "$share/{}.{}/{topic}",
                config.share_group,
                topic.replace('/', ".")
            );
            let subscription = bus.subscribe(&filter).await?;
            let context = Dispatch {
                service: service.clone(),
                bus: bus.clone(),
                lane: lane.clone(),
                config: config.clone(),
                tracker: tracker.clone(),
            };
            tracker.spawn(context.run(subscription, shutdown.clone()));
        }
        let describe = serde_json::to_string(&service.info).expect("service info is JSON");
        bus.announce(&protocol::describe_topic(&name), describe)
            .await?;
        bus.announce(&protocol::status_topic(&name), "up").await?;
        tracing::info!(service = %name, topics = ?service.info.topics(), "serving");
        buses.push((name, bus));
    }
    Ok(Serving {
        buses,
        tracker,
        shutdown,
    })
}

impl Serving {
    /// Stops taking requests, lets running ones finish, says `down` and disconnects.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.tracker.close();
        self.tracker.wait().await;
        for (name, bus) in &self.buses {
            let _ = bus.announce(&protocol::status_topic(name), "down").await;
            bus.close().await;
        }
    }
}

/// One service's bound on concurrency and queue.
struct Lane {
    permits: Semaphore,
    pending: AtomicUsize,
    limit: usize,
}

struct Dispatch {
    service: Arc<Service>,
    bus: Bus,
    lane: Arc<Lane>,
    config: SchedulerConfig,
    tracker: TaskTracker,
}

impl Dispatch {
    async fn run(self, mut subscription: crate::bus::Subscription, shutdown: CancellationToken) {
        let this = Arc::new(self);
        loop {
            let message = tokio::select! {
                message = subscription.recv() => match message { Some(m) => m, None => break },
                _ = shutdown.cancelled() => break,
            };
            if message.retain {
                tracing::warn!(topic = %message.topic, "ignoring a retained request (it would run again on every start)");
                continue;
            }
            if this.lane.pending.fetch_add(1, Ordering::SeqCst) >= this.lane.limit {
                this.lane.pending.fetch_sub(1, Ordering::SeqCst);
                let request = parse_request(&message.payload).unwrap_or_default();
                let failure = Failure::new(
                    FailureKind::Busy,
                    format!(
                        "service `{}` has {} requests pending",
                        this.service.info.name, this.lane.limit
                    ),
                );
                this.finish(&message.topic, &request, Err(failure)).await;
                continue;
            }
            let dispatch = this.clone();
            this.tracker.spawn(async move {
                let _permit = dispatch.lane.permits.acquire().await;
                dispatch.answer(message).await;
                dispatch.lane.pending.fetch_sub(1, Ordering::SeqCst);
            });
        }
    }

    async fn answer(&self, message: Message) {
        let topic = message.topic.as_str();
        let request = match parse_request(&message.payload) {
            Ok(request) => request,
            Err(why) => {
                self.finish(
                    topic,
                    &Object::new(),
                    Err(Failure::new(FailureKind::InvalidInput, why)),
                )
                .await;
                return;
            }
        };
        if let Err(error) = self
            .bus
            .publish(
                &protocol::start_topic(topic),
                message.payload.to_vec(),
                false,
            )
            .await
        {
            tracing::error!(%topic, %error, "cannot publish start");
        }
        let outcome = self.execute(topic, &request).await;
        self.finish(topic, &request, outcome).await;
    }

    async fn execute(&self, topic: &str, request: &Object) -> Result<Object, Failure> {
        let action = self.service.actions.get(topic).ok_or_else(|| {
            Failure::new(FailureKind::InvalidInput, format!("no action `{topic}`"))
        })?;
        let id = request
            .get(CORRELATION_FIELD)
            .and_then(Value::as_str)
            .unwrap_or_default();
        let mut input = request.clone();
        input.remove(CORRELATION_FIELD);
        let mut input = Value::Object(input);
        // Secrets travel as placeholders; their values come from this host's environment
        // and are masked in everything that goes back.
        let secrets = secret::insert(&mut input, &|name| std::env::var(name).ok())
            .map_err(|why| Failure::new(FailureKind::InvalidInput, why))?;
        let masked = |mut failure: Failure| {
            failure.message = secret::mask(&failure.message, &secrets);
            failure
        };
        let timeout = match input.get("timeout") {
            Some(value) => timeout::parse(value).map_err(|why| {
                Failure::new(FailureKind::InvalidInput, format!("field `timeout` {why}"))
            })?,
            None => self
                .service
                .default_timeout
                .unwrap_or(self.config.default_timeout),
        };
        schema::check(&action.input, &input).map_err(|why| {
            masked(Failure::new(
                FailureKind::InvalidInput,
                format!("input of `{topic}` does not match its schema: {why}"),
            ))
        })?;
        let (events, mut received) = mpsc::channel(64);
        let forward = {
            let (bus, service, progress, log) = (
                self.bus.clone(),
                self.service.info.name.clone(),
                protocol::progress_topic(topic),
                protocol::log_topic(topic),
            );
            let id = id.to_string();
            let secrets = secrets.clone();
            async move {
                while let Some(event) = received.recv().await {
                    let sent = match event {
                        ServiceEvent::Progress(message) => {
                            let message = secret::mask(&message, &secrets);
                            let body = json!({"message": message, CORRELATION_FIELD: id});
                            bus.publish(&progress, body.to_string(), false).await
                        }
                        ServiceEvent::Resource { name, payload } => {
                            bus.publish(&protocol::resource_topic(&service, &name), payload, false)
                                .await
                        }
                        ServiceEvent::Log(line) => {
                            let line = secret::mask(&line, &secrets);
                            let body = json!({"line": line, CORRELATION_FIELD: id});
                            bus.publish(&log, body.to_string(), false).await
                        }
                    };
                    if let Err(error) = sent {
                        tracing::warn!(%error, "cannot publish a service event");
                    }
                }
            }
        };
        let Value::Object(fields) = &input else {
            unreachable!("made an object above")
        };
        let job = Job {
            id,
            topic,
            input: fields,
            timeout,
            events,
            secrets: &secrets,
        };
        let work = async {
            match &self.service.backend {
                Backend::Component(component) => component.handle(job).await,
                Backend::Container(lambda) => lambda.handle(job).await,
            }
        };
        let (results, ()) = tokio::join!(work, forward);
        let mut results = Value::Object(results.map_err(masked)?);
        secret::mask_value(&mut results, &secrets);
        schema::check(&action.output, &results).map_err(|why| {
            masked(Failure::new(
                FailureKind::Failed,
                format!("results of `{topic}` do not match its schema: {why}"),
            ))
        })?;
        match results {
            Value::Object(results) => Ok(results),
            _ => unreachable!("made an object above"),
        }
    }

    async fn finish(&self, topic: &str, request: &Object, outcome: Result<Object, Failure>) {
        let payload = match &outcome {
            Ok(results) => protocol::success_finish(request, results),
            Err(failure) => {
                let id = request.get(CORRELATION_FIELD).and_then(Value::as_str);
                let error = failure.to_string();
                tracing::warn!(%topic, correlation_id = id.unwrap_or(""), "{error}");
                let body = protocol::error_payload(topic, id, &error);
                if let Err(e) = self
                    .bus
                    .publish(&protocol::error_topic(&self.service.info.name), body, false)
                    .await
                {
                    tracing::error!(%topic, error = %e, "cannot publish an error");
                }
                protocol::failed_finish(request, &error, failure.exit_code)
            }
        };
        if let Err(error) = self
            .bus
            .publish(&protocol::finish_topic(topic), payload, false)
            .await
        {
            tracing::error!(%topic, %error, "cannot publish finish");
        }
    }
}

fn parse_request(payload: &[u8]) -> Result<Object, String> {
    match serde_json::from_slice(payload) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err("the request is not a JSON object".into()),
        Err(e) => Err(format!("the request is not JSON: {e}")),
    }
}
