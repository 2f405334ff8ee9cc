//! Fault-injection helpers for the durability and fault-campaign tests: a small seeded
//! random source (the seed is printed, and `CHAOS_SEED` replays it), a daemon with cheap
//! argon2 and room for failed attempts, and a SIGKILL at a random instant.
#![allow(dead_code)]

use super::Daemon;
use std::time::Duration;

/// xorshift64*: enough to spread kill instants; reproducible from its seed.
pub struct Rng(u64);

impl Rng {
    /// Seeded from `CHAOS_SEED` when set, else from the clock; the seed is printed with
    /// `label` so a failing run can be replayed.
    pub fn new(label: &str) -> Rng {
        let seed = std::env::var("CHAOS_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap();
                now.as_nanos() as u64 ^ (std::process::id() as u64) << 32
            });
        eprintln!("{label}: CHAOS_SEED={seed}");
        Rng(seed | 1)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `lo..=hi`.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// The argon2 parameters that make a test's many hashes cheap (what is tested is the
/// store, not the hash); the store remembers them, so a restart uses the same.
const CHEAP_ARGON2: &str = "hash_workers = 2\nargon2_memory_kib = 64\nargon2_iterations = 1";

/// Failed attempts the tests make must never lock the terminal's device or source.
const ROOMY_LOCKOUT: &str = "[lockout]\nfree_failures = 100\n";

/// A daemon on the test config with cheap argon2 and 100 free failures; `extra_top` is
/// placed before the first section (after `[lockout]`, so it may hold its own sections),
/// `extra` appended and must hold a `[[tcp]]` block.
pub fn start(extra_top: &str, extra: &str) -> Daemon {
    Daemon::start_edited(|text| {
        text.replace("{EXTRA_TOP}", &format!("{ROOMY_LOCKOUT}{extra_top}"))
            .replace("{EXTRA}", extra)
            .replace("hash_workers = 2", CHEAP_ARGON2)
    })
}

/// Sleeps a random 0–`max_ms` ms, then SIGKILLs the daemon and starts it again on the same
/// state; returns the delay.
pub fn kill_soon_and_restart(d: &mut Daemon, rng: &mut Rng, max_ms: u64) -> u64 {
    let delay = rng.between(0, max_ms);
    std::thread::sleep(Duration::from_millis(delay));
    d.crash_and_restart();
    delay
}

/// `user show <id> --json`, or None when there is no such user.
pub fn show(d: &Daemon, id: &str) -> Option<serde_json::Value> {
    let out = d.cli(&["user", "show", id, "--json"], None);
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("no user"),
            "user show {id}: {err}\n{}",
            d.logs()
        );
        return None;
    }
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

/// An 8-digit PIN unique to `n` (for `n` below 6 000) that no policy rule refuses: no
/// run, no repeat, not on the common list (which holds PINs of 4 to 6 digits).
pub fn pin(n: u64) -> String {
    format!("{}", 48_213_907 + n * 7_919)
}
