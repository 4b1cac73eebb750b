//! copper's README workflow, verbatim, against a loopback copy of its repository.

use crate::support::*;
use std::path::Path;

/// Runs workflows/website.yaml in `dir` and checks the site against the fixture.
fn run_website(dir: &Path, extra: &[&str], github_url: &str, work: &Path) {
    let workflow = repo_root().join("workflows/website.yaml");
    let out = output(
        copper(dir)
            .arg("run")
            .arg(&workflow)
            .args(extra)
            .env("COPPER_GITHUB_URL", github_url),
    );
    out.assert_success();
    assert!(
        out.stdout.contains("2 of 2 steps succeeded"),
        "{}",
        out.stdout
    );

    let site = dir.join(".copper/web/test-website");
    let markdown = files_with_extension(&work.join("content"), "md");
    assert_eq!(markdown.len(), ASTRO_PAGES, "the fixture's markdown files");
    for page in &markdown {
        let html = site.join(page.with_extension("html"));
        let text =
            std::fs::read_to_string(&html).unwrap_or_else(|_| panic!("no page {}", html.display()));
        assert!(
            text.starts_with("<!DOCTYPE html>") && text.contains("<main>"),
            "{}",
            html.display()
        );
        assert!(
            !text.contains("href=\"readme.md\""),
            "links to .md are rewritten in {}",
            html.display()
        );
    }
    assert_eq!(
        files_with_extension(&site, "html").len(),
        ASTRO_PAGES + 1,
        "one page per markdown file, plus the index"
    );
    let home = std::fs::read_to_string(site.join("readme.html")).unwrap();
    assert!(
        home.contains("<title>Home</title>"),
        "front matter gives the title"
    );
    assert!(home.contains("<table>"), "GFM tables are rendered");
    let links = std::fs::read_to_string(site.join("see-also.html")).unwrap();
    assert!(
        links.contains("href=\"readme.html\"")
            && links.contains("href=\"examples/readme.html#top\""),
        "{links}"
    );
    let index = std::fs::read_to_string(site.join("index.html")).unwrap();
    assert!(
        index.contains("href=\"examples/readme.html\""),
        "the index lists the pages"
    );
    // Assets are copied as they are.
    let png = files_with_extension(&work.join("content"), "png");
    assert!(!png.is_empty());
    assert_eq!(
        std::fs::read(site.join(&png[0])).unwrap(),
        std::fs::read(work.join("content").join(&png[0])).unwrap()
    );
    // The fetch kept the whole content/ tree (copper's fnmatch `content/*`).
    let fetched = dir.join(".copper/fetch/test-website/content");
    assert_eq!(files_with_extension(&fetched, "md").len(), ASTRO_PAGES);
    assert_eq!(files_under(&fetched).len(), ASTRO_CONTENT_FILES);
    assert!(
        !dir.join(".copper/fetch/test-website/README.md").exists(),
        "files outside the filter are left out"
    );
}

#[test]
fn copper_website_workflow_runs_verbatim_on_the_embedded_broker() {
    let root = tempfile::tempdir().unwrap();
    let (server, work) = serve_astro_big_doc(root.path());
    let dir = root.path().join("run");
    std::fs::create_dir_all(&dir).unwrap();
    run_website(&dir, &[], &server.github_url(), &work);
}

#[test]
fn copper_website_workflow_runs_through_mosquitto() {
    let root = tempfile::tempdir().unwrap();
    let (server, work) = serve_astro_big_doc(root.path());
    let mosquitto = Mosquitto::start(root.path());
    let dir = root.path().join("run");
    std::fs::create_dir_all(&dir).unwrap();
    run_website(
        &dir,
        &["--broker", &mosquitto.url()],
        &server.github_url(),
        &work,
    );
}

