//! Test fixture: runs the real `pinwarden` binary on a temp dir and a free port, talks to it
//! over TCP and through the CLI, and stops it by signal.
#![allow(dead_code)]

pub mod cups;
pub mod disk;
pub mod mosquitto;
pub mod pty;
pub mod smtp;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_pinwarden");

/// How long a test waits for something the daemon does in the background. Generous: on a
/// loaded two-core machine a step that takes milliseconds can take seconds.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Polls `poll` every 50 ms until it gives `Ok`, and returns that value. `Err` describes
/// what has been seen so far; the last one is the panic message if `within` passes first.
/// Wait for a condition through here rather than sleep-then-assert. (The fixtures that
/// benches also include, mosquitto.rs and slapd.rs, keep loops of their own.)
pub fn wait_until<T>(within: Duration, poll: impl FnMut() -> Result<T, String>) -> T {
    poll_until(within, POLL, poll)
        .unwrap_or_else(|last| panic!("timed out after {within:?}: {last}"))
}

const POLL: Duration = Duration::from_millis(50);

/// Writes a secret file (a password, a token) the way the daemon insists on: created with
/// mode 0600 whatever the test's umask, so no other user may ever read it.
pub fn write_secret(path: &Path, text: &str) {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

/// `wait_until` without the panic, polling `every` (more than 50 ms where a poll costs
/// something, such as a failed attempt): `Err` with the last description once `within`
/// passed.
pub fn poll_until<T>(
    within: Duration,
    every: Duration,
    mut poll: impl FnMut() -> Result<T, String>,
) -> Result<T, String> {
    let deadline = Instant::now() + within;
    loop {
        match poll() {
            Ok(value) => return Ok(value),
            Err(last) if Instant::now() >= deadline => return Err(last),
            Err(_) => std::thread::sleep(every),
        }
    }
}

pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    child: Option<Child>,
    pub tcp: SocketAddr,
    runs: usize,
    /// With a fake clock: libfaketime's timestamp file (an offset such as `+25h`), re-read
    /// by the daemon at every clock read.
    clock: Option<PathBuf>,
}

/// libfaketime (Debian `faketime`), the multi-threaded variant tokio needs.
const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";

/// A config for tests: port 0, the given extra TOML appended (sections only).
pub fn config_text(dir: &Path, extra_top: &str, extra: &str) -> String {
    format!(
        r#"state_dir = "{state}"
{extra_top}
[log]
level = "debug"

[security]
hash_workers = 2

[[device]]
id = "lobby-printer"
kind = "printer"
allow_groups = ["staff", "guests"]

[[device]]
id = "front-door"
kind = "door"
allow_groups = ["staff"]
{extra}
"#,
        state = dir.join("var").display()
    )
}

/// An `[http]` block on a free loopback port, for `start_with`'s `extra`.
pub const HTTP: &str = r#"
[http]
listen = "127.0.0.1:0"
"#;

pub const DEFAULT_TCP: &str = r#"
[[tcp]]
listen = "127.0.0.1:0"
line_timeout = "1s"
# Every test terminal connects from 127.0.0.1: many terminals, one source.
max_per_source = 64
[[tcp.terminal]]
address = "127.0.0.1"
device = "lobby-printer"
"#;

impl Daemon {
    pub fn start() -> Daemon {
        Daemon::start_with("", DEFAULT_TCP)
    }

    /// `extra` is appended to the config; it must include a `[[tcp]]` block.
    pub fn start_with(extra_top: &str, extra: &str) -> Daemon {
        Daemon::start_edited(|text| {
            text.replace("{EXTRA_TOP}", extra_top)
                .replace("{EXTRA}", extra)
        })
    }

    /// Starts on the test config after `edit` rewrites its text (it holds the placeholders
    /// `{EXTRA_TOP}` and `{EXTRA}`).
    pub fn start_edited(edit: impl Fn(String) -> String) -> Daemon {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("pinwarden.toml");
        let text = edit(config_text(dir.path(), "{EXTRA_TOP}", "{EXTRA}"));
        std::fs::write(
            &config,
            text.replace("{EXTRA_TOP}", "").replace("{EXTRA}", ""),
        )
        .unwrap();
        let mut d = Daemon {
            dir,
            config,
            child: None,
            tcp: "0.0.0.0:0".parse().unwrap(),
            runs: 0,
            clock: None,
        };
        d.launch();
        d
    }

