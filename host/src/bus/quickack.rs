//! Acknowledging a TCP broker's segments at once (Linux's TCP_QUICKACK).
//!
//! A broker that writes without TCP_NODELAY (mosquitto as Debian installs it)
//! holds a small message back while its previous one is unacknowledged, and
//! Linux acknowledges late (delayed ACKs, up to 40 ms): every request then waits
//! about 44 ms. rumqttc owns its socket and cannot re-arm TCP_QUICKACK, which
//! Linux clears after a few segments; so the bus talks to a relay of its own
//! over a Unix socket in a private folder, and the relay holds the TCP
//! connection to the broker, re-arming TCP_QUICKACK before every read (as the
//! embedded broker's relay does on its side). Its cost is one more local hop
//! (BENCHMARKS.md); `COPPER_MQTT_QUICKACK=0` goes straight to the broker.

use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::{TcpStream, UnixListener, UnixStream};
use tokio::task::JoinHandle;

/// How long the relay tries to reach the broker for one connection of the bus:
/// less than the bus's own wait for the broker's CONNACK (rumqttc's connection
/// timeout, 5 s), so that when the network comes back the relay never hands the
/// broker a CONNECT the bus has already given up on (the stale connection would
/// take the client id's session from the live one).
const UPSTREAM_CONNECT: std::time::Duration = std::time::Duration::from_secs(3);

/// The relays of one bus: a Unix socket per node of the broker.
pub(super) struct QuickAck {
    dir: PathBuf,
    paths: Vec<PathBuf>,
    tasks: Vec<JoinHandle<()>>,
}

impl QuickAck {
    /// The relays a bus to `address` goes through: none to a TLS broker, nor
    /// with `COPPER_MQTT_QUICKACK=0`.
    pub(super) fn for_address(
        address: &super::BrokerAddress,
    ) -> Result<Option<Self>, super::BusError> {
        if address.tls.is_some() || std::env::var("COPPER_MQTT_QUICKACK").as_deref() == Ok("0") {
            return Ok(None);
        }
        Self::start(&address.nodes())
            .map(Some)
            .map_err(|error| super::BusError::Relay(Box::new(error)))
    }

    /// A relay to each of `nodes` (host, port), listening in a new folder only
    /// this user can enter.
    pub(super) fn start(nodes: &[(String, u16)]) -> io::Result<Self> {
        let dir = std::env::temp_dir().join(format!(
            "copper-wasm-bus-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        let mut relay = Self {
            dir,
            paths: Vec::new(),
            tasks: Vec::new(),
        };
        for (n, (host, port)) in nodes.iter().enumerate() {
            let path = relay.dir.join(format!("node-{n}.sock"));
            let listener = UnixListener::bind(&path)?;
            relay.paths.push(path);
            let upstream = (host.clone(), *port);
            relay.tasks.push(tokio::spawn(accept(listener, upstream)));
        }
        Ok(relay)
    }

    /// The socket that leads to node `node`.
    pub(super) fn path(&self, node: usize) -> &Path {
        &self.paths[node % self.paths.len()]
    }
}

impl Drop for QuickAck {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Relays each connection made to `listener` to `upstream`, for as long as the bus lives.
async fn accept(listener: UnixListener, upstream: (String, u16)) {
    loop {
        match listener.accept().await {
            Ok((client, _)) => {
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    if let Err(error) = relay(client, &upstream).await {
                        tracing::debug!(%error, host = %upstream.0, port = upstream.1, "bus relay connection ended");
                    }
                });
            }
            Err(error) => {
                tracing::warn!(%error, "bus relay cannot accept");
                return;
            }
        }
    }
}

/// One connection: the bus's bytes to the broker as they come, the broker's
/// back with every segment acknowledged at once.
async fn relay(client: UnixStream, (host, port): &(String, u16)) -> io::Result<()> {
    let broker = tokio::time::timeout(UPSTREAM_CONNECT, TcpStream::connect((host.as_str(), *port)))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "the broker did not answer"))??;
    broker.set_nodelay(true)?;
    let (mut from_broker, mut to_broker) = broker.into_split();
    let (mut from_client, mut to_client) = client.into_split();
    let up = async {
        let result = tokio::io::copy(&mut from_client, &mut to_broker).await;
        let _ = to_broker.shutdown().await;
        result.map(|_| ())
    };
    let down = forward_acking(&mut from_broker, &mut to_client);
    tokio::select! {
        result = up => result,
        result = down => result,
    }
}

/// Copies what `from` reads to `to`, acknowledging every segment at once
/// (TCP_QUICKACK, which Linux clears, re-armed before every read), and shuts
/// `to` down at the end: so that a peer writing without TCP_NODELAY never waits
/// for our delayed acknowledgements.
pub(crate) async fn forward_acking<W: tokio::io::AsyncWrite + Unpin>(
    from: &mut OwnedReadHalf,
    to: &mut W,
) -> std::io::Result<()> {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        socket2::SockRef::from(from.as_ref()).set_tcp_quickack(true)?;
        let n = tokio::io::AsyncReadExt::read(from, &mut buffer).await?;
        if n == 0 {
            let _ = to.shutdown().await;
            return Ok(());
        }
        to.write_all(&buffer[..n]).await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use tokio::io::AsyncReadExt;

    /// A TCP server that answers each line with the same line, upper-cased.
    async fn shouting_server() -> (String, u16) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buffer = [0u8; 1024];
                    while let Ok(n) = socket.read(&mut buffer).await {
                        if n == 0 {
                            break;
                        }
                        let loud = buffer[..n].to_ascii_uppercase();
                        if socket.write_all(&loud).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        ("127.0.0.1".to_string(), port)
    }

    #[tokio::test]
    async fn bytes_go_both_ways_through_a_private_socket_removed_after() {
        let node = shouting_server().await;
        let relay = QuickAck::start(&[node]).unwrap();
        let mode = std::fs::metadata(&relay.dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "only this user can reach the socket");
        for _ in 0..2 {
            // Each connection (a reconnection too) gets its own to the broker.
            let mut client = UnixStream::connect(relay.path(0)).await.unwrap();
            client.write_all(b"ping\n").await.unwrap();
            let mut answer = [0u8; 5];
            client.read_exact(&mut answer).await.unwrap();
            assert_eq!(&answer, b"PING\n");
        }
        let dir = relay.dir.clone();
        drop(relay);
        assert!(!dir.exists(), "the folder is removed with the bus");
    }
}
