//! The client: one connection to the broker, shared by clones, routing what arrives to subscriptions.

use super::acks::Acks;
use super::message::{Delivery, Message, Subscription, filter_matches};
use super::options::mqtt_options;
use super::quickack::QuickAck;
use super::{BrokerAddress, BusError, ConnectOptions, Will};
use bytes::Bytes;
use futures_util::FutureExt;
use rumqttc::{AsyncClient, ConnectionError, Event, EventLoop, Outgoing, Packet, QoS};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{Mutex as AsyncMutex, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

mod away;
mod traced;

struct Route {
    id: u64,
    filter: String,
    tx: mpsc::Sender<Message>,
    /// Its messages are acknowledged by the subscriber ([`Bus::ack`]), not on arrival.
    work: bool,
}

/// Messages that arrived for no subscription of ours (a persistent session's, sent
/// again before we subscribed), unacknowledged, kept for the subscription to come.
const PARKED_CAPACITY: usize = 4096;

struct Shared {
    client: Client,
    /// The relays that acknowledge a TCP broker's segments at once (`quickack.rs`).
    quickack: Option<QuickAck>,
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
    /// The broker's session we are in: bumped whenever the broker says it kept none
    /// (deliveries of an earlier session can no longer be acknowledged).
    session: AtomicU64,
    /// Connections accepted by the broker so far (1 once connected; more after each reconnection).
    connections: tokio::sync::watch::Sender<u64>,
    /// True while connected.
    connected: tokio::sync::watch::Sender<bool>,
    /// What waits to be acknowledged (see `acks.rs`).
    acks: Acks,
    /// The session outlives the connection (see [`ConnectOptions::persistent`]).
    persistent: bool,
    /// See [`PARKED_CAPACITY`].
    parked: std::sync::Mutex<std::collections::VecDeque<(String, Bytes, u16)>>,
    /// What a persistent session published while disconnected, for the session it
    /// belongs to: sent once the broker says it kept that session, dropped if not
    /// (its requests were handed to other hosts, who answer them).
    held: std::sync::Mutex<Vec<away::Held>>,
    /// Where what it publishes and subscribes to is recorded, under which client id.
    traced: std::sync::OnceLock<(crate::trace::Trace, String)>,
    /// QoS 1 messages we published, and those the broker acknowledged (or that a
    /// lost session dropped): [`Bus::close`] waits until they meet.
    published: AtomicU64,
    settled: AtomicU64,
}

/// One connection to the broker, shared by clones.
#[derive(Clone)]
pub struct Bus {
    shared: Arc<Shared>,
}

/// How many messages one subscription may hold before new ones are counted as dropped.
const SUBSCRIPTION_CAPACITY: usize = 4096;

/// Requests queued towards the connection before publishers wait.
const REQUEST_CAPACITY: usize = 1024;

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
    /// Connects as `client_id` (a clean session) and starts polling; returns once the broker accepted us.
    pub async fn connect(
        address: &BrokerAddress,
        client_id: &str,
        will: Option<Will>,
        shutdown: CancellationToken,
    ) -> Result<Bus, BusError> {
        let options = ConnectOptions::new(client_id).with_will(will);
        Self::connect_with(address, options, shutdown).await
    }

    /// Connects as `connect` says and starts polling; returns once the broker accepted us.
    pub async fn connect_with(
        address: &BrokerAddress,
        connect: ConnectOptions,
        shutdown: CancellationToken,
    ) -> Result<Bus, BusError> {
        let quickack = QuickAck::for_address(address)?;
        let options = mqtt_options(address, 0, &connect, quickack.as_ref().map(|q| q.path(0)))?;
        let (client, mut eventloop) = AsyncClient::new(options, REQUEST_CAPACITY);
        // Requests and finishes are small messages: Nagle's algorithm would hold them back.
        let mut network = rumqttc::NetworkOptions::new();
        network.set_tcp_nodelay(true);
        // Reaching the broker and its CONNACK: 5 s (the relay gives up sooner, quickack.rs).
        network.set_connection_timeout(5);
        eventloop.set_network_options(network);
        let bus = Bus::new(
            Client::Mqtt(client),
            address,
            (connect.ordered_acks, connect.persistent),
            quickack,
        );
        let (ready_tx, ready_rx) = oneshot::channel();
        let handle = tokio::spawn(bus.clone().poll(eventloop, ready_tx, connect, shutdown));
        *bus.shared.poller.lock().await = Some(handle);
        match tokio::time::timeout(Duration::from_secs(10), ready_rx).await {
            Ok(Ok(Ok(()))) => Ok(bus),
            Ok(Ok(Err(error))) => Err(BusError::Connect {
                address: Box::new(address.clone()),
                error: Box::new(error),
            }),
            Ok(Err(_)) | Err(_) => Err(BusError::ConnectTimeout(Box::new(address.clone()))),
        }
    }

    fn new(
        client: Client,
        address: &BrokerAddress,
        (ordered_acks, persistent): (bool, bool),
        quickack: Option<QuickAck>,
    ) -> Bus {
        let shared = Arc::new(Shared {
            client,
            quickack,
            routes: std::sync::Mutex::new(Vec::new()),
            next_id: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            address: address.clone(),
            poller: AsyncMutex::new(None),
            announcements: std::sync::Mutex::new(Vec::new()),
            subscribed: std::sync::Mutex::new(std::collections::BTreeMap::new()),
            session: AtomicU64::new(0),
            connections: tokio::sync::watch::Sender::new(0),
            connected: tokio::sync::watch::Sender::new(false),
            parked: std::sync::Mutex::new(std::collections::VecDeque::new()),
            acks: Acks::new(ordered_acks),
            persistent,
            published: AtomicU64::new(0),
            settled: AtomicU64::new(0),
            traced: std::sync::OnceLock::new(),
            held: std::sync::Mutex::new(Vec::new()),
        });
        Bus { shared }
    }

    /// A bus over an in-process link into the embedded broker at `address`.
    pub fn connect_link(
        address: &BrokerAddress,
        (tx, rx): (rumqttd::local::LinkTx, rumqttd::local::LinkRx),
        shutdown: CancellationToken,
    ) -> Bus {
        let bus = Bus::new(
            Client::Link(std::sync::Mutex::new(tx)),
            address,
            (false, false),
            None,
        );
        bus.shared.connections.send_replace(1);
        bus.shared.connected.send_replace(true);
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
                Ok(Some(rumqttd::Notification::Forward(forward))) => self.deliver(
                    String::from_utf8_lossy(&forward.publish.topic).into_owned(),
                    forward.publish.payload,
                    forward.publish.retain,
                    None,
                ),
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
        connect: ConnectOptions,
        shutdown: CancellationToken,
    ) {
        let nodes = self.shared.address.nodes().len();
        let mut node = 0;
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
            self.flush_acks();
            match event {
                Ok(Event::Incoming(Packet::ConnAck(connack))) => {
                    backoff = Duration::from_millis(100);
                    let reconnection = ready.is_none();
                    if reconnection && !connack.session_present {
                        // The broker kept nothing of ours: earlier deliveries are void, and
                        // what we had published and not seen acknowledged is dropped.
                        self.shared.session.fetch_add(1, Ordering::SeqCst);
                        self.shared.parked.lock().expect("parked lock").clear();
                        self.shared.acks.clear();
                        let published = self.shared.published.load(Ordering::SeqCst);
                        self.shared.settled.store(published, Ordering::SeqCst);
                    }
                    self.shared.connections.send_modify(|n| *n += 1);
                    {
                        // Under the lock: a publisher sees either this bus disconnected
                        // (and holds its message here) or connected (and sends it).
                        let mut held = self.shared.held.lock().expect("held lock");
                        self.shared.connected.send_replace(true);
                        self.release_held(std::mem::take(&mut *held), connack.session_present);
                    }
                    if let Some(ready) = ready.take() {
                        let _ = ready.send(Ok(()));
                    } else {
                        tracing::info!(broker = %self.shared.address, session_present = connack.session_present, "reconnected to the broker");
                        self.resubscribe();
                        self.announce_again();
                    }
                }
                Ok(Event::Incoming(Packet::Publish(publish))) => {
                    let pkid = (publish.qos != QoS::AtMostOnce).then_some(publish.pkid);
                    self.deliver(publish.topic, publish.payload, publish.retain, pkid);
                }
                Ok(Event::Incoming(Packet::PubAck(_))) => {
                    self.shared.settled.fetch_add(1, Ordering::SeqCst);
                }
                Ok(Event::Outgoing(Outgoing::Disconnect)) => break,
                Ok(_) => {}
                Err(error) => {
                    self.shared.connected.send_replace(false);
                    if closing {
                        break;
                    }
                    // A clustered broker: the next node (each tried once before giving up at first).
                    if nodes > 1 {
                        node = (node + 1) % nodes;
                        let via = self.shared.quickack.as_ref().map(|q| q.path(node));
                        match mqtt_options(&self.shared.address, node, &connect, via) {
                            Ok(options) => eventloop.mqtt_options = options,
                            Err(error) => {
                                tracing::error!(%error, "cannot use the next node of the broker")
                            }
                        }
                        if ready.is_some() && node != 0 {
                            continue;
                        }
                    }
                    if let Some(ready) = ready.take() {
                        let _ = ready.send(Err(error));
                        break;
                    }
                    if !connect.reconnect {
                        tracing::info!(broker = %self.shared.address, %error, "connection ended");
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

    /// Hands what arrived to every matching subscription. A QoS 1 message (`pkid`) is
    /// acknowledged here unless a work subscription took it; one that no subscription
    /// of ours wants yet is parked unacknowledged (see [`PARKED_CAPACITY`]).
    fn deliver(&self, topic: String, payload: Bytes, retain: bool, pkid: Option<u16>) {
        let session = self.shared.session.load(Ordering::SeqCst);
        let delivery = pkid.map(|pkid| Delivery { pkid, session });
        if let Some(pkid) = pkid {
            self.shared.acks.arrived(pkid);
        }
        let routes = self.shared.routes.lock().expect("routes lock");
        let mut matched = false;
        let mut work = false;
        for route in routes.iter().filter(|r| filter_matches(&topic, &r.filter)) {
            matched = true;
            work |= route.work;
            let message = Message {
                topic: topic.clone(),
                payload: payload.clone(),
                retain,
                delivery: if route.work { delivery } else { None },
            };
            if route.tx.try_send(message).is_err() && !route.tx.is_closed() {
                let dropped = self.shared.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::error!(%topic, filter = %route.filter, dropped, "subscriber is full; message dropped");
            }
        }
        let Some(delivery) = delivery else { return };
        // Still under the routes' lock: a subscriber added meanwhile would miss it.
        // Only a persistent session's messages can come before their subscriber;
        // anything else unrouted (an unsubscription on its way) is acknowledged.
        if !matched && self.shared.persistent && !self.subscribed_to(&topic) {
            let mut parked = self.shared.parked.lock().expect("parked lock");
            if parked.len() < PARKED_CAPACITY {
                parked.push_back((topic, payload, delivery.pkid));
                return;
            }
            tracing::error!(%topic, "too many messages for no subscriber; acknowledged and dropped");
        }
        drop(routes);
        if !work {
            self.ack_now(delivery);
        }
    }

    /// True when a filter subscribed at the broker (kept or not) matches `topic`.
    fn subscribed_to(&self, topic: &str) -> bool {
        let subscribed = self.shared.subscribed.lock().expect("subscribed lock");
        subscribed
            .keys()
            .any(|filter| filter_matches(topic, filter))
    }

    /// Acknowledges `delivery` without waiting (the poller itself may be the caller),
    /// in the order the broker wants (see `acks.rs`).
    fn ack_now(&self, delivery: Delivery) {
        self.shared.acks.done(delivery.pkid);
        self.flush_acks();
    }

    /// Sends the acknowledgements that may go; those the connection's queue refuses
    /// go at the next event of the connection.
    fn flush_acks(&self) {
        let Some(client) = self.shared.client.mqtt() else {
            return;
        };
        self.shared
            .acks
            .flush(|pkid| client.try_ack(&ack_of(pkid)).is_ok());
    }

    /// Acknowledges a work delivery, once its work is done; nothing when it belongs to a
    /// session the broker has since dropped (see [`Bus::is_live`]).
    pub fn ack(&self, delivery: Delivery) {
        if self.is_live(delivery) {
            self.ack_now(delivery);
        }
    }

    /// True while `delivery`'s session lasts: the broker still waits for its
    /// acknowledgement, and will send it again if we do not give one.
    pub fn is_live(&self, delivery: Delivery) -> bool {
        delivery.session == self.shared.session.load(Ordering::SeqCst)
    }

    /// Waits (at most `bound`) for the connection if it is down, since the broker
    /// says only on reconnecting whether it kept our session ([`Bus::is_live`]
    /// then tells); true when connected.
    pub async fn connected_within(&self, bound: Duration) -> bool {
        let mut connected = self.shared.connected.subscribe();
        let up = tokio::time::timeout(bound, connected.wait_for(|up| *up)).await;
        matches!(up, Ok(Ok(_)))
    }

    /// Counts the broker's acceptances of this connection: 1 once connected, one more
    /// after each reconnection (whatever was in flight then may be lost).
    pub fn connections(&self) -> tokio::sync::watch::Receiver<u64> {
        self.shared.connections.subscribe()
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
            self.shared.published.fetch_add(1, Ordering::SeqCst);
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
        self.add_subscriber(filter, false, false).await
    }

    /// Subscribes to `filter` and keeps it subscribed at the broker after its last
    /// subscriber goes, so that asking again costs no round trip. For the topics a
    /// runner asks again and again; retained messages come only the first time.
    pub async fn subscribe_kept(&self, filter: &str) -> Result<Subscription, BusError> {
        self.add_subscriber(filter, true, false).await
    }

    /// Subscribes to `filter` for work: each QoS 1 message comes with its
    /// [`Message::delivery`], which the subscriber acknowledges with [`Bus::ack`] when
    /// the work is done, so that the broker sends it again (to us, or to whoever takes
    /// over our session) if we never do. Messages of a persistent session that arrived
    /// before this subscription are handed to it first.
    pub async fn subscribe_work(&self, filter: &str) -> Result<Subscription, BusError> {
        self.add_subscriber(filter, false, true).await
    }

    async fn add_subscriber(
        &self,
        filter: &str,
        keep: bool,
        work: bool,
    ) -> Result<Subscription, BusError> {
        let (tx, rx) = mpsc::channel(SUBSCRIPTION_CAPACITY);
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let send = {
            let mut routes = self.shared.routes.lock().expect("routes lock");
            let mut subscribed = self.shared.subscribed.lock().expect("subscribed lock");
            let live = routes.iter().any(|r| r.filter == filter);
            self.unpark(filter, work, &tx);
            routes.push(Route {
                id,
                filter: filter.to_string(),
                tx,
                work,
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
            self.trace_subscribe(filter);
            self.shared.client.subscribe(filter).await?;
        }
        Ok(Subscription {
            rx,
            id,
            bus: self.clone(),
        })
    }

    /// Hands the parked messages matching `filter` to a new subscriber (called with
    /// the routes locked, so that nothing arrives in between); acknowledged now
    /// unless it is a work subscriber.
    fn unpark(&self, filter: &str, work: bool, tx: &mpsc::Sender<Message>) {
        let mut parked = self.shared.parked.lock().expect("parked lock");
        let session = self.shared.session.load(Ordering::SeqCst);
        let (ours, others): (Vec<_>, Vec<_>) = parked
            .drain(..)
            .partition(|(topic, _, _)| filter_matches(topic, filter));
        parked.extend(others);
        drop(parked);
        for (topic, payload, pkid) in ours {
            let delivery = Delivery { pkid, session };
            let message = Message {
                topic,
                payload,
                retain: false,
                delivery: work.then_some(delivery),
            };
            let _ = tx.try_send(message);
            if !work {
                self.ack_now(delivery);
            }
        }
    }

    /// Asks the broker to send no more on `filter`, keeping our subscribers: what it
    /// already sent us (a persistent session's backlog among it) still reaches them.
    pub fn stop_receiving(&self, filter: &str) {
        self.shared
            .subscribed
            .lock()
            .expect("subscribed lock")
            .remove(filter);
        self.shared.client.try_unsubscribe(filter.to_string());
    }

    /// Asks the broker again for what it sends on `filter`, after
    /// [`Bus::stop_receiving`]: our subscribers kept listening meanwhile.
    pub async fn resume_receiving(&self, filter: &str) -> Result<(), BusError> {
        self.shared
            .subscribed
            .lock()
            .expect("subscribed lock")
            .insert(filter.to_string(), false);
        self.trace_subscribe(filter);
        self.shared.client.subscribe(filter).await
    }

    /// A work subscription to what the broker sends on `filter` without subscribing
    /// to it: for a session taken over from another client, whose subscriptions the
    /// broker still holds (see [`Bus::subscribe_work`]).
    pub fn take_backlog(&self, filter: &str) -> Subscription {
        let (tx, rx) = mpsc::channel(SUBSCRIPTION_CAPACITY);
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let mut routes = self.shared.routes.lock().expect("routes lock");
        self.unpark(filter, true, &tx);
        routes.push(Route {
            id,
            filter: filter.to_string(),
            tx,
            work: true,
        });
        Subscription {
            rx,
            id,
            bus: self.clone(),
        }
    }

    pub(super) fn remove_route(&self, id: u64) {
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

    /// Publishes at least once (QoS 1).
    pub async fn publish(
        &self,
        topic: &str,
        payload: impl Into<Vec<u8>>,
        retain: bool,
    ) -> Result<(), BusError> {
        let mut payload = payload.into();
        self.trace_publish(topic, &payload);
        if self.hold(topic, QoS::AtLeastOnce, retain, &mut payload) {
            return Ok(());
        }
        self.shared
            .client
            .publish(topic, QoS::AtLeastOnce, retain, payload)
            .await?;
        // Counted once queued (a refused one would never be acknowledged).
        if self.shared.client.mqtt().is_some() {
            self.shared.published.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }

    /// Publishes at most once (QoS 0): nothing waits for it and nothing sends it again.
    /// Requests are published at least once; this stays for the benchmarks' reference
    /// and for what may be lost (progress a newer message replaces).
    pub async fn publish_at_most_once(
        &self,
        topic: &str,
        payload: impl Into<Vec<u8>>,
    ) -> Result<(), BusError> {
        let mut payload = payload.into();
        self.trace_publish(topic, &payload);
        if self.hold(topic, QoS::AtMostOnce, false, &mut payload) {
            return Ok(());
        }
        self.shared
            .client
            .publish(topic, QoS::AtMostOnce, false, payload)
            .await?;
        Ok(())
    }

    /// Waits (at most `bound`) until the broker has acknowledged every QoS 1 message
    /// published so far; true when it has.
    pub async fn settle(&self, bound: Duration) -> bool {
        let until = tokio::time::Instant::now() + bound;
        loop {
            let published = self.shared.published.load(Ordering::SeqCst);
            if self.shared.settled.load(Ordering::SeqCst) >= published {
                return true;
            }
            if tokio::time::Instant::now() >= until {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits (at most 5 s) for the broker to acknowledge what we published, then
    /// disconnects cleanly (no last will) and waits for the poller.
    pub async fn close(&self) {
        if !self.settle(Duration::from_secs(5)).await {
            tracing::warn!(broker = %self.shared.address, "closing with messages the broker has not acknowledged");
        }
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

/// The packet `rumqttc` needs to acknowledge message `pkid` (only its id and QoS are read).
fn ack_of(pkid: u16) -> rumqttc::Publish {
    let mut publish = rumqttc::Publish::new("", QoS::AtLeastOnce, Vec::new());
    publish.pkid = pkid;
    publish
}
