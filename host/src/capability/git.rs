//! Capability `git`: clone a repository into the request's `/scratch` folder, with git2.
//!
//! Remote URLs are fetched with depth 1; local paths (relative to the workspace)
//! and `file://` URLs in full, since libgit2's local transport cannot fetch shallow.
//! `https://github.com/` may be redirected to a mirror (`COPPER_GITHUB_URL`).

use super::RequestState;
use crate::sandbox::map_guest_path;
use crate::wit::copper::service::git::{CloneResult, Host};
use git2::{FetchOptions, Repository};
use std::path::{Path, PathBuf};

/// How clones are made.
#[derive(Debug, Clone, Default)]
pub struct GitConfig {
    /// Replaces `https://github.com/` in URLs (a mirror, or a test server).
    pub github_url: Option<String>,
    /// Where relative local paths are resolved.
    pub workspace: PathBuf,
}

/// Where a clone comes from, once the URL is understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Fetched over the network, shallow.
    Remote(String),
    /// A repository on this machine, fetched in full.
    Local(PathBuf),
}

impl GitConfig {
    /// Resolves what a component asked to clone.
    pub fn origin(&self, url: &str) -> Origin {
        if let Some(path) = url.strip_prefix("file://") {
            return Origin::Local(PathBuf::from(path));
        }
        if url.contains("://") {
            let url = match (&self.github_url, url.strip_prefix("https://github.com/")) {
                (Some(base), Some(rest)) => format!("{}/{rest}", base.trim_end_matches('/')),
                _ => url.to_string(),
            };
            return Origin::Remote(url);
        }
        // scp-like `user@host:path` is remote; anything else is a local path.
        if let Some((left, _)) = url.split_once(':')
            && left.contains('@')
            && !left.contains('/')
        {
            return Origin::Remote(url.to_string());
        }
        Origin::Local(self.workspace.join(url))
    }
}

/// Clones `origin` at `reference` into `dest` (which must be empty or missing); returns the commit.
pub fn clone(origin: &Origin, reference: Option<&str>, dest: &Path) -> Result<String, git2::Error> {
    let repo = Repository::init(dest)?;
    let (url, depth) = match origin {
        Origin::Remote(url) => (url.clone(), 1),
        Origin::Local(path) => (path.to_string_lossy().into_owned(), 0),
    };
    let mut remote = repo.remote_anonymous(&url)?;
    let candidates: Vec<String> = match reference {
        Some(r) if r.starts_with("refs/") => vec![r.to_string()],
        Some(r) => vec![format!("refs/heads/{r}"), format!("refs/tags/{r}")],
        None => vec!["HEAD".to_string()],
    };
    let mut last_error = None;
    for refspec in &candidates {
        let mut options = FetchOptions::new();
        options.depth(depth);
        options.download_tags(git2::AutotagOption::None);
        match remote.fetch(&[refspec.as_str()], Some(&mut options), None) {
            Ok(()) => {
                last_error = None;
                break;
            }
            Err(error) => last_error = Some(error),
        }
    }
    if let Some(error) = last_error {
        return Err(error);
    }
    let fetched = repo.find_reference("FETCH_HEAD")?.peel_to_commit()?;
    repo.checkout_tree(
        fetched.as_object(),
        Some(git2::build::CheckoutBuilder::new().force()),
    )?;
    repo.set_head_detached(fetched.id())?;
    Ok(fetched.id().to_string())
}

impl Host for RequestState {
    async fn clone(
        &mut self,
        url: String,
        reference: Option<String>,
        dest: String,
    ) -> Result<CloneResult, String> {
        let scratch = self
            .scratch
            .clone()
            .ok_or("this request has no /scratch folder")?;
        let target = map_guest_path(&dest, "/scratch", &scratch)
            .filter(|p| p != &scratch)
            .ok_or_else(|| format!("`{dest}` is not a folder under /scratch"))?;
        if target.exists() && std::fs::read_dir(&target).map_or(true, |mut d| d.next().is_some()) {
            return Err(format!("`{dest}` is not empty"));
        }
        let origin = self.git.origin(&url);
        let service = self.service.clone();
        tracing::info!(
            service,
            ?origin,
            reference = reference.as_deref().unwrap_or("HEAD"),
            "cloning"
        );
        let shown = url.clone();
        let result =
            tokio::task::spawn_blocking(move || clone(&origin, reference.as_deref(), &target))
                .await
                .map_err(|e| format!("clone of {shown} stopped: {e}"))?;
        match result {
            Ok(commit) => Ok(CloneResult { commit }),
            Err(error) => Err(error.message().to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        let config = GitConfig {
            github_url: Some("git://127.0.0.1:9418/".into()),
            workspace: "/w".into(),
        };
        assert_eq!(
            config.origin("https://github.com/org/repo.git"),
            Origin::Remote("git://127.0.0.1:9418/org/repo.git".into())
        );
        assert_eq!(
            config.origin("https://example.com/x.git"),
            Origin::Remote("https://example.com/x.git".into())
        );
        assert_eq!(
            config.origin("git@github.com:org/x.git"),
            Origin::Remote("git@github.com:org/x.git".into())
        );
        assert_eq!(config.origin("."), Origin::Local("/w/.".into()));
        assert_eq!(
            config.origin("file:///srv/r"),
            Origin::Local("/srv/r".into())
        );
    }
}
