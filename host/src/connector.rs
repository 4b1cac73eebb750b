//! How a host's clients reach its broker: in-process links to the embedded one, TCP to an external one.

use crate::broker::EmbeddedBroker;
use crate::bus::{BrokerAddress, Bus, BusError, ConnectOptions, Will};
use crate::trace::Trace;
use tokio_util::sync::CancellationToken;

/// How the host's parts reach the broker, and where what they publish and
/// subscribe to is traced.
#[derive(Clone)]
pub struct Connector {
    broker: Broker,
    trace: Trace,
}

/// The broker a host's clients reach.
#[derive(Clone)]
pub enum Broker {
    /// An external broker.
    Tcp(BrokerAddress),
    /// The embedded broker: in-process links while it has some, TCP otherwise.
    Embedded(EmbeddedBroker),
}

impl Connector {
    /// Clients of `broker`, their traffic recorded in `trace`.
    pub fn new(broker: Broker, trace: Trace) -> Self {
        Self { broker, trace }
    }

    /// The broker.
    pub fn broker(&self) -> &Broker {
        &self.broker
    }

    /// The embedded broker, when it is the one.
    pub fn embedded(&self) -> Option<&EmbeddedBroker> {
        match &self.broker {
            Broker::Embedded(broker) => Some(broker),
            Broker::Tcp(_) => None,
        }
    }

    /// The trace its clients record into.
    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    /// The address clients outside the process use.
    pub fn address(&self) -> BrokerAddress {
        match &self.broker {
            Broker::Tcp(address) => address.clone(),
            Broker::Embedded(broker) => broker.address(),
        }
    }

    /// The address a client granted `grant` uses: an external broker's as given,
    /// the embedded broker's with the login of a user granted that.
    pub fn address_for(&self, grant: &crate::access::Grant) -> BrokerAddress {
        match &self.broker {
            Broker::Tcp(address) => address.clone(),
            Broker::Embedded(broker) => broker.address_for(grant),
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
        let client_id = options.client_id.clone();
        let bus = match &self.broker {
            Broker::Embedded(broker) => match broker.take_link() {
                Some(link) => Bus::connect_link(&address, link, shutdown),
                // Over TCP the embedded broker's relay traces it.
                None => return Bus::connect_with(&address, options, shutdown).await,
            },
            Broker::Tcp(_) => Bus::connect_with(&address, options, shutdown).await?,
        };
        bus.trace_as(self.trace.clone(), &client_id);
        Ok(bus)
    }
}
