//! Walking a fetched tree, keeping the files a filter selects, and copying them.

use globset::{Glob, GlobSet, GlobSetBuilder};
use std::fs;
use std::path::{Component, Path, PathBuf};

/// The globs a file's path (relative, `/`-separated) must match.
///
/// As in copper (Python's `fnmatch`), `*` also matches `/`, so `content/*`
/// keeps the whole `content/` tree; `**`, `?`, `[..]` and `{a,b}` work too.
#[derive(Debug, Clone)]
pub struct Filter {
    set: Option<GlobSet>,
}

impl Filter {
    /// Builds a filter; no globs keeps every file.
    pub fn new(globs: &[String]) -> Result<Self, String> {
        if globs.is_empty() {
            return Ok(Self { set: None });
        }
        let mut builder = GlobSetBuilder::new();
        for glob in globs {
            builder.add(Glob::new(glob).map_err(|e| format!("field `filter`: {e}"))?);
        }
        let set = builder
            .build()
            .map_err(|e| format!("field `filter`: {e}"))?;
        Ok(Self { set: Some(set) })
    }

    /// True when `path` (relative, `/`-separated) is kept.
    pub fn matches(&self, path: &str) -> bool {
        self.set.as_ref().is_none_or(|set| set.is_match(path))
    }
}

/// The files kept from a tree.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Every file in the tree (the `.git` folder left out).
    pub total_files: usize,
    /// The kept files, relative `/`-separated paths, sorted.
    pub files: Vec<String>,
}

/// Walks `root` and keeps the files `filter` selects.
///
/// A selected symbolic link that points outside `root` is an error; one that points
/// inside is kept and copied as the file it points to.
pub fn select_files(root: &Path, filter: &Filter) -> Result<Selection, String> {
    let mut selection = Selection::default();
    let mut pending = vec![PathBuf::new()];
    while let Some(relative) = pending.pop() {
        let dir = root.join(&relative);
        let entries =
            fs::read_dir(&dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = relative.join(&name);
            let kind = entry
                .file_type()
                .map_err(|e| format!("cannot stat {}: {e}", rel.display()))?;
            if kind.is_dir() {
                if !(relative.as_os_str().is_empty() && name == ".git") {
                    pending.push(rel);
                }
                continue;
            }
            selection.total_files += 1;
            let key = slash_path(&rel);
            if !filter.matches(&key) {
                continue;
            }
            if kind.is_symlink() {
                let resolved = resolve_inside(root, &rel).map_err(|why| {
                    format!("symbolic link `{key}` points outside the repository ({why})")
                })?;
                if !root.join(resolved).is_file() {
                    continue;
                }
            }
            selection.files.push(key);
        }
    }
    selection.files.sort();
    Ok(selection)
}

/// Copies the selected files from `root` into `dest` (emptied first); returns the bytes copied.
pub fn copy_selection(root: &Path, selection: &Selection, dest: &Path) -> Result<u64, String> {
    if dest.exists() {
        fs::remove_dir_all(dest).map_err(|e| format!("cannot empty {}: {e}", dest.display()))?;
    }
    fs::create_dir_all(dest).map_err(|e| format!("cannot create {}: {e}", dest.display()))?;
    let mut bytes = 0;
    for file in &selection.files {
        let to = dest.join(file);
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        bytes += fs::copy(root.join(file), &to).map_err(|e| format!("cannot copy {file}: {e}"))?;
    }
    Ok(bytes)
}

