//! One markdown page to HTML: front matter, GFM extensions, `.md` links rewritten.

use crate::highlight;
use pulldown_cmark::{
    CodeBlockKind, CowStr, Event, HeadingLevel, Options, Parser, Tag, TagEnd, html,
};

/// A rendered page.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// From the front matter's `title`, else the first heading, else the file stem.
    pub title: String,
    /// The page body as HTML (no `<html>` wrapper).
    pub body: String,
    /// The front matter's `weight` (or `order`): where it goes among its folder's pages.
    pub weight: Option<f64>,
    /// The front matter's `draft: true`: left out of the site.
    pub draft: bool,
    /// Its headings: level, id (the anchor), text.
    pub headings: Vec<(u8, String, String)>,
    /// The links it holds, as written, with the line of each.
    pub links: Vec<(String, usize)>,
    /// Its text cut at its headings, for the search index.
    pub sections: Vec<Section>,
}

/// A page's text from one heading to the next (the first from the page's top).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Section {
    /// The heading's id, empty for the text above the first heading.
    pub id: String,
    /// The heading's text.
    pub heading: String,
    /// The plain text under it, code included.
    pub text: String,
}

/// What the front matter says.
#[derive(Debug, Default)]
struct Front {
    title: Option<String>,
    weight: Option<f64>,
    draft: bool,
}

fn front_matter(yaml: &str) -> Front {
    let Ok(value) = serde_saphyr::from_str::<serde_json::Value>(yaml) else {
        return Front::default();
    };
    let title = match value.get("title") {
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(serde_json::Value::Null) | None => None,
        Some(other) => Some(other.to_string()),
    };
    let weight = value
        .get("weight")
        .or_else(|| value.get("order"))
        .and_then(|w| w.as_f64().or_else(|| w.as_str()?.trim().parse().ok()));
    let draft = value
        .get("draft")
        .and_then(|d| d.as_bool())
        .unwrap_or(false);
    Front {
        title,
        weight,
        draft,
    }
}

/// A heading's anchor as mdBook makes it: lower case, spaces to `-`, only letters,
/// digits, `-` and `_` kept.
pub fn slug(text: &str) -> String {
    text.trim()
        .chars()
        .filter_map(|c| match c {
            c if c.is_alphanumeric() => Some(c.to_lowercase().next().unwrap_or(c)),
            ' ' | '-' => Some('-'),
            '_' => Some('_'),
            _ => None,
        })
        .collect()
}

fn options() -> Options {
    Options::ENABLE_TABLES
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_YAML_STYLE_METADATA_BLOCKS
        | Options::ENABLE_HEADING_ATTRIBUTES
        // `> [!NOTE]` and its kin (GitHub's alerts).
        | Options::ENABLE_GFM
}

/// Rewrites a relative link to a `.md` file into a link to its `.html` page.
pub fn rewrite_link(dest: &str) -> Option<String> {
    if dest.contains("://")
        || dest.starts_with("mailto:")
        || dest.starts_with('#')
        || dest.starts_with("//")
    {
        return None;
    }
    let (path, anchor) = match dest.find(['#', '?']) {
        Some(i) => dest.split_at(i),
        None => (dest, ""),
    };
    let stem = path
        .strip_suffix(".md")
        .or_else(|| path.strip_suffix(".MD"))?;
    Some(format!("{stem}.html{anchor}"))
}

