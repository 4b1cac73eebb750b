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

/// A small mdBook-style book built by the real component: the tree and order
/// of its SUMMARY.md in every page's sidebar, previous and next, and its broken
/// link reported in the results and the log, with its page and line.
#[test]
fn a_book_with_a_summary_gets_its_sidebar_pager_and_broken_links() {
    let root = tempfile::tempdir().unwrap();
    let book = root.path().join(".copper/fetch/book");
    std::fs::create_dir_all(book.join("guide")).unwrap();
    let write = |path: &str, text: &str| std::fs::write(book.join(path), text).unwrap();
    write(
        "SUMMARY.md",
        "# Summary\n\n[Introduction](intro.md)\n\n# User guide\n\n- [Getting started](guide/start.md)\n  - [Installing](guide/install.md)\n",
    );
    write(
        "intro.md",
        "# Introduction\n\nRead [the guide](guide/start.md).\n",
    );
    write(
        "guide/start.md",
        "# Getting started\n\n## First\n\n## Second\n\nThen [install](install.md#from-debian), not [this](missing.md).\n",
    );
    write(
        "guide/install.md",
        "# Installing\n\n## From Debian\n\n> [!NOTE]\n> Root is needed.\n\n```rust\n{{#include ../code/main.rs:body}}\n```\n",
    );
    std::fs::create_dir_all(book.join("code")).unwrap();
    write(
        "code/main.rs",
        "use std::io;\n// ANCHOR: body\nfn main() {}\n// ANCHOR_END: body\n",
    );
    let out = output(copper(root.path()).args([
        "call",
        "markdown/build",
        "--input",
        r#"{"path": "/fetch/book", "out": "/web/book"}"#,
    ]));
    out.assert_success();
    let finish: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let entry = &finish[0];
    assert_eq!(entry["pages"], 3, "{entry}");
    assert_eq!(entry["broken_links"], 1, "{entry}");
    assert_eq!(
        entry["broken"][0], "guide/start.md:7: missing.md",
        "{entry}"
    );
    assert!(entry["duration_ms"].is_u64(), "{entry}");
    assert!(out.stderr.contains("1 broken links"), "{}", out.stderr);
    let site = root.path().join(".copper/web/book");
    let start = std::fs::read_to_string(site.join("guide/start.html")).unwrap();
    for expected in [
        "<li class=\"part\">User guide",
        "href=\"../guide/start.html\" aria-current=\"page\">Getting started</a>",
        "rel=\"prev\" href=\"../intro.html\">← Introduction</a>",
        "rel=\"next\" href=\"../guide/install.html\">Installing →</a>",
        "<a href=\"#first\">First</a>",
        "<h2 id=\"second\">Second</h2>",
        "href=\"install.html#from-debian\"",
    ] {
        assert!(start.contains(expected), "{expected} not in {start}");
    }
    let install = std::fs::read_to_string(site.join("guide/install.html")).unwrap();
    assert!(
        install.contains("fn main() {}") && !install.contains("use std::io"),
        "{install}"
    );
    assert!(
        !install.contains("ANCHOR") && !install.contains("{{#include"),
        "{install}"
    );
    assert!(
        install.contains("class=\"markdown-alert-note\""),
        "{install}"
    );
    let intro = std::fs::read_to_string(site.join("intro.html")).unwrap();
    let order: Vec<usize> = ["intro.html\"", "guide/start.html\"", "guide/install.html\""]
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
}

/// An include that climbs out of the fetched tree fails the build, naming the
/// page and the line; nothing of the other file is read.
#[test]
fn an_include_that_leaves_the_tree_fails_the_build_at_its_line() {
    let root = tempfile::tempdir().unwrap();
    let fetched = root.path().join(".copper/fetch");
    std::fs::create_dir_all(fetched.join("book/guide")).unwrap();
    std::fs::write(fetched.join("secret.txt"), "not for the site").unwrap();
    std::fs::write(
        fetched.join("book/guide/bad.md"),
        "# Bad\n\n{{#include ../../secret.txt}}\n",
    )
    .unwrap();
    let out = output(copper(root.path()).args([
        "call",
        "markdown/build",
        "--input",
        r#"{"path": "/fetch/book", "out": "/web/book"}"#,
    ]));
    out.assert_exit(1);
    assert!(
        out.stderr
            .contains("guide/bad.md:3: {{#include ../../secret.txt}}: leaves the tree"),
        "{}",
        out.stderr
    );
    assert!(!out.stdout.contains("not for the site") && !out.stderr.contains("not for the site"));
}
