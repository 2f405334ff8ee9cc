#![allow(dead_code)]
//! (Included by the web tests with `#[path]`, beside `mod common`.)
//! The self-service page's test peers: a daemon with `[http]`, `[web]`, a terminal and mail
//! to a real aiosmtpd, the sign-in mail read back, and a headless Debian chromium driven
//! through chromedriver (WebDriver, fantoccini) from a plain `#[test]`.

use crate::common::smtp::{password_file, SmtpOptions, SmtpServer};
use crate::common::{Daemon, DEFAULT_TCP, HTTP};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const WITHIN: Duration = Duration::from_secs(30);
pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A daemon serving the page, mailing through `server` (`mail_extra`: more `[mail]` lines,
/// then any further blocks),
/// with alice (a PIN, an address).
pub fn start(server: &SmtpServer, faked: bool, mail_extra: &str) -> Daemon {
    let d = Daemon::start_prepared(faked, |dir| {
        let secret = password_file(dir);
        (
            "\n[policy]\nmin_length = 6\nuser_can_change = true\n".to_string(),
            format!(
                "{DEFAULT_TCP}{HTTP}\n[web]\nlink_lifetime = \"30m\"\n\
                 [smtp]\nhost = \"127.0.0.1\"\nport = {}\nca_file = \"{}\"\n\
                 username = \"pinwarden\"\npassword_file = \"{}\"\n\
                 from = \"PIN desk <pins@example.org>\"\ntimeout = \"5s\"\n\
                 \n[mail]\ncustomer_name = \"ACME\"\n{mail_extra}\n",
                server.port,
                server.ca.display(),
                secret.display(),
            ),
        )
    });
    d.cli_ok(
        &[
            "user",
            "add",
            "alice",
            "--group",
            "staff",
            "--name",
            "Alice Doe",
            "--email",
            "alice@example.org",
            "--pin-stdin",
        ],
        Some("739146"),
    );
    d
}

pub fn smtp() -> SmtpServer {
    SmtpServer::start(SmtpOptions::secure())
}

/// The `n`th sign-in mail (1-based): its link and its code.
pub fn sign_in_mail(server: &SmtpServer, n: usize) -> (String, String) {
    let (link, code, mail) = link_mail(server, "sign-in link", n);
    assert!(
        mail.contains("30 minutes"),
        "the mail states the lifetime: {mail}"
    );
    (link, code)
}

/// The `n`th mail whose text contains `marker`: its link, its code and the whole mail.
pub fn link_mail(server: &SmtpServer, marker: &str, n: usize) -> (String, String, String) {
    let mail = crate::common::wait_until(WITHIN, || {
        let found: Vec<String> = server
            .messages()
            .into_iter()
            .filter(|m| m.contains(marker))
            .collect();
        match found.len() >= n {
            true => Ok(found[n - 1].clone()),
            false => Err(format!(
                "{} mails with {marker:?}; events {:?}",
                found.len(),
                server.events()
            )),
        }
    });
    // The body may be quoted-printable (long lines): undo soft breaks and `=3D`.
    let mail = mail
        .replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=");
    let link = mail
        .lines()
        .map(str::trim)
        .find(|l| l.contains("/link/") || l.contains("/reveal/"))
        .unwrap_or_else(|| panic!("no link in {mail}"))
        .to_string();
    let mut lines = mail.lines().map(str::trim);
    lines.find(|l| l.contains("for this code"));
    let code = lines
        .find(|l| !l.is_empty())
        .unwrap_or_else(|| panic!("no code in {mail}"))
        .to_string();
    (link, code, mail)
}

pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(20))
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap()
}

/// Where screenshots go: the directory `PINWARDEN_SCREENSHOTS` names (the README's are
/// made with `PINWARDEN_SCREENSHOTS=docs/screenshots cargo test --test web_page`), else a
/// directory under the build's temp dir, so a test run never changes checked-in files.
/// Either way every screenshot is taken, so a page that cannot be drawn fails the test.
pub fn screenshots() -> PathBuf {
    let dir = match std::env::var_os("PINWARDEN_SCREENSHOTS") {
        Some(dir) => Path::new(env!("CARGO_MANIFEST_DIR")).join(dir),
        None => Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots"),
    };
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A headless chromium under its own chromedriver; both end with this value.
pub struct Browser {
    pub rt: tokio::runtime::Runtime,
    pub client: Option<fantoccini::Client>,
    driver: Child,
}

impl Browser {
    pub fn start() -> Browser {
        for (path, what) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromedriver")] {
            assert!(
                Path::new(path).exists(),
                "{path} ({what}) is missing: install the Debian packages chromium chromium-driver"
            );
        }
        let port = crate::common::mosquitto::free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let url = format!("http://127.0.0.1:{port}");
        let plain = reqwest::blocking::Client::new();
        crate::common::wait_until(WITHIN, || {
            plain
                .get(format!("{url}/status"))
                .send()
                .map_err(|e| e.to_string())
                .and_then(|r| r.text().map_err(|e| e.to_string()))
                .and_then(|t| match t.contains("\"ready\":true") {
                    true => Ok(()),
                    false => Err(t),
                })
        });
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=900,900"],
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = rt
            .block_on(
                fantoccini::ClientBuilder::new(connector)
                    .capabilities(caps)
                    .connect(&url),
            )
            .expect("a chromium session through chromedriver");
        Browser {
            rt,
            client: Some(client),
            driver,
        }
    }

    fn c(&self) -> &fantoccini::Client {
        self.client.as_ref().unwrap()
    }

    pub fn goto(&self, url: &str) {
        self.rt.block_on(self.c().goto(url)).unwrap();
    }

    pub fn source(&self) -> String {
        self.rt.block_on(self.c().source()).unwrap()
    }

    pub fn fill(&self, css: &str, text: &str) {
        self.rt.block_on(async {
            let e = self.c().find(fantoccini::Locator::Css(css)).await.unwrap();
            e.send_keys(text).await.unwrap();
        });
    }

    pub fn click(&self, css: &str) {
        self.rt.block_on(async {
            let e = self.c().find(fantoccini::Locator::Css(css)).await.unwrap();
            e.click().await.unwrap();
        });
    }

    pub fn text(&self, css: &str) -> String {
        self.rt.block_on(async {
            let e = self.c().find(fantoccini::Locator::Css(css)).await.unwrap();
            e.text().await.unwrap()
        })
    }

    /// Waits until the page's source contains `needle`; returns the source.
    pub fn wait_text(&self, needle: &str) -> String {
        crate::common::wait_until(WITHIN, || {
            let s = self.source();
            match s.contains(needle) {
                true => Ok(s),
                false => Err(format!("no {needle:?} in {s}")),
            }
        })
    }

    pub fn screenshot(&self, name: &str) {
        let png = self.rt.block_on(self.c().screenshot()).unwrap();
        std::fs::write(screenshots().join(format!("{name}.png")), png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(c) = self.client.take() {
            let _ = self.rt.block_on(c.close());
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
