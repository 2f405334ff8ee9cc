//! The HTTP side in use during a bench: a Prometheus stand-in scraping `/metrics` every
//! second, and a person using the self-service page: Debian's aiosmtpd
//! (`tests/fixtures/smtp_sink.py`, clear text on loopback) receives the sign-in mail, the
//! person spends its link from the browser that asked for it, then reloads their signed-in
//! page (PIN validity and recent decisions: the page's heaviest read) once a second until
//! dropped.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PYTHON: &str = "/usr/bin/python3";

pub struct SmtpSink {
    pub port: u16,
    maildir: PathBuf,
    child: Child,
}

impl SmtpSink {
    pub fn start(dir: &Path) -> SmtpSink {
        let maildir = dir.join("mail");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/smtp_sink.py");
        let mut child = Command::new(PYTHON)
            .arg(script)
            .args(["--port", &port.to_string(), "--maildir"])
            .arg(&maildir)
            // It serves until its stdin closes: the pipe is held by `child` until dropped.
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the SMTP sink (Debian package python3-aiosmtpd)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(
            line.trim(),
            "ready",
            "the SMTP sink did not start (Debian package python3-aiosmtpd)"
        );
        SmtpSink {
            port,
            maildir,
            child,
        }
    }

    /// The config blocks that mail through this sink and serve the page.
    pub fn config(&self) -> String {
        format!(
            "[web]\n[smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n\
             from = \"PIN desk <pins@example.org>\"\n",
            self.port
        )
    }

    /// The first delivered mail, waited for up to a minute.
    fn first_mail(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let path = self.maildir.join("000001.eml");
            if let Ok(text) = std::fs::read_to_string(&path) {
                return text
                    .replace("=\r\n", "")
                    .replace("=\n", "")
                    .replace("=3D", "=");
            }
            assert!(Instant::now() < deadline, "no sign-in mail within a minute");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A signed-in browser (its cookies) and the page's address.
pub struct Person {
    client: reqwest::blocking::Client,
    base: String,
}

impl Person {
    /// Asks for a sign-in link for `who` and spends it from the same browser.
    pub fn sign_in(base: &str, who: &str, mail: &SmtpSink) -> Person {
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(20))
            .redirect(reqwest::redirect::Policy::none())
            .cookie_store(true)
            .build()
            .unwrap();
        let asked = client
            .post(format!("{base}/sign-in"))
            .form(&[("who", who)])
            .send()
            .unwrap();
        assert_eq!(asked.status(), 200, "sign-in request");
        let text = mail.first_mail();
        let link = text
            .lines()
            .map(str::trim)
            .find(|l| l.contains("/link/"))
            .unwrap_or_else(|| panic!("no link in the mail:\n{text}"))
            .to_string();
        let spent = client.post(&link).form(&[("code", "")]).send().unwrap();
        assert_eq!(
            spent.status(),
            303,
            "spending the link from the asking browser"
        );
        let person = Person {
            client,
            base: base.to_string(),
        };
        person.view();
        person
    }

    /// One load of the signed-in page.
    fn view(&self) -> Duration {
        let t = Instant::now();
        let page = self
            .client
            .get(format!("{}/", self.base))
            .send()
            .unwrap()
            .text()
            .unwrap();
        assert!(page.contains("Sign out"), "a signed-in page:\n{page}");
        t.elapsed()
    }
}

/// The person reloading the page once a second until dropped; each load's time kept.
pub struct Reloader {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Person>>,
}

impl Reloader {
    pub fn start(person: Person, times: Arc<Mutex<Vec<Duration>>>) -> Reloader {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut next = Instant::now();
            while !flag.load(Ordering::Relaxed) {
                if Instant::now() >= next {
                    let took = person.view();
                    times.lock().unwrap().push(took);
                    next += Duration::from_secs(1);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            person
        });
        Reloader {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops reloading and hands the person back for the next phase.
    pub fn finish(mut self) -> Person {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

/// One whole scrape: request, status, body read.
pub fn scrape(client: &reqwest::blocking::Client, url: &str) -> Duration {
    let t = Instant::now();
    let response = client.get(url).send().unwrap();
    assert_eq!(response.status(), 200);
    let body = response.text().unwrap();
    assert!(body.contains("pinwarden_decisions_total"));
    t.elapsed()
}

/// A Prometheus stand-in: one whole scrape a second until dropped.
pub struct Scraper {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Scraper {
    pub fn start(url: &str, times: Arc<Mutex<Vec<Duration>>>) -> Scraper {
        let stop = Arc::new(AtomicBool::new(false));
        let (url, flag) = (url.to_string(), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            let client = reqwest::blocking::Client::new();
            let mut next = Instant::now();
            while !flag.load(Ordering::Relaxed) {
                if Instant::now() >= next {
                    let took = scrape(&client, &url);
                    times.lock().unwrap().push(took);
                    next += Duration::from_secs(1);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        Scraper {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Scraper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}
