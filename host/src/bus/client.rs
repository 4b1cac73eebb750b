//! The client: one connection to the broker, shared by clones, routing what arrives to subscriptions.

use super::{BrokerAddress, BusError};
use bytes::Bytes;
use futures_util::FutureExt;
use rumqttc::{
    AsyncClient, ConnectionError, Event, EventLoop, LastWill, MqttOptions, Outgoing, Packet, QoS,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{Mutex as AsyncMutex, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A message received on a subscription.
#[derive(Debug, Clone)]
pub struct Message {
    /// The topic it was published on.
    pub topic: String,
    /// Its payload.
    pub payload: Bytes,
    /// True when the broker delivered it from its retained store.
    pub retain: bool,
}

/// A message the broker publishes for us when the connection is lost.
#[derive(Debug, Clone)]
pub struct Will {
    /// Topic.
    pub topic: String,
    /// Payload.
    pub payload: String,
}

struct Route {
    id: u64,
    filter: String,
    tx: mpsc::Sender<Message>,
}

struct Shared {
    client: Client,
    routes: std::sync::Mutex<Vec<Route>>,
    next_id: AtomicU64,
    dropped: AtomicU64,
    address: BrokerAddress,
    poller: AsyncMutex<Option<JoinHandle<()>>>,
    /// Retained messages published again after every reconnection (a restarted broker
    /// without persistence has forgotten them).
    announcements: std::sync::Mutex<Vec<(String, String)>>,
    /// Filters subscribed at the broker, and whether each is kept when its last
    /// subscriber goes (see [`Bus::subscribe_kept`]).
    subscribed: std::sync::Mutex<std::collections::BTreeMap<String, bool>>,
}

/// One connection to the broker, shared by clones.
#[derive(Clone)]
pub struct Bus {
    shared: Arc<Shared>,
}

/// Messages matching one filter; unsubscribes when dropped.
pub struct Subscription {
    rx: mpsc::Receiver<Message>,
    id: u64,
    bus: Bus,
}

impl Subscription {
    /// The next message; `None` once the bus is closed.
    pub async fn recv(&mut self) -> Option<Message> {
        self.rx.recv().await
    }
}

impl Subscription {
    /// A message already received, if any, without waiting.
    pub fn try_recv(&mut self) -> Option<Message> {
        self.rx.try_recv().ok()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.bus.remove_route(self.id);
    }
}

/// How many messages one subscription may hold before new ones are counted as dropped.
const SUBSCRIPTION_CAPACITY: usize = 4096;

/// Requests queued towards the connection before publishers wait.
const REQUEST_CAPACITY: usize = 1024;

/// True when `topic` matches `filter`, a shared subscription's `$share/<group>/` prefix ignored.
fn filter_matches(topic: &str, filter: &str) -> bool {
    let filter = match filter.strip_prefix("$share/") {
        Some(rest) => rest.split_once('/').map_or(rest, |(_, f)| f),
        None => filter,
    };
    rumqttc::matches(topic, filter)
}

/// How a bus reaches its broker: a TCP connection, or an in-process link into the
/// embedded broker (no socket at all: the host's own clients use these).
enum Client {
    Mqtt(AsyncClient),
    /// A std mutex, never held across an await: a task waiting for an async lock
    /// handed to a future its own task does not poll (a run's steps) would wait forever.
    Link(std::sync::Mutex<rumqttd::local::LinkTx>),
}

impl Client {
    async fn publish(
        &self,
        topic: &str,
        qos: QoS,
        retain: bool,
        payload: Vec<u8>,
    ) -> Result<(), BusError> {
        match self {
            Client::Mqtt(client) => client.publish(topic, qos, retain, payload).await?,
            Client::Link(link) => {
                let publish =
                    rumqttd::protocol::Publish::new(topic.as_bytes().to_vec(), payload, retain);
                send_link(link, rumqttd::protocol::Packet::Publish(publish, None))?;
            }
        }
        Ok(())
    }

    async fn subscribe(&self, filter: &str) -> Result<(), BusError> {
        match self {
            Client::Mqtt(client) => client.subscribe(filter, QoS::AtLeastOnce).await?,
            Client::Link(link) => {
                // LinkTx::subscribe never forwards retained messages: ask for them, as MQTT does.
                let filter = rumqttd::protocol::Filter {
                    path: filter.to_string(),
                    qos: rumqttd::protocol::QoS::AtMostOnce,
                    nolocal: false,
                    preserve_retain: false,
                    retain_forward_rule: rumqttd::protocol::RetainForwardRule::OnEverySubscribe,
                };
                let subscribe = rumqttd::protocol::Subscribe {
                    pkid: 0,
                    filters: vec![filter],
                };
                send_link(link, rumqttd::protocol::Packet::Subscribe(subscribe, None))?;
            }
        }
        Ok(())
    }

    fn mqtt(&self) -> Option<&AsyncClient> {
        match self {
            Client::Mqtt(client) => Some(client),
            Client::Link(_) => None,
        }
    }

    fn try_unsubscribe(&self, filter: String) {
        match self {
            Client::Mqtt(client) => {
                let _ = client.try_unsubscribe(filter);
            }
            Client::Link(link) => {
                if let Ok(mut link) = link.lock() {
                    let _ = link.try_unsubscribe(filter);
                }
            }
        }
    }
}

/// Hands a packet to the router through an in-process link.
fn send_link(
    link: &std::sync::Mutex<rumqttd::local::LinkTx>,
    packet: rumqttd::protocol::Packet,
) -> Result<(), BusError> {
    let mut link = link.lock().expect("link lock");
    // `LinkTx::send` is async in name only: it queues the packet and notifies the
    // router without waiting, so it completes on its first poll.
    match link.send(packet).now_or_never() {
        Some(Ok(_)) => Ok(()),
        Some(Err(error)) => {
            tracing::error!(%error, "in-process broker link failed");
            Err(BusError::Disconnected)
        }
        None => {
            tracing::error!("in-process broker link would wait");
            Err(BusError::Disconnected)
        }
    }
}

impl Bus {
    /// Connects as `client_id` and starts polling; returns once the broker accepted us.
    pub async fn connect(
        address: &BrokerAddress,
        client_id: &str,
        will: Option<Will>,
        shutdown: CancellationToken,
    ) -> Result<Bus, BusError> {
        let mut options = MqttOptions::new(client_id, address.host.clone(), address.port);
        options.set_keep_alive(Duration::from_secs(30));
        options.set_max_packet_size(64 << 20, 64 << 20);
        options.set_clean_session(true);
        options.set_inflight(1000);
        if let Some((user, pass)) = &address.credentials {
            options.set_credentials(user.clone(), pass.clone());
        }
        if let Some(tls) = &address.tls {
            options.set_transport(rumqttc::Transport::tls_with_config(
                rumqttc::TlsConfiguration::NativeConnector(tls.connector()?),
            ));
        }
        if let Some(will) = will {
            options.set_last_will(LastWill::new(
                will.topic,
                will.payload,
                QoS::AtLeastOnce,
                true,
            ));
        }
        let (client, mut eventloop) = AsyncClient::new(options, REQUEST_CAPACITY);
        // Requests and finishes are small messages: Nagle's algorithm would hold them back.
        let mut network = rumqttc::NetworkOptions::new();
        network.set_tcp_nodelay(true);
        eventloop.set_network_options(network);
        let bus = Bus::new(Client::Mqtt(client), address);
        let (ready_tx, ready_rx) = oneshot::channel();
        let handle = tokio::spawn(bus.clone().poll(eventloop, ready_tx, shutdown));
        *bus.shared.poller.lock().await = Some(handle);
        match tokio::time::timeout(Duration::from_secs(10), ready_rx).await {
            Ok(Ok(Ok(()))) => Ok(bus),
            Ok(Ok(Err(error))) => Err(BusError::Connect {
                address: address.clone(),
                error: Box::new(error),
            }),
            Ok(Err(_)) | Err(_) => Err(BusError::ConnectTimeout(address.clone())),
        }
    }

    fn new(client: Client, address: &BrokerAddress) -> Bus {
        let shared = Arc::new(Shared {
            client,
            routes: std::sync::Mutex::new(Vec::new()),
            next_id: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            address: address.clone(),
            poller: AsyncMutex::new(None),
            announcements: std::sync::Mutex::new(Vec::new()),
            subscribed: std::sync::Mutex::new(std::collections::BTreeMap::new()),
        });
        Bus { shared }
    }

    /// A bus over an in-process link into the embedded broker at `address`.
    pub fn connect_link(
        address: &BrokerAddress,
        (tx, rx): (rumqttd::local::LinkTx, rumqttd::local::LinkRx),
        shutdown: CancellationToken,
    ) -> Bus {
        let bus = Bus::new(Client::Link(std::sync::Mutex::new(tx)), address);
        let handle = tokio::spawn(bus.clone().poll_link(rx, shutdown));
        *bus.shared.poller.try_lock().expect("a new bus") = Some(handle);
        bus
    }

    async fn poll_link(self, mut rx: rumqttd::local::LinkRx, shutdown: CancellationToken) {
        loop {
            let notification = tokio::select! {
                notification = rx.next() => notification,
                _ = shutdown.cancelled() => break,
            };
            match notification {
                Ok(Some(rumqttd::Notification::Forward(forward))) => self.deliver(Message {
                    topic: String::from_utf8_lossy(&forward.publish.topic).into_owned(),
                    payload: forward.publish.payload,
                    retain: forward.publish.retain,
                }),
                // The router stops serving a link that fell behind until it says it is ready.
                Ok(Some(rumqttd::Notification::Unschedule)) => {
                    if rx.wake().await.is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::error!(%error, "in-process broker link closed");
                    break;
                }
            }
        }
        self.shared.routes.lock().expect("routes lock").clear();
    }

    /// The broker this bus is connected to.
    pub fn address(&self) -> &BrokerAddress {
        &self.shared.address
    }

    /// Messages dropped because a subscriber did not keep up.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    async fn poll(
        self,
        mut eventloop: EventLoop,
        ready: oneshot::Sender<Result<(), ConnectionError>>,
        shutdown: CancellationToken,
    ) {
        let mut ready = Some(ready);
        let mut backoff = Duration::from_millis(100);
        let mut closing = false;
        loop {
            let event = tokio::select! {
                event = eventloop.poll() => event,
                _ = shutdown.cancelled(), if !closing => {
                    closing = true;
                    if let Some(client) = self.shared.client.mqtt() {
                        let _ = client.try_disconnect();
                    }
                    continue;
                }
            };
            match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    backoff = Duration::from_millis(100);
                    if let Some(ready) = ready.take() {
                        let _ = ready.send(Ok(()));
                    } else {
                        tracing::info!(broker = %self.shared.address, "reconnected to the broker");
                        self.resubscribe();
                        self.announce_again();
                    }
                }
                Ok(Event::Incoming(Packet::Publish(publish))) => self.deliver(Message {
                    topic: publish.topic,
                    payload: publish.payload,
                    retain: publish.retain,
                }),
                Ok(Event::Outgoing(Outgoing::Disconnect)) => break,
                Ok(_) => {}
                Err(error) => {
                    if closing {
                        break;
                    }
                    if let Some(ready) = ready.take() {
                        let _ = ready.send(Err(error));
                        break;
                    }
                    tracing::warn!(broker = %self.shared.address, %error, "lost the broker; reconnecting in {backoff:?}");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.cancelled() => break,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        // Dropping the routes closes every subscription channel.
        self.shared.routes.lock().expect("routes lock").clear();
    }

    fn deliver(&self, message: Message) {
        let routes = self.shared.routes.lock().expect("routes lock");
        for route in routes
            .iter()
            .filter(|r| filter_matches(&message.topic, &r.filter))
        {
            if route.tx.try_send(message.clone()).is_err() && !route.tx.is_closed() {
                let dropped = self.shared.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::error!(topic = %message.topic, filter = %route.filter, dropped, "subscriber is full; message dropped");
            }
        }
    }

    fn resubscribe(&self) {
        let filters: Vec<String> = self
            .shared
            .subscribed
            .lock()
            .expect("subscribed lock")
            .keys()
            .cloned()
            .collect();
        for filter in filters {
            let Some(client) = self.shared.client.mqtt() else {
                return;
            };
            if let Err(error) = client.try_subscribe(filter.clone(), QoS::AtLeastOnce) {
                tracing::error!(%filter, %error, "cannot subscribe again after reconnecting");
            }
        }
    }

    fn announce_again(&self) {
        let announcements = self
            .shared
            .announcements
            .lock()
            .expect("announcements lock")
            .clone();
        for (topic, payload) in announcements {
            let Some(client) = self.shared.client.mqtt() else {
                return;
            };
            if let Err(error) = client.try_publish(topic.clone(), QoS::AtLeastOnce, true, payload) {
                tracing::error!(%topic, %error, "cannot announce again after reconnecting");
            }
        }
    }

    /// Publishes a retained message now and again after every reconnection; a later
    /// announcement on the same topic replaces it.
    pub async fn announce(&self, topic: &str, payload: impl Into<String>) -> Result<(), BusError> {
        let payload = payload.into();
        {
            let mut announcements = self
                .shared
                .announcements
                .lock()
                .expect("announcements lock");
            announcements.retain(|(t, _)| t != topic);
            announcements.push((topic.to_string(), payload.clone()));
        }
        self.publish(topic, payload, true).await
    }

    /// Subscribes to `filter` (MQTT wildcards and `$share/<group>/` allowed); the
    /// broker sends its retained messages again, and the filter is unsubscribed when
    /// its last subscriber goes.
    pub async fn subscribe(&self, filter: &str) -> Result<Subscription, BusError> {
        self.add_subscriber(filter, false).await
    }

    /// Subscribes to `filter` and keeps it subscribed at the broker after its last
    /// subscriber goes, so that asking again costs no round trip. For the topics a
    /// runner asks again and again; retained messages come only the first time.
    pub async fn subscribe_kept(&self, filter: &str) -> Result<Subscription, BusError> {
        self.add_subscriber(filter, true).await
    }

    async fn add_subscriber(&self, filter: &str, keep: bool) -> Result<Subscription, BusError> {
        let (tx, rx) = mpsc::channel(SUBSCRIPTION_CAPACITY);
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let send = {
            let mut routes = self.shared.routes.lock().expect("routes lock");
            let mut subscribed = self.shared.subscribed.lock().expect("subscribed lock");
            let live = routes.iter().any(|r| r.filter == filter);
            routes.push(Route {
                id,
                filter: filter.to_string(),
                tx,
            });
            let known = subscribed.get(filter).copied();
            subscribed.insert(filter.to_string(), keep || known == Some(true));
            match known {
                None => true,
                Some(_) if keep => false,
                Some(_) => !live,
            }
        };
        if send {
            self.shared.client.subscribe(filter).await?;
        }
        Ok(Subscription {
            rx,
            id,
            bus: self.clone(),
        })
    }

    fn remove_route(&self, id: u64) {
        let mut routes = self.shared.routes.lock().expect("routes lock");
        let Some(index) = routes.iter().position(|r| r.id == id) else {
            return;
        };
        let route = routes.swap_remove(index);
        if routes.iter().any(|r| r.filter == route.filter) {
            return;
        }
        let mut subscribed = self.shared.subscribed.lock().expect("subscribed lock");
        if subscribed.get(&route.filter) == Some(&false) {
            subscribed.remove(&route.filter);
            self.shared.client.try_unsubscribe(route.filter);
        }
    }

    /// Publishes at least once.
    pub async fn publish(
        &self,
        topic: &str,
        payload: impl Into<Vec<u8>>,
        retain: bool,
    ) -> Result<(), BusError> {
        self.shared
            .client
            .publish(topic, QoS::AtLeastOnce, retain, payload.into())
            .await?;
        Ok(())
    }

    /// Publishes at most once: for requests, as copper's runner did.
    ///
    /// Why not at least once: rumqttd (and mosquitto by default) send without
    /// TCP_NODELAY, so a PUBACK from the broker followed soon by the reply would wait
    /// for the requester's delayed ACK (40 ms). Replies and everything else are QoS 1,
    /// and the receiver's PUBACK carries the TCP acknowledgement back at once.
    pub async fn publish_at_most_once(
        &self,
        topic: &str,
        payload: impl Into<Vec<u8>>,
    ) -> Result<(), BusError> {
        self.shared
            .client
            .publish(topic, QoS::AtMostOnce, false, payload.into())
            .await?;
        Ok(())
    }

    /// Sends what is queued, disconnects cleanly (no last will) and waits for the poller.
    pub async fn close(&self) {
        let handle = self.shared.poller.lock().await.take();
        match (&self.shared.client, handle) {
            (Client::Mqtt(client), Some(handle)) => {
                let _ = client.disconnect().await;
                let _ = tokio::time::timeout(Duration::from_secs(2), handle).await;
            }
            // A link has nothing to send: everything went to the router already.
            (Client::Link(_), Some(handle)) => handle.abort(),
            (_, None) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_filters_match_their_topic() {
        assert!(filter_matches(
            "fetcher/fetch",
            "$share/copper/fetcher/fetch"
        ));
        assert!(filter_matches("fetcher/fetch/finish", "fetcher/fetch/+"));
        assert!(!filter_matches("fetcher/fetch/finish", "fetcher/fetch"));
    }
}
