//! The MQTT client every part of the host talks through.
//!
//! A [`Bus`] is one connection to a broker (embedded or external). Parts of the
//! host subscribe to topic filters and get a bounded channel of messages; one
//! task polls the connection, reconnects with backoff and subscribes again.
//!
//! `address.rs`: broker URLs (a clustered broker's nodes among them), the password
//! hidden wherever one is shown; `options.rs`: how a connection is made (client id,
//! will, persistent session); `tls.rs`: whose certificates a TLS connection trusts;
//! `error.rs`: [`BusError`]; `client.rs`: the [`Bus`] itself, and the acknowledgement
//! of work it delivers (`acks.rs`: in order, or as each is done); `message.rs`:
//! what a subscription hands out. Which broker a host's clients reach, and how,
//! is [`crate::connector`]'s.

mod acks;
mod address;
mod client;
mod error;
mod message;
mod options;
mod quickack;
mod tls;

pub use address::BrokerAddress;
pub use client::Bus;
pub use error::BusError;
pub use message::{Delivery, Message, Subscription};
pub use options::{ConnectOptions, Will};
pub(crate) use quickack::forward_acking;
pub use tls::{CaError, Tls};
