//! A folder of markdown to a folder of HTML, with an index.

use crate::page::{document, escape, render};
use std::fs;
use std::path::{Path, PathBuf};

/// What a build produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Built {
    /// HTML pages written from markdown (the index not counted).
    pub pages: usize,
    /// Other files copied as they are.
    pub assets: usize,
    /// Bytes written in all.
    pub bytes: u64,
}

/// Every file under `root`, as relative paths, sorted; symbolic links are left out.
fn walk(root: &Path) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(relative) = pending.pop() {
        let dir = root.join(&relative);
        for entry in
            fs::read_dir(&dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?
        {
            let entry = entry.map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
            let kind = entry.file_type().map_err(|e| format!("cannot stat: {e}"))?;
            let rel = relative.join(entry.file_name());
            if kind.is_dir() {
                pending.push(rel);
            } else if kind.is_file() {
                files.push(rel);
            }
        }
    }
    files.sort();
    Ok(files)
}

fn is_markdown(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("md"))
}

/// `../` once per folder `rel` is nested in: the way back to the site root.
fn up(rel: &Path) -> String {
    "../".repeat(rel.components().count().saturating_sub(1))
}

fn slash(path: &Path) -> String {
    path.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

fn write(path: &Path, bytes: &[u8]) -> Result<u64, String> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    fs::write(path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(bytes.len() as u64)
}

/// Builds the site of `source` into `out` (emptied first); `name` titles the index
/// unless a root `index.md` gives it its own title and text.
pub fn build(source: &Path, out: &Path, name: &str) -> Result<Built, String> {
    let files = walk(source)?;
    if out.exists() {
        fs::remove_dir_all(out).map_err(|e| format!("cannot empty {}: {e}", out.display()))?;
    }
    let mut built = Built::default();
    let mut index = Vec::new();
    // A root `index.md` becomes the top of the site index rather than being overwritten by it.
    let mut home_page = None;
    for rel in &files {
        let from = source.join(rel);
        if is_markdown(rel) {
            let text = fs::read_to_string(&from)
                .map_err(|e| format!("cannot read {}: {e}", slash(rel)))?;
            let stem = rel
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let page = render(&text, &stem);
            if rel.as_os_str() == "index.md" {
                built.pages += 1;
                home_page = Some(page);
                continue;
            }
            let html_rel = rel.with_extension("html");
            let home = format!("{}index.html", up(rel));
            built.bytes += write(
                &out.join(&html_rel),
                document(&page.title, &page.body, &home).as_bytes(),
            )?;
            built.pages += 1;
            index.push((slash(&html_rel), page.title));
        } else {
            let bytes = fs::read(&from).map_err(|e| format!("cannot read {}: {e}", slash(rel)))?;
            built.bytes += write(&out.join(rel), &bytes)?;
            built.assets += 1;
        }
    }
    let (title, mut list) = match home_page {
        Some(page) => (page.title, page.body + "<h2>Pages</h2>\n<ul>\n"),
        None => (
            name.to_string(),
            format!("<h1>{}</h1>\n<ul>\n", escape(name)),
        ),
    };
    for (href, title) in &index {
        list.push_str(&format!(
            "<li><a href=\"{}\">{}</a> <small>{}</small></li>\n",
            escape(href),
            escape(title),
            escape(href)
        ));
    }
    list.push_str("</ul>\n");
    built.bytes += write(
        &out.join("index.html"),
        document(&title, &list, "index.html").as_bytes(),
    )?;
    Ok(built)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_pages_assets_and_index() {
        let root =
            std::env::temp_dir().join(format!("copper-markdown-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let src = root.join("src");
        fs::create_dir_all(src.join("guide")).unwrap();
        fs::write(
            src.join("readme.md"),
            "---\ntitle: Home\n---\nSee [guide](guide/intro.md)",
        )
        .unwrap();
        fs::write(
            src.join("guide/intro.md"),
            "# Intro\n\nBack [home](../readme.md)",
        )
        .unwrap();
        fs::write(src.join("guide/pic.png"), [1u8, 2, 3]).unwrap();
        let out = root.join("out");
        let built = build(&src, &out, "site").unwrap();
        assert_eq!((built.pages, built.assets), (2, 1));
        let home = fs::read_to_string(out.join("readme.html")).unwrap();
        assert!(
            home.contains("<title>Home</title>") && home.contains("href=\"guide/intro.html\""),
            "{home}"
        );
        let intro = fs::read_to_string(out.join("guide/intro.html")).unwrap();
        assert!(
            intro.contains("href=\"../readme.html\"") && intro.contains("href=\"../index.html\""),
            "{intro}"
        );
        assert_eq!(fs::read(out.join("guide/pic.png")).unwrap(), vec![1, 2, 3]);
        let index = fs::read_to_string(out.join("index.html")).unwrap();
        assert!(
            index.contains("<a href=\"guide/intro.html\">Intro</a>"),
            "{index}"
        );
        assert!(
            index.contains("<a href=\"readme.html\">Home</a>"),
            "{index}"
        );
        fs::remove_dir_all(&root).unwrap();
    }
}