    /// Starts on the test config with the `(extra_top, extra)` that `prepare` returns after
    /// writing what they refer to (secret files, templates) into the daemon's directory.
    /// With `faked`, under a fake wall clock (libfaketime) that starts at the real time
    /// and `set_clock` moves; monotonic time is left alone, as after a real clock change.
    pub fn start_prepared(faked: bool, prepare: impl FnOnce(&Path) -> (String, String)) -> Daemon {
        let dir = tempfile::tempdir().expect("temp dir");
        let (extra_top, extra) = prepare(dir.path());
        let config = dir.path().join("pinwarden.toml");
        std::fs::write(&config, config_text(dir.path(), &extra_top, &extra)).unwrap();
        let clock = faked.then(|| {
            assert!(
                Path::new(LIBFAKETIME).exists(),
                "{LIBFAKETIME} is missing: install the Debian package faketime"
            );
            let clock = dir.path().join("faketime");
            std::fs::write(&clock, "+0\n").unwrap();
            clock
        });
        let mut d = Daemon {
            dir,
            config,
            child: None,
            tcp: "0.0.0.0:0".parse().unwrap(),
            runs: 0,
            clock,
        };
        d.launch();
        d
    }

    /// Moves the fake clock to `offset` from the real time (`+25h`, `+8d`, `-1d`).
    pub fn set_clock(&self, offset: &str) {
        let clock = self.clock.as_ref().expect("started with a fake clock");
        let tmp = clock.with_extension("new");
        std::fs::write(&tmp, format!("{offset}\n")).unwrap();
        std::fs::rename(&tmp, clock).unwrap();
    }

    pub fn log_path(&self, run: usize) -> PathBuf {
        self.dir.path().join(format!("daemon-{run}.log"))
    }

    fn launch(&mut self) {
        self.runs += 1;
        let log = std::fs::File::create(self.log_path(self.runs)).unwrap();
        let mut command = Command::new(BIN);
        command
            .args(["run", "-c"])
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        if let Some(clock) = &self.clock {
            command
                .env("LD_PRELOAD", LIBFAKETIME)
                .env("FAKETIME_TIMESTAMP_FILE", clock)
                .env("FAKETIME_NO_CACHE", "1")
                .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
        }
        let child = command.spawn().expect("start pinwarden");
        self.child = Some(child);
        self.tcp = self.wait_ready();
    }

