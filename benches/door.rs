//! `cargo bench --bench door`: keypad-to-relay latency of the real release binary, from the
//! moment `#` is written to the keypad's pty until the relay's "on" bytes arrive on the
//! relay's pty (one argon2 computation, the store lookup, the audit write and the relay
//! write in between). Real OWASP argon2 parameters; relay-side pulse timing, so every grant
//! writes "on". Environment: BENCH_ENTRIES (200).

mod common;
#[allow(dead_code)] // shared with the tests, which use all of it
#[path = "../tests/common/pty.rs"]
mod pty;

use std::time::{Duration, Instant};

fn main() {
    let entries: usize = common::env_or("BENCH_ENTRIES", 200);
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
    let daemon = common::Bench::start(config, |_| true);
    daemon.add_user("alice", "staff", "482913");
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
    common::report(
        &format!("keypad `#` → relay on, {entries} entries, argon2id m=19456,t=2,p=1"),
        &mut samples,
    );
    daemon.stop();
}
