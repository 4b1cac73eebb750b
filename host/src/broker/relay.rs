//! The front door of the embedded broker: every TCP client comes through here.
//!
//! It lets in only clients that log in as a user of the credentials file (or
//! that file's anonymous grants), passes on to rumqttd only what their grants
//! allow (a publish, a subscription, a last will), and disconnects a client that
//! tries anything else. rumqttd itself listens on a private loopback port and
//! takes only the relay's own login, so nothing reaches it around the relay.
//!
//! It also keeps small messages from waiting on TCP acknowledgements: rumqttd
//! writes to its sockets without TCP_NODELAY, so a small message that follows
//! another within 40 ms would wait for the peer's delayed ACK (44 ms a request).
//! The relay accepts clients with TCP_NODELAY, and acknowledges what rumqttd
//! sends at once (TCP_QUICKACK, re-armed after every read).

use crate::access::{self, Credentials, Grant};
use bytes::{Bytes, BytesMut};
use rumqttd::protocol::v4::{self, V4};
use rumqttd::protocol::{ConnAck, ConnectReturnCode, Error as WireError, Login, Packet, Protocol};
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;

/// The largest packet a client may send (the broker's own limit).
const MAX_PACKET: usize = 64 << 20;

/// The largest CONNECT: a client that has not logged in yet gets no room for more.
const MAX_CONNECT: usize = 64 << 10;

/// What every relayed connection shares.
#[derive(Clone)]
pub(super) struct Door {
    /// rumqttd's private address.
    pub inner: SocketAddr,
    /// Who may come in.
    pub credentials: Arc<RwLock<Credentials>>,
    /// The login rumqttd takes, the relay's alone.
    pub relay_login: Login,
    /// Where what clients publish and subscribe to is recorded.
    pub trace: crate::trace::Trace,
    /// How many clients have been let in so far.
    pub admitted: Arc<std::sync::atomic::AtomicUsize>,
}

