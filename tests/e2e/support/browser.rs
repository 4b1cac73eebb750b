//! A real headless browser: Debian's Chromium driven through its chromedriver
//! (WebDriver) by fantoccini, with the page's console messages read back and
//! screenshots written for people to look at.

use super::{Process, free_port, repo_root, wait_for_port};
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Where the tests' screenshots go (docs/console.md shows them).
pub fn screenshots_dir() -> PathBuf {
    let dir = repo_root().join("target/screenshots");
    std::fs::create_dir_all(&dir).expect("the screenshots folder");
    dir
}

/// chromedriver on a free loopback port and one Chromium session over it.
pub struct Browser {
    pub client: Client,
    _driver: Process,
}

fn found(candidates: &[&str], package: &str) -> String {
    candidates
        .iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or_else(|| panic!("{package} is installed (./test.sh installs Debian's package)"))
        .to_string()
}

impl Browser {
    /// Starts chromedriver and a headless Chromium `width`×`height`.
    pub async fn start(width: u32, height: u32) -> Self {
        Self::start_with(width, height, &[]).await
    }

    /// As [`Browser::start`], with more of Chromium's switches (`--force-dark-mode`).
    pub async fn start_with(width: u32, height: u32, switches: &[&str]) -> Self {
        let chromium = found(
            &["/usr/bin/chromium", "/usr/lib/chromium/chromium"],
            "chromium",
        );
        let driver = found(
            &["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"],
            "chromium-driver",
        );
        let port = free_port();
        let process = Process::spawn(
            Command::new(driver).arg(format!("--port={port}")),
            "chromedriver",
        );
        wait_for_port(port, "chromedriver");
        let profile = tempfile::tempdir().unwrap().keep();
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--no-first-run", "--disable-extensions", "--disable-background-networking",
                    format!("--user-data-dir={}", profile.display()),
                    format!("--window-size={width},{height}"),
                ],
            },
            "goog:loggingPrefs": { "browser": "ALL" },
        });
        let mut capabilities = capabilities;
        if let Some(args) = capabilities["goog:chromeOptions"]["args"].as_array_mut() {
            args.extend(switches.iter().map(|s| json!(s)));
        }
        let Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a Chromium session");
        Self {
            client,
            _driver: process,
        }
    }

    /// Opens `url`.
    pub async fn open(&self, url: &str) {
        self.client.goto(url).await.expect("the page opens");
    }

    /// What the page wrote to its console since the last call (`level: message`).
    pub async fn console(&self) -> Vec<(String, String)> {
        let logs = self
            .client
            .issue_cmd(BrowserLog)
            .await
            .expect("the browser's log");
        logs.as_array()
            .map(|entries| {
                entries
                    .iter()
                    .map(|e| {
                        (
                            e["level"].as_str().unwrap_or("").to_string(),
                            e["message"].as_str().unwrap_or("").to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Fails with the console's errors and warnings, if it has any.
    pub async fn assert_no_console_error(&self) {
        let bad: Vec<_> = self
            .console()
            .await
            .into_iter()
            .filter(|(level, _)| level == "SEVERE" || level == "WARNING")
            .collect();
        assert!(bad.is_empty(), "the page's console: {bad:#?}");
    }

    /// Waits (at most `bound`) until `script` returns true; panics with `what` otherwise.
    pub async fn wait_until(&self, script: &str, bound: Duration, what: &str) {
        let deadline = Instant::now() + bound;
        loop {
            let value = self
                .client
                .execute(&format!("return !!({script});"), vec![])
                .await
                .expect("the script runs");
            if value == Value::Bool(true) {
                return;
            }
            if Instant::now() > deadline {
                let text = self.text("body").await;
                panic!("{what}: not so within {bound:?}; the page reads:\n{text}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// What `script` returns.
    pub async fn eval(&self, script: &str) -> Value {
        self.client
            .execute(&format!("return ({script});"), vec![])
            .await
            .expect("the script runs")
    }

    /// The text of the first element `css` finds.
    pub async fn text(&self, css: &str) -> String {
        match self.client.find(Locator::Css(css)).await {
            Ok(element) => element.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Clicks the first element `css` finds, once there is one.
    pub async fn click(&self, css: &str) {
        let element = self
            .client
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css} to click: {e}"));
        element.click().await.expect("the click");
    }

    /// Writes a screenshot to `target/screenshots/<name>.png`; returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("a screenshot");
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        let path = screenshots_dir().join(format!("{name}.png"));
        std::fs::write(&path, png).expect("the screenshot written");
        path
    }

    /// Ends the session (and the browser).
    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}

/// chromedriver's own command for the browser's console: `POST /session/{id}/se/log`.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (axum::http::Method, Option<String>) {
        (
            axum::http::Method::POST,
            Some(json!({"type": "browser"}).to_string()),
        )
    }
}
