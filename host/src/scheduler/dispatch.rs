//! One service's requests, taken from the bus and answered: each run at most
//! `concurrency` at once, acknowledged to the broker only once its finish is sent,
//! and answered once however often it is delivered (see `answers.rs`).

use super::answers::{Answers, Finished, Taken};
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
    /// Requests taken and not yet answered.
    pending: AtomicUsize,
    limit: usize,
    /// When the last request arrived.
    last_arrival: std::sync::Mutex<Instant>,
}

impl Lane {
    /// A lane running `concurrency` at once, with `queue` more waiting.
    pub fn new(concurrency: usize, queue: usize) -> Self {
        Self {
            permits: Semaphore::new(concurrency.max(1)),
            pending: AtomicUsize::new(0),
            limit: concurrency.max(1) + queue,
            last_arrival: std::sync::Mutex::new(Instant::now()),
        }
    }

    /// True when nothing is pending and nothing arrived for `quiet`.
    pub fn idle(&self, quiet: Duration) -> bool {
        self.pending.load(Ordering::SeqCst) == 0
            && self.last_arrival.lock().expect("lane lock").elapsed() >= quiet
    }
}

/// What answers one service's requests.
pub(super) struct Dispatch {
    pub service: Arc<Service>,
    pub bus: Bus,
    pub lane: Arc<Lane>,
    pub answers: Arc<Answers>,
    pub config: SchedulerConfig,
    pub tracker: TaskTracker,
    /// The id `<topic>/start` names as the taker.
    pub host_id: String,
}

impl Dispatch {
    /// Answers what arrives on `subscription` until `shutdown`.
    pub async fn run(self, mut subscription: Subscription, shutdown: CancellationToken) {
        let this = Arc::new(self);
        loop {
            let message = tokio::select! {
                message = subscription.recv() => match message { Some(m) => m, None => break },
                _ = shutdown.cancelled() => break,
            };
            *this.lane.last_arrival.lock().expect("lane lock") = Instant::now();
            this.take(message).await;
        }
        // What arrived after the stop's last look is ours too: answer it.
        while let Some(message) = subscription.try_recv() {
            this.take(message).await;
        }
    }

    async fn take(self: &Arc<Self>, message: Message) {
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
        if self.lane.pending.fetch_add(1, Ordering::SeqCst) >= self.lane.limit {
            self.lane.pending.fetch_sub(1, Ordering::SeqCst);
            let failure = Failure::new(
                FailureKind::Busy,
                format!(
                    "service `{}` has {} requests pending",
                    self.service.info.name, self.lane.limit
                ),
            );
            self.conclude(&topic, &request, Err(failure), delivery)
                .await;
            return;
        }
        let dispatch = self.clone();
        let arrived = Instant::now();
        self.tracker.spawn(async move {
            dispatch.publish_start(&topic, &request).await;
            let _permit = dispatch.lane.permits.acquire().await;
            let outcome = dispatch.execute(&topic, &request, arrived).await;
            dispatch.conclude(&topic, &request, outcome, delivery).await;
            dispatch.lane.pending.fetch_sub(1, Ordering::SeqCst);
        });
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
    /// time spent waiting for a worker is part of it.
    async fn execute(
        &self,
        topic: &str,
        request: &Object,
        arrived: Instant,
    ) -> Result<Object, Failure> {
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
                let service = protocol::error_topic(&self.service.info.name);
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
