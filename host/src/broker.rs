//! The embedded MQTT broker (rumqttd), so that `copper-wasm run` needs no set-up.
//!
//! It listens on loopback by default, through a small relay that keeps small
//! messages from waiting on TCP acknowledgements (see `relay`). rumqttd has no
//! shutdown: its threads and port live until the process exits, which is what a
//! CLI run wants.

use crate::bus::BrokerAddress;
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
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
    /// An in-process link could not be made (the cause boxed: rumqttd's is large).
    #[error("the embedded MQTT broker refused an in-process link")]
    Link(#[source] Box<rumqttd::local::LinkError>),
    /// The broker thread did not start listening.
    #[error("the embedded MQTT broker did not start listening on {0} within 5 s")]
    NotListening(SocketAddr),
}

/// An in-process link into the broker (rumqttd's local link).
pub type Link = (rumqttd::local::LinkTx, rumqttd::local::LinkRx);

/// A running embedded broker.
#[derive(Clone)]
pub struct EmbeddedBroker {
    addr: SocketAddr,
    /// In-process links made before the broker started (rumqttd makes them only then).
    links: std::sync::Arc<std::sync::Mutex<Vec<Link>>>,
}

impl EmbeddedBroker {
    /// Starts a broker on `addr` (port 0 picks a free port), with `links` in-process
    /// links for the host's own clients.
    pub fn start(addr: SocketAddr, links: usize) -> Result<Self, BrokerError> {
        let listener =
            TcpListener::bind(addr).map_err(|source| BrokerError::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| BrokerError::Bind { addr, source })?;
        // rumqttd itself listens on a private loopback port behind the relay.
        let inner = {
            let probe = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .map_err(|source| BrokerError::Bind { addr, source })?;
            probe
                .local_addr()
                .map_err(|source| BrokerError::Bind { addr, source })?
        };
        let mut broker = rumqttd::Broker::new(config(inner));
        let mut made = Vec::with_capacity(links);
        for n in 0..links {
            match broker.link(&format!("copper-wasm-local-{n}")) {
                Ok(link) => made.push(link),
                Err(error) => return Err(BrokerError::Link(Box::new(error))),
            }
        }
        let links = made;
        std::thread::Builder::new()
            .name("mqtt-broker".into())
            .spawn(move || {
                if let Err(error) = broker.start() {
                    tracing::error!(%error, "embedded MQTT broker stopped");
                }
            })
            .map_err(|source| BrokerError::Bind { addr, source })?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect_timeout(&inner, Duration::from_millis(200)).is_err() {
            if Instant::now() > deadline {
                return Err(BrokerError::NotListening(inner));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        listener
            .set_nonblocking(true)
            .map_err(|source| BrokerError::Bind { addr, source })?;
        std::thread::Builder::new()
            .name("mqtt-relay".into())
            .spawn(move || relay::run(listener, inner))
            .map_err(|source| BrokerError::Bind { addr, source })?;
        tracing::debug!(%addr, "embedded MQTT broker listening");
        Ok(Self {
            addr,
            links: std::sync::Arc::new(std::sync::Mutex::new(links)),
        })
    }

    /// An in-process link, while any is left.
    pub fn take_link(&self) -> Option<Link> {
        self.links.lock().expect("links lock").pop()
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

/// The front door of the embedded broker.
///
/// rumqttd writes to its sockets without TCP_NODELAY, so a small message that
/// follows another within 40 ms waits for the peer's delayed ACK: every request
/// would take 44 ms. The relay accepts clients with TCP_NODELAY, and acknowledges
/// what rumqttd sends at once (TCP_QUICKACK, re-armed after every read), so that
/// rumqttd's Nagle never waits.
mod relay {
    use socket2::SockRef;
    use std::net::SocketAddr;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    pub fn run(listener: std::net::TcpListener, inner: SocketAddr) {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(error) => return tracing::error!(%error, "the broker relay cannot start"),
        };
        runtime.block_on(async move {
            let listener = match tokio::net::TcpListener::from_std(listener) {
                Ok(listener) => listener,
                Err(error) => return tracing::error!(%error, "the broker relay cannot listen"),
            };
            loop {
                match listener.accept().await {
                    Ok((client, _)) => {
                        tokio::spawn(async move {
                            if let Err(error) = connect(client, inner).await {
                                tracing::debug!(%error, "broker relay connection ended");
                            }
                        });
                    }
                    Err(error) => {
                        tracing::warn!(%error, "broker relay cannot accept; retrying");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                }
            }
        });
    }

    async fn connect(client: TcpStream, inner: SocketAddr) -> std::io::Result<()> {
        let upstream = TcpStream::connect(inner).await?;
        client.set_nodelay(true)?;
        upstream.set_nodelay(true)?;
        let (mut client_read, mut client_write) = client.into_split();
        let (mut upstream_read, mut upstream_write) = upstream.into_split();
        let to_broker = async {
            let result = tokio::io::copy(&mut client_read, &mut upstream_write).await;
            let _ = upstream_write.shutdown().await;
            result
        };
        let to_client = async {
            let mut buffer = vec![0u8; 64 * 1024];
            loop {
                SockRef::from(upstream_read.as_ref()).set_tcp_quickack(true)?;
                let n = upstream_read.read(&mut buffer).await?;
                if n == 0 {
                    let _ = client_write.shutdown().await;
                    return Ok::<u64, std::io::Error>(0);
                }
                client_write.write_all(&buffer[..n]).await?;
            }
        };
        tokio::select! {
            result = to_broker => result.map(|_| ()),
            result = to_client => result.map(|_| ()),
        }
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
