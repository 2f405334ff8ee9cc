//! Shared by the benches: the real release binary started on a config, its CLI, readiness,
//! users, a clean stop by SIGTERM, its RSS, the percentile table, and the raw argon2 rate.
#![allow(dead_code)] // each bench uses part of it

pub mod argon2;
pub mod page;

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_pinwarden");

pub struct Bench {
    pub config: PathBuf,
    child: Child,
}

impl Bench {
    /// Starts the daemon on `config` and waits until `ready(status)` holds.
    pub fn start(config: PathBuf, ready: impl Fn(&serde_json::Value) -> bool) -> Bench {
        let child = Command::new(BIN)
            .args(["run", "-c"])
            .arg(&config)
            .stderr(Stdio::null())
            .spawn()
            .expect("start pinwarden");
        let bench = Bench { config, child };
        loop {
            let out = bench.cli(&["status", "--json"], None);
            if out.status.success() {
                let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
                if ready(&v) {
                    return bench;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn cli(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut c = Command::new(BIN)
            .arg("-c")
            .arg(&self.config)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(s) = stdin {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
        }
        c.wait_with_output().unwrap()
    }

    /// Runs the CLI, which must succeed; returns its output.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args, None);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The daemon's resident memory.
    pub fn rss_mib(&self) -> u64 {
        rss_kib(self.child.id()) / 1024
    }

    /// The daemon's peak RSS so far (VmHWM), or since `reset_peak_rss`.
    pub fn peak_rss_mib(&self) -> u64 {
        status_kib(self.child.id(), "VmHWM:") / 1024
    }

    /// Starts the peak RSS over from the current RSS (Linux: `5` to `clear_refs`), so
    /// `peak_rss_mib` then gives the peak of what follows.
    pub fn reset_peak_rss(&self) {
        let path = format!("/proc/{}/clear_refs", self.child.id());
        std::fs::write(&path, "5").unwrap_or_else(|e| panic!("resetting {path}: {e}"));
    }

    pub fn add_user(&self, id: &str, group: &str, pin: &str) {
        let out = self.cli(
            &["user", "add", id, "--group", group, "--pin-stdin"],
            Some(pin),
        );
        assert!(out.status.success(), "user add {id} failed");
    }

    /// SIGTERM, and the daemon must exit cleanly.
    pub fn stop(mut self) {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        assert!(self.child.wait().unwrap().success());
    }
}

/// A numeric environment setting, or `default` when unset or unreadable.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The `p` quantile (0..=1) of samples sorted ascending.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// A duration in milliseconds.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// VmRSS of a process in KiB (0 when it cannot be read).
pub fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS:")
}

/// Peak RSS of a process (VmHWM) in KiB (0 when it cannot be read).
pub fn peak_rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmHWM:")
}

/// A KiB field of /proc/<pid>/status (0 when it cannot be read).
fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Prints p50, p99 and max of `samples` as a Markdown table under `title`.
pub fn report(title: &str, samples: &mut [Duration]) {
    samples.sort();
    let p = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("{title}");
    println!("| measure | value |\n|---|---|");
    println!("| p50 | {:.2} ms |", ms(p(0.5)));
    println!("| p99 | {:.2} ms |", ms(p(0.99)));
    println!("| max | {:.2} ms |", ms(p(1.0)));
}