/// Renders markdown text; `stem` names the page when nothing else does.
pub fn render(markdown: &str, stem: &str) -> Page {
    let mut front = Front::default();
    let mut first_heading: Option<String> = None;
    let mut in_metadata = false;
    let mut in_first_heading = false;
    let mut links = Vec::new();
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(markdown.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    let line_of = |offset: usize| line_starts.partition_point(|&start| start <= offset);
    let mut events = Vec::new();
    for (event, range) in Parser::new_ext(markdown, options()).into_offset_iter() {
        match event {
            Event::Start(Tag::MetadataBlock(_)) => in_metadata = true,
            Event::End(TagEnd::MetadataBlock(_)) => in_metadata = false,
            Event::Text(text) if in_metadata => front = front_matter(&text),
            Event::Start(Tag::Link {
                link_type,
                dest_url,
                title: t,
                id,
            }) => {
                links.push((dest_url.to_string(), line_of(range.start)));
                let dest_url = rewrite_link(&dest_url)
                    .map(CowStr::from)
                    .unwrap_or(dest_url);
                events.push(Event::Start(Tag::Link {
                    link_type,
                    dest_url,
                    title: t,
                    id,
                }));
            }
            Event::Start(Tag::Image { ref dest_url, .. }) => {
                links.push((dest_url.to_string(), line_of(range.start)));
                events.push(event);
            }
            Event::Start(Tag::Heading { level, .. }) if first_heading.is_none() => {
                in_first_heading = level <= HeadingLevel::H2;
                if in_first_heading {
                    first_heading = Some(String::new());
                }
                events.push(event);
            }
            Event::End(TagEnd::Heading(_)) => {
                in_first_heading = false;
                events.push(event);
            }
            Event::Text(ref text) | Event::Code(ref text) if in_first_heading => {
                if let Some(heading) = first_heading.as_mut() {
                    heading.push_str(text);
                }
                events.push(event);
            }
            other => events.push(other),
        }
    }
    let headings = anchor_headings(&mut events);
    let sections = sections(&events);
    let mut body = String::with_capacity(markdown.len() * 3 / 2);
    html::push_html(&mut body, highlighted(events).into_iter());
    let title = front
        .title
        .or(first_heading.filter(|h| !h.trim().is_empty()))
        .unwrap_or_else(|| stem.to_string());
    Page {
        title,
        body,
        weight: front.weight,
        draft: front.draft,
        headings,
        links,
        sections,
    }
}

/// The text of `events` cut at each heading.
fn sections(events: &[Event]) -> Vec<Section> {
    let mut sections = vec![Section::default()];
    let mut in_heading = false;
    for event in events {
        match event {
            Event::Start(Tag::Heading { id, .. }) => {
                in_heading = true;
                sections.push(Section {
                    id: id.as_deref().unwrap_or_default().to_string(),
                    ..Section::default()
                });
            }
            Event::End(TagEnd::Heading(_)) => in_heading = false,
            Event::Text(text) | Event::Code(text) => {
                let section = sections.last_mut().expect("one at least");
                let into = if in_heading {
                    &mut section.heading
                } else {
                    &mut section.text
                };
                into.push_str(text);
            }
            Event::SoftBreak | Event::HardBreak | Event::End(TagEnd::Paragraph | TagEnd::Item) => {
                if let Some(section) = sections.last_mut().filter(|_| !in_heading) {
                    section.text.push(' ');
                }
            }
            _ => {}
        }
    }
    if sections[0].text.trim().is_empty() {
        sections.remove(0);
    }
    sections
}

/// `events` with each code block replaced by its highlighted HTML
/// ([`crate::highlight`]).
fn highlighted(events: Vec<Event>) -> Vec<Event> {
    let mut out = Vec::with_capacity(events.len());
    let mut code: Option<(String, String)> = None;
    for event in events {
        match (event, &mut code) {
            (Event::Start(Tag::CodeBlock(kind)), _) => {
                let info = match kind {
                    CodeBlockKind::Fenced(info) => info.to_string(),
                    CodeBlockKind::Indented => String::new(),
                };
                code = Some((info, String::new()));
            }
            (Event::Text(text), Some((_, body))) => body.push_str(&text),
            (Event::End(TagEnd::CodeBlock), Some(_)) => {
                let (info, body) = code.take().expect("in a block");
                out.push(Event::Html(highlight::block(&info, &body).into()));
            }
            (event, _) => out.push(event),
        }
    }
    out
}

/// Gives every heading an id (its own `{#id}`, else its slug, made unique with
/// `-1`, `-2`…), and lists them.
fn anchor_headings(events: &mut [Event]) -> Vec<(u8, String, String)> {
    let mut headings = Vec::new();
    let mut taken: Vec<String> = Vec::new();
    let mut at = 0;
    while at < events.len() {
        let Event::Start(Tag::Heading { level, id, .. }) = &events[at] else {
            at += 1;
            continue;
        };
        let level = *level as u8;
        let given = id.as_ref().map(|id| id.to_string());
        let mut text = String::new();
        let mut end = at + 1;
        while end < events.len() && !matches!(events[end], Event::End(TagEnd::Heading(_))) {
            if let Event::Text(t) | Event::Code(t) = &events[end] {
                text.push_str(t);
            }
            end += 1;
        }
        let id = match given {
            Some(id) => id,
            None => {
                let base = match slug(&text) {
                    s if s.is_empty() => "section".to_string(),
                    s => s,
                };
                let mut id = base.clone();
                let mut n = 1;
                while taken.contains(&id) {
                    id = format!("{base}-{n}");
                    n += 1;
                }
                id
            }
        };
        taken.push(id.clone());
        if let Event::Start(Tag::Heading { id: slot, .. }) = &mut events[at] {
            *slot = Some(CowStr::from(id.clone()));
        }
        headings.push((level, id, text));
        at = end + 1;
    }
    headings
}

/// Escapes text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn front_matter_gives_the_title_and_is_not_rendered() {
        let page = render("---\ntitle: Home\nslug: home\n---\n# Big\n\ntext", "readme");
        assert_eq!(page.title, "Home");
        assert!(!page.body.contains("slug"));
        assert!(
            page.body.contains("<h1 id=\"big\">Big</h1>"),
            "{}",
            page.body
        );
    }

    #[test]
    fn headings_get_stable_unique_ids_and_are_listed() {
        let page = render(
            "# Getting started!\n\n## Install\n\n## Install\n\n### The `run` command {#run}\n\nsee [x](other.md)\n",
            "p",
        );
        let ids: Vec<&str> = page.headings.iter().map(|(_, id, _)| id.as_str()).collect();
        assert_eq!(ids, ["getting-started", "install", "install-1", "run"]);
        assert!(
            page.body.contains("<h2 id=\"install-1\">Install</h2>"),
            "{}",
            page.body
        );
        assert_eq!(
            page.headings[3],
            (3, "run".to_string(), "The run command".to_string())
        );
        assert_eq!(page.links, [("other.md".to_string(), 9)]);
    }

    #[test]
    fn front_matter_orders_and_drafts() {
        let page = render("---\nweight: 2\ndraft: true\n---\ntext", "p");
        assert_eq!((page.weight, page.draft), (Some(2.0), true));
        assert_eq!(render("---\norder: \"5\"\n---\n", "p").weight, Some(5.0));
    }

    #[test]
    fn admonitions_are_marked_by_kind() {
        let page = render("> [!WARNING]\n> Mind the gap.\n", "p");
        assert!(
            page.body
                .contains("<blockquote class=\"markdown-alert-warning\">"),
            "{}",
            page.body
        );
        assert!(page.body.contains("Mind the gap."), "{}", page.body);
        assert!(!page.body.contains("[!WARNING]"), "{}", page.body);
    }

    #[test]
    fn code_is_highlighted_and_sections_hold_the_text() {
        let page = render(
            "Above.\n\n# Top\n\nSome *words*\nhere.\n\n## Code {#code}\n\n```rust\nfn main() {}\n```\n",
            "p",
        );
        assert!(
            page.body.contains(
                "<pre class=\"sm-hl-root\"><code class=\"language-rust\"><span class=\"sm-hl-s-source-rust\">"
            ),
            "{}",
            page.body
        );
        let got: Vec<(&str, &str, &str)> = page
            .sections
            .iter()
            .map(|s| (s.id.as_str(), s.heading.as_str(), s.text.trim()))
            .collect();
        assert_eq!(
            got,
            [
                ("", "", "Above."),
                ("top", "Top", "Some words here."),
                ("code", "Code", "fn main() {}")
            ]
        );
    }

    #[test]
    fn heading_then_stem() {
        assert_eq!(render("## A `b`\n", "x").title, "A b");
        assert_eq!(render("plain\n", "stem").title, "stem");
    }

    #[test]
    fn gfm_extensions() {
        let page = render(
            "| a | b |\n|---|---|\n| 1 | 2 |\n\n- [x] done\n\n~~old~~ new[^1]\n\n[^1]: note\n",
            "p",
        );
        assert!(page.body.contains("<table>"), "{}", page.body);
        assert!(page.body.contains("type=\"checkbox\""), "{}", page.body);
        assert!(page.body.contains("<del>old</del>"), "{}", page.body);
        assert!(page.body.contains("footnote"), "{}", page.body);
    }

    #[test]
    fn md_links_become_html() {
        let page = render(
            "[a](other.md) [b](../x/readme.md#part) [c](https://e.com/a.md) [d](#top)",
            "p",
        );
        assert!(page.body.contains("href=\"other.html\""), "{}", page.body);
        assert!(
            page.body.contains("href=\"../x/readme.html#part\""),
            "{}",
            page.body
        );
        assert!(
            page.body.contains("href=\"https://e.com/a.md\""),
            "{}",
            page.body
        );
        assert!(page.body.contains("href=\"#top\""), "{}", page.body);
    }
}
