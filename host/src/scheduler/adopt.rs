//! Adopting a dead host's sessions, so that what it took is answered elsewhere.
//!
//! A host that dies leaves its persistent sessions at the broker, holding the
//! requests it took and did not answer (sent again to whoever resumes the session),
//! and, on mosquitto, a share of new requests (its round robin skips no member).
//! Once a host's last will says `dead` and stays so for [`GRACE`], one live host
//! (the one with the least id, so that exactly one does) resumes each of its
//! sessions whose service another host serves, asks the broker for no more on it,
//! publishes every request it holds again on its topic for the pool to take, and
//! acknowledges each once the broker has it again. It then ends the session and
//! clears the dead host's presence. A host that comes back first resumes its own
//! sessions and takes its requests itself: nothing is adopted.

use crate::bus::{Bus, BusError, ConnectOptions};
use crate::connector::Connector;
use crate::presence::{self, HostPresence, HostState, Hosts, ServedHere};
use std::collections::HashMap;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How long a host must stay dead before it is adopted (a host restarting at once
/// takes its sessions back itself).
pub const GRACE: Duration = Duration::from_secs(1);

/// How long an adopted session must stay quiet before it is taken to be empty.
const QUIET: Duration = Duration::from_millis(500);

/// Watches the hosts and adopts the dead ones when it falls to `me`, until `shutdown`.
pub(super) async fn adopt_the_dead(
    hosts: Hosts,
    me: String,
    connector: Connector,
    bus: Bus,
    shutdown: CancellationToken,
) {
    let mut changes = hosts.changes();
    let mut tick = tokio::time::interval(GRACE / 2);
    let mut first_seen: HashMap<String, Instant> = HashMap::new();
    loop {
        tokio::select! {
            _ = changes.recv() => {}
            _ = tick.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        let dead = hosts.dead();
        first_seen.retain(|id, _| dead.iter().any(|d| &d.id == id));
        for host in dead.into_iter().filter(|h| h.id != me) {
            let seen = *first_seen
                .entry(host.id.clone())
                .or_insert_with(Instant::now);
            let live = hosts.live();
            let adopter = live
                .iter()
                .filter(|h| h.state == HostState::Up)
                .map(|h| h.id.as_str())
                .min();
            if seen.elapsed() < GRACE || adopter != Some(me.as_str()) {
                continue;
            }
            if adopt(&host, &live, &connector, &hosts, &bus).await {
                first_seen.remove(&host.id);
            }
        }
    }
}

/// Adopts every session of `dead` whose service a live host serves; clears its
/// presence once none is left. True when that is done.
async fn adopt(
    dead: &HostPresence,
    live: &[HostPresence],
    connector: &Connector,
    hosts: &Hosts,
    bus: &Bus,
) -> bool {
    let mut kept = false;
    for service in &dead.services {
        let served = live
            .iter()
            .any(|h| h.state == HostState::Up && h.serves(&service.name));
        if !served {
            // Nobody could take its requests: they wait for the host to come back.
            kept = true;
            continue;
        }
        if !dead.persistent {
            continue;
        }
        let still_dead = || hosts.dead().iter().any(|h| h.id == dead.id);
        match take_over(&connector.address(), service, still_dead).await {
            Ok(handed) => {
                tracing::info!(host = %dead.id, service = %service.name, handed, "adopted a dead host's session");
            }
            Err(error) => {
                tracing::warn!(host = %dead.id, service = %service.name, %error, "cannot adopt a dead host's session");
                kept = true;
            }
        }
    }
    if kept {
        return false;
    }
    // Only if it did not come back meanwhile (its presence would be `up` again).
    if hosts.dead().iter().any(|h| h.id == dead.id) {
        let topic = presence::host_topic(&dead.id);
        if let Err(error) = bus.publish(&topic, "", true).await {
            tracing::warn!(%topic, %error, "cannot clear an adopted host's presence");
        }
    }
    true
}

/// Resumes `service`'s session, hands what it holds back to the pool, then ends
/// it; returns how many requests were handed back.
async fn take_over(
    address: &crate::bus::BrokerAddress,
    service: &ServedHere,
    still_dead: impl Fn() -> bool,
) -> Result<usize, BusError> {
    let options = ConnectOptions {
        persistent: true,
        reconnect: false,
        ..ConnectOptions::new(service.client_id.clone())
    };
    let bus = Bus::connect_with(address, options, CancellationToken::new()).await?;
    let mut backlog = bus.take_backlog("#");
    for filter in &service.filters {
        bus.stop_receiving(filter);
    }
    let mut handed = 0;
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        if Instant::now() >= until {
            // Still not empty: leave the rest in the session for the next try.
            bus.close().await;
            return Err(BusError::Disconnected);
        }
        let first = match tokio::time::timeout(QUIET, backlog.recv()).await {
            Ok(Some(message)) => message,
            // Closed: another client (the host, back) took its session over.
            Ok(None) => return Err(BusError::Disconnected),
            Err(_quiet) => break,
        };
        let mut batch = vec![first];
        while let Some(message) = backlog.try_recv() {
            batch.push(message);
        }
        for message in &batch {
            bus.publish(&message.topic, message.payload.clone(), false)
                .await?;
        }
        if !bus.settle(Duration::from_secs(10)).await {
            bus.close().await;
            return Err(BusError::Disconnected);
        }
        for delivery in batch.iter().filter_map(|m| m.delivery) {
            bus.ack(delivery);
        }
        handed += batch.len();
    }
    bus.close().await;
    if !still_dead() {
        // It came back meanwhile: its session is its own again.
        return Ok(handed);
    }
    // A clean session in its name ends it: the broker routes nothing more to it.
    let options = ConnectOptions {
        reconnect: false,
        ..ConnectOptions::new(service.client_id.clone())
    };
    Bus::connect_with(address, options, CancellationToken::new())
        .await?
        .close()
        .await;
    Ok(handed)
}
