//! One request over the bus: publish it on its action topic, await its finish.
//!
//! Requests carry a correlation id; a finish without one (a copper service that
//! builds its own entry) is accepted, since the runner has one request pending
//! per topic. A request is published at least once and sent again when the host
//! that took it goes away ([`request_among`] says when).

use super::listen::{Heard, Listeners};
use crate::bus::{Bus, BusError, Will};
use crate::presence::{Change, Departure, Hosts};
use crate::protocol::{self, CORRELATION_FIELD, Finish, Object, Status};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// Why a request got no usable answer.
///
/// ```no_run
/// # async fn example(host: &copper_wasm::Host) -> anyhow::Result<()> {
/// use copper_wasm::runner::RequestError;
/// let fields = copper_wasm::protocol::Object::new();
/// let wait = Some(std::time::Duration::from_secs(30));
/// match host.call("markdown/build", &fields, wait).await {
///     Ok(finish) => println!("{:?}", finish.status),
///     Err(RequestError::NotServed { known, .. }) => eprintln!("try one of {known:?}"),
///     Err(RequestError::NoAnswer { waited, .. }) => eprintln!("silent for {waited:?}"),
///     Err(other) => return Err(other.into()),
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The bus failed.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// No finish within the wait.
    #[error("no finish on `{topic}` within {}", humantime::format_duration(*.waited))]
    NoAnswer {
        /// The action topic.
        topic: String,
        /// How long we waited.
        waited: Duration,
    },
    /// The service said `down` while we waited.
    #[error("service `{0}` went down before answering")]
    ServiceDown(String),
    /// Not an action topic `<service>/<action>` (no wildcards).
    #[error("`{0}` is not an action topic `<service>/<action>`")]
    NotAnAction(String),
    /// No service here or on the broker answers the action.
    #[error("no service answers `{topic}`; known actions: {}", if known.is_empty() { "none".to_string() } else { known.join(", ") })]
    NotServed {
        /// The action topic.
        topic: String,
        /// The actions that are answered.
        known: Vec<String>,
    },
}

/// Requests under way, by topic: a finish without a correlation id (a copper
/// service's) is taken only when its topic has one request pending. Also the
/// hosts on the broker, watched once for all of them.
#[derive(Clone, Default)]
pub struct Pending(Arc<PendingInner>);

#[derive(Default)]
struct PendingInner {
    hosts: tokio::sync::OnceCell<Hosts>,
    /// What comes back on each action topic, handed to its requests by id; it
    /// knows which requests are under way on each.
    listeners: Listeners,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Pending").field(&self.0.listeners).finish()
    }
}

impl Pending {
    /// True when one request alone is under way on `topic`.
    fn alone(&self, topic: &str) -> bool {
        self.0.listeners.under_way(topic) == 1
    }

    /// The hosts on `bus`'s broker, watched from the first request on.
    async fn hosts(&self, bus: &Bus) -> Result<Hosts, BusError> {
        self.0
            .hosts
            .get_or_try_init(|| Hosts::watch(bus))
            .await
            .cloned()
    }
}

/// How long a request taken by a host that died waits for another host to take it
/// (the dead host's session adopted, its requests published again) before it is
/// sent again: longer than the adoption's grace.
pub const ADOPTION_WAIT: Duration = Duration::from_secs(4);

/// How long after a host serving the action announced itself (it started, or
/// reconnected) a request nobody took is sent again.
pub const ANNOUNCED_WAIT: Duration = Duration::from_millis(500);

/// How long after our own reconnection a request sent again and not taken is sent once more.
pub const RECONNECTED_WAIT: Duration = Duration::from_secs(2);

/// How long a request waits for a host to come back when none serving it is left.
pub const NO_HOST_WAIT: Duration = Duration::from_secs(30);

/// How long after a host stopped cleanly its last finishes may still be on their way.
pub const LEFT_WAIT: Duration = Duration::from_secs(1);

/// Publishes one request on `topic` and waits for its finish; `progress` gets the
/// service's progress messages. `wait` bounds the wait (none: until it answers).
pub async fn request(
    bus: &Bus,
    topic: &str,
    fields: &Object,
    wait: Option<Duration>,
    progress: impl FnMut(String),
) -> Result<Finish, RequestError> {
    request_among(bus, topic, fields, wait, progress, &Pending::default()).await
}

