//! The order and tree of a site's pages: from a `SUMMARY.md` when there is one
//! (mdBook's convention), else from the folders and each page's front matter
//! (`weight` or `order`, then the title; `draft: true` leaves a page out).

/// One entry of the tree, in reading order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// What the sidebar shows.
    pub title: String,
    /// The page's markdown file, relative to the source (`guide/intro.md`);
    /// `None` for a part title, a draft chapter or a folder without a page.
    pub path: Option<String>,
    /// How deep in the tree: 0 at the top.
    pub depth: usize,
}

/// What the tree needs to know of a page when there is no `SUMMARY.md`.
#[derive(Debug, Clone, PartialEq)]
pub struct PageFacts {
    /// Its file, relative to the source, with `/`.
    pub path: String,
    /// Its title.
    pub title: String,
    /// `weight` or `order` from its front matter.
    pub weight: Option<f64>,
}

/// Reads a `SUMMARY.md`: `# Part` headings, `- [Title](path.md)` list items (nested
/// by indentation), prefix and suffix chapters `[Title](path.md)`, and draft
/// chapters `- [Title]()`; a link's path is taken relative to the summary's
/// folder. `---` separators are passed over.
pub fn summary(text: &str) -> Vec<Entry> {
    let mut entries = Vec::new();
    let mut indents: Vec<usize> = Vec::new();
    let mut first = true;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with("---") {
            continue;
        }
        // The summary's own title (`# Summary`) is its first line.
        let titled = std::mem::replace(&mut first, false);
        if let Some(part) = trimmed.strip_prefix('#') {
            let part = part.trim_start_matches('#').trim();
            if !part.is_empty() && !titled {
                entries.push(Entry {
                    title: part.to_string(),
                    path: None,
                    depth: 0,
                });
            }
            indents.clear();
            continue;
        }
        let indent = line.len() - trimmed.len();
        let item = trimmed
            .strip_prefix("- ")
            .or_else(|| trimmed.strip_prefix("* "));
        let (link, depth) = match item {
            Some(item) => {
                while indents.last().is_some_and(|&i| i > indent) {
                    indents.pop();
                }
                if indents.last() != Some(&indent) {
                    indents.push(indent);
                }
                (item.trim(), indents.len())
            }
            None => (trimmed, 0),
        };
        let Some((title, path)) = link_of(link) else {
            continue;
        };
        // Under a part title the chapters sit one level down.
        let in_part = entries
            .iter()
            .any(|e: &Entry| e.path.is_none() && e.depth == 0);
        let depth = match (item.is_some(), in_part) {
            (true, true) => depth,
            (true, false) => depth.saturating_sub(1),
            (false, _) => 0,
        };
        entries.push(Entry {
            title,
            path: path
                .filter(|p| !p.is_empty())
                .map(|p| p.trim_start_matches("./").to_string()),
            depth,
        });
    }
    entries
}

/// `[Title](path)` → its title and path (`None` when it is no link).
fn link_of(text: &str) -> Option<(String, Option<String>)> {
    let text = text.strip_prefix('[')?;
    let close = text.find("](")?;
    let rest = &text[close + 2..];
    let end = rest.find(')')?;
    let path = rest[..end].trim();
    let path = path.split('#').next().unwrap_or(path);
    Some((text[..close].to_string(), Some(path.to_string())))
}

/// The tree of `pages` by their folders: in each folder its `index.md` or
/// `readme.md` first (as the folder's entry), then its pages and subfolders by
/// weight, then title.
pub fn from_folders(pages: &[PageFacts]) -> Vec<Entry> {
    let mut entries = Vec::new();
    walk_folder(pages, "", 0, &mut entries);
    entries
}

fn is_folder_page(path: &str, folder: &str) -> bool {
    let name = path.strip_prefix(folder).unwrap_or(path);
    name.eq_ignore_ascii_case("index.md") || name.eq_ignore_ascii_case("readme.md")
}

