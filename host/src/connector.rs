//! How a host's clients reach its broker: in-process links to the embedded one, TCP to an external one.

use crate::broker::EmbeddedBroker;
use crate::bus::{BrokerAddress, Bus, BusError, ConnectOptions, Will};
use tokio_util::sync::CancellationToken;

/// How the host's parts reach the broker: in-process links into the embedded
/// broker while it has some, TCP otherwise.
#[derive(Clone)]
pub enum Connector {
    /// An external broker.
    Tcp(BrokerAddress),
    /// The embedded broker.
    Embedded(EmbeddedBroker),
}

impl Connector {
    /// The address clients outside the process use.
    pub fn address(&self) -> BrokerAddress {
        match self {
            Connector::Tcp(address) => address.clone(),
            Connector::Embedded(broker) => broker.address(),
        }
    }

    /// The address a client granted `grant` uses: an external broker's as given,
    /// the embedded broker's with the login of a user granted that.
    pub fn address_for(&self, grant: &crate::access::Grant) -> BrokerAddress {
        match self {
            Connector::Tcp(address) => address.clone(),
            Connector::Embedded(broker) => broker.address_for(grant),
        }
    }

    /// A new client; `will` only applies over TCP (an in-process client's process
    /// is the broker's: if it dies, the broker dies with it).
    pub async fn connect(
        &self,
        client_id: &str,
        will: Option<Will>,
        shutdown: CancellationToken,
    ) -> Result<Bus, BusError> {
        let options = ConnectOptions::new(client_id).with_will(will);
        self.connect_with(options, shutdown).await
    }

    /// A new client connected as `options` say (over TCP; an in-process link has
    /// no session, no will and no id: it lives and dies with the broker).
    pub async fn connect_with(
        &self,
        options: ConnectOptions,
        shutdown: CancellationToken,
    ) -> Result<Bus, BusError> {
        let address = self.address();
        if let Connector::Embedded(broker) = self
            && let Some(link) = broker.take_link()
        {
            return Ok(Bus::connect_link(&address, link, shutdown));
        }
        Bus::connect_with(&address, options, shutdown).await
    }
}
