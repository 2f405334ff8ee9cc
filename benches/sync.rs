//! Directory sync benchmark on the real release binary with the real (default) argon2
//! parameters: the initial sync of a CSV directory of N users (time, users/s, re-hash
//! share), one changed row in N (incremental), and the daemon's RSS at N users.
//! N = 10 000 and 100 000; `PINWARDEN_BENCH_SYNC_USERS=10000` runs one size only
//! (100 000 users need ~10 minutes of argon2 on a 2-core box).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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

fn cli(config: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_pinwarden"))
        .arg("-c")
        .arg(config)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
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
    let log = std::fs::File::create(dir.path().join("daemon.log")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pinwarden"))
        .args(["run", "-c"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    // The file appears after the start, so the initial sync is the one `sync` triggers.
    wait_ready(&config);
    write_users(&csv, n, None);
    let started = Instant::now();
    cli(&config, &["sync"]);
    let initial = last_run(&config);
    let secs = initial["millis"].as_f64().unwrap() / 1000.0;
    let rehashed = initial["rehashed"].as_f64().unwrap();
    println!(
        "sync bench, {n} users: initial sync {secs:.1} s ({:.0} users/s), re-hashed {:.0} % of users; wall incl. CLI {:.1} s",
        n as f64 / secs,
        100.0 * rehashed / n as f64,
        started.elapsed().as_secs_f64()
    );
    println!(
        "  daemon RSS at {n} users: {} MiB",
        rss_kib(child.id()) / 1024
    );
    write_users(&csv, n, Some(n / 2));
    let t = Instant::now();
    let out = cli(&config, &["sync"]);
    let wall = t.elapsed();
    let one = last_run(&config);
    println!(
        "  one change in {n}: {} ms in the daemon ({} ms wall incl. CLI), re-hashed {}, {}",
        one["millis"],
        wall.as_millis(),
        one["rehashed"],
        out.trim()
    );
    println!("  daemon RSS after: {} MiB", rss_kib(child.id()) / 1024);
    stop(&mut child);
}

fn stop(child: &mut Child) {
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let _ = child.wait();
}

fn last_run(config: &Path) -> serde_json::Value {
    let status: serde_json::Value =
        serde_json::from_str(&cli(config, &["status", "--json"])).unwrap();
    status["directories"][0]["last_run"].clone()
}

fn wait_ready(config: &Path) {
    for _ in 0..400 {
        let out = Command::new(env!("CARGO_BIN_EXE_pinwarden"))
            .args(["status", "--json", "-c"])
            .arg(config)
            .output()
            .unwrap();
        if out.status.success() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("daemon not ready");
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}
