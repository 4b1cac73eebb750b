//! A page of the site around its body: the sidebar of the whole tree with the
//! page marked, breadcrumbs, a table of its headings, previous and next. One
//! clean theme: readable on a phone, light and dark, print friendly, no script.

use crate::nav::Entry;
use crate::page::escape;

/// The default theme, written to `_site/style.css` (a theme folder may replace it).
pub const STYLE: &str = include_str!("style.css");

/// What a page is drawn with.
pub struct Frame<'a> {
    /// The site's title.
    pub site: &'a str,
    /// The tree, in reading order.
    pub entries: &'a [Entry],
    /// This page's markdown path (`guide/intro.md`), to mark it and find its place.
    pub current: Option<&'a str>,
    /// `../` back to the site's root from this page.
    pub root: &'a str,
    /// Where the site is published (`https://example.org/book/`), for canonical links.
    pub base_url: Option<&'a str>,
    /// What the theme adds to every page's `<head>`.
    pub head: &'a str,
    /// The sidebar of `entries` made once for every page ([`sidebar_template`]),
    /// or `None` to make it for this page.
    pub sidebar: Option<&'a str>,
}

/// Stands for the way back to the site's root in a [`sidebar_template`].
const ROOT: char = '\u{1}';

/// The sidebar of `entries` with no page marked and a mark for the way back
/// to the root: one for all the pages of a site, each filling it in.
pub fn sidebar_template(entries: &[Entry]) -> String {
    let root = ROOT.to_string();
    sidebar(&Frame {
        site: "",
        entries,
        current: None,
        root: &root,
        base_url: None,
        head: "",
        sidebar: None,
    })
}

/// `template` for the page of `frame`: its way back to the root, and its entry marked.
fn filled(template: &str, frame: &Frame) -> String {
    let root = escape(frame.root);
    let mut out = template.replace(ROOT, &root);
    if let Some(current) = frame.current {
        let href = format!("href=\"{root}{}\"", escape(&html_path(current)));
        if let Some(at) = out.find(&href) {
            out.insert_str(at + href.len(), " aria-current=\"page\"");
        }
    }
    out
}

/// `guide/intro.md` → `guide/intro.html`.
pub fn html_path(markdown: &str) -> String {
    match markdown
        .strip_suffix(".md")
        .or_else(|| markdown.strip_suffix(".MD"))
    {
        Some(stem) => format!("{stem}.html"),
        None => markdown.to_string(),
    }
}

/// The whole document of the page at `href` (from the site's root).
pub fn page(
    frame: &Frame,
    href: &str,
    title: &str,
    body: &str,
    headings: &[(u8, String, String)],
) -> String {
    let root = escape(frame.root);
    let mut out = String::with_capacity(body.len() + 4096);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    // An empty icon: no request for a /favicon.ico the site does not have.
    out.push_str(&format!(
        "<title>{}</title>\n<link rel=\"icon\" href=\"data:,\">\n",
        escape(title)
    ));
    out.push_str(&format!(
        "<link rel=\"stylesheet\" href=\"{root}_site/style.css\">\n<link rel=\"stylesheet\" href=\"{root}_site/highlight.css\">\n"
    ));
    if let Some(base) = frame.base_url {
        out.push_str(&format!(
            "<link rel=\"canonical\" href=\"{}{}\">\n",
            escape(base),
            escape(href)
        ));
    }
    out.push_str(&format!(
        "<script src=\"{root}_site/search.js\" defer></script>\n"
    ));
    out.push_str(frame.head);
    out.push_str("</head>\n<body>\n");
    out.push_str(&format!(
        "<header class=\"site\"><a href=\"{root}index.html\">{}</a>\
         <form class=\"search\" role=\"search\" action=\"javascript:void(0)\">\
         <input type=\"search\" id=\"search\" placeholder=\"Search (/)\" aria-label=\"Search the site\" autocomplete=\"off\" data-root=\"{root}\">\
         <ol id=\"search-results\" aria-live=\"polite\" hidden></ol></form></header>\n<div class=\"layout\">\n",
        escape(frame.site)
    ));
    match frame.sidebar {
        Some(template) => out.push_str(&filled(template, frame)),
        None => out.push_str(&sidebar(frame)),
    }
    out.push_str("<main>\n");
    out.push_str(&breadcrumbs(frame));
    // The table of contents under the page's title, when it starts with one.
    let toc = toc(headings);
    match body.find("</h1>\n").filter(|_| body.starts_with("<h1")) {
        Some(end) => {
            let (title, rest) = body.split_at(end + "</h1>\n".len());
            out.push_str(title);
            out.push_str(&toc);
            out.push_str(rest);
        }
        None => {
            out.push_str(&toc);
            out.push_str(body);
        }
    }
    out.push_str(&pager(frame));
    out.push_str("</main>\n</div>\n</body>\n</html>\n");
    out
}

