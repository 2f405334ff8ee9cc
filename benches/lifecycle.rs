//! `cargo bench --bench lifecycle`: the PIN lifecycle at scale (issue 12, "Speed"). The real
//! release binary with `[policy] generation = "auto"`, the default (OWASP) argon2 parameters
//! and `hash_workers` = cores, mailing through a real aiosmtpd on loopback with STARTTLS and
//! AUTH, unpaced. In one run it measures
//!  1. the raw keyed-argon2 rate on all cores, before the import and again after delivery
//!     (the machine is shared; their mean is the reference);
//!  2. `pinwarden import` of BENCH_USERS (10 000) rows with an empty PIN column: wall time,
//!     PINs generated and hashed per second, and its ratio to (1) (goal ≥ 0.9);
//!  3. the outbox delivering the new-PIN mails: messages per second from the first to the
//!     last one the server accepted (goal ≥ 200/s);
//!  4. the daemon's RSS before the import, right after it, once all mail is delivered and after BENCH_IDLE
//!     (5) seconds idle (goal ≤ 1.2 × before), and its peak.
//!
//! Environment: BENCH_USERS (10000), BENCH_SECS (10, per raw argon2 measurement),
//! BENCH_IDLE (5).

mod common;
#[path = "../tests/common/mod.rs"]
mod testkit;

use common::{env_or, Bench};
use pinwarden::crypto::HashParams;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};
use testkit::smtp::{SmtpOptions, SmtpServer};

struct Figures {
    raw_before: f64,
    raw_after: f64,
    import: Duration,
    generated: u64,
    delivery_span: Duration,
    delivered: usize,
    last_after_import: Duration,
    rss_before: u64,
    rss_imported: u64,
    rss_delivered: u64,
    idle: u64,
    rss_idle: u64,
    rss_peak: u64,
}

fn main() {
    let users = env_or("BENCH_USERS", 10_000) as usize;
    let secs = env_or("BENCH_SECS", 10);
    let idle = env_or("BENCH_IDLE", 5);
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let params = HashParams::default();
    println!("pinwarden lifecycle benchmark: {cores} cores, argon2id {params}, {users} users");

    let server = SmtpServer::start(SmtpOptions {
        starttls: true,
        auth: Some("pinwarden:s3cret".into()),
        ..SmtpOptions::default()
    });
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(dir.path(), &server, cores);
    let csv = write_csv(dir.path(), users);
    let bench = Bench::start(config, |_| true);
    std::thread::sleep(Duration::from_secs(1));
    let rss_before = common::rss_kib(bench.pid());

    let hasher = common::argon2::random_hasher(params);
    let raw_before = common::argon2::raw_rate(&hasher, cores, secs);
    println!("raw argon2 before: {raw_before:.1} hashes/s");

    let (import, generated) = import(&bench, &csv, users);
    println!(
        "import: {users} rows in {:.1}s, {generated} PINs generated",
        import.as_secs_f64()
    );
    let imported_at = SystemTime::now();
    let rss_imported = common::rss_kib(bench.pid());
    let maildir = server.dir.path().join("mail");
    let (first, last) = wait_delivered(&maildir, users);
    let rss_delivered = common::rss_kib(bench.pid());
    std::thread::sleep(Duration::from_secs(idle));
    let rss_idle = common::rss_kib(bench.pid());
    let rss_peak = common::peak_rss_kib(bench.pid());
    check_message(&maildir);

    let raw_after = common::argon2::raw_rate(&hasher, cores, secs);
    println!("raw argon2 after: {raw_after:.1} hashes/s");
    bench.stop();
    report(
        cores,
        params,
        &Figures {
            raw_before,
            raw_after,
            import,
            generated,
            delivery_span: last.duration_since(first).unwrap_or_default(),
            delivered: users,
            last_after_import: last.duration_since(imported_at).unwrap_or_default(),
            rss_before,
            rss_imported,
            rss_delivered,
            idle,
            rss_idle,
            rss_peak,
        },
    );
}