/// Writes a small mdBook-style book under `book`: a SUMMARY.md with a part and a
/// nested chapter, an include with an anchor from outside the book's folder (in
/// its repository), an admonition, Rust code, an image, and a broken link. The
/// word "zeppelin" is only in guide/airships.md.
pub fn write_book(book: &Path) {
    let write = |path: &str, bytes: &[u8]| {
        let path = book.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    };
    write(
        "src/SUMMARY.md",
        b"# Summary\n\n[Introduction](intro.md)\n\n# User guide\n\n- [Getting started](guide/start.md)\n  - [Installing](guide/install.md)\n- [Airships](guide/airships.md)\n",
    );
    write(
        "src/intro.md",
        b"# Introduction\n\nRead [the guide](guide/start.md).\n\n![Ferris the crab](img/ferris.png)\n",
    );
    write(
        "src/guide/start.md",
        b"# Getting started\n\n## First\n\n```rust\nfn main() {\n    println!(\"hello\");\n}\n```\n\n## Second\n\nThen [install](install.md#from-debian), not [this](missing.md).\n",
    );
    write(
        "src/guide/install.md",
        b"# Installing\n\n## From Debian\n\n> [!NOTE]\n> Root is needed.\n\n```rust\n{{#rustdoc_include ../../listings/main.rs:body}}\n```\n",
    );
    write(
        "src/guide/airships.md",
        b"# Airships\n\nA zeppelin floats over the harbour.\n",
    );
    write(
        "listings/main.rs",
        b"use std::io;\n// ANCHOR: body\nfn main() {\n# let hidden = 1;\n    let kept = 2;\n}\n// ANCHOR_END: body\n",
    );
    let png = repo_root().join("tests/fixtures/astro-big-doc/content/images/github-dark.png");
    write("src/img/ferris.png", &std::fs::read(png).unwrap());
}

/// The book built by the real component with every input: the tree and order of
/// its SUMMARY.md in every page's sidebar, previous and next, highlighted code,
/// the include resolved from the repository around the book, the image copied
/// with its link, the search index, the theme, and the broken link reported in
/// the results and the log with its page and line.
#[test]
fn a_book_with_a_summary_gets_its_sidebar_pager_code_search_and_broken_links() {
    let root = tempfile::tempdir().unwrap();
    write_book(&root.path().join(".copper/fetch/book"));
    let theme = root.path().join(".copper/fetch/theme");
    std::fs::create_dir_all(&theme).unwrap();
    std::fs::write(theme.join("style.css"), "body{max-width:40rem}\n").unwrap();
    std::fs::write(theme.join("logo.svg"), "<svg/>").unwrap();
    std::fs::write(
        theme.join("head.html"),
        "<meta name=\"theme-test\" content=\"themed\">",
    )
    .unwrap();
    let out = output(copper(root.path()).args([
        "call",
        "markdown/build",
        "--input",
        r#"{"path": "/fetch/book/src", "out": "/web/book", "title": "The Airship Book",
            "base_url": "https://example.org/book", "theme": "/fetch/theme"}"#,
    ]));
    out.assert_success();
    let finish: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let entry = &finish[0];
    assert_eq!(entry["pages"], 4, "{entry}");
    assert_eq!(entry["assets"], 1, "the image: {entry}");
    assert_eq!(entry["broken_links"], 1, "{entry}");
    assert_eq!(
        entry["broken"][0], "guide/start.md:13: missing.md",
        "{entry}"
    );
    assert!(entry["sections"].as_u64().unwrap() >= 6, "{entry}");
    assert!(entry["bytes"].as_u64().unwrap() > 10_000, "{entry}");
    assert!(entry["duration_ms"].is_u64(), "{entry}");
    assert!(out.stderr.contains("1 broken links"), "{}", out.stderr);
    let site = root.path().join(".copper/web/book");
    let read = |path: &str| {
        std::fs::read_to_string(site.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
    };
    let start = read("guide/start.html");
    for expected in [
        "<li class=\"part\"><span class=\"part-title\">User guide</span>",
        "href=\"../guide/start.html\" aria-current=\"page\">Getting started</a>",
        "rel=\"prev\" href=\"../intro.html\">← Introduction</a>",
        "rel=\"next\" href=\"../guide/install.html\">Installing →</a>",
        "<a href=\"#first\">First</a>",
        "<h2 id=\"second\">Second</h2>",
        "href=\"install.html#from-debian\"",
        // Highlighted at build time: the keyword in a span of its scope.
        "<pre class=\"sm-hl-root\"><code class=\"language-rust\">",
        "<span class=\"sm-hl-s-keyword-other-fn-rust\"><span>fn</span></span>",
        // The inputs: the title, the canonical address, the theme's head.
        ">The Airship Book</a>",
        "<link rel=\"canonical\" href=\"https://example.org/book/guide/start.html\">",
        "<meta name=\"theme-test\" content=\"themed\">",
        "<link rel=\"stylesheet\" href=\"../_site/style.css\">",
        "<input type=\"search\" id=\"search\"",
    ] {
        assert!(start.contains(expected), "{expected} not in {start}");
    }
    let install = read("guide/install.html");
    assert!(
        install.contains("kept")
            && !install.contains("use std::io")
            && !install.contains("let hidden"),
        "the anchor's lines, without rustdoc's hidden one: {install}"
    );
    assert!(
        !install.contains("ANCHOR") && !install.contains("{{#"),
        "{install}"
    );
    assert!(
        install.contains("class=\"markdown-alert-note\""),
        "{install}"
    );
    let intro = read("intro.html");
    assert!(
        intro.contains("<img src=\"img/ferris.png\" alt=\"Ferris the crab\""),
        "{intro}"
    );
    assert_eq!(
        std::fs::read(site.join("img/ferris.png")).unwrap(),
        std::fs::read(root.path().join(".copper/fetch/book/src/img/ferris.png")).unwrap()
    );
    let order: Vec<usize> = [
        "intro.html\"",
        "guide/start.html\"",
        "guide/install.html\"",
        "guide/airships.html\"",
    ]
    .iter()
    .map(|href| {
        intro
            .find(href)
            .unwrap_or_else(|| panic!("{href} in {intro}"))
    })
    .collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "the summary's order: {intro}"
    );
    // The search index: a script, so that it loads from file:// too.
    let index = read("_site/searchindex.js");
    let text: String = serde_json::from_str(
        index
            .strip_prefix("window.copperSearchIndex=JSON.parse(")
            .and_then(|s| s.trim_end().strip_suffix(");"))
            .unwrap(),
    )
    .unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let docs = json["docs"].as_array().unwrap();
    let zeppelin = json["terms"]["zeppelin"].as_array().unwrap();
    assert_eq!(zeppelin.len(), 2, "one section holds it: {zeppelin:?}");
    let doc = &docs[zeppelin[0].as_u64().unwrap() as usize];
    assert_eq!(doc[0], "guide/airships.html#airships", "{doc}");
    assert!(read("_site/search.js").contains("copperSearchIndex"));
    assert!(read("_site/highlight.css").contains(".sm-hl-root"));
    // The theme's files replace and join the defaults.
    assert_eq!(read("_site/style.css"), "body{max-width:40rem}\n");
    assert_eq!(read("_site/logo.svg"), "<svg/>");
    assert!(!site.join("_site/head.html").exists());
    let sitemap = read("sitemap.xml");
    assert!(
        sitemap.contains("<loc>https://example.org/book/guide/airships.html</loc>"),
        "{sitemap}"
    );
}

