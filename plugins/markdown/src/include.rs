//! mdBook's includes, resolved before a page is rendered, inside the tree only:
//! `{{#include file}}`, `{{#include file:anchor}}`, `{{#include file:2:10}}` (and
//! `:2`, `:2:`, `::10`), and `{{#rustdoc_include …}}` (the same lines, with
//! rustdoc's hidden lines, `# …`, dropped). `\{{#include …}}`, and one in inline
//! code, stay as written.
//! A file that leaves the tree, or is not there, is an error naming the page
//! and line.

use crate::files;
use crate::links::resolve;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

/// The tree includes read from, with what was learnt of it: the folders found
/// not to be symbolic links, and the files read (a file included twice is read
/// once).
pub struct Tree {
    root: PathBuf,
    real: HashSet<String>,
    read: HashMap<String, String>,
}

impl Tree {
    /// The tree at `root`.
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
            real: HashSet::new(),
            read: HashMap::new(),
        }
    }
}

/// `text` of page `page` (its path in the tree, with `/`) with every include
/// replaced by what it names, read from `root`.
pub fn expand(text: &str, page: &str, root: &Path) -> Result<String, String> {
    expand_in(&mut Tree::new(root), text, page)
}

/// As [`expand`], in a tree already known in part.
pub fn expand_in(tree: &mut Tree, text: &str, page: &str) -> Result<String, String> {
    if !text.contains("{{#") {
        return Ok(text.to_string());
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut line = 1;
    let mut code = Code::default();
    while let Some(at) = rest.find("{{#") {
        let before = &rest[..at];
        line += before.matches('\n').count();
        if let Some(kept) = before.strip_suffix('\\') {
            // Escaped: kept as written, without its backslash.
            out.push_str(kept);
            out.push_str("{{#");
            rest = &rest[at + 3..];
            continue;
        }
        // Inside inline code a directive is being written about, not used: kept
        // as written.
        let offset = text.len() - rest.len() + at;
        if code.inline_at(text, offset) {
            out.push_str(before);
            out.push_str("{{#");
            rest = &rest[at + 3..];
            continue;
        }
        out.push_str(before);
        let Some(end) = rest[at..].find("}}") else {
            out.push_str(&rest[at..]);
            return Ok(out);
        };
        let directive = rest[at + 3..at + end].trim();
        let (kind, argument) = directive
            .split_once(char::is_whitespace)
            .unwrap_or((directive, ""));
        let included = match kind {
            "include" => Some(read(argument.trim(), page, tree, line)?.0),
            "rustdoc_include" => {
                let (lines, _) = read(argument.trim(), page, tree, line)?;
                Some(
                    lines
                        .lines()
                        .filter(|l| {
                            let l = l.trim_start();
                            !(l == "#" || l.starts_with("# "))
                        })
                        .collect::<Vec<_>>()
                        .join("\n"),
                )
            }
            _ => None,
        };
        match included {
            Some(text) => out.push_str(text.trim_end_matches('\n')),
            // Another mdBook directive (`{{#title}}`, `{{#playground}}`): left as it is.
            None => out.push_str(&rest[at..at + end + 2]),
        }
        rest = &rest[at + end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Where a scan of the text has got to: the lines before `done`, read once
/// however many directives the page holds.
#[derive(Default)]
struct Code {
    done: usize,
    fenced: bool,
    ticks: usize,
}

impl Code {
    /// True when `offset` of `text` is inside an inline code span: an odd number
    /// of backticks since its paragraph began, outside fenced code blocks (where
    /// an include is what it is for). Offsets must come in order.
    fn inline_at(&mut self, text: &str, offset: usize) -> bool {
        let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
        if line_start > self.done {
            for line in text[self.done..line_start - 1].split('\n') {
                let trimmed = line.trim_start();
                if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
                    self.fenced = !self.fenced;
                    self.ticks = 0;
                } else if self.fenced {
                } else if trimmed.is_empty() {
                    self.ticks = 0;
                } else {
                    self.ticks += line.matches('`').count();
                }
            }
            self.done = line_start;
        }
        let partial = &text[line_start..offset];
        !self.fenced && (self.ticks + partial.matches('`').count()) % 2 == 1
    }
}

/// The lines `argument` (`file[:anchor|:from:to]`) names, and the file's path.
fn read(
    argument: &str,
    page: &str,
    tree: &mut Tree,
    line: usize,
) -> Result<(String, String), String> {
    let here = |why: String| format!("{page}:{line}: {{{{#include {argument}}}}}: {why}");
    let (file, selector) = match argument.split_once(':') {
        Some((file, selector)) => (file, Some(selector)),
        None => (argument, None),
    };
    if file.is_empty() {
        return Err(here("names no file".into()));
    }
    let Some(path) = resolve(page, file).filter(|p| !p.is_empty()) else {
        return Err(here("leaves the tree".into()));
    };
    // Nor through a link: each folder on the way, and the file, must be real.
    let text = match tree.read.get(&path) {
        Some(text) => text.clone(),
        None => {
            // Nor through a link: each folder on the way, and the file, must be real.
            let mut walked = String::new();
            for part in path.split('/') {
                if !walked.is_empty() {
                    walked.push('/');
                }
                walked.push_str(part);
                if tree.real.contains(&walked) {
                    continue;
                }
                if std::fs::symlink_metadata(tree.root.join(&walked))
                    .is_ok_and(|m| m.file_type().is_symlink())
                {
                    return Err(here(format!("{path} goes through a symbolic link")));
                }
                if walked.len() < path.len() {
                    tree.real.insert(walked.clone());
                }
            }
            let text = files::read_to_string(&tree.root.join(&path))
                .map_err(|e| here(format!("cannot read {path}: {e}")))?;
            tree.read.insert(path.clone(), text.clone());
            text
        }
    };
    let lines: Vec<&str> = text.lines().collect();
    let marker = |l: &str| l.contains("ANCHOR:") || l.contains("ANCHOR_END:");
    let chosen: Vec<&str> = match selector {
        None => lines.clone(),
        Some(selector) => match range(selector) {
            Some((from, to)) => {
                let to = to.unwrap_or(lines.len()).min(lines.len());
                let from = from.saturating_sub(1).min(to);
                lines[from..to].to_vec()
            }
            None => {
                let start = lines
                    .iter()
                    .position(|l| {
                        l.contains(&format!("ANCHOR: {selector}")) && !l.contains("ANCHOR_END")
                    })
                    .ok_or_else(|| here(format!("{path} has no anchor `{selector}`")))?;
                let end = lines[start + 1..]
                    .iter()
                    .position(|l| l.contains(&format!("ANCHOR_END: {selector}")))
                    .map_or(lines.len(), |n| start + 1 + n);
                lines[start + 1..end].to_vec()
            }
        },
    };
    let kept: Vec<&str> = chosen.into_iter().filter(|l| !marker(l)).collect();
    Ok((kept.join("\n"), path))
}

/// `2`, `2:`, `::10` (as `:10` after the file's colon), `2:10` → first and last
/// line (from 1); `None` for an anchor's name.
fn range(selector: &str) -> Option<(usize, Option<usize>)> {
    let number = |s: &str| -> Option<Option<usize>> {
        match s.trim() {
            "" => Some(None),
            s => s.parse().ok().map(Some),
        }
    };
    match selector.split_once(':') {
        None => {
            let line: usize = selector.trim().parse().ok()?;
            Some((line, Some(line)))
        }
        Some((from, to)) => Some((number(from)?.unwrap_or(1), number(to)?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn tree() -> std::path::PathBuf {
        let root = std::env::temp_dir().join(format!(
            "copper-markdown-include-{}-{}",
            std::process::id(),
            fastrand()
        ));
        fs::create_dir_all(root.join("book/src")).unwrap();
        fs::write(
            root.join("book/src/main.rs"),
            "// ANCHOR: all\nuse std::io;\n// ANCHOR: body\nfn main() {\n    println!(\"hi\");\n}\n// ANCHOR_END: body\n# fn hidden() {}\n// ANCHOR_END: all\n",
        )
        .unwrap();
        fs::write(root.join("outside.txt"), "secret").unwrap();
        root
    }

    /// A distinct number per call, for folders of their own.
    fn fastrand() -> u64 {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        N.fetch_add(1, Ordering::Relaxed)
    }

    #[test]
    fn files_anchors_and_line_ranges_are_included() {
        let root = tree();
        let book = root.join("book");
        let page = "chapter.md";
        let got = |text: &str| expand(text, page, &book).unwrap();
        assert_eq!(
            got("{{#include src/main.rs:body}}"),
            "fn main() {\n    println!(\"hi\");\n}"
        );
        assert_eq!(got("{{#include src/main.rs:2}}"), "use std::io;");
        assert_eq!(
            got("a\n{{#include src/main.rs:4:5}}\nb"),
            "a\nfn main() {\n    println!(\"hi\");\nb"
        );
        assert!(got("{{#include src/main.rs}}").starts_with("use std::io;\nfn main()"));
        assert!(!got("{{#include src/main.rs}}").contains("ANCHOR"));
        assert_eq!(
            got("{{#rustdoc_include src/main.rs:all}}"),
            "use std::io;\nfn main() {\n    println!(\"hi\");\n}"
        );
        assert_eq!(
            got("\\{{#include src/main.rs}}"),
            "{{#include src/main.rs}}"
        );
        assert_eq!(got("{{#title Mine}}"), "{{#title Mine}}");
        assert_eq!(
            got("write `{{#include file}}` to include"),
            "write `{{#include file}}` to include"
        );
        assert_eq!(
            got("```\n{{#include src/main.rs:2}}\n```"),
            "```\nuse std::io;\n```"
        );
        assert_eq!(got("a `{{#include\nfile}}` b"), "a `{{#include\nfile}}` b");
        assert_eq!(
            got("`x`\n\n```rust\n{{#include src/main.rs:2}}\n```\n"),
            "`x`\n\n```rust\nuse std::io;\n```\n"
        );
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_file_that_leaves_the_tree_or_is_missing_is_an_error_at_its_line() {
        let root = tree();
        let book = root.join("book");
        let error =
            expand("one\ntwo\n{{#include ../outside.txt}}\n", "guide.md", &book).unwrap_err();
        assert_eq!(
            error,
            "guide.md:3: {{#include ../outside.txt}}: leaves the tree"
        );
        let error = expand("{{#include nope.rs}}", "a/b.md", &book).unwrap_err();
        assert!(
            error.starts_with("a/b.md:1: {{#include nope.rs}}: cannot read a/nope.rs"),
            "{error}"
        );
        let error = expand("{{#include src/main.rs:none}}", "c.md", &book).unwrap_err();
        assert!(error.contains("has no anchor `none`"), "{error}");
        fs::remove_dir_all(&root).unwrap();
    }
}
