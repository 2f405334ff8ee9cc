//! Directory sync benchmark on the real release binary with the real (default) argon2
//! parameters: the initial sync of a CSV directory of N users (time, users/s, re-hash
//! share), one changed row in N (incremental), and the daemon's RSS at N users.
//! N = 10 000 and 100 000; `PINWARDEN_BENCH_SYNC_USERS=10000` runs one size only
//! (100 000 users need ~10 minutes of argon2 on a 2-core box).

mod common;

use std::path::Path;
use std::time::Instant;

fn main() {
    let sizes: Vec<usize> = match std::env::var("PINWARDEN_BENCH_SYNC_USERS") {
        Ok(n) => vec![n.parse().expect("PINWARDEN_BENCH_SYNC_USERS: a number")],
        Err(_) => vec![10_000, 100_000],
    };
    for n in sizes {
        run(n);
    }
}

fn pin(i: usize, generation: usize) -> String {
    format!("{:08}", (i * 37 + generation * 7_000_001) % 100_000_000)
}

fn write_users(path: &Path, n: usize, changed: Option<usize>) {
    let mut text = String::from("id,name,email,groups,pin\n");
    for i in 0..n {
        let generation = usize::from(changed == Some(i));
        text.push_str(&format!("u{i:06},User {i},,staff,{}\n", pin(i, generation)));
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn run(n: usize) {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("users.csv");
    let config = dir.path().join("pinwarden.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = \"{}\"\n[log]\nlevel = \"warn\"\n[[directory]]\nname = \"hr\"\nkind = \"csv\"\npath = \"{}\"\ninterval = \"24h\"\n",
            dir.path().join("var").display(),
            csv.display()
        ),
    )
    .unwrap();
    // The file appears after the start, so the initial sync is the one `sync` triggers.
    let daemon = common::Bench::start(config, |_| true);
    write_users(&csv, n, None);
    let started = Instant::now();
    daemon.cli_ok(&["sync"]);
    let initial = last_run(&daemon);
    let secs = initial["millis"].as_f64().unwrap() / 1000.0;
    let rehashed = initial["rehashed"].as_f64().unwrap();
    println!(
        "sync bench, {n} users: initial sync {secs:.1} s ({:.0} users/s), re-hashed {:.0} % of users; wall incl. CLI {:.1} s",
        n as f64 / secs,
        100.0 * rehashed / n as f64,
        started.elapsed().as_secs_f64()
    );
    println!(
        "  daemon RSS at {n} users: {} MiB (peak during the sync {} MiB)",
        daemon.rss_mib(),
        daemon.peak_rss_mib()
    );
    write_users(&csv, n, Some(n / 2));
    let t = Instant::now();
    let out = daemon.cli_ok(&["sync"]);
    let wall = t.elapsed();
    let one = last_run(&daemon);
    println!(
        "  one change in {n}: {} ms in the daemon ({} ms wall incl. CLI), re-hashed {}, {}",
        one["millis"],
        wall.as_millis(),
        one["rehashed"],
        out.trim()
    );
    println!(
        "  daemon RSS after: {} MiB (peak so far {} MiB)",
        daemon.rss_mib(),
        daemon.peak_rss_mib()
    );
    daemon.stop();
}

fn last_run(daemon: &common::Bench) -> serde_json::Value {
    let status: serde_json::Value =
        serde_json::from_str(&daemon.cli_ok(&["status", "--json"])).unwrap();
    status["directories"][0]["last_run"].clone()
}