fn sidebar(frame: &Frame) -> String {
    let mut out = String::from("<nav class=\"sidebar\" aria-label=\"Pages\">\n<ul>\n");
    let mut depth = 0;
    let mut open = false;
    for entry in frame.entries {
        while depth < entry.depth {
            out.push_str("<ul>\n");
            depth += 1;
            open = false;
        }
        while depth > entry.depth {
            out.push_str("</li>\n</ul>\n");
            depth -= 1;
        }
        if open {
            out.push_str("</li>\n");
        }
        match &entry.path {
            Some(path) => {
                let current = frame.current == Some(path.as_str());
                out.push_str(&format!(
                    "<li><a href=\"{}{}\"{}>{}</a>",
                    escape(frame.root),
                    escape(&html_path(path)),
                    if current {
                        " aria-current=\"page\""
                    } else {
                        ""
                    },
                    escape(&entry.title)
                ));
            }
            None if entry.depth == 0 => out.push_str(&format!(
                "<li class=\"part\"><span class=\"part-title\">{}</span>",
                escape(&entry.title)
            )),
            None => out.push_str(&format!("<li><span>{}</span>", escape(&entry.title))),
        }
        open = true;
    }
    if open {
        out.push_str("</li>\n");
    }
    while depth > 0 {
        out.push_str("</ul>\n</li>\n");
        depth -= 1;
    }
    out.push_str("</ul>\n</nav>\n");
    out
}

/// The entries above the current one, from the top.
fn ancestors<'e>(frame: &Frame<'e>) -> Vec<&'e Entry> {
    let Some(at) = frame
        .entries
        .iter()
        .position(|e| e.path.as_deref() == frame.current && frame.current.is_some())
    else {
        return Vec::new();
    };
    let mut depth = frame.entries[at].depth;
    let mut found = Vec::new();
    for entry in frame.entries[..at].iter().rev() {
        if entry.depth < depth {
            found.push(entry);
            depth = entry.depth;
        }
    }
    found.reverse();
    found
}

fn breadcrumbs(frame: &Frame) -> String {
    let above = ancestors(frame);
    if above.is_empty() {
        return String::new();
    }
    let mut out = String::from("<nav class=\"breadcrumbs\" aria-label=\"Breadcrumbs\">");
    for entry in above {
        match &entry.path {
            Some(path) => out.push_str(&format!(
                "<a href=\"{}{}\">{}</a> › ",
                escape(frame.root),
                escape(&html_path(path)),
                escape(&entry.title)
            )),
            None => out.push_str(&format!("{} › ", escape(&entry.title))),
        }
    }
    out.push_str("</nav>\n");
    out
}

/// The page's second and third level headings, when it has two or more.
fn toc(headings: &[(u8, String, String)]) -> String {
    let listed: Vec<_> = headings
        .iter()
        .filter(|(l, _, _)| (2..=3).contains(l))
        .collect();
    if listed.len() < 2 {
        return String::new();
    }
    let mut out =
        String::from("<nav class=\"toc\" aria-label=\"On this page\"><b>On this page</b>\n<ul>\n");
    for (level, id, text) in listed {
        out.push_str(&format!(
            "<li class=\"h{level}\"><a href=\"#{}\">{}</a></li>\n",
            escape(id),
            escape(text)
        ));
    }
    out.push_str("</ul></nav>\n");
    out
}

fn pager(frame: &Frame) -> String {
    let pages: Vec<&Entry> = frame.entries.iter().filter(|e| e.path.is_some()).collect();
    let Some(at) = pages
        .iter()
        .position(|e| e.path.as_deref() == frame.current)
    else {
        return String::new();
    };
    let link = |entry: Option<&&Entry>, rel: &str, text: &dyn Fn(&str) -> String| match entry {
        Some(entry) => format!(
            "<a rel=\"{rel}\" href=\"{}{}\">{}</a>",
            escape(frame.root),
            escape(&html_path(entry.path.as_deref().unwrap_or_default())),
            text(&escape(&entry.title))
        ),
        None => "<span></span>".to_string(),
    };
    format!(
        "<nav class=\"pager\" aria-label=\"Previous and next\">{}{}</nav>\n",
        link(
            at.checked_sub(1).and_then(|i| pages.get(i)),
            "prev",
            &|t| format!("← {t}")
        ),
        link(pages.get(at + 1), "next", &|t| format!("{t} →"))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sidebar_filled_from_the_template_is_the_one_made_for_the_page() {
        let entries = crate::nav::summary(
            "# Summary\n\n[Intro](intro.md)\n\n# Part\n\n- [A & B](guide/a.md)\n  - [C](guide/c.md)\n- [Draft]()\n",
        );
        let template = sidebar_template(&entries);
        for (current, root) in [
            (Some("intro.md"), ""),
            (Some("guide/a.md"), "../"),
            (Some("guide/c.md"), "../"),
            (None, ""),
        ] {
            let mut frame = Frame {
                site: "s",
                entries: &entries,
                current,
                root,
                base_url: None,
                head: "",
                sidebar: None,
            };
            let made = sidebar(&frame);
            frame.sidebar = Some(&template);
            assert_eq!(filled(&template, &frame), made, "{current:?}");
        }
    }
}
