//! A folder of markdown to a folder of HTML, with an index.

use crate::files;
use crate::highlight;
use crate::include;
use crate::layout::{self, Frame, html_path};
use crate::links;
use crate::nav::{self, Entry, PageFacts};
use crate::page::{Page, escape, render};
use crate::search;
use std::collections::HashSet;
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
    /// Internal links to nothing (a page, an anchor or a file that is not there).
    pub broken_links: usize,
    /// The first of them: `page.md:line: link`.
    pub broken: Vec<String>,
    /// Sections of pages in the search index.
    pub sections: usize,
    /// How long the build took, in milliseconds.
    pub duration_ms: u64,
}

/// The broken links named in the results, at most.
const BROKEN_SHOWN: usize = 10;

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

/// Writes the site's files, making each folder once.
#[derive(Default)]
struct Writer {
    made: HashSet<PathBuf>,
}

impl Writer {
    /// Writes `bytes` to `path`, its folders made first; how many bytes.
    fn write(&mut self, path: &Path, bytes: &[u8]) -> Result<u64, String> {
        if let Some(parent) = path.parent().filter(|p| !self.made.contains(*p)) {
            fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
            self.made.insert(parent.to_path_buf());
        }
        files::write(path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(bytes.len() as u64)
    }
}

/// How a site is built.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The site's title, in every page's header.
    pub title: String,
    /// Where it is published (`https://example.org/book/`, `/book/`): each page
    /// names its canonical address, and `sitemap.xml` lists them.
    pub base_url: Option<String>,
    /// A folder whose files replace or join those of `_site/` (`style.css`,
    /// `highlight.css`, `search.js`, fonts, a logo); its `head.html` goes into
    /// every page's `<head>`.
    pub theme: Option<PathBuf>,
    /// The tree includes may read from (the fetched repository), and the source's
    /// path inside it (`src`, or empty when the source is the tree itself).
    pub tree: Option<(PathBuf, String)>,
}

/// The folder of the files every page shares.
pub const SHARED: &str = "_site";

