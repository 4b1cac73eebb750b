//! A page of the site around its body: the sidebar of the whole tree with the
//! page marked, breadcrumbs, a table of its headings, previous and next. One
//! clean theme: readable on a phone, light and dark, print friendly, no script.

use crate::nav::Entry;
use crate::page::escape;

/// The theme, in every page (no file to fetch, so it works from `file://`).
pub const STYLE: &str = ":root{color-scheme:light dark;--fg:#1d1c1a;--bg:#fdfcfa;--muted:#6b6760;--line:#e2ded7;--accent:#1f6fb2;--code:#f3f1ed}\
@media (prefers-color-scheme:dark){:root{--fg:#e9e6e1;--bg:#181715;--muted:#a39e95;--line:#37342f;--accent:#7ab4ea;--code:#242220}}\
*{box-sizing:border-box}body{margin:0;font:16px/1.6 system-ui,-apple-system,\"Segoe UI\",sans-serif;color:var(--fg);background:var(--bg)}\
a{color:var(--accent)}header.site{padding:.6rem 1rem;border-bottom:1px solid var(--line);font-weight:600}header.site a{color:var(--fg);text-decoration:none}\
.layout{display:flex;max-width:80rem;margin:0 auto}nav.sidebar{flex:0 0 17rem;padding:1rem;border-right:1px solid var(--line);font-size:.92rem;position:sticky;top:0;max-height:100vh;overflow:auto}\
nav.sidebar ul{list-style:none;margin:0;padding-left:.9rem}nav.sidebar>ul{padding-left:0}nav.sidebar li{margin:.15rem 0}\
nav.sidebar a{text-decoration:none;color:var(--fg)}nav.sidebar a[aria-current=page]{color:var(--accent);font-weight:600}nav.sidebar .part{margin-top:.8rem;color:var(--muted);font-weight:600;text-transform:uppercase;font-size:.78rem}\
main{flex:1;min-width:0;padding:1rem 2rem 3rem;max-width:52rem}.breadcrumbs{font-size:.85rem;color:var(--muted)}.breadcrumbs a{color:var(--muted)}\
.toc{border-left:3px solid var(--line);padding:.2rem .9rem;margin:1rem 0;font-size:.9rem}.toc ul{margin:.2rem 0;padding-left:1rem}\
pre,code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.9em}pre{background:var(--code);padding:.75rem;overflow:auto;border-radius:6px}\
table{border-collapse:collapse}td,th{border:1px solid var(--line);padding:.25rem .5rem}img{max-width:100%}\
blockquote{margin:1rem 0;padding:.4rem 1rem;border-left:4px solid var(--line);color:var(--muted)}\
blockquote[class^=markdown-alert]{color:var(--fg);border-radius:0 6px 6px 0;background:var(--code)}\
blockquote[class^=markdown-alert]::before{display:block;font-weight:600;margin-bottom:.2rem}\
.markdown-alert-note{border-color:#1f6fb2!important}.markdown-alert-note::before{content:\"Note\"}\
.markdown-alert-tip{border-color:#2f8f46!important}.markdown-alert-tip::before{content:\"Tip\"}\
.markdown-alert-important{border-color:#8250df!important}.markdown-alert-important::before{content:\"Important\"}\
.markdown-alert-warning{border-color:#b87333!important}.markdown-alert-warning::before{content:\"Warning\"}\
.markdown-alert-caution{border-color:#c0392b!important}.markdown-alert-caution::before{content:\"Caution\"}\
.pager{display:flex;justify-content:space-between;gap:1rem;margin-top:3rem;border-top:1px solid var(--line);padding-top:1rem}\
@media (max-width:760px){.layout{display:block}nav.sidebar{position:static;max-height:none;border-right:0;border-bottom:1px solid var(--line)}main{padding:1rem}}\
@media print{nav.sidebar,.pager,header.site{display:none}main{max-width:none;padding:0}a{color:inherit}}";

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

/// The whole document of a page.
pub fn page(frame: &Frame, title: &str, body: &str, headings: &[(u8, String, String)]) -> String {
    let mut out = String::with_capacity(body.len() + 4096);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    out.push_str(&format!(
        "<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        escape(title)
    ));
    out.push_str(&format!(
        "<header class=\"site\"><a href=\"{}index.html\">{}</a></header>\n<div class=\"layout\">\n",
        escape(frame.root),
        escape(frame.site)
    ));
    out.push_str(&sidebar(frame));
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
            None if entry.depth == 0 => {
                out.push_str(&format!("<li class=\"part\">{}", escape(&entry.title)))
            }
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
