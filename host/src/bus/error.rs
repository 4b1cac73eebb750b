//! What can go wrong on the bus, each error keeping its cause.

use super::BrokerAddress;
use super::tls::CaError;
use rumqttc::ConnectionError;

/// What can go wrong on the bus.
///
/// ```
/// use copper_wasm::bus::{BrokerAddress, BusError};
/// let error = BrokerAddress::parse("http://robot:s3cret@broker.example").unwrap_err();
/// assert!(matches!(error, BusError::Url { .. }));
/// assert!(!error.to_string().contains("s3cret"), "passwords are never shown");
/// ```
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// A broker URL that cannot be used.
    #[error("bad broker URL `{url}`: {why}")]
    Url {
        /// The URL, password hidden.
        url: String,
        /// What is wrong.
        why: String,
    },
    /// A broker URL that cannot be read as a URL at all.
    #[error("bad broker URL `{url}`")]
    UrlSyntax {
        /// The URL, password hidden.
        url: String,
        /// Why it cannot be read (it never holds the URL itself).
        #[source]
        source: url::ParseError,
    },
    /// The first connection failed.
    #[error("cannot connect to the MQTT broker at {address}: {}", without_repeats(error.as_ref()))]
    Connect {
        /// Where (boxed: an address may list a cluster's nodes).
        address: Box<BrokerAddress>,
        /// Why (its causes are in the message, each once: rumqttc's errors repeat
        /// their source in their own message, so it is not a source here).
        error: Box<ConnectionError>,
    },
    /// The authorities' certificates for TLS cannot be read.
    #[error("cannot use the broker's certificate authorities {path} (COPPER_MQTT_CA)")]
    Ca {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: CaError,
    },
    /// TLS cannot be set up.
    #[error("cannot set up TLS")]
    Tls(#[source] native_tls::Error),
    /// The local relay to a TCP broker (`quickack.rs`) cannot listen.
    #[error("cannot start the bus's relay to the broker (COPPER_MQTT_QUICKACK=0 goes without)")]
    Relay(#[source] Box<std::io::Error>),
    /// The broker did not answer in time.
    #[error("the MQTT broker at {0} did not answer within 10 s")]
    ConnectTimeout(Box<BrokerAddress>),
    /// A request could not be queued: the connection is closed.
    #[error("the MQTT connection is closed")]
    Client(#[from] rumqttc::ClientError),
    /// The connection closed while a subscriber waited.
    #[error("the MQTT connection closed")]
    Disconnected,
}

/// An error and its causes in one line, each cause once: rumqttc's errors repeat
/// their source in their own message.
fn without_repeats(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(error) = cause {
        let message = error.to_string();
        if !text.contains(&message) {
            text = format!("{text}: {message}");
        }
        cause = error.source();
    }
    text
}