/// Builds the site of `source` into `out` (emptied first). A root `index.md`
/// gives the index page its own title and text. The pages' order and tree come
/// from a root `SUMMARY.md` when there is one, else from the folders and the
/// front matter ([`crate::nav`]).
pub fn build(source: &Path, out: &Path, options: &Options) -> Result<Built, String> {
    let started = std::time::Instant::now();
    let files = walk(source)?;
    if out.exists() {
        fs::remove_dir_all(out).map_err(|e| format!("cannot empty {}: {e}", out.display()))?;
    }
    let (tree, inside) = match &options.tree {
        Some((tree, inside)) => (tree.as_path(), inside.trim_matches('/')),
        None => (source, ""),
    };
    let mut includes = include::Tree::new(tree);
    let mut files_out = Writer::default();
    let mut built = Built::default();
    let mut pages: Vec<(String, Page)> = Vec::new();
    let mut summary_text = None;
    for rel in &files {
        let from = source.join(rel);
        let path = slash(rel);
        if path.eq_ignore_ascii_case("SUMMARY.md") {
            summary_text =
                Some(files::read_to_string(&from).map_err(|e| format!("cannot read {path}: {e}"))?);
        } else if is_markdown(rel) {
            let text =
                files::read_to_string(&from).map_err(|e| format!("cannot read {path}: {e}"))?;
            let in_tree = match inside {
                "" => path.clone(),
                inside => format!("{inside}/{path}"),
            };
            let text = include::expand_in(&mut includes, &text, &in_tree)?;
            let stem = rel
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let page = render(&text, &stem);
            if !page.draft {
                pages.push((path, page));
            }
        } else {
            let bytes = files::read(&from).map_err(|e| format!("cannot read {path}: {e}"))?;
            built.bytes += files_out.write(&out.join(rel), &bytes)?;
            built.assets += 1;
        }
    }
    let known = |path: &str| pages.iter().any(|(p, _)| p == path);
    let entries: Vec<Entry> = match &summary_text {
        Some(text) => nav::summary(text)
            .into_iter()
            .filter(|e| e.path.as_deref().is_none_or(known))
            .collect(),
        None => nav::from_folders(
            &pages
                .iter()
                .map(|(path, page)| PageFacts {
                    path: path.clone(),
                    title: page.title.clone(),
                    weight: page.weight,
                })
                .collect::<Vec<_>>(),
        ),
    };
    let head = theme_head(options.theme.as_deref())?;
    let sidebar = layout::sidebar_template(&entries);
    built.bytes += defaults(&mut files_out, out, options.theme.as_deref())?;
    let mut index = search::Index::default();
    let home = pages.iter().find(|(p, _)| p == "index.md");
    for (path, page) in pages.iter().filter(|(p, _)| p != "index.md") {
        let root = up(Path::new(path));
        let href = html_path(path);
        index.add(&href, &page.title, &page.sections);
        built.bytes += files_out.write(
            &out.join(&href),
            layout::page(
                &frame(options, (&entries, &sidebar), &head, Some(path), &root),
                &href,
                &page.title,
                &page.body,
                &page.headings,
            )
            .as_bytes(),
        )?;
        built.pages += 1;
    }
    // The index: a root `index.md`'s text, then every page.
    let (title, mut list, headings) = match home {
        Some((_, page)) => {
            built.pages += 1;
            index.add("index.html", &page.title, &page.sections);
            (
                page.title.clone(),
                page.body.clone() + "<h2 id=\"pages\">Pages</h2>\n<ul>\n",
                page.headings.clone(),
            )
        }
        None => (
            options.title.clone(),
            format!("<h1>{}</h1>\n<ul>\n", escape(&options.title)),
            Vec::new(),
        ),
    };
    for (path, page) in pages.iter().filter(|(p, _)| p != "index.md") {
        let href = html_path(path);
        list.push_str(&format!(
            "<li><a href=\"{}\">{}</a> <small>{}</small></li>\n",
            escape(&href),
            escape(&page.title),
            escape(&href)
        ));
    }
    list.push_str("</ul>\n");
    built.bytes += files_out.write(
        &out.join("index.html"),
        layout::page(
            &frame(
                options,
                (&entries, &sidebar),
                &head,
                home.map(|(p, _)| p.as_str()),
                "",
            ),
            "index.html",
            &title,
            &list,
            &headings,
        )
        .as_bytes(),
    )?;
    built.sections = index.len();
    built.bytes += files_out.write(
        &out.join(SHARED).join("searchindex.js"),
        index.script().as_bytes(),
    )?;
    if let Some(base) = &options.base_url {
        built.bytes +=
            files_out.write(&out.join("sitemap.xml"), sitemap(base, &pages).as_bytes())?;
    }
    let broken = links::broken(&pages, &files.iter().map(|f| slash(f)).collect::<Vec<_>>());
    built.broken_links = broken.len();
    built.broken = broken.into_iter().take(BROKEN_SHOWN).collect();
    built.duration_ms = started.elapsed().as_millis() as u64;
    Ok(built)
}

/// The frame of the page `current`, `root` away from the site's root.
fn frame<'a>(
    options: &'a Options,
    (entries, sidebar): (&'a [Entry], &'a str),
    head: &'a str,
    current: Option<&'a str>,
    root: &'a str,
) -> Frame<'a> {
    Frame {
        site: &options.title,
        entries,
        current,
        root,
        base_url: options.base_url.as_deref(),
        head,
        sidebar: Some(sidebar),
    }
}

/// `_site/`'s files: the theme's (but its `head.html`), and the defaults it
/// does not replace.
fn defaults(files_out: &mut Writer, out: &Path, theme: Option<&Path>) -> Result<u64, String> {
    let shared = out.join(SHARED);
    let mut bytes = 0;
    let themed: Vec<(PathBuf, String)> = match theme {
        Some(theme) => walk(theme)?
            .into_iter()
            .map(|rel| (theme.join(&rel), slash(&rel)))
            .filter(|(_, rel)| rel != "head.html")
            .collect(),
        None => Vec::new(),
    };
    for (name, text) in [
        ("style.css", layout::STYLE),
        ("highlight.css", highlight::CSS),
        ("search.js", search::SCRIPT),
    ] {
        if !themed.iter().any(|(_, rel)| rel == name) {
            bytes += files_out.write(&shared.join(name), text.as_bytes())?;
        }
    }
    for (from, rel) in &themed {
        let read = files::read(from).map_err(|e| format!("cannot read {}: {e}", from.display()))?;
        bytes += files_out.write(&shared.join(rel), &read)?;
    }
    Ok(bytes)
}

