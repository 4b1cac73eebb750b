//! One service's requests, taken from the bus and answered: each run at most
//! `concurrency` at once, acknowledged to the broker only once its finish is sent,
//! and answered once however often it is delivered (see `answers.rs`).

use super::answers::{Answers, Finished, Taken};
use super::lifecycle::ServiceState;
use super::workers::{Worker, Workers};
use super::{Backend, SchedulerConfig, Service};
use crate::bus::{Bus, Delivery, Message, Subscription};
use crate::job::{Job, ServiceEvent};
use crate::presence::TAKER_FIELD;
use crate::protocol::{self, CORRELATION_FIELD, Object};
use crate::schema;
use crate::secret;
use crate::service::{Failure, FailureKind};
use crate::timeout;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long a finish waits for a lost connection to come back before it is kept
/// only for a repeat (the broker tells on reconnecting whether our session lasted).
const OFFLINE_BOUND: Duration = Duration::from_secs(60);

/// One service's bound on concurrency and queue, and how busy it is.
pub(super) struct Lane {
    permits: Semaphore,
    /// The whole host's bound on requests running at once, shared by every lane.
    workers: Option<Arc<Semaphore>>,
    /// Requests taken and not yet answered.
    pending: AtomicUsize,
    /// Of those, the ones running now.
    running: AtomicUsize,
    /// Requests running at once, at most.
    concurrency: usize,
    limit: usize,
    /// When the last request arrived.
    last_arrival: std::sync::Mutex<Instant>,
    /// Told whenever a place is given back.
    room: tokio::sync::Notify,
    /// Where the service is in its life: only an `up` one takes requests.
    state: tokio::sync::watch::Sender<ServiceState>,
}

impl Lane {
    /// A lane running `concurrency` at once (within the host's `workers`, when
    /// bounded), with `queue` more waiting.
    pub fn new(concurrency: usize, queue: usize, workers: Option<Arc<Semaphore>>) -> Self {
        Self {
            permits: Semaphore::new(concurrency.max(1)),
            workers,
            pending: AtomicUsize::new(0),
            running: AtomicUsize::new(0),
            concurrency: concurrency.max(1),
            limit: concurrency.max(1) + queue,
            last_arrival: std::sync::Mutex::new(Instant::now()),
            room: tokio::sync::Notify::new(),
            state: tokio::sync::watch::Sender::new(ServiceState::Up),
        }
    }

    /// Where the service is in its life.
    pub fn state(&self) -> ServiceState {
        *self.state.borrow()
    }

    /// Moves the service to `state` (requests waiting for an `up` one go on then).
    pub fn set_state(&self, state: ServiceState) {
        self.state.send_replace(state);
    }

    /// True when nothing is pending and nothing arrived for `quiet`.
    pub fn idle(&self, quiet: Duration) -> bool {
        self.pending.load(Ordering::SeqCst) == 0
            && self.last_arrival.lock().expect("lane lock").elapsed() >= quiet
    }

    /// How busy it is now.
    pub fn load(&self) -> Load {
        let pending = self.pending.load(Ordering::SeqCst);
        let running = self.running.load(Ordering::SeqCst).min(pending);
        Load {
            in_flight: running,
            queued: pending - running,
            concurrency: self.concurrency,
            queue: self.limit - self.concurrency,
        }
    }

    /// Takes a place for one more request; false when every place is taken.
    fn admit(&self) -> bool {
        if self.pending.fetch_add(1, Ordering::SeqCst) >= self.limit {
            self.pending.fetch_sub(1, Ordering::SeqCst);
            return false;
        }
        true
    }

    /// Takes a place, waiting for one when every place is taken, and for the
    /// service to be `up` when it is paused or stopped. False when `shutdown` came
    /// while it was not up: the request stays unanswered, for the broker to send again.
    async fn enter(&self, shutdown: &CancellationToken) -> bool {
        // The common case: up, with room.
        if *self.state.borrow() == ServiceState::Up && self.admit() {
            return true;
        }
        let mut state = self.state.subscribe();
        loop {
            if *state.borrow_and_update() == ServiceState::Up {
                let room = self.room.notified();
                tokio::pin!(room);
                room.as_mut().enable();
                if self.admit() {
                    return true;
                }
                tokio::select! {
                    () = room => {}
                    _ = state.changed() => {}
                }
            } else {
                if shutdown.is_cancelled() {
                    return false;
                }
                tokio::select! {
                    _ = state.changed() => {}
                    () = shutdown.cancelled() => {}
                }
            }
        }
    }

