//! An honest watchdog (issue 14 §3): the real binary under `NOTIFY_SOCKET`, `WATCHDOG_USEC`
//! and `WATCHDOG_PID` as systemd sets them, talking to a datagram socket the test binds.
//! `WATCHDOG=1` arrives while the daemon is healthy, stops while its state directory (a
//! tmpfs) is full so the store probe fails, and resumes once space returns.

mod common;

use common::disk::{fill, Tmpfs};
use common::{config_text, BIN, DEFAULT_TCP, PATIENCE};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// systemd's `WatchdogSec=1s`: the daemon pings every 0.5 s.
const WATCHDOG_USEC: &str = "1000000";

struct Notified {
    child: Child,
    messages: mpsc::Receiver<String>,
    config: std::path::PathBuf,
}

impl Notified {
    /// Starts `pinwarden run` as systemd would: `WATCHDOG_PID` is the daemon's own pid
    /// (the shell execs it).
    fn start(dir: &Path) -> Notified {
        let socket_path = dir.join("notify.sock");
        let socket = UnixDatagram::bind(&socket_path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let (tx, messages) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match socket.recv(&mut buf) {
                    Ok(n) => {
                        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                        if tx.send(text).is_err() {
                            return;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                    Err(_) => return,
                }
            }
        });
        let config = dir.join("pinwarden.toml");
        let top = "[store]\nreserve_mib = 2\n";
        std::fs::write(&config, config_text(dir, top, DEFAULT_TCP)).unwrap();
        let log = std::fs::File::create(dir.join("daemon.log")).unwrap();
        let child = Command::new("sh")
            .args(["-c", "WATCHDOG_PID=$$ exec \"$0\" run -c \"$1\""])
            .arg(BIN)
            .arg(&config)
            .env("NOTIFY_SOCKET", &socket_path)
            .env("WATCHDOG_USEC", WATCHDOG_USEC)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start pinwarden through sh");
        Notified {
            child,
            messages,
            config,
        }
    }

    /// Waits for a datagram containing `needle`.
    fn wait_for(&self, needle: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            if let Ok(m) = self.messages.recv_timeout(left) {
                if m.lines().any(|l| l == needle) {
                    return;
                }
            }
        }
        panic!("no {needle} within {within:?}");
    }

    /// Every datagram that arrives within `window`.
    fn collect(&self, window: Duration) -> Vec<String> {
        let deadline = Instant::now() + window;
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            if let Ok(m) = self.messages.recv_timeout(left) {
                seen.push(m);
            }
        }
        seen
    }

    fn status(&self) -> serde_json::Value {
        let out = Command::new(BIN)
            .arg("-c")
            .arg(&self.config)
            .args(["status", "--json"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

impl Drop for Notified {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn watchdog_pings_only_while_the_store_can_write() {
    let dir = tempfile::tempdir().unwrap();
    let _mount = Tmpfs::mount(&dir.path().join("var"), "12m");
    let mut daemon = Notified::start(dir.path());
    daemon.wait_for("READY=1", PATIENCE);
    daemon.wait_for("WATCHDOG=1", PATIENCE);
    daemon.wait_for("WATCHDOG=1", PATIENCE);

    let filler = dir.path().join("var/filler");
    fill(&filler);
    common::wait_until(PATIENCE, || {
        let status = daemon.status();
        match status["store"]["writable"] == false {
            true => Ok(()),
            false => Err(format!("store still writable: {status}")),
        }
    });
    // A ping already on its way when the probe failed may still arrive: skip one interval,
    // then six intervals without a single ping.
    daemon.collect(Duration::from_millis(600));
    let seen = daemon.collect(Duration::from_secs(3));
    assert!(
        !seen.iter().any(|m| m.contains("WATCHDOG=1")),
        "pinged while the store could not write: {seen:?}"
    );

    std::fs::remove_file(&filler).unwrap();
    daemon.wait_for("WATCHDOG=1", PATIENCE);
    assert_eq!(daemon.status()["store"]["writable"], true);

    common::signal(&daemon.child, libc::SIGTERM);
    daemon.wait_for("STOPPING=1", PATIENCE);
    let deadline = Instant::now() + PATIENCE;
    let exit = loop {
        if let Some(status) = daemon.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "{exit}");
}
