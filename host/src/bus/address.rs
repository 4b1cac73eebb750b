//! Broker URLs: where the broker is and how to log in, shown and reported with the password hidden.

use super::{BusError, Tls};
use std::fmt;

/// Where the broker is and how to log in.
#[derive(Clone, PartialEq, Eq)]
pub struct BrokerAddress {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// User name and password, if the broker wants them.
    pub credentials: Option<(String, String)>,
    /// TLS (`mqtts://`), when the broker wants it.
    pub tls: Option<Tls>,
    /// More nodes of the same clustered broker (host, port), tried in turn after
    /// `host:port` when the connection is lost (`mqtt://a:1883,b:1883,c:1883`).
    pub others: Vec<(String, u16)>,
}

impl fmt::Display for BrokerAddress {
    /// Shows the address, never the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls.is_some() { "mqtts" } else { "mqtt" };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match &self.credentials {
            Some((user, _)) => write!(f, "{scheme}://{user}:***@{host}:{}", self.port)?,
            None => write!(f, "{scheme}://{host}:{}", self.port)?,
        }
        for (host, port) in &self.others {
            match host.contains(':') {
                true => write!(f, ",[{host}]:{port}")?,
                false => write!(f, ",{host}:{port}")?,
            }
        }
        Ok(())
    }
}

impl fmt::Debug for BrokerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl BrokerAddress {
    /// The broker at `host:port` with no login.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
            credentials: None,
            tls: None,
            others: Vec::new(),
        }
    }

    /// Every node, `host:port` first.
    pub fn nodes(&self) -> Vec<(String, u16)> {
        let mut nodes = vec![(self.host.clone(), self.port)];
        nodes.extend(self.others.iter().cloned());
        nodes
    }

    /// Reads `mqtt://[user:pass@]host[:port]` (port 1883), or `mqtts://…` for TLS
    /// (port 8883, the broker's certificate checked against the system's authorities
    /// and the one in the PEM file `COPPER_MQTT_CA` names); a login missing from the
    /// URL is taken from `COPPER_MQTT_USERNAME` / `COPPER_MQTT_PASSWORD` when set.
    /// The nodes of a clustered broker are listed with commas, each `host[:port]`:
    /// `mqtt://user:pass@a:1883,b:1883,c`.
    pub fn parse(text: &str) -> Result<Self, BusError> {
        let shown = redact(text);
        let bad = |why: &str| BusError::Url {
            url: shown.clone(),
            why: why.to_string(),
        };
        let (first, others) = split_nodes(text);
        let url = url::Url::parse(&first).map_err(|source| BusError::UrlSyntax {
            url: shown.clone(),
            source,
        })?;
        let tls = match url.scheme() {
            "mqtt" | "tcp" => None,
            "mqtts" | "ssl" => Some(Tls {
                ca: std::env::var_os("COPPER_MQTT_CA")
                    .filter(|ca| !ca.is_empty())
                    .map(std::path::PathBuf::from),
            }),
            _ => return Err(bad("the scheme must be mqtt:// or, for TLS, mqtts://")),
        };
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad("no host"))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = url.port().unwrap_or(port_default(tls.is_some()));
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        let credentials = if !url.username().is_empty() {
            Some((decode(url.username()), decode(url.password().unwrap_or(""))))
        } else {
            match (
                std::env::var("COPPER_MQTT_USERNAME"),
                std::env::var("COPPER_MQTT_PASSWORD"),
            ) {
                (Ok(user), Ok(pass)) => Some((user, pass)),
                (Ok(user), Err(_)) => Some((user, String::new())),
                _ => None,
            }
        };
        let default_port = port_default(tls.is_some());
        let others = others
            .iter()
            .map(|node| {
                read_node(node, default_port).ok_or_else(|| bad("a node is not host[:port]"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            host,
            port,
            credentials,
            tls,
            others,
        })
    }
}

fn port_default(tls: bool) -> u16 {
    if tls { 8883 } else { 1883 }
}

/// `mqtt://u:p@a:1,b:2/x` as `mqtt://u:p@a:1/x` and the other nodes `["b:2"]`.
fn split_nodes(text: &str) -> (String, Vec<String>) {
    let Some((scheme, rest)) = text.split_once("://") else {
        return (text.to_string(), Vec::new());
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    // Commas before the login's `@` belong to the password.
    let start = authority.rfind('@').map_or(0, |at| at + 1);
    let mut nodes = authority[start..].split(',');
    let first = nodes.next().unwrap_or_default();
    let others = nodes.map(str::to_string).collect();
    (
        format!("{scheme}://{}{first}{tail}", &authority[..start]),
        others,
    )
}

/// `host[:port]` or `[v6][:port]`.
fn read_node(node: &str, default_port: u16) -> Option<(String, u16)> {
    let (host, port) = match node.strip_prefix('[') {
        Some(rest) => {
            let (host, after) = rest.split_once(']')?;
            (host, after.strip_prefix(':'))
        }
        None => match node.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (node, None),
        },
    };
    let port = match port {
        Some(port) => port.parse().ok()?,
        None => default_port,
    };
    (!host.is_empty()).then(|| (host.to_string(), port))
}