fn slash_path(path: &Path) -> String {
    path.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// Links followed at most while resolving one path (as Linux's own limit).
const MAX_HOPS: usize = 40;

/// Where the path `rel` (relative to `root`) leads once every symbolic link on
/// the way is followed, one part at a time: a path relative to `root`, or why
/// it leaves `root` (a `..` above it, an absolute target, a target the sandbox
/// refuses to read, too many links).
fn resolve_inside(root: &Path, rel: &Path) -> Result<PathBuf, String> {
    /// One part of a path still to walk.
    enum Part {
        Up,
        Name(std::ffi::OsString),
        Absolute,
    }
    let parts = |path: &Path| -> Vec<Part> {
        path.components()
            .filter_map(|component| match component {
                Component::CurDir => None,
                Component::ParentDir => Some(Part::Up),
                Component::Normal(name) => Some(Part::Name(name.to_os_string())),
                Component::RootDir | Component::Prefix(_) => Some(Part::Absolute),
            })
            .collect()
    };
    let mut resolved: Vec<std::ffi::OsString> = Vec::new();
    let mut todo: std::collections::VecDeque<Part> = parts(rel).into();
    let mut hops = 0;
    while let Some(part) = todo.pop_front() {
        match part {
            Part::Up => {
                if resolved.pop().is_none() {
                    return Err("a `..` climbs above it".into());
                }
            }
            Part::Absolute => return Err("a link's target is an absolute path".into()),
            Part::Name(name) => {
                resolved.push(name);
                let here: PathBuf = resolved.iter().collect();
                let is_link = fs::symlink_metadata(root.join(&here))
                    .is_ok_and(|m| m.file_type().is_symlink());
                if !is_link {
                    continue;
                }
                hops += 1;
                if hops > MAX_HOPS {
                    return Err(format!("more than {MAX_HOPS} links in a row"));
                }
                // The sandbox itself refuses to read a link that leaves it.
                let target = fs::read_link(root.join(&here))
                    .map_err(|e| format!("the sandbox refused it: {e}"))?;
                resolved.pop();
                for part in parts(&target).into_iter().rev() {
                    todo.push_front(part);
                }
            }
        }
    }
    Ok(resolved.iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(globs: &[&str]) -> Filter {
        Filter::new(&globs.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn star_crosses_folders_like_fnmatch() {
        let f = filter(&["content/*"]);
        assert!(f.matches("content/a.md"));
        assert!(f.matches("content/a/b/c.png"));
        assert!(!f.matches("src/content/a.md"));
        assert!(!f.matches("readme.md"));
    }

    #[test]
    fn double_star_and_lists() {
        let f = filter(&["**/*.md", "docs/**"]);
        assert!(f.matches("a/b/c.md"));
        assert!(f.matches("docs/x.png"));
        assert!(!f.matches("a/b/c.png"));
        assert!(filter(&[]).matches("anything"));
    }

    #[test]
    fn links_are_followed_part_by_part_and_kept_inside() {
        let base =
            std::env::temp_dir().join(format!("copper-fetcher-links-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        let root = base.as_path();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/c.md"), "c").unwrap();
        let link = |target: &str, at: &str| std::os::unix::fs::symlink(target, root.join(at));
        link("../c.md", "a/b/up.md").unwrap();
        link("../../c.md", "a/out.md").unwrap();
        link("/etc/passwd", "a/abs.md").unwrap();
        link("/etc", "evil").unwrap();
        link("../evil/passwd", "a/through.md").unwrap();
        link("loop.md", "a/loop.md").unwrap();
        assert_eq!(
            resolve_inside(root, Path::new("a/b/up.md")),
            Ok(PathBuf::from("a/c.md"))
        );
        for (at, why) in [
            ("a/out.md", "climbs above"),
            ("a/abs.md", "absolute"),
            ("a/through.md", "absolute"),
            ("a/loop.md", "links in a row"),
        ] {
            let error = resolve_inside(root, Path::new(at)).unwrap_err();
            assert!(error.contains(why), "{at}: {error}");
        }
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn select_and_copy_a_real_tree() {
        let root = std::env::temp_dir().join(format!("copper-fetcher-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let src = root.join("src");
        fs::create_dir_all(src.join("content/sub")).unwrap();
        fs::create_dir_all(src.join(".git")).unwrap();
        fs::write(src.join(".git/HEAD"), "x").unwrap();
        fs::write(src.join("content/a.md"), "# A").unwrap();
        fs::write(src.join("content/sub/b.md"), "# B!").unwrap();
        fs::write(src.join("readme.md"), "top").unwrap();
        std::os::unix::fs::symlink("../readme.md", src.join("content/inside.md")).unwrap();

        let selection = select_files(&src, &filter(&["content/*"])).unwrap();
        assert_eq!(selection.total_files, 4);
        assert_eq!(
            selection.files,
            vec!["content/a.md", "content/inside.md", "content/sub/b.md"]
        );
        let dest = root.join("dest");
        let bytes = copy_selection(&src, &selection, &dest).unwrap();
        assert_eq!(bytes, 3 + 4 + 3);
        assert_eq!(
            fs::read_to_string(dest.join("content/sub/b.md")).unwrap(),
            "# B!"
        );

        std::os::unix::fs::symlink("/etc/passwd", src.join("content/evil.md")).unwrap();
        let err = select_files(&src, &filter(&["content/*"])).unwrap_err();
        assert!(err.contains("content/evil.md"), "{err}");
        fs::remove_dir_all(&root).unwrap();
    }
}
