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

impl Origin {
    /// As logs show it: a URL's login (user and password, either may be a token)
    /// hidden.
    pub fn shown(&self) -> String {
        match self {
            Origin::Remote(url) => match url::Url::parse(url) {
                Ok(mut parsed) if !parsed.username().is_empty() || parsed.password().is_some() => {
                    let _ = parsed.set_username("***");
                    let _ = parsed.set_password(None);
                    parsed.to_string()
                }
                Ok(_) => url.clone(),
                // scp-like `user@host:path`: the user is no secret, but nothing else is shown.
                Err(_) => url
                    .rsplit_once('@')
                    .map_or(url.clone(), |(_, host)| format!("***@{host}")),
            },
            Origin::Local(path) => path.display().to_string(),
        }
    }
}

impl GitConfig {
    /// Resolves what a component asked to clone; a repository on this machine
    /// must be inside the workspace (its real path, symbolic links followed).
    pub fn origin(&self, url: &str) -> Result<Origin, String> {
        if let Some(path) = url.strip_prefix("file://") {
            return self.local(url, PathBuf::from(path));
        }
        self.remote_or_local(url)
    }

    fn remote_or_local(&self, url: &str) -> Result<Origin, String> {
        if url.contains("://") {
            let url = match (&self.github_url, url.strip_prefix("https://github.com/")) {
                (Some(base), Some(rest)) => format!("{}/{rest}", base.trim_end_matches('/')),
                _ => url.to_string(),
            };
            return Ok(Origin::Remote(url));
        }
        // scp-like `user@host:path` is remote; anything else is a local path.
        if let Some((left, _)) = url.split_once(':')
            && left.contains('@')
            && !left.contains('/')
        {
            return Ok(Origin::Remote(url.to_string()));
        }
        self.local(url, self.workspace.join(url))
    }

