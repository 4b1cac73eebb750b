//! One markdown page to HTML: front matter, GFM extensions, `.md` links rewritten.

use pulldown_cmark::{CowStr, Event, HeadingLevel, Options, Parser, Tag, TagEnd, html};

/// A rendered page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// From the front matter's `title`, else the first heading, else the file stem.
    pub title: String,
    /// The page body as HTML (no `<html>` wrapper).
    pub body: String,
}

fn options() -> Options {
    Options::ENABLE_TABLES
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_YAML_STYLE_METADATA_BLOCKS
        | Options::ENABLE_HEADING_ATTRIBUTES
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

fn front_matter_title(yaml: &str) -> Option<String> {
    let value: serde_json::Value = serde_saphyr::from_str(yaml).ok()?;
    match value.get("title")? {
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// Renders markdown text; `stem` names the page when nothing else does.
pub fn render(markdown: &str, stem: &str) -> Page {
    let mut title = None;
    let mut first_heading: Option<String> = None;
    let mut in_metadata = false;
    let mut in_first_heading = false;
    let mut events = Vec::new();
    for event in Parser::new_ext(markdown, options()) {
        match event {
            Event::Start(Tag::MetadataBlock(_)) => in_metadata = true,
            Event::End(TagEnd::MetadataBlock(_)) => in_metadata = false,
            Event::Text(text) if in_metadata => {
                if title.is_none() {
                    title = front_matter_title(&text);
                }
            }
            Event::Start(Tag::Link {
                link_type,
                dest_url,
                title: t,
                id,
            }) => {
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
    let mut body = String::with_capacity(markdown.len() * 3 / 2);
    html::push_html(&mut body, events.into_iter());
    let title = title
        .or(first_heading.filter(|h| !h.trim().is_empty()))
        .unwrap_or_else(|| stem.to_string());
    Page { title, body }
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

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;line-height:1.5}\
pre{background:#f4f4f4;padding:.75rem;overflow:auto}table{border-collapse:collapse}\
td,th{border:1px solid #ccc;padding:.25rem .5rem}img{max-width:100%}nav{margin-bottom:1rem}";

/// Wraps a body into a whole HTML document; `home` is the relative link to the index.
pub fn document(title: &str, body: &str, home: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <nav><a href=\"{home}\">Index</a></nav>\n<main>\n{body}</main>\n</body>\n</html>\n",
        title = escape(title),
        home = escape(home),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn front_matter_gives_the_title_and_is_not_rendered() {
        let page = render("---\ntitle: Home\nslug: home\n---\n# Big\n\ntext", "readme");
        assert_eq!(page.title, "Home");
        assert!(!page.body.contains("slug"));
        assert!(page.body.contains("<h1>Big</h1>"));
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

    #[test]
    fn titles_are_escaped() {
        let html = document("<script>", "", "index.html");
        assert!(html.contains("<title>&lt;script&gt;</title>"));
    }
}
