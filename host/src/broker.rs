//! The embedded MQTT broker (rumqttd), so that `copper-wasm run` needs no set-up.
//!
//! It listens on loopback by default. rumqttd has no shutdown: its threads and
//! port live until the process exits, which is what a CLI run wants.

use crate::bus::BrokerAddress;
use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

/// What can go wrong when starting the embedded broker.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The address cannot be listened on.
    #[error("the embedded MQTT broker cannot listen on {addr}")]
    Bind {
        /// Where.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The broker thread did not start listening.
    #[error("the embedded MQTT broker did not start listening on {0} within 5 s")]
    NotListening(SocketAddr),
}

/// A running embedded broker.
#[derive(Debug, Clone)]
pub struct EmbeddedBroker {
    addr: SocketAddr,
}

impl EmbeddedBroker {
    /// Starts a broker on `addr`; port 0 picks a free port.
    pub fn start(addr: SocketAddr) -> Result<Self, BrokerError> {
        // rumqttd only logs a failed bind from its own thread: find out here first.
        let addr = {
            let probe =
                TcpListener::bind(addr).map_err(|source| BrokerError::Bind { addr, source })?;
            probe
                .local_addr()
                .map_err(|source| BrokerError::Bind { addr, source })?
        };
        let mut broker = rumqttd::Broker::new(config(addr));
        std::thread::Builder::new()
            .name("mqtt-broker".into())
            .spawn(move || {
                if let Err(error) = broker.start() {
                    tracing::error!(%error, "embedded MQTT broker stopped");
                }
            })
            .map_err(|source| BrokerError::Bind { addr, source })?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if Instant::now() > deadline {
                return Err(BrokerError::NotListening(addr));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        tracing::debug!(%addr, "embedded MQTT broker listening");
        Ok(Self { addr })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address clients connect to.
    pub fn address(&self) -> BrokerAddress {
        BrokerAddress::new(self.addr.ip().to_string(), self.addr.port())
    }
}

fn config(addr: SocketAddr) -> rumqttd::Config {
    let connections = rumqttd::ConnectionSettings {
        connection_timeout_ms: 10_000,
        max_payload_size: 64 << 20,
        max_inflight_count: 1000,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    let server = rumqttd::ServerSettings {
        name: "copper-wasm".into(),
        listen: addr,
        tls: None,
        next_connection_delay_ms: 0,
        connections,
    };
    rumqttd::Config {
        id: 0,
        router: rumqttd::RouterConfig {
            // The default of 0 refuses every client.
            max_connections: 10_000,
            max_outgoing_packet_count: 1000,
            max_segment_size: 64 << 20,
            max_segment_count: 10,
            ..Default::default()
        },
        v4: Some(HashMap::from([("v4".to_string(), server)])),
        ..Default::default()
    }
}
