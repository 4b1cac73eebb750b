//! Components named by a URL and pinned by their sha256: downloaded once, checked,
//! and kept in a folder of their own keyed by that hash.

use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Largest component accepted from a URL; stops a server from filling the disk.
const MAX_COMPONENT_BYTES: u64 = 256 << 20;

/// Why a component cannot be had from its URL.
#[derive(Debug, thiserror::Error)]
pub enum UrlError {
    /// The download failed.
    #[error("cannot download {url}: {why}")]
    Download {
        /// Where from.
        url: String,
        /// Why.
        why: String,
    },
    /// The bytes are not the ones pinned.
    #[error("{url} has sha256 {actual}, but the services file pins {pinned}: refused")]
    Mismatch {
        /// Where from.
        url: String,
        /// The hash pinned.
        pinned: String,
        /// The hash of what came.
        actual: String,
    },
    /// The cache folder cannot be written.
    #[error("cannot keep the component in {path}")]
    Cache {
        /// The folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// The component's bytes: from `folder` when a copy with the pinned hash is there,
/// else downloaded from `url`, checked against `sha256` and kept in `folder`.
pub fn fetch(url: &str, sha256: &str, folder: &Path) -> Result<Vec<u8>, UrlError> {
    let pinned = sha256.to_ascii_lowercase();
    let kept = folder.join(format!("{pinned}.wasm"));
    if let Ok(bytes) = std::fs::read(&kept)
        && sha256_hex(&bytes) == pinned
    {
        return Ok(bytes);
    }
    let failed = |why: String| UrlError::Download {
        url: url.to_string(),
        why,
    };
    tracing::info!(%url, "downloading a component");
    let tls = ureq::tls::TlsConfig::builder()
        .provider(ureq::tls::TlsProvider::NativeTls)
        .build();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .tls_config(tls)
        .timeout_global(Some(std::time::Duration::from_secs(300)))
        .build()
        .into();
    let response = agent.get(url).call().map_err(|e| failed(e.to_string()))?;
    let mut bytes = Vec::new();
    response
        .into_body()
        .into_reader()
        .take(MAX_COMPONENT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| failed(e.to_string()))?;
    if bytes.len() as u64 > MAX_COMPONENT_BYTES {
        return Err(failed(format!(
            "it is larger than {} MiB",
            MAX_COMPONENT_BYTES >> 20
        )));
    }
    let actual = sha256_hex(&bytes);
    if actual != pinned {
        return Err(UrlError::Mismatch {
            url: url.to_string(),
            pinned,
            actual,
        });
    }
    let cache_error = |source| UrlError::Cache {
        path: folder.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(folder).map_err(cache_error)?;
    let partial = folder.join(format!("{pinned}.{}.partial", std::process::id()));
    std::fs::write(&partial, &bytes).map_err(cache_error)?;
    std::fs::rename(&partial, &kept).map_err(cache_error)?;
    Ok(bytes)
}
