//! How a connection is made: who we are to the broker, and which of its nodes we reach.

use super::{BrokerAddress, BusError};
use rumqttc::{LastWill, MqttOptions, QoS};
use std::time::Duration;

/// How a connection is made: [`Bus::connect_with`](super::Bus::connect_with).
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// The client id (stable, for a persistent session).
    pub client_id: String,
    /// The last will.
    pub will: Option<Will>,
    /// Keep the session at the broker across disconnections (clean session off):
    /// what was sent to us and not acknowledged is sent again when we come back.
    pub persistent: bool,
    /// How often the connection is checked; the broker declares us gone after 1.5 times this.
    pub keep_alive: Duration,
    /// Connect again after losing the broker (off: the bus closes, as when another
    /// client takes our id over and must keep it).
    pub reconnect: bool,
    /// Acknowledge QoS 1 messages in the order they came (MQTT 3.1.1 asks it; the
    /// embedded broker, rumqttd, insists), a message done early waiting for those
    /// before it; off: each as soon as it is done (mosquitto, nats-server and the
    /// other brokers accept it, and a long request then holds nothing back).
    pub ordered_acks: bool,
}

impl ConnectOptions {
    /// A clean session as `client_id`, checked every 30 s.
    pub fn new(client_id: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            will: None,
            persistent: false,
            keep_alive: Duration::from_secs(30),
            reconnect: true,
            ordered_acks: false,
        }
    }

    /// The same, with `will` as its last will.
    pub fn with_will(self, will: Option<Will>) -> Self {
        Self { will, ..self }
    }
}

/// A message the broker publishes for us when the connection is lost.
#[derive(Debug, Clone)]
pub struct Will {
    /// Topic.
    pub topic: String,
    /// Payload.
    pub payload: String,
}

/// rumqttc's options for node `node` of `address` (see [`BrokerAddress::nodes`]).
pub(super) fn mqtt_options(
    address: &BrokerAddress,
    node: usize,
    connect: &ConnectOptions,
    via: Option<&std::path::Path>,
) -> Result<MqttOptions, BusError> {
    let nodes = address.nodes();
    let (host, port) = nodes[node % nodes.len()].clone();
    let mut options = match via {
        // Through the bus's own relay to that node (`quickack.rs`).
        Some(path) => {
            let mut options = MqttOptions::new(
                connect.client_id.clone(),
                path.to_string_lossy().into_owned(),
                0,
            );
            options.set_transport(rumqttc::Transport::unix());
            options
        }
        None => MqttOptions::new(connect.client_id.clone(), host, port),
    };
    options.set_keep_alive(connect.keep_alive);
    options.set_max_packet_size(64 << 20, 64 << 20);
    options.set_clean_session(!connect.persistent);
    options.set_inflight(1000);
    // Acknowledged by us: on arrival, or by a worker once the work is done.
    options.set_manual_acks(true);
    if let Some((user, pass)) = &address.credentials {
        options.set_credentials(user.clone(), pass.clone());
    }
    if let Some(tls) = &address.tls {
        options.set_transport(rumqttc::Transport::tls_with_config(
            rumqttc::TlsConfiguration::NativeConnector(tls.connector()?),
        ));
    }
    if let Some(Will { topic, payload }) = &connect.will {
        let will = LastWill::new(topic.clone(), payload.clone(), QoS::AtLeastOnce, true);
        options.set_last_will(will);
    }
    Ok(options)
}
