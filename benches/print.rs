//! `cargo bench --bench print`: print-release latency of the real release binary against a
//! real cupsd + ippeveprinter on loopback. Each round queues BENCH_JOBS (20) held PDF jobs
//! for alice, then times `PIN` written at the terminal → `OK alice 20` read: one argon2
//! computation, Get-Printer-Attributes, Get-Jobs and one Release-Job per job, all answered
//! before the reply leaves. A PIN with nothing held gives the baseline. BENCH_ROUNDS (30).

#[path = "../tests/common/mod.rs"]
mod common;

use common::cups::Cups;
use common::Daemon;
use std::time::{Duration, Instant};

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    ms(sorted[i])
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let (jobs, rounds) = (env("BENCH_JOBS", 20), env("BENCH_ROUNDS", 30));
    let mut cups = Cups::start("");
    let printer = cups.printer("lobby");
    cups.queue("lobby", printer, &[]);
    let extra = format!("{}\n{}", cups.pinwarden_config(), common::DEFAULT_TCP);
    let mut d = Daemon::start_edited(|text| {
        text.replacen(
            "kind = \"printer\"\n",
            "kind = \"printer\"\nqueue = \"lobby\"\n",
            1,
        )
        .replace("{EXTRA}", &extra)
        .replace("level = \"debug\"", "level = \"warn\"")
    });
    d.add_user("alice", "staff", "482913");
    let mut t = d.terminal();
    let want = format!("OK alice {jobs}");
    let (mut release, mut baseline) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        for j in 0..jobs {
            cups.submit("lobby", "alice", &format!("r{round}-j{j}"));
        }
        let start = Instant::now();
        let reply = t.ask("PIN 482913");
        release.push(start.elapsed());
        assert_eq!(reply, want, "round {round}");
        let start = Instant::now();
        assert_eq!(t.ask("PIN 482913"), "OK alice 0");
        baseline.push(start.elapsed());
    }
    release.sort();
    baseline.sort();
    println!("print release, {jobs} held jobs, {rounds} rounds (PIN written → reply read):");
    println!(
        "  release  p50 {:.2} ms  p99 {:.2} ms",
        percentile(&release, 0.5),
        percentile(&release, 0.99)
    );
    println!(
        "  nothing held (argon2 + Get-Printer-Attributes + Get-Jobs)  p50 {:.2} ms  p99 {:.2} ms",
        percentile(&baseline, 0.5),
        percentile(&baseline, 0.99)
    );
    println!(
        "  per Release-Job (p50 difference / {jobs})  {:.2} ms",
        (percentile(&release, 0.5) - percentile(&baseline, 0.5)) / jobs as f64
    );
    d.stop();
}