fn walk_folder(pages: &[PageFacts], folder: &str, depth: usize, out: &mut Vec<Entry>) {
    // What sits right in this folder: pages, and subfolders (by their first page).
    enum Item<'p> {
        Page(&'p PageFacts),
        Folder(String, Option<&'p PageFacts>),
    }
    let mut items: Vec<Item> = Vec::new();
    let mut folders: Vec<String> = Vec::new();
    for page in pages.iter().filter(|p| p.path.starts_with(folder)) {
        let rest = &page.path[folder.len()..];
        match rest.split_once('/') {
            None if !is_folder_page(&page.path, folder) || folder.is_empty() => {
                items.push(Item::Page(page))
            }
            None => {}
            Some((sub, _)) => {
                let sub = format!("{folder}{sub}/");
                if !folders.contains(&sub) {
                    let home = pages.iter().find(|p| {
                        p.path.starts_with(&sub)
                            && is_folder_page(&p.path, &sub)
                            && !p.path[sub.len()..].contains('/')
                    });
                    folders.push(sub.clone());
                    items.push(Item::Folder(sub, home));
                }
            }
        }
    }
    let key = |item: &Item| -> (f64, String) {
        match item {
            Item::Page(p) => (p.weight.unwrap_or(f64::MAX), p.title.to_lowercase()),
            Item::Folder(name, home) => (
                home.and_then(|h| h.weight).unwrap_or(f64::MAX),
                home.map(|h| h.title.to_lowercase())
                    .unwrap_or_else(|| name.to_lowercase()),
            ),
        }
    };
    // The site's own home page first, the rest by weight then title.
    items.sort_by(|a, b| {
        let home = |i: &Item| matches!(i, Item::Page(p) if folder.is_empty() && is_folder_page(&p.path, ""));
        home(b)
            .cmp(&home(a))
            .then(key(a).partial_cmp(&key(b)).unwrap_or(std::cmp::Ordering::Equal))
    });
    for item in items {
        match item {
            Item::Page(page) => out.push(Entry {
                title: page.title.clone(),
                path: Some(page.path.clone()),
                depth,
            }),
            Item::Folder(name, home) => {
                let title = home.map(|h| h.title.clone()).unwrap_or_else(|| {
                    name.trim_end_matches('/')
                        .rsplit('/')
                        .next()
                        .unwrap_or(&name)
                        .to_string()
                });
                out.push(Entry {
                    title,
                    path: home.map(|h| h.path.clone()),
                    depth,
                });
                walk_folder(pages, &name, depth + 1, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_mdbook_summary_gives_the_order_and_the_nesting() {
        let entries = summary(
            "# Summary\n\n[Introduction](intro.md)\n\n# Guide\n\n- [Getting started](guide/start.md)\n  - [Installing](guide/install.md)\n    - [On Debian](guide/debian.md#apt)\n- [Draft]()\n\n---\n\n[Thanks](./thanks.md)\n",
        );
        let shown: Vec<(String, Option<String>, usize)> = entries
            .into_iter()
            .map(|e| (e.title, e.path, e.depth))
            .collect();
        assert_eq!(
            shown,
            [
                ("Introduction".into(), Some("intro.md".into()), 0),
                ("Guide".into(), None, 0),
                ("Getting started".into(), Some("guide/start.md".into()), 1),
                ("Installing".into(), Some("guide/install.md".into()), 2),
                ("On Debian".into(), Some("guide/debian.md".into()), 3),
                ("Draft".into(), None, 1),
                ("Thanks".into(), Some("thanks.md".into()), 0),
            ]
        );
    }

    fn facts(path: &str, title: &str, weight: Option<f64>) -> PageFacts {
        PageFacts {
            path: path.into(),
            title: title.into(),
            weight,
        }
    }

    #[test]
    fn folders_and_weights_give_the_tree_without_a_summary() {
        let pages = [
            facts("readme.md", "Home", None),
            facts("zeta.md", "Zeta", Some(1.0)),
            facts("alpha.md", "Alpha", None),
            facts("guide/index.md", "The guide", Some(2.0)),
            facts("guide/b.md", "B", None),
            facts("guide/a.md", "A", None),
            facts("notes/x.md", "X", None),
        ];
        let tree: Vec<(String, Option<String>, usize)> = from_folders(&pages)
            .into_iter()
            .map(|e| (e.title, e.path, e.depth))
            .collect();
        assert_eq!(
            tree,
            [
                ("Home".into(), Some("readme.md".into()), 0),
                ("Zeta".into(), Some("zeta.md".into()), 0),
                ("The guide".into(), Some("guide/index.md".into()), 0),
                ("A".into(), Some("guide/a.md".into()), 1),
                ("B".into(), Some("guide/b.md".into()), 1),
                ("Alpha".into(), Some("alpha.md".into()), 0),
                ("notes".into(), None, 0),
                ("X".into(), Some("notes/x.md".into()), 1),
            ]
        );
    }
}
