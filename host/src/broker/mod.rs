//! The embedded MQTT broker (rumqttd), so that `copper-wasm run` needs no set-up.
//!
//! It listens on loopback by default. Every TCP client comes in through `relay`,
//! which lets in only users of the credentials file ([`crate::access`]) and passes
//! on only what their grants allow; the host's own clients use in-process links.
//! rumqttd has no shutdown: its threads and port live until the process exits,
//! which is what a CLI run wants.

mod relay;

use crate::access::{Credentials, Grant};
use crate::bus::BrokerAddress;
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::{Arc, RwLock};
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
    /// Clients with no login would be let in from other machines.
    #[error(
        "the embedded MQTT broker would let clients in with no login on {0}: anonymous grants are for loopback only"
    )]
    AnonymousOffLoopback(SocketAddr),
    /// Another process listens on the port picked for rumqttd.
    #[error(
        "another process took the embedded MQTT broker's private port {0} before it could listen there"
    )]
    NotOurs(SocketAddr),
    /// The broker thread did not start listening.
    #[error("the embedded MQTT broker did not start listening on {0} within 5 s")]
    NotListening(SocketAddr),
}

/// Waits (at most 5 s) until rumqttd listens on `inner`, and checks that it is this
/// process listening there: the relay must talk to rumqttd alone.
pub(super) fn check_inner(inner: SocketAddr) -> Result<(), BrokerError> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect_timeout(&inner, Duration::from_millis(200)).is_err() {
        if Instant::now() > deadline {
            return Err(BrokerError::NotListening(inner));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    // The private port was free when picked, but another local process could
    // have taken it before rumqttd.
    if !own::listens_here(inner) {
        return Err(BrokerError::NotOurs(inner));
    }
    Ok(())
}

/// An in-process link into the broker (rumqttd's local link).
pub type Link = (rumqttd::local::LinkTx, rumqttd::local::LinkRx);

/// A running embedded broker.
#[derive(Clone)]
pub struct EmbeddedBroker {
    addr: SocketAddr,
    /// In-process links made before the broker started (rumqttd makes them only then).
    links: Arc<std::sync::Mutex<Vec<Link>>>,
    /// Who may come in over TCP.
    credentials: Arc<RwLock<Credentials>>,
    /// How many TCP clients have been let in so far.
    admitted: Arc<std::sync::atomic::AtomicUsize>,
}

impl EmbeddedBroker {
    /// Starts a broker on `addr` (port 0 picks a free port) that lets in the users
    /// of `credentials`, with `links` in-process links for the host's own clients;
    /// what TCP clients publish and subscribe to is recorded in `trace`.
    pub fn start(
        addr: SocketAddr,
        links: usize,
        credentials: Credentials,
        trace: crate::trace::Trace,
    ) -> Result<Self, BrokerError> {
        if !addr.ip().is_loopback() {
            if !credentials.anonymous().is_empty() {
                return Err(BrokerError::AnonymousOffLoopback(addr));
            }
            tracing::warn!(
                %addr,
                "the embedded MQTT broker listens beyond loopback: every client logs in, but without TLS; on a network others can read, use a broker with TLS (docs/security.md)"
            );
        }
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
        // rumqttd takes only the relay's login, so that no client gets round the relay.
        let relay_login = rumqttd::protocol::Login {
            username: "copper-wasm-relay".into(),
            password: format!("{}", uuid::Uuid::new_v4().simple()),
        };
        let mut broker = rumqttd::Broker::new(config(inner, &relay_login));
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
        // Whether rumqttd listens on its private port, and is the one listening
        // there, is for the relay to check before it lets a TCP client in (on its
        // own thread: a start need not wait for it, and most never use TCP).
        listener
            .set_nonblocking(true)
            .map_err(|source| BrokerError::Bind { addr, source })?;
        let credentials = Arc::new(RwLock::new(credentials));
        let admitted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let door = relay::Door {
            inner,
            credentials: credentials.clone(),
            relay_login,
            trace,
            admitted: admitted.clone(),
        };
        std::thread::Builder::new()
            .name("mqtt-relay".into())
            .spawn(move || relay::run(listener, door))
            .map_err(|source| BrokerError::Bind { addr, source })?;
        tracing::debug!(%addr, "embedded MQTT broker listening");
        Ok(Self {
            addr,
            links: Arc::new(std::sync::Mutex::new(links)),
            credentials,
            admitted,
        })
    }

    /// How many clients have come in over TCP so far (the host's own clients
    /// use in-process links and are not counted).
    pub fn tcp_clients(&self) -> usize {
        self.admitted.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// An in-process link, while any is left.
    pub fn take_link(&self) -> Option<Link> {
        self.links.lock().expect("links lock").pop()
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address the host's own clients connect to, with the host's login.
    pub fn address(&self) -> BrokerAddress {
        self.address_for(&Grant::Host)
    }

    /// The address with the login of a user granted `grant`; for a service with no
    /// such user, a new one (in memory only, for a container the host starts).
    pub fn address_for(&self, grant: &Grant) -> BrokerAddress {
        let mut address = BrokerAddress::new(self.addr.ip().to_string(), self.addr.port());
        let found = self
            .credentials
            .read()
            .expect("credentials lock")
            .login_for(grant);
        address.credentials = Some(found.unwrap_or_else(|| {
            let user = format!("copper-wasm-{}", uuid::Uuid::new_v4().simple());
            let mut credentials = self.credentials.write().expect("credentials lock");
            let password = credentials.add(&user, vec![grant.clone()]);
            (user, password)
        }));
        address
    }
}

/// Whether a listening socket belongs to this process (Linux: `/proc`).
mod own {
    use std::net::SocketAddr;

    /// True when the socket listening on the IPv4 `addr` is one of this process's
    /// own (its inode in `/proc/net/tcp` is among `/proc/self/fd`).
    #[cfg(target_os = "linux")]
    pub fn listens_here(addr: SocketAddr) -> bool {
        let SocketAddr::V4(addr) = addr else {
            return false;
        };
        let local = format!(
            "{:08X}:{:04X}",
            u32::from_ne_bytes(addr.ip().octets()),
            addr.port()
        );
        let Ok(table) = std::fs::read_to_string("/proc/net/tcp") else {
            return false;
        };
        let inodes: Vec<String> = table
            .lines()
            .skip(1)
            .map(|line| line.split_whitespace().collect::<Vec<_>>())
            .filter(|f| f.len() > 9 && f[1] == local && f[3] == "0A")
            .map(|f| format!("socket:[{}]", f[9]))
            .collect();
        let Ok(fds) = std::fs::read_dir("/proc/self/fd") else {
            return false;
        };
        fds.filter_map(|fd| fd.ok())
            .filter_map(|fd| std::fs::read_link(fd.path()).ok())
            .any(|link| {
                inodes
                    .iter()
                    .any(|inode| link.as_os_str() == inode.as_str())
            })
    }

    /// Elsewhere there is no cheap way to tell: trusted.
    #[cfg(not(target_os = "linux"))]
    pub fn listens_here(_addr: SocketAddr) -> bool {
        true
    }

    #[cfg(all(test, target_os = "linux"))]
    mod tests {
        use super::*;
        use std::io::BufRead;

        #[test]
        fn a_port_another_process_listens_on_is_not_ours() {
            let mine = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            assert!(listens_here(mine.local_addr().unwrap()));
            let mut other = std::process::Command::new("python3")
                .args([
                    "-c",
                    "import socket,time\ns=socket.socket()\ns.bind(('127.0.0.1',0))\ns.listen()\nprint(s.getsockname()[1],flush=True)\ntime.sleep(60)",
                ])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("python3 runs");
            let mut line = String::new();
            std::io::BufReader::new(other.stdout.take().unwrap())
                .read_line(&mut line)
                .unwrap();
            let port: u16 = line.trim().parse().unwrap();
            let theirs = SocketAddr::from(([127, 0, 0, 1], port));
            let ours = listens_here(theirs);
            let _ = other.kill();
            let _ = other.wait();
            assert!(!ours, "{theirs} is another process's");
        }
    }
}

fn config(addr: SocketAddr, relay: &rumqttd::protocol::Login) -> rumqttd::Config {
    let connections = rumqttd::ConnectionSettings {
        connection_timeout_ms: 10_000,
        max_payload_size: 64 << 20,
        max_inflight_count: 1000,
        auth: Some(HashMap::from([(
            relay.username.clone(),
            relay.password.clone(),
        )])),
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
