//! The site `markdown/build` writes, read in Debian's headless Chromium: from
//! `file://` (no server at all) and from a static file server, light, dark and
//! phone-sized, with screenshots for people to look at (docs/website.md).

use crate::support::browser::Browser;
use crate::support::*;
use crate::website::write_book;
use std::path::{Path, PathBuf};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

/// The book of the website tests, built by the real component; its folder.
fn built_book(root: &Path) -> PathBuf {
    write_book(&root.join(".copper/fetch/book"));
    let out = output(copper(root).args([
        "call",
        "markdown/build",
        "--input",
        r#"{"path": "/fetch/book/src", "out": "/web/book", "title": "The Airship Book"}"#,
    ]));
    out.assert_success();
    root.join(".copper/web/book")
}

/// Types `query` into the search box of the open page and waits for a result
/// linking to `href`; returns the results' text.
async fn search(browser: &Browser, query: &str, href: &str) -> String {
    browser.click("#search").await;
    let input = browser
        .client
        .find(fantoccini::Locator::Css("#search"))
        .await
        .expect("the search box");
    input.send_keys(query).await.expect("typed");
    browser
        .wait_until(
            &format!("[...document.querySelectorAll('#search-results a')].some(a => a.getAttribute('href').endsWith('{href}'))"),
            WAIT,
            &format!("a result for {query} linking to {href}"),
        )
        .await;
    browser.text("#search-results").await
}

/// From `file://`: the sidebar with the page marked, highlighted code coloured
/// by the stylesheet, and the search box finding a word that only another page
/// holds, then going there.
#[tokio::test(flavor = "multi_thread")]
async fn from_file_a_page_has_its_sidebar_and_search_finds_another_page() {
    let root = tempfile::tempdir().unwrap();
    let site = built_book(root.path());
    let browser = Browser::start(1280, 860).await;
    let page = site.join("guide/start.html");
    browser.open(&format!("file://{}", page.display())).await;
    browser
        .wait_until(
            "document.querySelector('nav.sidebar a[aria-current=page]')",
            WAIT,
            "the sidebar",
        )
        .await;
    let marked = browser.text("nav.sidebar a[aria-current=page]").await;
    assert_eq!(marked, "Getting started");
    let sidebar = browser.text("nav.sidebar").await;
    for title in ["Introduction", "USER GUIDE", "Installing", "Airships"] {
        assert!(sidebar.contains(title), "{title} in {sidebar}");
    }
    // The stylesheet is applied: the sidebar sits beside the text, and the
    // keyword `fn` has the theme's colour, not the text's.
    let beside = browser
        .eval("getComputedStyle(document.querySelector('.layout')).display")
        .await;
    assert_eq!(beside, "flex");
    let colours = browser
        .eval("[getComputedStyle(document.querySelector('[class|=\"sm-hl-s-keyword\"] span')).color, getComputedStyle(document.querySelector('main p')).color]")
        .await;
    assert_ne!(colours[0], colours[1], "{colours}");
    browser.screenshot("site-page").await;

    let results = search(&browser, "zeppel", "guide/airships.html#airships").await;
    assert!(results.contains("Airships"), "{results}");
    assert!(results.contains("zeppelin floats"), "the teaser: {results}");
    browser.screenshot("site-search").await;
    browser.click("#search-results a").await;
    browser
        .wait_until(
            "location.pathname.endsWith('/guide/airships.html')",
            WAIT,
            "the airships page",
        )
        .await;
    assert_eq!(browser.text("main h1").await, "Airships");
    // Every word must be found: one that no page holds finds nothing.
    let input = browser
        .client
        .find(fantoccini::Locator::Css("#search"))
        .await
        .unwrap();
    input.send_keys("zeppelin nowhereword").await.unwrap();
    browser
        .wait_until(
            "document.querySelector('#search-results .none')",
            WAIT,
            "nothing found",
        )
        .await;
    browser.assert_no_console_error().await;
    browser.close().await;
}

/// From a static file server, as a site is published: the same search works,
/// and a link given as `?search=` opens with its results.
#[tokio::test(flavor = "multi_thread")]
async fn from_a_static_server_search_works_and_a_search_link_opens_with_results() {
    let root = tempfile::tempdir().unwrap();
    let site = built_book(root.path());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let app = axum::Router::new().fallback_service(tower_http::services::ServeDir::new(site));
        axum::serve(listener, app).await.unwrap();
    });
    let browser = Browser::start(1280, 860).await;
    browser
        .open(&format!("http://{address}/intro.html?search=floats"))
        .await;
    browser
        .wait_until(
            "[...document.querySelectorAll('#search-results a')].some(a => a.href.endsWith('/guide/airships.html#airships'))",
            WAIT,
            "the results of ?search=floats",
        )
        .await;
    // The image is served beside the page and drawn.
    let drawn = browser
        .eval("document.querySelector('main img').naturalWidth")
        .await;
    assert!(drawn.as_u64().unwrap() > 0, "{drawn}");
    browser.assert_no_console_error().await;
    browser.close().await;
    server.abort();
}

/// Dark when the system is, and readable on a phone: the sidebar goes above the
/// text, and the page does not scroll sideways.
#[tokio::test(flavor = "multi_thread")]
async fn dark_and_phone_sized_pages_are_readable() {
    let root = tempfile::tempdir().unwrap();
    let site = built_book(root.path());
    let page = format!("file://{}", site.join("guide/start.html").display());

    let dark = Browser::start_with(1280, 860, &["--force-dark-mode"]).await;
    dark.open(&page).await;
    let background = dark
        .eval("getComputedStyle(document.body).backgroundColor")
        .await;
    assert_eq!(background, "rgb(24, 23, 21)", "the dark theme's background");
    dark.screenshot("site-dark").await;
    dark.close().await;

    let phone = Browser::start(390, 844).await;
    phone.open(&page).await;
    let layout = phone
        .eval("[getComputedStyle(document.querySelector('.layout')).display, document.documentElement.scrollWidth <= window.innerWidth]")
        .await;
    assert_eq!(layout, serde_json::json!(["block", true]));
    phone.screenshot("site-phone").await;
    phone.close().await;
}
