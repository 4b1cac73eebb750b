//! TLS to the broker: whose certificates are trusted, and the connector that trusts them.

use super::BusError;
use std::path::PathBuf;

/// How the broker's certificate is trusted on a TLS connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tls {
    /// A PEM file with the certificates of the authorities that may sign the
    /// broker's, trusted besides the system's (from `COPPER_MQTT_CA`).
    pub ca: Option<PathBuf>,
}

/// Why the file of authorities' certificates cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// The file cannot be read.
    #[error(transparent)]
    Read(std::io::Error),
    /// What it holds is not PEM certificates.
    #[error(transparent)]
    Pem(native_tls::Error),
    /// It holds no certificate at all.
    #[error("no PEM certificate in it")]
    Empty,
}

impl Tls {
    /// A TLS connector trusting the system's authorities and every one in `ca`.
    pub(super) fn connector(&self) -> Result<native_tls::TlsConnector, BusError> {
        let mut builder = native_tls::TlsConnector::builder();
        if let Some(path) = &self.ca {
            let bad = |source: CaError| BusError::Ca {
                path: path.clone(),
                source,
            };
            let pem = std::fs::read(path).map_err(|e| bad(CaError::Read(e)))?;
            let authorities =
                native_tls::Certificate::stack_from_pem(&pem).map_err(|e| bad(CaError::Pem(e)))?;
            if authorities.is_empty() {
                return Err(bad(CaError::Empty));
            }
            for authority in authorities {
                builder.add_root_certificate(authority);
            }
        }
        builder.build().map_err(BusError::Tls)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The error and its causes as the command prints them.
    fn chain(error: BusError) -> String {
        format!("{:#}", anyhow::Error::from(error))
    }

    #[test]
    fn a_missing_ca_file_is_named_with_its_cause() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent.pem");
        let tls = Tls {
            ca: Some(path.clone()),
        };
        let error = tls.connector().unwrap_err();
        let BusError::Ca {
            source: CaError::Read(io),
            ..
        } = &error
        else {
            panic!("{error:?}")
        };
        assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
        let text = chain(error);
        let named = format!(
            "cannot use the broker's certificate authorities {} (COPPER_MQTT_CA): ",
            path.display()
        );
        assert!(text.starts_with(&named), "{text}");
        assert_eq!(
            text.matches("os error").count(),
            1,
            "each cause once: {text}"
        );
    }

    #[test]
    fn a_ca_file_without_certificates_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let error = Tls { ca: Some(path) }.connector().unwrap_err();
        assert!(
            matches!(
                &error,
                BusError::Ca {
                    source: CaError::Empty | CaError::Pem(_),
                    ..
                }
            ),
            "{error:?}"
        );
        let text = chain(error);
        assert!(text.contains("(COPPER_MQTT_CA): "), "{text}");
    }
}
