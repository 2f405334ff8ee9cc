//! `cargo bench --bench memory`: the daemon's memory under big admin work (issue 14 §4,
//! "Bounded memory"). The real release binary; its VmRSS (from /proc) is read before and
//! after (1) `pinwarden import` of N rows without PINs, (2) an import of N rows with PINs
//! and (3) a CSV directory sync of N users with PINs; goal: RSS after ≤ 1.2 × before each.
//! This bench is about memory, not speed: argon2 runs with tiny parameters
//! (`argon2_memory_kib = 64`, one iteration), so the N PINs hash in seconds; the argon2
//! workspaces are per worker and do not grow with N.
//!
//! Last, the daemon is restarted on the same store: its RSS then is what the 3 N users cost
//! at rest (sled's cache and page table), the floor the "after" figures compare with.
//!
//! Whether the work's memory depends on the file's size: a second directory, `lab`, holds
//! N / 5 users, and on the restarted store (whose size then stays the same) an import and a
//! sync of N / 5 rows run next to the same work with N rows, every PIN changed each time. A
//! store's own memory grows with the store (sled's nodes); what the work adds should not
//! grow with the file.
//!
//! Environment: BENCH_ROWS (100000). Without a release build at hand,
//! `cargo test --bench memory` runs the same on the debug binary (slower; same memory).

mod common;

use std::path::Path;
use std::time::Instant;

fn main() {
    let n: usize = common::env_or("BENCH_ROWS", 100_000);
    let cache_mib: u64 = common::env_or("BENCH_CACHE_MIB", 16);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("pinwarden.toml");
    let csv = dir.path().join("directory.csv");
    let lab = dir.path().join("lab.csv");
    let small = n / 5;
    std::fs::write(
        &config,
        format!(
            "state_dir = \"{}\"\n[log]\nlevel = \"warn\"\n[store]\ncache_capacity_mib = {}\n[security]\nargon2_memory_kib = 64\n\
             argon2_iterations = 1\n[[directory]]\nname = \"hr\"\nkind = \"csv\"\npath = \"{}\"\n\
             interval = \"24h\"\n[[directory]]\nname = \"lab\"\nkind = \"csv\"\npath = \"{}\"\n\
             interval = \"24h\"\n",
            dir.path().join("var").display(),
            cache_mib,
            csv.display(),
            lab.display()
        ),
    )
    .unwrap();
    let daemon = common::Bench::start(config, |_| true);
    println!(
        "memory bench, {n} rows; RSS at start {} MiB",
        daemon.rss_mib()
    );

    let plain = dir.path().join("plain.csv");
    write_rows(&plain, "a", n, false);
    measure(&daemon, &format!("import of {n} rows without PINs"), || {
        daemon.cli_ok(&["import", plain.to_str().unwrap()]);
    });
    let pins = dir.path().join("pins.csv");
    write_rows(&pins, "b", n, true);
    measure(&daemon, &format!("import of {n} rows with PINs"), || {
        daemon.cli_ok(&["import", pins.to_str().unwrap()]);
    });
    write_rows(&csv, "c", n, true);
    measure(&daemon, &format!("CSV sync of {n} users with PINs"), || {
        daemon.cli_ok(&["sync", "--source", "hr"]);
    });
    write_rows(&lab, "d", small, true);
    daemon.cli_ok(&["sync", "--source", "lab"]);
    let config = daemon.config.clone();
    daemon.stop();
    // What the store's data alone costs: the same store, freshly started.
    let fresh = common::Bench::start(config, |_| true);
    println!(
        "  the same store ({} users) after a restart: RSS {} MiB",
        3 * n + small,
        fresh.rss_mib()
    );
    // The same work once more on that store, every PIN changed: the store keeps its size,
    // so what stays behind is what the work itself left. A fifth of the rows first: the
    // same store, a smaller file.
    let part = dir.path().join("part.csv");
    write_rows_seeded(&part, "b", small, Some(5));
    measure(
        &fresh,
        &format!("again: import of {small} rows, every PIN changed"),
        || {
            fresh.cli_ok(&["import", part.to_str().unwrap()]);
        },
    );
    write_rows_seeded(&lab, "d", small, Some(3));
    measure(
        &fresh,
        &format!("again: CSV sync of {small} users, every PIN changed"),
        || {
            fresh.cli_ok(&["sync", "--source", "lab"]);
        },
    );
    write_rows_seeded(&pins, "b", n, Some(7));
    measure(
        &fresh,
        &format!("again: import of {n} rows, every PIN changed"),
        || {
            fresh.cli_ok(&["import", pins.to_str().unwrap()]);
        },
    );
    write_rows_seeded(&csv, "c", n, Some(11));
    measure(
        &fresh,
        &format!("again: CSV sync of {n} users, every PIN changed"),
        || {
            fresh.cli_ok(&["sync", "--source", "hr"]);
        },
    );
    fresh.stop();
}

/// Runs `work` and prints the daemon's RSS before and after it, their ratio and the peak.
fn measure(daemon: &common::Bench, what: &str, work: impl FnOnce()) {
    daemon.reset_peak_rss();
    let before = daemon.rss_mib();
    let t = Instant::now();
    work();
    let secs = t.elapsed().as_secs_f64();
    let after = daemon.rss_mib();
    let peak = daemon.peak_rss_mib();
    println!(
        "  {what}: {secs:.1} s; RSS before {before} MiB, after {after} MiB ({:.2} x, goal <= 1.2), \
         peak during it {peak} MiB (+{} MiB)",
        after as f64 / before.max(1) as f64,
        peak.saturating_sub(before)
    );
}

/// N users `<prefix>NNNNNN`, with distinct 8-digit PINs when `pins`.
fn write_rows(path: &Path, prefix: &str, n: usize, pins: bool) {
    write_rows_seeded(path, prefix, n, pins.then_some(0));
}

/// `write_rows`, the PINs (when `Some`) shifted by a seed: the same users, other PINs.
fn write_rows_seeded(path: &Path, prefix: &str, n: usize, pin_seed: Option<usize>) {
    let pins = pin_seed.is_some();
    let seed = prefix.as_bytes()[0] as usize + pin_seed.unwrap_or(0) * 7_919;
    let mut text = String::from(if pins {
        "id,name,email,groups,pin\n"
    } else {
        "id,name,email,groups\n"
    });
    for i in 0..n {
        text.push_str(&format!(
            "{prefix}{i:06},User {i},{prefix}{i}@example.org,staff"
        ));
        if pins {
            // Distinct across files; never all one digit or a run.
            let pin = 10_000_000 + (seed * 1_000_003 + i * 37) % 89_999_999;
            text.push_str(&format!(",{pin}"));
        }
        text.push('\n');
    }
    std::fs::write(path, text).unwrap();
}
