//! A service of the file and the backend that runs it.

use super::docker::DockerSpec;
use crate::capability::grants::Grants;
use crate::service::{ActionInfo, ServiceInfo};
use std::fmt;
use std::path::PathBuf;

/// One service of the file.
#[derive(Debug, Clone)]
pub struct ServiceSpec {
    /// Its name: the first level of its topics.
    pub name: String,
    /// The file it is declared in.
    pub file: PathBuf,
    /// The line it is declared on.
    pub line: u64,
    /// What runs it.
    pub backend: BackendSpec,
    /// Its actions, when declared (a component describes its own).
    pub actions: Option<Vec<ActionInfo>>,
    /// What a component is granted (nothing unless the file says so).
    pub grants: Grants,
    /// Requests of this service running at once, when the file says (its share of the workers).
    pub concurrency: Option<usize>,
}

impl ServiceSpec {
    /// What the file says of it (no version: a container's image or another
    /// program says that); a component describes itself instead.
    pub fn info(&self) -> ServiceInfo {
        ServiceInfo {
            name: self.name.clone(),
            version: String::new(),
            actions: self.actions.clone().unwrap_or_default(),
            capabilities: Vec::new(),
        }
    }

    /// The topics of its declared actions.
    pub fn topics(&self) -> Vec<String> {
        self.actions
            .iter()
            .flatten()
            .map(|a| format!("{}/{}", self.name, a.name))
            .collect()
    }
}

/// What runs a service.
#[derive(Debug, Clone)]
pub enum BackendSpec {
    /// A WASI component.
    Component(ComponentSource),
    /// Docker containers.
    Docker(Box<DockerSpec>),
    /// Someone else on the broker.
    External,
}

/// Where a component comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComponentSource {
    /// A file.
    File(PathBuf),
    /// A URL, pinned by the sha256 of the component (a download that differs is refused).
    Url {
        /// Where to download it.
        url: String,
        /// Its sha256, in hex.
        sha256: String,
    },
}

impl fmt::Display for ComponentSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ComponentSource::File(path) => write!(f, "{}", path.display()),
            ComponentSource::Url { url, .. } => f.write_str(url),
        }
    }
}
