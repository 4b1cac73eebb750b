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
