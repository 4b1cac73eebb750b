//! What the operator grants a component beyond what every one gets (`/fetch`,
//! `/web`, the `host` interface): the capabilities it may use, more folders, and
//! environment variables. Nothing is granted by default; a component that
//! declares a capability it is not granted fails to load.
//!
//! In the services file:
//!
//! ```yaml
//! services:
//!   site:
//!     component: site.wasm
//!     grants:
//!       capabilities: [workspace]
//!       folders:
//!         - {host: ./content, guest: /content}            # read-only
//!         - {host: ./out, guest: /out, write: true}
//!       env: [SITE_URL]
//!       reuse: 100        # one instance answers up to 100 requests, in turn
//! ```
//!
//! `reuse` gives up a fresh instance per request (what one request leaves in
//! the instance's memory, the next one sees) for the cost of starting one: for
//! components whose start is dear, such as a Python interpreter's snapshot.

use std::path::PathBuf;

/// A host folder a component may open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folder {
    /// The folder on the host.
    pub host: PathBuf,
    /// Where the component sees it (an absolute path).
    pub guest: String,
    /// Whether it may write there (read-only otherwise).
    pub write: bool,
}

/// What one component is granted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    /// The host's own components (built in, or given as bytes by an embedder):
    /// every capability they declare.
    pub trusted: bool,
    /// Capabilities it may use (`git`, `workspace`).
    pub capabilities: Vec<String>,
    /// More folders.
    pub folders: Vec<Folder>,
    /// Environment variables of the host it may read, by name.
    pub env: Vec<String>,
    /// Requests one instance may answer, one after another, before a fresh one
    /// takes its place (0 or 1: a fresh instance for every request, the default).
    pub reuse: u32,
}

impl Grants {
    /// Everything a component declares: for the host's own components.
    pub fn trusted() -> Self {
        Self {
            trusted: true,
            ..Self::default()
        }
    }

    /// The first of `declared` that is not granted.
    pub fn refused<'a>(&self, declared: &'a [String]) -> Option<&'a str> {
        if self.trusted {
            return None;
        }
        declared
            .iter()
            .find(|c| !self.capabilities.contains(c))
            .map(String::as_str)
    }
}

/// Guest paths a granted folder may not take: those the host mounts itself.
pub const RESERVED_GUEST_PATHS: [&str; 4] = ["/fetch", "/web", "/scratch", "/workspace"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_granted_unless_said() {
        let declared = vec!["git".to_string(), "workspace".to_string()];
        assert_eq!(Grants::default().refused(&declared), Some("git"));
        let some = Grants {
            capabilities: vec!["git".into()],
            ..Grants::default()
        };
        assert_eq!(some.refused(&declared), Some("workspace"));
        assert_eq!(Grants::trusted().refused(&declared), None);
        assert_eq!(Grants::default().refused(&[]), None);
    }
}
