//! `cargo bench --bench door`: keypad-to-relay latency of the real release binary, from the
//! moment `#` is written to the keypad's pty until the relay's "on" bytes arrive on the
//! relay's pty (one argon2 computation, the store lookup, the audit write and the relay
//! write in between). Real OWASP argon2 parameters; relay-side pulse timing, so every grant
//! writes "on". Environment: BENCH_ENTRIES (200).

#[allow(dead_code)] // shared with the tests, which use all of it
#[path = "../tests/common/pty.rs"]
mod pty;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let entries: usize = std::env::var("BENCH_ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let dir = tempfile::tempdir().unwrap();
    let mut keypad = pty::Pty::plug(&dir.path().join("keypad"));
    let mut relay = pty::Pty::plug(&dir.path().join("relay"));
    let config = dir.path().join("bench.toml");
    std::fs::write(
        &config,
        format!(
            r#"state_dir = "{state}"
[log]
level = "warn"
[[device]]
id = "door"
kind = "door"
allow_groups = ["staff"]
[[keypad]]
port = "{kp}"
device = "door"
feedback = {{ granted = [71], denied = [68] }}
[[door]]
device = "door"
actuator = "serial"
port = "{relay}"
on = [160, 1, 1, 162]
pulse = "1s"
"#,
            state = dir.path().join("var").display(),
            kp = dir.path().join("keypad").display(),
            relay = dir.path().join("relay").display(),
        ),
    )
    .unwrap();
    let bin = env!("CARGO_BIN_EXE_pinwarden");
    let mut daemon = Command::new(bin)
        .args(["run", "-c"])
        .arg(&config)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let cli = |args: &[&str], stdin: Option<&str>| {
        let mut c = Command::new(bin)
            .arg("-c")
            .arg(&config)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        if let Some(s) = stdin {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
        }
        c.wait_with_output().unwrap()
    };
    while !cli(&["status"], None).status.success() {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(cli(
        &["user", "add", "alice", "--group", "staff", "--pin-stdin"],
        Some("482913")
    )
    .status
    .success());
    std::thread::sleep(Duration::from_millis(300));

    let mut samples = Vec::with_capacity(entries);
    for _ in 0..entries {
        keypad.type_bytes(b"482913");
        std::thread::sleep(Duration::from_millis(2));
        let start = Instant::now();
        keypad.type_bytes(b"#");
        let on = relay.read(4, Duration::from_secs(5));
        samples.push(start.elapsed());
        assert_eq!(on, [160, 1, 1, 162], "relay bytes");
        assert_eq!(keypad.read(1, Duration::from_secs(5)), b"G");
    }
    samples.sort();
    let p = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    println!("keypad `#` → relay on, {entries} entries, argon2id m=19456,t=2,p=1");
    println!("| measure | value |\n|---|---|");
    println!("| p50 | {:.2} ms |", ms(p(0.5)));
    println!("| p99 | {:.2} ms |", ms(p(0.99)));
    println!("| max | {:.2} ms |", ms(p(1.0)));
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) };
    assert!(daemon.wait().unwrap().success());
}
