//! The MQTT client every part of the host talks through.
//!
//! A [`Bus`] is one connection to a broker (embedded or external). Parts of the
//! host subscribe to topic filters and get a bounded channel of messages; one
//! task polls the connection, reconnects with backoff and subscribes again.
//!
//! `address.rs`: broker URLs, the password hidden wherever one is shown; `tls.rs`:
//! whose certificates a TLS connection trusts; `error.rs`: [`BusError`];
//! `client.rs`: the [`Bus`] itself. Which broker a host's clients reach, and how,
//! is [`crate::connector`]'s.

mod address;
mod client;
mod error;
mod tls;

pub use address::BrokerAddress;
pub use client::{Bus, Message, Subscription, Will};
pub use error::BusError;
pub use tls::{CaError, Tls};
