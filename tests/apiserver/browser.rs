//! A real browser for the game day's live page: Debian's headless Chromium
//! driven through chromium-driver (WebDriver) with fantoccini. `just test`
//! installs both when they are missing (scripts/browser.sh).
//!
//! chromedriver runs in a process group of its own, so the Chromium it
//! starts goes with it however the test ends.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use fantoccini::wd::TimeoutConfiguration;
use fantoccini::{Client, ClientBuilder, Locator};
use tokio::io::{AsyncBufReadExt, BufReader};

/// Chromium's flags that work in a container with no display, no sandbox
/// privileges and no network beyond loopback.
const CHROMIUM_ARGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1440,1000",
];

/// A browser session; the driver and its browser are killed on drop.
pub struct Browser {
    pub client: Client,
    driver_group: u32,
    _profile: tempfile::TempDir,
}

/// `name` from $PATH, or a panic saying how to install it.
fn binary(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "{name} is missing: the live page is tested in a real browser; \
                 install Debian's chromium and chromium-driver (bash scripts/browser.sh, run by `just test`)"
            )
        })
}

impl Browser {
    /// Starts chromedriver on a free port and opens a headless Chromium
    /// session with a fresh profile.
    pub async fn start() -> Self {
        let chromium = binary("chromium");
        let driver = binary("chromedriver");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut child = tokio::process::Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        let driver_group = child.id().expect("chromedriver has a pid");
        // chromedriver says when it listens; read that rather than poll.
        let stdout = child.stdout.take().expect("chromedriver's stdout");
        let mut lines = BufReader::new(stdout).lines();
        let started = async {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains("started successfully") {
                    return true;
                }
            }
            false
        };
        let ok = tokio::time::timeout(Duration::from_secs(30), started)
            .await
            .unwrap_or(false);
        assert!(ok, "chromedriver did not start on port {port}");
        // Keep draining its output so it never blocks on a full pipe.
        tokio::spawn(async move {
            while let Ok(Some(_)) = lines.next_line().await {}
            drop(child);
        });
        let profile = tempfile::tempdir().expect("a profile folder");
        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|a| a.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({"binary": chromium, "args": args}),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .unwrap_or_else(|e| panic!("a Chromium session through chromedriver: {e}"));
        client
            .update_timeouts(TimeoutConfiguration::new(
                Some(Duration::from_secs(90)),
                Some(Duration::from_secs(30)),
                None,
            ))
            .await
            .expect("timeouts set");
        Self {
            client,
            driver_group,
            _profile: profile,
        }
    }

    /// How many elements match `css` on the current page.
    pub async fn count(&self, css: &str) -> usize {
        self.client
            .find_all(Locator::Css(css))
            .await
            .map(|v| v.len())
            .unwrap_or(0)
    }

    /// Waits (a MutationObserver in the page, no polling) until an element
    /// matching `css` contains `text`; returns that element's text, or
    /// panics with the page's text after the script timeout.
    pub async fn until_text(&self, css: &str, text: &str) -> String {
        const SCRIPT: &str = r#"
            const [css, text, done] = arguments;
            const hit = () => [...document.querySelectorAll(css)].find((e) => e.textContent.includes(text));
            const now = hit();
            if (now) { done(now.textContent); return; }
            const observer = new MutationObserver(() => {
              const e = hit();
              if (e) { observer.disconnect(); done(e.textContent); }
            });
            observer.observe(document.body, { childList: true, subtree: true, characterData: true });
        "#;
        match self
            .client
            .execute_async(SCRIPT, vec![css.into(), text.into()])
            .await
        {
            Ok(serde_json::Value::String(found)) => found,
            other => {
                let page = self
                    .client
                    .find(Locator::Css("body"))
                    .await
                    .ok()
                    .map(|b| async move { b.text().await.unwrap_or_default() });
                let page = match page {
                    Some(f) => f.await,
                    None => String::new(),
                };
                panic!("no `{css}` with `{text}` on the page ({other:?}); the page says:\n{page}")
            }
        }
    }

    /// Ends the session (Chromium exits) and stops the driver.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The driver's process group: chromedriver and every Chromium
        // process it started.
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver_group)])
            .stderr(Stdio::null())
            .status();
    }
}