/// What the theme's `head.html` adds to every page, when it has one.
fn theme_head(theme: Option<&Path>) -> Result<String, String> {
    let Some(file) = theme.map(|t| t.join("head.html")) else {
        return Ok(String::new());
    };
    if !fs::symlink_metadata(&file).is_ok_and(|m| m.is_file()) {
        return Ok(String::new());
    }
    let mut head =
        files::read_to_string(&file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    if !head.ends_with('\n') {
        head.push('\n');
    }
    Ok(head)
}

/// Every page's address under `base`, for search engines.
fn sitemap(base: &str, pages: &[(String, Page)]) -> String {
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\n",
    );
    let mut hrefs = vec!["index.html".to_string()];
    hrefs.extend(
        pages
            .iter()
            .filter(|(p, _)| p != "index.md")
            .map(|(p, _)| html_path(p)),
    );
    for href in hrefs {
        out.push_str(&format!(
            "<url><loc>{}{}</loc></url>\n",
            escape(base),
            escape(&href)
        ));
    }
    out.push_str("</urlset>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small mdBook-style book: a summary, a nested chapter, a draft, a broken link.
    fn book(root: &Path) -> PathBuf {
        let src = root.join("book");
        fs::create_dir_all(src.join("guide")).unwrap();
        fs::write(
            src.join("SUMMARY.md"),
            "# Summary\n\n[Intro](intro.md)\n\n# Guide\n\n- [Start](guide/start.md)\n  - [Install](guide/install.md)\n- [Later]()\n",
        )
        .unwrap();
        fs::write(
            src.join("intro.md"),
            "# Intro\n\nGo [start](guide/start.md).\n",
        )
        .unwrap();
        fs::write(
            src.join("guide/start.md"),
            "# Start\n\n## One\n\n## Two\n\nSee [install](install.md#apt) and [gone](gone.md).\n",
        )
        .unwrap();
        fs::write(src.join("guide/install.md"), "# Install\n\n## Apt\n").unwrap();
        fs::write(
            src.join("guide/draft.md"),
            "---\ndraft: true\n---\n# Draft\n",
        )
        .unwrap();
        src
    }

    #[test]
    fn a_summary_gives_the_sidebar_prev_next_breadcrumbs_and_broken_links() {
        let root =
            std::env::temp_dir().join(format!("copper-markdown-book-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let out = root.join("out");
        let options = Options {
            title: "The book".into(),
            base_url: Some("https://example.org/book/".into()),
            ..Options::default()
        };
        let built = build(&book(&root), &out, &options).unwrap();
        assert_eq!(built.pages, 3, "the draft is left out");
        assert!(!out.join("guide/draft.html").exists());
        assert!(!out.join("SUMMARY.html").exists());
        assert_eq!(built.broken_links, 1, "{:?}", built.broken);
        assert_eq!(built.broken, ["guide/start.md:7: gone.md"]);
        let start = fs::read_to_string(out.join("guide/start.html")).unwrap();
        // The sidebar: every chapter in the summary's order, this one marked.
        let intro = start.find("href=\"../intro.html\"").unwrap();
        let marked = start
            .find("href=\"../guide/start.html\" aria-current=\"page\"")
            .unwrap();
        let install = start
            .find("href=\"../guide/install.html\">Install")
            .unwrap();
        assert!(intro < marked && marked < install, "{start}");
        assert!(
            start.contains("<li class=\"part\"><span class=\"part-title\">Guide</span>"),
            "{start}"
        );
        assert!(start.contains("<span>Later</span>"), "{start}");
        // Previous and next, in the summary's order.
        assert!(
            start.contains("rel=\"prev\" href=\"../intro.html\">← Intro</a>"),
            "{start}"
        );
        assert!(
            start.contains("rel=\"next\" href=\"../guide/install.html\">Install →</a>"),
            "{start}"
        );
        // The table of contents.
        assert!(
            start.contains("<a href=\"#one\">One</a>")
                && start.contains("<a href=\"#two\">Two</a>"),
            "{start}"
        );
        let install = fs::read_to_string(out.join("guide/install.html")).unwrap();
        assert!(
            install.contains("<nav class=\"breadcrumbs\" aria-label=\"Breadcrumbs\">Guide › <a href=\"../guide/start.html\">Start</a> › </nav>"),
            "{install}"
        );
        assert!(
            !install.contains("rel=\"next\""),
            "the last page has no next"
        );
        fs::remove_dir_all(&root).unwrap();
    }

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
        let options = Options {
            title: "site".into(),
            ..Options::default()
        };
        let built = build(&src, &out, &options).unwrap();
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