    /// Waits for a worker of this service (and of the host), then counts it running
    /// until the guard is dropped; the place taken by `admit` is given back then too.
    async fn work(&self) -> Working<'_> {
        let service = self.permits.acquire().await.ok();
        let host = match &self.workers {
            Some(workers) => workers.clone().acquire_owned().await.ok(),
            None => None,
        };
        self.running.fetch_add(1, Ordering::SeqCst);
        Working {
            lane: self,
            _service: service,
            _host: host,
        }
    }
}

/// How busy one service is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Load {
    /// Requests running now.
    pub in_flight: usize,
    /// Requests taken and waiting for a worker.
    pub queued: usize,
    /// Requests it runs at once, at most.
    pub concurrency: usize,
    /// Requests that may wait behind those.
    pub queue: usize,
}

/// A request holding a worker; gives it (and its place in the lane) back when dropped.
struct Working<'a> {
    lane: &'a Lane,
    _service: Option<tokio::sync::SemaphorePermit<'a>>,
    _host: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl Drop for Working<'_> {
    fn drop(&mut self) {
        self.lane.running.fetch_sub(1, Ordering::SeqCst);
        self.lane.pending.fetch_sub(1, Ordering::SeqCst);
        self.lane.room.notify_waiters();
    }
}

/// What answers one service's requests.
pub(super) struct Dispatch {
    /// The version serving now (a reload replaces it; requests running keep theirs).
    pub service: std::sync::RwLock<Arc<Service>>,
    /// Every request taken on this host, listed.
    pub workers: Arc<Workers>,
    pub bus: Bus,
    pub lane: Arc<Lane>,
    pub answers: Arc<Answers>,
    pub config: SchedulerConfig,
    pub tracker: TaskTracker,
    /// The id `<topic>/start` names as the taker.
    pub host_id: String,
}

impl Dispatch {
    /// The version serving now.
    pub fn current(&self) -> Arc<Service> {
        self.service.read().expect("service lock").clone()
    }

    /// Serves `service` from now on.
    pub fn replace(&self, service: Arc<Service>) {
        *self.service.write().expect("service lock") = service;
    }

    /// Answers what arrives on `subscription` until `shutdown`.
    pub async fn run(self: Arc<Self>, mut subscription: Subscription, shutdown: CancellationToken) {
        let this = self;
        loop {
            let message = tokio::select! {
                message = subscription.recv() => match message { Some(m) => m, None => break },
                _ = shutdown.cancelled() => break,
            };
            *this.lane.last_arrival.lock().expect("lane lock") = Instant::now();
            this.take(message, &shutdown).await;
        }
        // What arrived after the stop's last look is ours too: answer it.
        while let Some(message) = subscription.try_recv() {
            this.take(message, &shutdown).await;
        }
    }

    async fn take(self: &Arc<Self>, message: Message, shutdown: &CancellationToken) {
        let topic = message.topic.clone();
        let delivery = message.delivery;
        if message.retain {
            tracing::warn!(%topic, "ignoring a retained request (it would run again on every start)");
            if let Some(delivery) = delivery {
                self.bus.ack(delivery);
            }
            return;
        }
        let request = match parse_request(&message.payload) {
            Ok(request) => request,
            Err(why) => {
                let failure = Failure::new(FailureKind::InvalidInput, why);
                self.conclude(&topic, &Object::new(), Err(failure), delivery)
                    .await;
                return;
            }
        };
        if let Some(id) = request.get(CORRELATION_FIELD).and_then(Value::as_str) {
            match self.answers.take(&answer_key(&topic, id), delivery) {
                Taken::New => {}
                Taken::Joined => {
                    self.publish_start(&topic, &request).await;
                    return;
                }
                Taken::Answered(finished) => {
                    self.publish_finish(&finished).await;
                    if let Some(delivery) = delivery {
                        self.bus.ack(delivery);
                    }
                    return;
                }
            }
        }
        // A full lane takes nothing more until a place is free: this loop stops
        // reading, and the requests wait unacknowledged in the broker's window
        // (QoS 1), then at the broker. So does a paused one.
        if !self.lane.enter(shutdown).await {
            return;
        }
        let dispatch = self.clone();
        let arrived = Instant::now();
        self.tracker.spawn(async move {
            let listed = dispatch
                .workers
                .list(dispatch.worker(&topic, &request, "bus"));
            dispatch.publish_start(&topic, &request).await;
            let working = dispatch.lane.work().await;
            listed.running();
            let outcome = dispatch
                .execute(&topic, &request, arrived, &listed.stop)
                .await;
            dispatch.conclude(&topic, &request, outcome, delivery).await;
            drop(working);
            drop(listed);
        });
    }

