//! The folders a request sees: copper's virtual roots mapped onto the host.
//!
//! `/fetch` and `/web` are `<cache>/fetch` and `<cache>/web`, as copper mounted
//! them into its containers; `/scratch` is a folder of the request's own,
//! removed when it ends; `/workspace` is the working directory, read-only.

use std::io;
use std::path::{Component, Path, PathBuf};

/// Paths inside a container that the host mounts itself (`/copper` holds a
/// container's request and output).
pub const RESERVED_PATHS: [&str; 3] = ["/fetch", "/web", "/copper"];

/// The host folders behind the virtual roots.
#[derive(Debug, Clone)]
pub struct Sandbox {
    cache: PathBuf,
    workspace: PathBuf,
}

/// A request's private scratch folder, removed when dropped.
#[derive(Debug)]
pub struct Scratch {
    path: PathBuf,
}

impl Scratch {
    /// Its host path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Err(error) = std::fs::remove_dir_all(&self.path)
            && error.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.path.display(), %error, "cannot remove a scratch folder");
        }
    }
}

impl Sandbox {
    /// Roots under `cache` (created if missing, and made private to its owner:
    /// what is fetched may hold secrets); `workspace` is served read-only.
    pub fn new(cache: &Path, workspace: &Path) -> io::Result<Self> {
        private_dir(cache)?;
        for dir in ["fetch", "web", "scratch"] {
            std::fs::create_dir_all(cache.join(dir))?;
        }
        Ok(Self {
            cache: std::path::absolute(cache)?,
            workspace: std::path::absolute(workspace)?,
        })
    }

    /// The host folder behind `/fetch`.
    pub fn fetch_dir(&self) -> PathBuf {
        self.cache.join("fetch")
    }

    /// The host folder behind `/web`.
    pub fn web_dir(&self) -> PathBuf {
        self.cache.join("web")
    }

    /// The host folder behind `/workspace`.
    pub fn workspace(&self) -> &Path {
        &self.workspace
    }

    /// The cache folder itself.
    pub fn cache(&self) -> &Path {
        &self.cache
    }

    /// A fresh scratch folder for one request.
    pub fn scratch(&self, id: &str) -> io::Result<Scratch> {
        let path = self.cache.join("scratch").join(id);
        std::fs::create_dir_all(&path)?;
        Ok(Scratch { path })
    }
}

/// Makes `dir` (and its missing parents) and lets only its owner enter it (mode 0700).
pub fn private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)?;
    let mode = std::fs::metadata(dir)?.permissions().mode() & 0o777;
    if mode != 0o700 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Maps a guest path under `root` (e.g. `/scratch`) to the host folder `host_root`;
/// `None` when it is not under `root` or climbs out with `..`.
pub fn map_guest_path(guest: &str, root: &str, host_root: &Path) -> Option<PathBuf> {
    let rest = guest.strip_prefix(root)?;
    if !(rest.is_empty() || rest.starts_with('/')) {
        return None;
    }
    let mut path = host_root.to_path_buf();
    for component in Path::new(rest.trim_start_matches('/')).components() {
        match component {
            Component::Normal(part) => path.push(part),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_paths_stay_inside() {
        let root = Path::new("/c/scratch/1");
        assert_eq!(
            map_guest_path("/scratch/repo", "/scratch", root),
            Some(root.join("repo"))
        );
        assert_eq!(
            map_guest_path("/scratch", "/scratch", root),
            Some(root.to_path_buf())
        );
        assert_eq!(map_guest_path("/scratch/../etc", "/scratch", root), None);
        assert_eq!(map_guest_path("/scratcher/x", "/scratch", root), None);
        assert_eq!(map_guest_path("/web/x", "/scratch", root), None);
    }
}