/// The config: auto generation of 8-digit PINs, real argon2, one hash worker per core,
/// mail through `server` with STARTTLS and a password login, unpaced.
fn write_config(dir: &Path, server: &SmtpServer, cores: usize) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let secret = dir.join("smtp-password");
    std::fs::write(&secret, "s3cret\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let path = dir.join("bench.toml");
    let text = format!(
        r#"state_dir = "{state}"
[log]
level = "warn"
[security]
pepper_file = "{state}/pepper"
hash_workers = {cores}
[policy]
generation = "auto"
generated_length = 8
max_length = 12
[[device]]
id = "lobby-printer"
kind = "printer"
allow_groups = ["staff"]
[smtp]
host = "127.0.0.1"
port = {port}
ca_file = "{ca}"
username = "pinwarden"
password_file = "{secret}"
from = "Print room <print@example.org>"
timeout = "5s"
[mail]
customer_name = "ACME"
"#,
        state = dir.join("var").display(),
        port = server.port,
        ca = server.ca.display(),
        secret = secret.display(),
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// `users` rows, each with an email address and an empty PIN column.
fn write_csv(dir: &Path, users: usize) -> PathBuf {
    let path = dir.join("users.csv");
    let mut text = String::from("id,name,email,groups,pin\n");
    for i in 0..users {
        text.push_str(&format!(
            "user{i:05},Bench User {i},user{i}@example.org,staff,\n"
        ));
    }
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs the import; returns its wall time and how many PINs it generated.
fn import(bench: &Bench, csv: &Path, users: usize) -> (Duration, u64) {
    let start = Instant::now();
    let out = bench.cli_ok(&["import", csv.to_str().unwrap(), "--json"]);
    let took = start.elapsed();
    let report: serde_json::Value = serde_json::from_str(&out).expect("import --json");
    assert_eq!(report["added"], users, "{report}");
    assert_eq!(report["mails_queued"], users, "{report}");
    (took, report["pins_generated"].as_u64().unwrap_or(0))
}

/// Waits until `n` messages are in the sink's maildir; returns the modification times of
/// the first and the last (written as each DATA is accepted).
fn wait_delivered(maildir: &Path, n: usize) -> (SystemTime, SystemTime) {
    let events = maildir.join("events.log");
    let needle = format!("DATA {n}\n");
    let deadline = Instant::now() + Duration::from_secs(120 + n as u64 / 20);
    loop {
        let log = std::fs::read_to_string(&events).unwrap_or_default();
        if log.contains(&needle) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {n} messages delivered",
            log.matches("DATA ").count()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let mtime = |i: usize| {
        std::fs::metadata(maildir.join(format!("{i:06}.eml")))
            .and_then(|m| m.modified())
            .expect("delivered message")
    };
    (mtime(1), mtime(n))
}

/// A delivered message came over TLS, after AUTH, and carries a PIN body.
fn check_message(maildir: &Path) {
    let text = std::fs::read_to_string(maildir.join("000001.eml")).unwrap();
    assert!(text.contains("X-TLS: yes"), "{text}");
    assert!(text.contains("X-Auth: yes"), "{text}");
}

fn report(cores: usize, params: HashParams, f: &Figures) {
    let raw = (f.raw_before + f.raw_after) / 2.0;
    let import_rate = f.generated as f64 / f.import.as_secs_f64();
    let delivery = (f.delivered - 1) as f64 / f.delivery_span.as_secs_f64();
    let mib = |kib: u64| kib as f64 / 1024.0;
    let ratio = |kib: u64| kib as f64 / f.rss_before as f64;
    println!();
    println!("| measure | value |");
    println!("|---|---|");
    println!("| cores, hash workers | {cores} |");
    println!("| argon2 parameters | argon2id {params} |");
    println!(
        "| raw keyed argon2, {cores} threads (before / after / mean) | {:.1} / {:.1} / **{raw:.1} hashes/s** |",
        f.raw_before, f.raw_after
    );
    println!(
        "| import of {} rows, empty PIN column (wall time) | {:.1} s, {} PINs generated |",
        f.delivered,
        f.import.as_secs_f64(),
        f.generated
    );
    println!("| import rate | **{import_rate:.1} PINs/s** |");
    println!(
        "| import / raw (mean; against the faster of the two) | **{:.3}** ({:.3}; goal ≥ 0.9) |",
        import_rate / raw,
        import_rate / f.raw_before.max(f.raw_after)
    );
    println!(
        "| outbox delivery, first → last of {} (STARTTLS + AUTH, unpaced) | {:.1} s, **{delivery:.1} messages/s** (goal ≥ 200) |",
        f.delivered,
        f.delivery_span.as_secs_f64()
    );
    println!(
        "| import finished → last message delivered | {:.1} s |",
        f.last_after_import.as_secs_f64()
    );
    println!(
        "| daemon RSS before the import | {:.1} MiB |",
        mib(f.rss_before)
    );
    println!(
        "| daemon RSS right after the import returned | {:.1} MiB ({:.2} ×) |",
        mib(f.rss_imported),
        ratio(f.rss_imported)
    );
    println!(
        "| daemon RSS when all mail is delivered | {:.1} MiB (**{:.2} ×**, goal ≤ 1.2) |",
        mib(f.rss_delivered),
        ratio(f.rss_delivered)
    );
    println!(
        "| daemon RSS {} s idle later | {:.1} MiB ({:.2} ×) |",
        f.idle,
        mib(f.rss_idle),
        ratio(f.rss_idle)
    );
    println!("| daemon peak RSS (VmHWM) | {:.1} MiB |", mib(f.rss_peak));
}
