//! Internal links checked at build: each relative link of each page must reach a
//! page (and its anchor, when it names one) or a file of the source, inside it.

use crate::page::Page;

/// True for a link that leaves the site (a scheme, `//host`, `mailto:`).
fn is_external(link: &str) -> bool {
    link.contains("://")
        || link.starts_with("//")
        || link.starts_with("mailto:")
        || link.starts_with("tel:")
}

/// `target` read from the folder of `page` (both with `/`), `..` resolved;
/// `None` when it climbs out of the site.
pub fn resolve(page: &str, target: &str) -> Option<String> {
    let mut parts: Vec<&str> = if target.starts_with('/') {
        Vec::new()
    } else {
        page.split('/').collect::<Vec<_>>()
    };
    if !target.starts_with('/') {
        parts.pop();
    }
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            part => parts.push(part),
        }
    }
    Some(parts.join("/"))
}

/// Every broken internal link of `pages`, as `page.md:line: link`; `files` are
/// all the source's files (with `/`).
pub fn broken(pages: &[(String, Page)], files: &[String]) -> Vec<String> {
    let page_of = |path: &str| pages.iter().find(|(p, _)| p == path).map(|(_, page)| page);
    let mut found = Vec::new();
    for (path, page) in pages {
        for (link, line) in &page.links {
            if is_external(link) || link.is_empty() {
                continue;
            }
            let link_path = link.split('?').next().unwrap_or(link);
            let (target, anchor) = match link_path.split_once('#') {
                Some((target, anchor)) => (target, Some(anchor)),
                None => (link_path, None),
            };
            let target = target.replace("%20", " ");
            let ok = match (target.is_empty(), resolve(path, &target)) {
                (true, _) => anchor.is_none_or(|a| page.headings.iter().any(|(_, id, _)| id == a)),
                (false, None) => false,
                (false, Some(resolved)) => {
                    let markdown = resolved
                        .strip_suffix(".html")
                        .map(|stem| format!("{stem}.md"))
                        .unwrap_or_else(|| resolved.clone());
                    match page_of(&markdown) {
                        Some(target) => {
                            anchor.is_none_or(|a| target.headings.iter().any(|(_, id, _)| id == a))
                        }
                        None => {
                            let folder = format!("{}/", resolved.trim_end_matches('/'));
                            files
                                .iter()
                                .any(|f| *f == resolved || f.starts_with(&folder))
                                || (resolved.is_empty() || resolved == "index.html")
                        }
                    }
                }
            };
            if !ok {
                found.push(format!("{path}:{line}: {link}"));
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::page::render;

    #[test]
    fn paths_resolve_from_the_page_s_folder_and_never_above_the_site() {
        assert_eq!(resolve("guide/a.md", "b.md").as_deref(), Some("guide/b.md"));
        assert_eq!(resolve("guide/a.md", "../c.md").as_deref(), Some("c.md"));
        assert_eq!(
            resolve("guide/a.md", "./img/x.png").as_deref(),
            Some("guide/img/x.png")
        );
        assert_eq!(resolve("a.md", "../outside.md"), None);
    }

    #[test]
    fn links_to_missing_pages_anchors_and_files_are_reported_with_their_line() {
        let pages = vec![
            (
                "a.md".to_string(),
                render(
                    "# A\n\n## Part one\n\n[ok](b.md) [ok](#part-one) [x](nope.md)\n\n[y](b.md#none) ![z](missing.png) [w](https://e.com/x.md)\n",
                    "a",
                ),
            ),
            (
                "b.md".to_string(),
                render("# B\n\n[up](../../etc/passwd) [pic](pic.png)\n", "b"),
            ),
        ];
        let files = vec![
            "a.md".to_string(),
            "b.md".to_string(),
            "pic.png".to_string(),
        ];
        assert_eq!(
            broken(&pages, &files),
            [
                "a.md:5: nope.md",
                "a.md:7: b.md#none",
                "a.md:7: missing.png",
                "b.md:3: ../../etc/passwd",
            ]
        );
    }
}
