//! The search index, written at build time as a script (`_site/searchindex.js`)
//! so that the search box (`_site/search.js`) works from `file://` as well as
//! from any static server: no fetch, no server, no service worker.
//!
//! One document per section of a page (its heading's anchor); per term, the
//! documents holding it and a weight: how often it is there (at most 10), and
//! 10 more when it is in the heading. The script finds the terms a query's words
//! begin, and ranks by weight × rarity; every word must be found.

use crate::page::Section;
use rustc_hash::FxHashMap;

/// The script the search box runs.
pub const SCRIPT: &str = include_str!("search.js");

/// Calls `found` with each word of `text` as the index and the box both cut
/// them: runs of letters, digits and `_`, from 2 to 40 characters, in lower case
/// (lowered only when they need to be).
fn each_word(text: &str, mut found: impl FnMut(&str)) {
    for word in text.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
        if !(2..=40).contains(&word.chars().count()) {
            continue;
        }
        if word.chars().any(char::is_uppercase) {
            found(&word.to_lowercase());
        } else {
            found(word);
        }
    }
}

/// The teaser shown under a result: the start of the section, cut at a word.
fn teaser(text: &str) -> String {
    const LONG: usize = 160;
    let mut start = text.trim_start();
    if let Some((at, _)) = start.char_indices().nth(4 * LONG) {
        start = &start[..at];
    }
    let text = start.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.chars().count() <= LONG {
        return text;
    }
    let cut: String = text.chars().take(LONG).collect();
    match cut.rfind(' ') {
        Some(at) => format!("{}…", &cut[..at]),
        None => format!("{cut}…"),
    }
}

/// The index being made.
#[derive(Default)]
pub struct Index {
    docs: Vec<(String, String, String)>,
    terms: FxHashMap<String, Vec<u32>>,
}

impl Index {
    /// Adds the sections of the page at `href` (from the site's root) titled `title`.
    pub fn add(&mut self, href: &str, title: &str, sections: &[Section]) {
        for section in sections {
            let doc = self.docs.len() as u32;
            let (url, shown) = if section.id.is_empty() {
                (href.to_string(), title.to_string())
            } else if section.heading.trim() == title.trim() {
                (format!("{href}#{}", section.id), title.to_string())
            } else {
                (
                    format!("{href}#{}", section.id),
                    format!("{title} › {}", section.heading.trim()),
                )
            };
            self.docs.push((url, shown, teaser(&section.text)));
            each_word(&section.text, |word| {
                self.weigh(word, doc, |w| (w + 1).min(10));
            });
            let named = |w| if w < 10 { w + 10 } else { w };
            each_word(&section.heading, |word| self.weigh(word, doc, named));
            each_word(title, |word| self.weigh(word, doc, named));
        }
    }

    /// `word`'s weight in `doc` (the newest document) changed by `by`.
    fn weigh(&mut self, word: &str, doc: u32, by: impl Fn(u32) -> u32) {
        let postings = match self.terms.get_mut(word) {
            Some(postings) => postings,
            None => self.terms.entry(word.to_string()).or_default(),
        };
        match postings.as_mut_slice() {
            [.., last, weight] if *last == doc => *weight = by(*weight),
            _ => {
                postings.push(doc);
                postings.push(by(0));
            }
        }
    }

    /// How many documents (sections) it holds.
    pub fn len(&self) -> usize {
        self.docs.len()
    }

    /// True when nothing was added.
    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    /// The script that hands the index to the search box: the JSON of
    /// `{"docs": [[href, title, teaser]…], "terms": {term: [doc, weight…]}}`.
    pub fn script(&self) -> String {
        use std::fmt::Write;
        let mut terms: Vec<(&String, &Vec<u32>)> = self.terms.iter().collect();
        terms.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut out = String::with_capacity(64 * self.docs.len() + 16 * terms.len());
        out.push_str("{\"docs\":");
        out.push_str(&serde_json::to_string(&self.docs).unwrap_or_default());
        out.push_str(",\"terms\":{");
        for (n, (term, postings)) in terms.into_iter().enumerate() {
            if n > 0 {
                out.push(',');
            }
            // A term is letters, digits and `_` (see `each_word`): nothing to escape.
            let _ = write!(out, "\"{term}\":[");
            for (i, value) in postings.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{value}");
            }
            out.push(']');
        }
        out.push_str("}}");
        // Parsed as JSON, not run as a literal: quicker to load (V8's advice for
        // large data), and a term such as `__proto__` stays a term.
        format!(
            "window.copperSearchIndex=JSON.parse({});\n",
            serde_json::to_string(&out).unwrap_or_default()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(id: &str, heading: &str, text: &str) -> Section {
        Section {
            id: id.into(),
            heading: heading.into(),
            text: text.into(),
        }
    }

    /// The index the script holds.
    fn parse(script: &str) -> serde_json::Value {
        let text: String = serde_json::from_str(
            script
                .strip_prefix("window.copperSearchIndex=JSON.parse(")
                .and_then(|s| s.strip_suffix(");\n"))
                .unwrap(),
        )
        .unwrap();
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn a_term_like_proto_is_a_term_like_any_other() {
        let mut index = Index::default();
        index.add(
            "a.html",
            "A",
            &[section("", "", "__proto__ \"quoted\" text")],
        );
        let json = parse(&index.script());
        assert_eq!(json["terms"]["__proto__"], serde_json::json!([0, 1]));
        assert_eq!(json["docs"][0][2], "__proto__ \"quoted\" text");
    }

    #[test]
    fn words_are_cut_and_lowered_as_the_box_cuts_them() {
        let mut got: Vec<String> = Vec::new();
        each_word("Hello, wörld! a x_y 42 Ownership’s", |w| {
            got.push(w.to_string())
        });
        assert_eq!(got, ["hello", "wörld", "x_y", "42", "ownership"]);
    }

    #[test]
    fn each_section_is_a_document_and_headings_weigh_more() {
        let mut index = Index::default();
        index.add(
            "guide/start.html",
            "Start",
            &[
                section("start", "Start", "Ownership ownership rules."),
                section("borrowing", "Borrowing", "A reference borrows."),
            ],
        );
        assert_eq!(index.len(), 2);
        let json = parse(&index.script());
        assert_eq!(
            json["docs"][0],
            serde_json::json!([
                "guide/start.html#start",
                "Start",
                "Ownership ownership rules."
            ])
        );
        assert_eq!(json["docs"][1][1], "Start › Borrowing");
        assert_eq!(json["terms"]["ownership"], serde_json::json!([0, 2]));
        assert_eq!(json["terms"]["borrowing"], serde_json::json!([1, 10]));
        // The page's title is in both sections' weight.
        assert_eq!(json["terms"]["start"], serde_json::json!([0, 10, 1, 10]));
    }

    #[test]
    fn a_long_teaser_is_cut_at_a_word() {
        let long = "word ".repeat(100);
        let cut = teaser(&long);
        assert!(
            cut.ends_with("word…") && cut.chars().count() <= 161,
            "{cut}"
        );
    }
}
