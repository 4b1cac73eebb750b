//! Code blocks highlighted at build time, so a page needs no script: TextMate
//! grammars (VS Code's, bundled by syntaxmate, pure Rust, so it builds for
//! wasm32-wasip2), written as theme-free `sm-hl-` classes that `highlight.css`
//! colours, light and dark.

use crate::page::escape;
use std::sync::OnceLock;
use syntaxmate::{Highlighter, HtmlOptions, Theme, render_html};

/// The classes' prefix (`sm-hl-root`, `sm-hl-s-…`), shared with `highlight.css`.
pub const PREFIX: &str = "hl";

/// The colours of the classes: GitHub's light theme, and its dark one when the
/// reader's system is dark (made by syntaxmate from its themes; a test keeps it so).
pub const CSS: &str = include_str!("highlight.css");

/// The grammars, and a theme of no rules: classes carry no colour, so there is
/// nothing to resolve per token (the colours come from the CSS). Made once per
/// instance; `None` if the bundle cannot be read.
fn highlighter() -> Option<&'static (Highlighter, Theme)> {
    static ONE: OnceLock<Option<(Highlighter, Theme)>> = OnceLock::new();
    ONE.get_or_init(|| Some((Highlighter::bundled().ok()?, Theme::from_rules(&[]).ok()?)))
        .as_ref()
}

/// The language a fence's info string names (`rust,ignore` → `rust`), as mdBook
/// and GitHub read it.
pub fn language(info: &str) -> &str {
    info.split([',', ' ', '\t', '{'])
        .next()
        .unwrap_or_default()
        .trim()
}

/// Rust's hidden lines (`# …` and a lone `#`) dropped and `##` unescaped, as
/// rustdoc and mdBook show them.
fn shown_rust(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    for line in code.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let body = trimmed.trim_end_matches(['\n', '\r']);
        if body == "#" || trimmed.starts_with("# ") {
            continue;
        }
        match trimmed.strip_prefix("##") {
            Some(rest) => {
                out.push_str(&line[..line.len() - trimmed.len()]);
                out.push('#');
                out.push_str(rest);
            }
            None => out.push_str(line),
        }
    }
    out
}

/// The spans of `code` in `lang` with `theme`'s styles resolved.
#[cfg(test)]
fn spans_with(lang: &str, code: &str, theme: &Theme) -> Option<String> {
    let (highlighter, _) = highlighter()?;
    let document = highlighter.highlight_with_theme(lang, code, theme).ok()?;
    let html = render_html(code, &document, &class_options()).ok()?;
    Some(html.as_str().to_string())
}

fn class_options() -> HtmlOptions {
    HtmlOptions {
        include_wrapper: false,
        class: None,
        include_scopes: false,
        class_prefix: Some(PREFIX.to_string()),
    }
}

/// The spans of `code` in `lang`, when a grammar knows it and all of it was
/// highlighted.
fn spans(lang: &str, code: &str) -> Option<String> {
    let (highlighter, theme) = highlighter()?;
    let document = highlighter.highlight_with_theme(lang, code, theme).ok()?;
    let html = render_html(code, &document, &class_options()).ok()?;
    html.status()
        .is_complete()
        .then(|| html.as_str().to_string())
}

/// A fenced block's HTML: `<pre><code class="language-…">` with its tokens in
/// spans when a grammar knows the language, else escaped as it is.
pub fn block(info: &str, code: &str) -> String {
    let lang = language(info);
    let owned;
    let code = if matches!(lang, "rust" | "rs") {
        owned = shown_rust(code);
        owned.as_str()
    } else {
        code
    };
    let highlighted = (!lang.is_empty() && lang != "text")
        .then(|| spans(lang, code))
        .flatten();
    match highlighted {
        Some(spans) => format!(
            "<pre class=\"sm-{PREFIX}-root\"><code class=\"language-{}\">{spans}</code></pre>\n",
            escape(lang)
        ),
        None if lang.is_empty() => format!("<pre><code>{}</code></pre>\n", escape(code)),
        None => format!(
            "<pre><code class=\"language-{}\">{}</code></pre>\n",
            escape(lang),
            escape(code)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_is_highlighted_and_its_hidden_lines_dropped() {
        let html = block(
            "rust,ignore",
            "# fn hidden() {}\nfn main() {\n    ## not hidden\n    let x = \"<a>\";\n}\n",
        );
        assert!(
            html.starts_with("<pre class=\"sm-hl-root\"><code class=\"language-rust\">"),
            "{html}"
        );
        assert!(html.contains("sm-hl-s-storage-type"), "{html}");
        assert!(
            html.contains("&lt;a&gt;") && !html.contains("<a>"),
            "{html}"
        );
        assert!(!html.contains("hidden()"), "{html}");
        assert!(
            html.contains("<span>    # </span>") && !html.contains("##"),
            "{html}"
        );
    }

    #[test]
    fn classes_are_the_same_whatever_the_theme_resolved() {
        let code = "/// Doc.\n#[derive(Debug)]\nstruct A<'a> { s: &'a str }\nfn main() { let x = r\"raw\"; }\n";
        let plain = spans("rust", code).unwrap();
        for theme in ["github-light", "github-dark"] {
            let themed = spans_with("rust", code, &Theme::bundled(theme).unwrap()).unwrap();
            assert_eq!(plain, themed, "{theme}");
        }
    }

    #[test]
    fn an_unknown_language_is_escaped_as_it_is() {
        assert_eq!(
            block("no-such-language", "$ echo <hi>\n"),
            "<pre><code class=\"language-no-such-language\">$ echo &lt;hi&gt;\n</code></pre>\n"
        );
        assert_eq!(
            block("", "a & b\n"),
            "<pre><code>a &amp; b\n</code></pre>\n"
        );
    }

    #[test]
    fn the_stylesheet_is_what_syntaxmate_makes_of_its_themes() {
        use syntaxmate::html_stylesheet;
        let light = html_stylesheet(&Theme::bundled("github-light").unwrap(), PREFIX);
        let dark = html_stylesheet(&Theme::bundled("github-dark").unwrap(), PREFIX);
        // Each in its own media query, so no rule of one is left over in the other.
        let made = format!(
            "@media not (prefers-color-scheme:dark){{\n{light}}}\n@media (prefers-color-scheme:dark){{\n{dark}}}\n"
        );
        if std::env::var_os("COPPER_WRITE_HIGHLIGHT_CSS").is_some() {
            std::fs::write(
                concat!(env!("CARGO_MANIFEST_DIR"), "/src/highlight.css"),
                &made,
            )
            .unwrap();
        }
        assert_eq!(
            CSS, made,
            "run with COPPER_WRITE_HIGHLIGHT_CSS=1 to write it again"
        );
    }
}