/// [`request`], one of several under way at once (`pending` knows them).
///
/// The request is published at least once (QoS 1) and sent again, with the same
/// correlation id, after our own reconnection, or when the host that took it (its
/// `<topic>/start` names it) dies and no other host takes it within
/// [`ADOPTION_WAIT`]. The first finish is the answer; hosts answer a repeat from
/// the finish they keep. It fails only at its deadline, or when no host serving
/// the service is left.
pub async fn request_among(
    bus: &Bus,
    topic: &str,
    fields: &Object,
    wait: Option<Duration>,
    mut progress: impl FnMut(String),
    pending: &Pending,
) -> Result<Finish, RequestError> {
    let service = protocol::service_of(topic).to_string();
    let id = uuid::Uuid::new_v4().to_string();
    let hosts = pending.hosts(bus).await?;
    let mut changes = hosts.changes();
    let mut connections = bus.connections();
    connections.borrow_and_update();
    let mut heard = pending.0.listeners.listen(bus, topic, &id).await?;
    let mut payload = fields.clone();
    payload.insert(CORRELATION_FIELD.into(), Value::from(id.clone()));
    let payload = Value::Object(payload).to_string();
    bus.publish(topic, payload.clone(), false).await?;
    // Given up before its finish (the run cancelled, the wait over): the host
    // running it is told to stop it.
    let mut unanswered = Unanswered {
        bus: bus.clone(),
        topic: topic.to_string(),
        id: id.clone(),
        answered: false,
    };
    let ours = |other: Option<&str>| match other {
        Some(other) => other == id,
        None => pending.alone(topic),
    };
    // A wait too long to be an instant is no deadline at all.
    let deadline = wait.and_then(|w| tokio::time::Instant::now().checked_add(w));
    let mut reported_error: Option<String> = None;
    // Who took it, and when to look again after a host went away.
    let mut taker: Option<String> = None;
    let mut recheck: Option<(tokio::time::Instant, String)> = None;
    let mut waited_for_a_host = false;
    loop {
        let timer = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let rechecked = async {
            match &recheck {
                Some((at, _)) => tokio::time::sleep_until(*at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            heard = heard.recv() => match heard {
                None => return Err(BusError::Disconnected.into()),
                Some(Heard::Finish(mut finish)) => {
                    if !ours(finish.correlation_id.as_deref()) {
                        continue;
                    }
                    // copper's services report errors on <service>/error, then finish.
                    if let (Status::Success, Some(error)) = (finish.status, reported_error.take())
                        && !finish.entry.contains_key("status")
                    {
                        finish.status = Status::Failed;
                        finish.error = Some(error);
                    }
                    unanswered.answered = true;
                    return Ok(finish);
                }
                Some(Heard::Progress(other, text)) => {
                    if ours(other.as_deref()) {
                        progress(text);
                    }
                }
                Some(Heard::Said(text)) => progress(text),
                Some(Heard::Error(other, about, error)) => {
                    if about.as_deref().is_none_or(|t| t == topic) && ours(other.as_deref()) {
                        reported_error = Some(error);
                    }
                }
                Some(Heard::Taken(host)) => taker = Some(host),
                Some(Heard::Status(message)) => {
                    // copper's own services say `down` themselves; our hosts' presence tells.
                    if !message.retain && &message.payload[..] == b"down" && !hosts.ever_served(&service) {
                        return Err(RequestError::ServiceDown(service));
                    }
                }
            },
            change = changes.recv() => match change {
                // A host that serves it (re)announced itself: after a reconnection it
                // may not have been subscribed when the request went out.
                Ok(Change::Present(host)) if host.serves(&service) && taker.is_none() => {
                    let at = tokio::time::Instant::now() + ANNOUNCED_WAIT;
                    if recheck.as_ref().is_none_or(|(due, _)| *due > at) {
                        recheck = Some((at, host.id));
                    }
                }
                Ok(Change::Gone(host, departure)) if host.serves(&service) => {
                    let took = taker.as_deref() == Some(host.id.as_str());
                    // A host without a persistent session took its backlog with it.
                    let lost = taker.is_none() && departure == Departure::Died && !host.persistent;
                    let wait = match departure {
                        Departure::Died if host.persistent => ADOPTION_WAIT,
                        Departure::Died => Duration::ZERO,
                        Departure::Left => LEFT_WAIT,
                    };
                    if took || lost {
                        taker = None;
                    }
                    if took || lost || !hosts.served(&service) {
                        recheck = Some((tokio::time::Instant::now() + wait, host.id));
                    }
                }
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    tracing::warn!(%topic, "missed changes among the hosts; sending the request again");
                    bus.publish(topic, payload.clone(), false).await?;
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                    return Err(BusError::Disconnected.into());
                }
            },
            () = rechecked => {
                let (_, gone) = recheck.take().expect("a recheck was due");
                // No host left (a copper service, with no presence at all, is not judged
                // so): wait once for one to come back (a broker node's death takes its
                // hosts' presence with it a while), then fail.
                if hosts.ever_served(&service) && !hosts.served(&service) {
                    if waited_for_a_host {
                        return Err(RequestError::ServiceDown(service));
                    }
                    waited_for_a_host = true;
                    recheck = Some((tokio::time::Instant::now() + NO_HOST_WAIT, gone));
                    continue;
                }
                if taker.is_none() {
                    tracing::info!(%topic, correlation_id = %id, host = %gone, "nobody has taken it; sending it again");
                    bus.publish(topic, payload.clone(), false).await?;
                }
            }
            changed = connections.changed() => {
                if changed.is_err() {
                    return Err(BusError::Disconnected.into());
                }
                tracing::info!(%topic, correlation_id = %id, "reconnected to the broker; sending the request again");
                bus.publish(topic, payload.clone(), false).await?;
                // And again if nobody took it: the hosts may have subscribed again after it.
                taker = None;
                recheck = Some((tokio::time::Instant::now() + RECONNECTED_WAIT, String::new()));
            }
            () = timer => {
                return Err(RequestError::NoAnswer { topic: topic.to_string(), waited: wait.unwrap_or_default() });
            }
        }
    }
}

/// A request published and not yet answered; when dropped so, `<topic>/cancel`
/// asks the host running it to stop it (copper's own services ignore it).
struct Unanswered {
    bus: Bus,
    topic: String,
    id: String,
    answered: bool,
}

impl Drop for Unanswered {
    fn drop(&mut self) {
        if self.answered {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (bus, topic) = (self.bus.clone(), protocol::cancel_topic(&self.topic));
        let body = serde_json::json!({ CORRELATION_FIELD: self.id }).to_string();
        runtime.spawn(async move {
            if let Err(error) = bus.publish(&topic, body, false).await {
                tracing::debug!(%topic, %error, "cannot ask for a cancel");
            }
        });
    }
}

/// The runner's last will, as copper's: `runner/status` = `disconnected`.
pub fn runner_will() -> Will {
    Will {
        topic: "runner/status".into(),
        payload: "disconnected".into(),
    }
}