/// Accepts clients on `listener` for ever.
pub(super) fn run(listener: std::net::TcpListener, door: Door) {
    // Nobody is let in before rumqttd is known to listen on its port (clients
    // wait in the listener's backlog meanwhile); if it does not, or someone else
    // does, nobody ever is.
    if let Err(error) = super::check_inner(door.inner) {
        return tracing::error!(%error, "the embedded broker takes no TCP client");
    }
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
                Ok((client, peer)) => {
                    let door = door.clone();
                    tokio::spawn(async move {
                        if let Err(error) = connect(client, peer, door).await {
                            tracing::debug!(%error, %peer, "broker relay connection ended");
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

/// A client let in: who it is and what it may do.
struct Admitted {
    client_id: String,
    user: String,
    grants: Vec<Grant>,
}

async fn connect(client: TcpStream, peer: SocketAddr, door: Door) -> std::io::Result<()> {
    client.set_nodelay(true)?;
    let (mut client_read, mut client_write) = client.into_split();
    let mut buffer = BytesMut::with_capacity(4096);
    let Some((kind, raw)) = next_packet(&mut client_read, &mut buffer, MAX_CONNECT).await? else {
        return Ok(());
    };
    let (admitted, connect) = match admit(kind, raw, &door) {
        Ok(admitted) => admitted,
        Err(code) => {
            tracing::warn!(%peer, ?code, "broker refused a client");
            let mut refusal = BytesMut::new();
            let connack = ConnAck {
                session_present: false,
                code,
            };
            let _ = V4.write(Packet::ConnAck(connack, None), &mut refusal);
            client_write.write_all(&refusal).await?;
            return client_write.shutdown().await;
        }
    };
    door.admitted
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let upstream = TcpStream::connect(door.inner).await?;
    upstream.set_nodelay(true)?;
    let (mut upstream_read, mut upstream_write) = upstream.into_split();
    upstream_write.write_all(&connect).await?;
    let to_broker = async {
        let result = guard(
            &mut client_read,
            &mut buffer,
            &mut upstream_write,
            &admitted,
            &door.trace,
        )
        .await;
        let _ = upstream_write.shutdown().await;
        result
    };
    let to_client = crate::bus::forward_acking(&mut upstream_read, &mut client_write);
    tokio::select! {
        result = to_broker => result,
        result = to_client => result,
    }
}

/// Checks a client's CONNECT: its login (or the anonymous grants) and its last
/// will; returns who it is and the CONNECT to send rumqttd, with the relay's login.
fn admit(kind: u8, raw: Bytes, door: &Door) -> Result<(Admitted, BytesMut), ConnectReturnCode> {
    if kind != CONNECT {
        return Err(ConnectReturnCode::ProtocolError);
    }
    let Ok(Packet::Connect(connect, _, will, _, login)) = parse(&raw) else {
        return Err(ConnectReturnCode::MalformedPacket);
    };
    let credentials = door.credentials.read().expect("credentials lock");
    let (user, grants) = match &login {
        Some(login) => match credentials.login(&login.username, &login.password) {
            Some(grants) => (login.username.clone(), grants.to_vec()),
            None => return Err(ConnectReturnCode::BadUserNamePassword),
        },
        None if !credentials.anonymous().is_empty() => {
            (String::new(), credentials.anonymous().to_vec())
        }
        None => return Err(ConnectReturnCode::NotAuthorized),
    };
    drop(credentials);
    if let Some(will) = &will {
        let topic = String::from_utf8_lossy(&will.topic);
        let allowed = match will.retain {
            true => access::may_retain(&grants, &topic),
            false => access::may_publish(&grants, &topic),
        };
        if !allowed {
            tracing::warn!(%user, client_id = %connect.client_id, %topic, "a last will on a topic not granted");
            return Err(ConnectReturnCode::NotAuthorized);
        }
    }
    // Only hosts choose their client ids: anyone else's are prefixed with their user,
    // so that no client can take over a host's session (and the requests it holds).
    let mut connect = connect;
    if !grants.contains(&Grant::Host) {
        let owner = if user.is_empty() { "anonymous" } else { &user };
        // An empty id asks the broker for one of its own: a fresh one, not `user:`.
        let id = match connect.client_id.is_empty() {
            true => uuid::Uuid::new_v4().simple().to_string(),
            false => std::mem::take(&mut connect.client_id),
        };
        connect.client_id = format!("{owner}:{id}");
    }
    let admitted = Admitted {
        client_id: connect.client_id.clone(),
        user,
        grants,
    };
    let mut out = BytesMut::new();
    let packet = Packet::Connect(connect, None, will, None, Some(door.relay_login.clone()));
    V4.write(packet, &mut out)
        .map_err(|_| ConnectReturnCode::MalformedPacket)?;
    Ok((admitted, out))
}

/// Forwards a client's packets to the broker while its grants allow each.
async fn guard(
    client: &mut OwnedReadHalf,
    buffer: &mut BytesMut,
    upstream: &mut tokio::net::tcp::OwnedWriteHalf,
    admitted: &Admitted,
    trace: &crate::trace::Trace,
) -> std::io::Result<()> {
    while let Some((kind, raw)) = next_packet(client, buffer, MAX_PACKET).await? {
        let seen = Seen {
            trace,
            client: &admitted.client_id,
        };
        if let Some(refused) = refusal(kind, &raw, &admitted.grants, seen) {
            tracing::warn!(
                user = %admitted.user,
                client_id = %admitted.client_id,
                %refused,
                "broker disconnected a client for a topic it is not granted"
            );
            return Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!("not granted: {refused}"),
            ));
        }
        upstream.write_all(&raw).await?;
    }
    Ok(())
}

const CONNECT: u8 = 1;
const PUBLISH: u8 = 3;
const SUBSCRIBE: u8 = 8;

/// Where a packet let through is traced, and as whom.
#[derive(Clone, Copy)]
struct Seen<'a> {
    trace: &'a crate::trace::Trace,
    client: &'a str,
}

/// What in a packet `grants` do not allow (`publish <topic>`, `subscribe <filter>`),
/// or `None` when it may pass (and then it is traced).
fn refusal(kind: u8, raw: &Bytes, grants: &[Grant], seen: Seen<'_>) -> Option<String> {
    match kind {
        PUBLISH => match parse(raw) {
            Ok(Packet::Publish(publish, _)) => {
                let topic = String::from_utf8_lossy(&publish.topic);
                let refused = match publish.retain {
                    true => (!access::may_retain(grants, &topic))
                        .then(|| format!("publish {topic} (retained)")),
                    false => {
                        (!access::may_publish(grants, &topic)).then(|| format!("publish {topic}"))
                    }
                };
                if refused.is_none() {
                    seen.trace.published(seen.client, &topic, &publish.payload);
                }
                refused
            }
            _ => Some("a malformed publish".into()),
        },
        SUBSCRIBE => match parse(raw) {
            Ok(Packet::Subscribe(subscribe, _)) => {
                let refused = subscribe
                    .filters
                    .iter()
                    .find(|filter| !access::may_subscribe(grants, &filter.path))
                    .map(|filter| format!("subscribe {}", filter.path));
                if refused.is_none() {
                    for filter in &subscribe.filters {
                        seen.trace.subscribed(seen.client, &filter.path);
                    }
                }
                refused
            }
            _ => Some("a malformed subscribe".into()),
        },
        CONNECT => Some("a second connect".into()),
        _ => None,
    }
}

/// Reads one packet with rumqttd's own reader.
fn parse(raw: &Bytes) -> Result<Packet, WireError> {
    V4.read_mut(&mut BytesMut::from(&raw[..]), MAX_PACKET)
}

/// The next whole packet from the client (its type and its bytes, `max` at most),
/// `None` at the end.
async fn next_packet(
    client: &mut OwnedReadHalf,
    buffer: &mut BytesMut,
    max: usize,
) -> std::io::Result<Option<(u8, Bytes)>> {
    loop {
        match v4::check(buffer.iter(), max) {
            Ok(header) => {
                let raw = buffer.split_to(header.frame_length()).freeze();
                return Ok(Some((header.byte1 >> 4, raw)));
            }
            Err(WireError::InsufficientBytes(_)) => {}
            Err(error) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{error:?}"),
                ));
            }
        }
        if buffer.capacity() - buffer.len() < 4096 {
            buffer.reserve(64 * 1024);
        }
        if client.read_buf(buffer).await? == 0 {
            return Ok(None);
        }
    }
}