    /// How a request of `topic` is listed among the workers.
    fn worker(&self, topic: &str, request: &Object, via: &'static str) -> Worker {
        Worker {
            id: 0,
            service: self.lane_name(),
            action: topic.to_string(),
            correlation_id: request
                .get(CORRELATION_FIELD)
                .and_then(Value::as_str)
                .map(str::to_string),
            via,
            state: "queued",
            since: String::new(),
        }
    }

    fn lane_name(&self) -> String {
        self.current().info.name.clone()
    }

    /// A request the lane has no place for.
    fn busy(&self) -> Failure {
        Failure::new(
            FailureKind::Busy,
            format!(
                "service `{}` has {} requests pending",
                self.lane_name(),
                self.lane.limit
            ),
        )
    }

    /// Runs one request of `topic` given in this process (not on the bus), within
    /// the lane's bounds: a full lane refuses it at once (`busy`). It runs to its
    /// end even when the caller stops waiting, so nothing taken is lost.
    pub async fn call(self: &Arc<Self>, topic: &str, request: Object) -> Result<Object, Failure> {
        let refused = |failure: Failure| {
            let outcome = Err(failure);
            crate::telemetry::request_ended(&self.lane_name(), topic, &outcome, Duration::ZERO);
            outcome
        };
        match self.lane.state() {
            ServiceState::Up => {}
            state => {
                let why = format!("service `{}` is {state}", self.lane_name());
                return refused(Failure::new(FailureKind::Unavailable, why));
            }
        }
        if !self.lane.admit() {
            return refused(self.busy());
        }
        *self.lane.last_arrival.lock().expect("lane lock") = Instant::now();
        let (answer, answered) = tokio::sync::oneshot::channel();
        let dispatch = self.clone();
        let topic = topic.to_string();
        let arrived = Instant::now();
        self.tracker.spawn(async move {
            let listed = dispatch
                .workers
                .list(dispatch.worker(&topic, &request, "call"));
            let working = dispatch.lane.work().await;
            listed.running();
            let outcome = dispatch
                .execute(&topic, &request, arrived, &listed.stop)
                .await;
            drop(working);
            drop(listed);
            let _ = answer.send(outcome);
        });
        answered
            .await
            .unwrap_or_else(|_| Err(Failure::new(FailureKind::Failed, "the host stopped")))
    }

    /// `<topic>/start`: the request, and which host took it.
    async fn publish_start(&self, topic: &str, request: &Object) {
        let mut start = request.clone();
        start.insert(TAKER_FIELD.into(), Value::from(self.host_id.clone()));
        let payload = Value::Object(start).to_string();
        if let Err(error) = self
            .bus
            .publish(&protocol::start_topic(topic), payload, false)
            .await
        {
            tracing::error!(%topic, %error, "cannot publish start");
        }
    }

    async fn publish_finish(&self, finished: &Finished) {
        let topic = protocol::finish_topic(&finished.topic);
        if let Err(error) = self
            .bus
            .publish(&topic, finished.payload.clone(), false)
            .await
        {
            tracing::error!(%topic, %error, "cannot publish finish");
        }
    }

    /// Runs a request that arrived at `arrived`: its deadline counts from then, so
    /// time spent waiting for a worker is part of it. `stop` interrupts it.
    async fn execute(
        &self,
        topic: &str,
        request: &Object,
        arrived: Instant,
        stop: &CancellationToken,
    ) -> Result<Object, Failure> {
        let began = Instant::now();
        let span = tracing::info_span!(
            "request",
            service = %self.current().info.name,
            action = %topic,
            correlation_id = request
                .get(crate::protocol::CORRELATION_FIELD)
                .and_then(|v| v.as_str())
                .unwrap_or_default(),
            status = tracing::field::Empty,
        );
        let outcome = tracing::Instrument::instrument(
            self.execute_once(topic, request, arrived, stop),
            span.clone(),
        )
        .await;
        match &outcome {
            Ok(_) => span.record("status", "success"),
            Err(failure) => span.record("status", tracing::field::display(failure.kind)),
        };
        let service = self.current();
        crate::telemetry::request_ended(&service.info.name, topic, &outcome, began.elapsed());
        outcome
    }

