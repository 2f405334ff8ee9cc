//! A real SMTP server for tests: Debian's python3-aiosmtpd on a free loopback port, run by
//! `tests/fixtures/smtp_sink.py` (STARTTLS with a test CA minted by openssl, AUTH, refusals
//! on demand). Delivered messages are read back from its mail directory.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const PYTHON: &str = "/usr/bin/python3";

pub struct SmtpServer {
    pub dir: tempfile::TempDir,
    pub port: u16,
    /// The test CA that signed the server's certificate (for STARTTLS).
    pub ca: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
}

/// What the server offers and demands.
#[derive(Default, Clone)]
pub struct SmtpOptions {
    pub starttls: bool,
    /// `user:password` for AUTH PLAIN/LOGIN.
    pub auth: Option<String>,
    /// `user:token` for AUTH XOAUTH2.
    pub xoauth2: Option<String>,
    /// Answer every RCPT TO with this reply (`"550 5.1.1 no such user"`).
    pub refuse_rcpt: Option<&'static str>,
    /// Never answer the first DATA.
    pub stall_first_data: bool,
    /// Once this many messages were accepted, answer the next RCPT TO with a sending-rate
    /// 4xx (`451 4.7.0 Sending rate limit exceeded`), once.
    pub quota_after: Option<u32>,
}

impl SmtpOptions {
    /// STARTTLS required and AUTH as `pinwarden` / `s3cret` (see `password_file`), as a
    /// real relay would.
    pub fn secure() -> SmtpOptions {
        SmtpOptions {
            starttls: true,
            auth: Some("pinwarden:s3cret".into()),
            ..SmtpOptions::default()
        }
    }
}

/// Writes the password of `SmtpOptions::secure` to `dir/smtp-password`, mode 0600.
pub fn password_file(dir: &std::path::Path) -> PathBuf {
    let secret = dir.join("smtp-password");
    super::write_secret(&secret, "s3cret\n");
    secret
}

/// The text between `key=[` and `]` in a delivered message (the tests' templates write
/// what they want read back that way).
pub fn field(message: &str, key: &str) -> String {
    let start = message
        .find(&format!("{key}=["))
        .unwrap_or_else(|| panic!("no {key} in {message}"))
        + key.len()
        + 2;
    let end = message[start..].find(']').unwrap() + start;
    message[start..end].to_string()
}

/// The envelope recipient the server recorded for a delivered message.
pub fn envelope_to(message: &str) -> &str {
    message
        .lines()
        .find_map(|l| l.strip_prefix("X-Envelope-To: "))
        .unwrap_or("")
}

impl SmtpServer {
    pub fn start(options: SmtpOptions) -> SmtpServer {
        let check = Command::new(PYTHON)
            .args(["-c", "import aiosmtpd"])
            .output();
        assert!(
            check.map(|o| o.status.success()).unwrap_or(false),
            "the SMTP tests need aiosmtpd: install the Debian package python3-aiosmtpd"
        );
        let dir = tempfile::tempdir().unwrap();
        let ca = super::mosquitto::make_certificates(dir.path());
        let mut args = vec![
            "--maildir".to_string(),
            dir.path().join("mail").display().to_string(),
        ];
        if options.starttls {
            for (flag, file) in [("--cert", "server.crt"), ("--key", "server.key")] {
                args.push(flag.into());
                args.push(dir.path().join(file).display().to_string());
            }
        }
        for (flag, value) in [("--auth", &options.auth), ("--xoauth2", &options.xoauth2)] {
            if let Some(v) = value {
                args.extend([flag.to_string(), v.clone()]);
            }
        }
        if let Some(reply) = options.refuse_rcpt {
            args.extend(["--refuse-rcpt".to_string(), reply.to_string()]);
        }
        if options.stall_first_data {
            args.push("--stall-first-data".into());
        }
        if let Some(n) = options.quota_after {
            args.extend(["--quota-after".to_string(), n.to_string()]);
        }
        let mut server = SmtpServer {
            dir,
            port: 0,
            ca,
            args,
            child: None,
        };
        // A port below the ephemeral range; another one if a rare race lost it.
        for _ in 0..5 {
            server.port = super::mosquitto::free_port();
            if server.launch() {
                return server;
            }
        }
        panic!("the SMTP test server did not start: {}", server.log());
    }

    /// Starts the server on `self.port`; false if it exited before saying it is ready.
    fn launch(&mut self) -> bool {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/smtp_sink.py");
        let log = std::fs::File::create(self.dir.path().join("smtp.log")).unwrap();
        let mut child = Command::new(PYTHON)
            .arg(script)
            .args(["--port", &self.port.to_string()])
            .args(&self.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start the SMTP test server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        if line.trim() != "ready" {
            let _ = child.kill();
            let _ = child.wait();
            return false;
        }
        self.child = Some(child);
        true
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("smtp.log")).unwrap_or_default()
    }

    /// The SMTP events seen so far (`RCPT …`, `AUTH …`, `DATA n`, `RSET`).
    pub fn events(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("mail/events.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Every delivered message, oldest first (with `X-Envelope-*`, `X-TLS`, `X-Auth` lines
    /// the server prepends).
    pub fn messages(&self) -> Vec<String> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(self.dir.path().join("mail"))
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        names.retain(|p| p.extension().is_some_and(|e| e == "eml"));
        names.sort();
        names
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect()
    }

    /// Waits until at least `n` messages were delivered; returns them.
    pub fn wait_messages(&self, n: usize, within: Duration) -> Vec<String> {
        super::wait_until(within, || {
            let messages = self.messages();
            match messages.len() >= n {
                true => Ok(messages),
                false => Err(format!(
                    "{} of {n} messages delivered; events {:?}\n{}",
                    messages.len(),
                    self.events(),
                    self.log()
                )),
            }
        })
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts again on the same port and mail directory.
    pub fn restart(&mut self) {
        self.stop();
        assert!(self.launch(), "SMTP test server restart: {}", self.log());
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.stop();
    }
}