/// An include that climbs out of the fetched tree, or goes through a symbolic
/// link inside it, fails the build, naming the page and the line; nothing of
/// the other file is read.
#[test]
fn an_include_that_leaves_the_tree_fails_the_build_at_its_line() {
    let root = tempfile::tempdir().unwrap();
    let fetched = root.path().join(".copper/fetch");
    std::fs::create_dir_all(fetched.join("book/guide")).unwrap();
    std::fs::write(fetched.join("secret.txt"), "not for the site").unwrap();
    std::os::unix::fs::symlink("..", fetched.join("book/linked")).unwrap();
    for (include, why) in [
        ("../../secret.txt", "leaves the tree"),
        (
            "../linked/secret.txt",
            "linked/secret.txt goes through a symbolic link",
        ),
    ] {
        std::fs::write(
            fetched.join("book/guide/bad.md"),
            format!("# Bad\n\n{{{{#include {include}}}}}\n"),
        )
        .unwrap();
        let out = output(copper(root.path()).args([
            "call",
            "markdown/build",
            "--input",
            r#"{"path": "/fetch/book", "out": "/web/book"}"#,
        ]));
        out.assert_exit(1);
        let expected = format!("guide/bad.md:3: {{{{#include {include}}}}}: {why}");
        assert!(out.stderr.contains(&expected), "{expected}: {}", out.stderr);
        assert!(
            !out.stdout.contains("not for the site") && !out.stderr.contains("not for the site")
        );
    }
}