    /// [`Self::execute`] without its measurement.
    async fn execute_once(
        &self,
        topic: &str,
        request: &Object,
        arrived: Instant,
        stop: &CancellationToken,
    ) -> Result<Object, Failure> {
        let service = self.current();
        let action = service.actions.get(topic).ok_or_else(|| {
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
            None => service
                .default_timeout
                .unwrap_or(self.config.default_timeout),
        };
        let waited = arrived.elapsed();
        let Some(left) = timeout.checked_sub(waited).filter(|left| !left.is_zero()) else {
            return Err(Failure::new(
                FailureKind::TimedOut,
                format!(
                    "waited {} for a free worker, past its timeout of {}",
                    humantime::format_duration(Duration::from_millis(
                        u64::try_from(waited.as_millis()).unwrap_or(u64::MAX)
                    )),
                    humantime::format_duration(timeout)
                ),
            ));
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
                service.info.name.clone(),
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
                            // Masked as all else: its name is in the topic.
                            let name = secret::mask(&name, &secrets);
                            let payload = secret::mask(&payload, &secrets);
                            let topic = protocol::resource_topic(&service, &name);
                            bus.publish(&topic, payload, false).await
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
            left,
            events,
            secrets: &secrets,
        };
        let work = async {
            let work = async {
                match &service.backend {
                    Backend::Component(component) => component.handle(job).await,
                    Backend::Container(lambda) => lambda.handle(job).await,
                }
            };
            // Stopped: the instance (or the container, by its guard) goes with the future.
            tokio::select! {
                results = work => results,
                () = stop.cancelled() => Err(Failure::new(
                    FailureKind::Failed,
                    "stopped by an operator (copper-wasm workers kill)",
                )),
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

    /// Answers a request with `outcome`: its finish (and `<service>/error` when it
    /// failed) is published when some delivery of it still waits for an answer,
    /// then every delivery is acknowledged. A delivery of a session the broker
    /// dropped was handed to another host: its finish is only kept for a repeat.
    async fn conclude(
        &self,
        topic: &str,
        request: &Object,
        outcome: Result<Object, Failure>,
        delivery: Option<Delivery>,
    ) {
        let id = request.get(CORRELATION_FIELD).and_then(Value::as_str);
        let payload = match &outcome {
            Ok(results) => protocol::success_finish(request, results),
            Err(failure) => {
                protocol::failed_finish(request, &failure.to_string(), failure.exit_code)
            }
        };
        let deliveries = match id {
            Some(id) => {
                let finished = Finished {
                    topic: topic.to_string(),
                    payload: payload.clone(),
                };
                let busy = matches!(&outcome, Err(f) if f.kind == FailureKind::Busy);
                self.answers.finish(&answer_key(topic, id), finished, !busy)
            }
            None => vec![delivery],
        };
        // Still wanted: a delivery needing no acknowledgement, or one of the session
        // the broker kept (known once connected).
        let wanted = deliveries.iter().any(Option::is_none)
            || (self.bus.connected_within(OFFLINE_BOUND).await
                && deliveries.iter().flatten().any(|d| self.bus.is_live(*d)));
        if !wanted {
            tracing::info!(%topic, correlation_id = id.unwrap_or(""), "not answering: its delivery went to another host with our lost session");
        } else {
            if let Err(failure) = &outcome {
                let error = failure.to_string();
                tracing::warn!(%topic, correlation_id = id.unwrap_or(""), "{error}");
                let body = protocol::error_payload(topic, id, &error);
                let service = protocol::error_topic(&self.lane_name());
                if let Err(e) = self.bus.publish(&service, body, false).await {
                    tracing::error!(%topic, error = %e, "cannot publish an error");
                }
            }
            let finish = protocol::finish_topic(topic);
            if let Err(error) = self.bus.publish(&finish, payload, false).await {
                tracing::error!(%topic, %error, "cannot publish finish");
            }
        }
        // After the finish, on the same connection: a broker that has the
        // acknowledgement has the finish.
        for delivery in deliveries.into_iter().flatten() {
            self.bus.ack(delivery);
        }
    }
}

/// What a request is known by among the answers: one id may be sent to two actions.
fn answer_key(topic: &str, id: &str) -> String {
    format!("{topic} {id}")
}

fn parse_request(payload: &[u8]) -> Result<Object, String> {
    match serde_json::from_slice(payload) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err("the request is not a JSON object".into()),
        Err(e) => Err(format!("the request is not JSON: {e}")),
    }
}