    /// Polls `status --json` until the daemon answers; returns its first TCP address.
    fn wait_ready(&mut self) -> SocketAddr {
        let ready = poll_until(PATIENCE, POLL, || {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "pinwarden exited during startup ({status}):\n{}",
                    self.logs()
                );
            }
            let out = self.cli(&["status", "--json"], None);
            if !out.status.success() {
                return Err(String::from_utf8_lossy(&out.stderr).into_owned());
            }
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            let addr = v["tcp"][0].as_str().unwrap_or("0.0.0.0:0");
            Ok(addr.parse().unwrap())
        });
        ready.unwrap_or_else(|e| panic!("pinwarden not ready: {e}\n{}", self.logs()))
    }

    /// `wait_until`, with the daemon's log in the panic message.
    pub fn wait_for<T>(&self, within: Duration, poll: impl FnMut() -> Result<T, String>) -> T {
        poll_until(within, POLL, poll)
            .unwrap_or_else(|last| panic!("timed out after {within:?}: {last}\n{}", self.logs()))
    }

    pub fn logs(&self) -> String {
        (1..=self.runs)
            .map(|r| std::fs::read_to_string(self.log_path(r)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n--- restart ---\n")
    }

    /// Runs the CLI against this daemon's config, with optional stdin.
    pub fn cli(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = Command::new(BIN)
            .arg("-c")
            .arg(&self.config)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).unwrap();
        }
        drop(input);
        child.wait_with_output().unwrap()
    }

    pub fn cli_ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.cli(args, stdin);
        assert!(
            out.status.success(),
            "pinwarden {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.logs()
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn add_user(&self, id: &str, group: &str, pin: &str) {
        self.cli_ok(
            &["user", "add", id, "--group", group, "--pin-stdin"],
            Some(pin),
        );
    }

    /// A user with a card (stored normalised) and a PIN.
    pub fn add_user_with_card(&self, id: &str, group: &str, card: &str, pin: &str) {
        self.cli_ok(
            &[
                "user",
                "add",
                id,
                "--group",
                group,
                "--card",
                card,
                "--pin-stdin",
            ],
            Some(pin),
        );
    }

    pub fn status(&self) -> serde_json::Value {
        serde_json::from_str(&self.cli_ok(&["status", "--json"], None)).unwrap()
    }

    /// The HTTP listener's address (`[http]` must be configured).
    pub fn http(&self) -> SocketAddr {
        let status = self.status();
        let addr = status["http"]
            .as_str()
            .unwrap_or_else(|| panic!("no [http] listener in status: {status}"));
        addr.parse().unwrap()
    }

    pub fn terminal(&self) -> Terminal {
        Terminal::connect(self.tcp)
    }

    /// Sends SIGTERM and asserts a clean exit within 10 s.
    pub fn stop(&mut self) {
        self.stop_with(libc::SIGTERM);
    }

    pub fn stop_with(&mut self, sig: i32) {
        self.signal(sig);
        self.wait_exit();
    }

    /// Sends `sig` and returns at once.
    pub fn signal(&self, sig: i32) {
        signal(self.child.as_ref().expect("running"), sig);
    }

    /// Waits for the exit a signal asked for and asserts it was clean, within 10 s.
    pub fn wait_exit(&mut self) {
        let mut child = self.child.take().expect("running");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(
                    status.success(),
                    "exit after SIGTERM: {status}\n{}",
                    self.logs()
                );
                return;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "pinwarden did not exit within 10 s of SIGTERM\n{}",
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: a crash, with no chance to say goodbye.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// Starts a stopped daemon again on the same config and state.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "still running");
        self.launch();
    }

    /// Kills the daemon with SIGKILL (no shutdown at all) and starts it again.
    pub fn crash_and_restart(&mut self) {
        let mut child = self.child.take().expect("running");
        signal(&child, libc::SIGKILL);
        child.wait().unwrap();
        self.launch();
    }

    /// Polls the audit log until it contains `needle`; returns it. Fails after `within`.
    pub fn wait_audit(&self, needle: &str, within: Duration) -> String {
        self.wait_for(within, || {
            let audit = self.cli_ok(&["audit", "--json", "--last", "200"], None);
            match audit.contains(needle) {
                true => Ok(audit),
                false => Err(format!("no `{needle}` in the audit log:\n{audit}")),
            }
        })
    }

    /// Polls `status --json` until `check` accepts it; returns it.
    pub fn wait_status(
        &self,
        what: &str,
        mut check: impl FnMut(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        self.wait_for(PATIENCE, || {
            let status = self.status();
            match check(&status) {
                true => Ok(status),
                false => Err(format!("{what}: not in status {status}")),
            }
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("var")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) on a pid we spawned and have not reaped.
    let rc = unsafe { libc::kill(child.id() as i32, sig) };
    assert_eq!(rc, 0, "kill failed");
}

/// A print-release terminal: one TCP connection, line in, line out.
pub struct Terminal {
    reader: BufReader<TcpStream>,
}

impl Terminal {
    pub fn connect(addr: SocketAddr) -> Terminal {
        Terminal::over(TcpStream::connect(addr).expect("connect"))
    }

    /// A terminal at another loopback source address (Linux routes all of 127.0.0.0/8 to
    /// lo), e.g. "127.0.0.2".
    pub fn connect_from(source: &str, addr: SocketAddr) -> Terminal {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let stream = rt.block_on(async {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
            socket.connect(addr).await.expect("connect")
        });
        let stream = stream.into_std().unwrap();
        stream.set_nonblocking(false).unwrap();
        Terminal::over(stream)
    }

    fn over(stream: TcpStream) -> Terminal {
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Terminal {
            reader: BufReader::new(stream),
        }
    }

    /// The connection, for a second thread to write on.
    pub fn stream(&self) -> TcpStream {
        self.reader.get_ref().try_clone().unwrap()
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.reader.get_mut().write_all(bytes).unwrap();
    }

    pub fn read_line(&mut self) -> String {
        self.try_read_line().expect("reply")
    }

    pub fn try_read_line(&mut self) -> std::io::Result<String> {
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        Ok(line.trim_end().to_string())
    }

    pub fn ask(&mut self, line: &str) -> String {
        self.send_raw(format!("{line}\r\n").as_bytes());
        self.read_line()
    }

    /// True when the daemon closed the connection (EOF) within the read timeout.
    pub fn closed(&mut self) -> bool {
        let mut buf = [0u8; 64];
        matches!(self.reader.read(&mut buf), Ok(0))
    }
}

/// Whether `needle` occurs in any file below `dir`.
pub fn found_in_files(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                if bytes.windows(needle.len()).any(|w| w == needle) {
                    hits.push(path);
                }
            }
        }
    }
    hits
}