/// Hides the password of a URL given by a user before it is shown anywhere.
fn redact(text: &str) -> String {
    match url::Url::parse(text) {
        Ok(mut url) => {
            if url.password().is_some() {
                let _ = url.set_password(Some("***"));
            }
            url.to_string()
        }
        // Unparsable: whatever stands between the scheme and the last `@` may hold a password.
        Err(_) => match (text.find("://"), text.rfind('@')) {
            (Some(start), Some(at)) if at > start + 3 => {
                let login = &text[start + 3..at];
                let user = login.split(':').next().unwrap_or_default();
                format!("{}{user}:***{}", &text[..start + 3], &text[at..])
            }
            _ => text.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let a = BrokerAddress::parse("mqtt://alice:s%40cret@broker.local:1884").unwrap();
        assert_eq!(a.host, "broker.local");
        assert_eq!(a.port, 1884);
        assert_eq!(a.credentials, Some(("alice".into(), "s@cret".into())));
        assert_eq!(a.to_string(), "mqtt://alice:***@broker.local:1884");
        assert_eq!(BrokerAddress::parse("mqtt://127.0.0.1").unwrap().port, 1883);
        let err = BrokerAddress::parse("http://u:pw@x")
            .unwrap_err()
            .to_string();
        assert!(err.contains("mqtt://") && !err.contains("pw"), "{err}");
    }

    #[test]
    fn passwords_stay_hidden_and_intact() {
        // `+` is itself in a URL's login; `%2B` is the escaped form.
        let a = BrokerAddress::parse("mqtt://u:a+b%2Bc@h").unwrap();
        assert_eq!(a.credentials, Some(("u".into(), "a+b+c".into())));
        for bad in ["mqtt://bob:pa/ss@host", "mqtt://bob:s3cret@host:99999"] {
            let err = BrokerAddress::parse(bad).unwrap_err().to_string();
            assert!(!err.contains("pa/ss") && !err.contains("s3cret"), "{err}");
            assert!(err.contains("bob:***@"), "{err}");
        }
    }

    #[test]
    fn a_clustered_broker_is_its_nodes() {
        let a = BrokerAddress::parse("mqtt://bob:pw,x@n1:4222,n2,[::1]:5").unwrap();
        assert_eq!((a.host.as_str(), a.port), ("n1", 4222));
        assert_eq!(a.credentials, Some(("bob".into(), "pw,x".into())));
        assert_eq!(a.others, vec![("n2".into(), 1883), ("::1".into(), 5)]);
        assert_eq!(a.to_string(), "mqtt://bob:***@n1:4222,n2:1883,[::1]:5");
        assert_eq!(
            BrokerAddress::parse(&a.to_string()).unwrap().nodes().len(),
            3
        );
        assert!(BrokerAddress::parse("mqtt://n1,n2:x").is_err());
    }

    #[test]
    fn ipv6_hosts_are_shown_as_urls() {
        let a = BrokerAddress::parse("mqtts://[::1]:8884").unwrap();
        assert_eq!(a.host, "::1");
        assert_eq!(a.to_string(), "mqtts://[::1]:8884");
        assert_eq!(BrokerAddress::parse(&a.to_string()).unwrap().host, "::1");
    }

    #[test]
    fn tls_urls() {
        let a = BrokerAddress::parse("mqtts://bob:pw@broker.example").unwrap();
        assert_eq!(a.port, 8883);
        assert!(a.tls.is_some());
        assert_eq!(a.to_string(), "mqtts://bob:***@broker.example:8883");
        assert!(
            BrokerAddress::parse("mqtt://broker.example")
                .unwrap()
                .tls
                .is_none()
        );
    }

    #[test]
    fn an_unreadable_url_keeps_its_cause() {
        let error = BrokerAddress::parse("mqtt://bob:s3cret@host:99999").unwrap_err();
        let BusError::UrlSyntax { source, .. } = &error else {
            panic!("{error:?}")
        };
        assert_eq!(*source, url::ParseError::InvalidPort);
        let chain = format!("{:#}", anyhow::Error::from(error));
        assert_eq!(
            chain,
            "bad broker URL `mqtt://bob:***@host:99999`: invalid port number"
        );
    }
}