    /// A local repository, kept inside the workspace.
    fn local(&self, url: &str, path: PathBuf) -> Result<Origin, String> {
        let root = std::fs::canonicalize(&self.workspace)
            .map_err(|e| format!("the workspace {}: {e}", self.workspace.display()))?;
        let real = std::fs::canonicalize(&path)
            .map_err(|_| format!("`{url}`: there is no repository at {}", path.display()))?;
        if !real.starts_with(&root) {
            return Err(format!(
                "`{url}` is outside the workspace ({}): a local repository must be inside it",
                root.display()
            ));
        }
        Ok(Origin::Local(real))
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
    let mut fetched = None;
    let mut last_error = None;
    for refspec in &candidates {
        let mut options = FetchOptions::new();
        options.depth(depth);
        options.download_tags(git2::AutotagOption::None);
        // libgit2 fetches a ref the remote lacks "successfully", leaving FETCH_HEAD
        // empty: only a FETCH_HEAD that names a commit counts.
        let got = remote
            .fetch(&[refspec.as_str()], Some(&mut options), None)
            .and_then(|()| repo.find_reference("FETCH_HEAD"))
            .and_then(|head| head.peel_to_commit());
        match got {
            Ok(commit) => {
                fetched = Some(commit);
                break;
            }
            Err(error) => last_error = Some(error),
        }
    }
    let fetched = match (fetched, reference) {
        (Some(commit), _) => commit,
        (None, Some(r))
            if last_error
                .as_ref()
                .is_none_or(|e| e.class() == git2::ErrorClass::Reference) =>
        {
            return Err(git2::Error::from_str(&format!(
                "no branch or tag `{r}` in the repository"
            )));
        }
        (None, _) => {
            return Err(last_error.unwrap_or_else(|| git2::Error::from_str("nothing was fetched")));
        }
    };
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
        let origin = self.git.origin(&url)?;
        let service = self.service.clone();
        let shown = origin.shown();
        tracing::info!(
            service,
            origin = %shown,
            reference = reference.as_deref().unwrap_or("HEAD"),
            "cloning"
        );
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

    /// A repository with one commit, a lightweight tag `v1` and an annotated `v2`.
    fn tagged_repository(dir: &Path) -> String {
        let repo = Repository::init(dir).unwrap();
        std::fs::write(dir.join("a.md"), "# a\n").unwrap();
        let mut index = repo.index().unwrap();
        index.add_path(Path::new("a.md")).unwrap();
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
        let who = git2::Signature::now("t", "t@example.com").unwrap();
        let commit = repo
            .commit(Some("HEAD"), &who, &who, "one", &tree, &[])
            .unwrap();
        let object = repo.find_object(commit, None).unwrap();
        repo.tag_lightweight("v1", &object, false).unwrap();
        repo.tag("v2", &object, &who, "two", false).unwrap();
        commit.to_string()
    }

    #[test]
    fn a_tag_is_cloned_and_a_missing_ref_is_named() {
        let source = tempfile::tempdir().unwrap();
        let commit = tagged_repository(source.path());
        let origin = Origin::Local(source.path().to_path_buf());
        for tag in ["v1", "v2"] {
            let dest = tempfile::tempdir().unwrap();
            assert_eq!(
                clone(&origin, Some(tag), dest.path()).unwrap(),
                commit,
                "{tag}"
            );
            assert!(dest.path().join("a.md").exists());
        }
        let dest = tempfile::tempdir().unwrap();
        let error = clone(&origin, Some("nope"), dest.path()).unwrap_err();
        assert_eq!(error.message(), "no branch or tag `nope` in the repository");
    }

    #[test]
    fn a_clone_url_is_logged_without_its_login() {
        let shown = |url: &str| GitConfig::default().origin(url).unwrap().shown();
        assert_eq!(
            shown("http://u:S3cr3t@127.0.0.1:9418/r.git"),
            "http://***@127.0.0.1:9418/r.git"
        );
        assert_eq!(
            shown("https://T0KEN@github.com/o/r"),
            "https://***@github.com/o/r"
        );
        assert_eq!(shown("https://github.com/o/r"), "https://github.com/o/r");
        assert_eq!(shown("git@github.com:o/r.git"), "***@github.com:o/r.git");
        assert_eq!(shown("tok@en@host:o/r.git"), "***@host:o/r.git");
    }

    #[test]
    fn origins() {
        let outside = tempfile::tempdir().unwrap();
        let workspace = outside.path().join("w");
        std::fs::create_dir_all(workspace.join("docs")).unwrap();
        std::os::unix::fs::symlink(outside.path(), workspace.join("link")).unwrap();
        let config = GitConfig {
            github_url: Some("git://127.0.0.1:9418/".into()),
            workspace: workspace.clone(),
        };
        let origin = |url: &str| config.origin(url);
        assert_eq!(
            origin("https://github.com/org/repo.git"),
            Ok(Origin::Remote("git://127.0.0.1:9418/org/repo.git".into()))
        );
        assert_eq!(
            origin("https://example.com/x.git"),
            Ok(Origin::Remote("https://example.com/x.git".into()))
        );
        assert_eq!(
            origin("git@github.com:org/x.git"),
            Ok(Origin::Remote("git@github.com:org/x.git".into()))
        );
        let real = std::fs::canonicalize(&workspace).unwrap();
        assert_eq!(origin("."), Ok(Origin::Local(real.clone())));
        let docs = format!("file://{}", workspace.join("docs").display());
        assert_eq!(origin(&docs), Ok(Origin::Local(real.join("docs"))));
        let escapes = [
            "..".to_string(),
            "link".to_string(),
            "docs/../..".to_string(),
            outside.path().display().to_string(),
            format!("file://{}", outside.path().display()),
            "/etc".to_string(),
        ];
        for url in escapes {
            let error = origin(&url).unwrap_err();
            assert!(error.contains("is outside the workspace"), "{url}: {error}");
        }
        assert!(origin("missing").unwrap_err().contains("no repository at"));
    }
}
