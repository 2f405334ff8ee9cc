//! `cargo bench --bench metrics`: issue 16 §5's speed figures in one run, on the real release
//! binary with `[http]` and real argon2 parameters, against a store of 1 000 000 users:
//!  1. `/metrics` over loopback HTTP on an idle daemon, `BENCH_SCRAPES` times in a row:
//!     p50/p99/max of the whole round trip and of the daemon's own time per request (its
//!     access log at debug level: handler and render, no network); goal p99 ≤ 5 ms;
//!  2. the end-to-end TCP `PIN` rate with 64 terminals, and
//!  3. the 1-terminal p50,
//!     each in `BENCH_ROUNDS` rounds of a phase without and a phase with the HTTP side in
//!     use: a scraper reading the whole `/metrics` page every second and a signed-in person
//!     (a real emailed sign-in link, through aiosmtpd) reloading their self-service page
//!     every second. The order is swapped every round (ABBA), so drift on this shared
//!     machine falls on both sides; per round the ratio with/without, and the median of
//!     those ratios (goal: within 5 %), beside the medians of each side.
//!
//! The users are written directly through the store API (as benches/e2e.rs does): hashing
//! 1 000 000 PINs would take hours, and lookup cost does not depend on which PIN a tag came
//! from, so all but the terminals' users carry random tags. The page's user count comes
//! from the store's counter (`Store::user_count`), checked against the number written.
//! Environment: BENCH_USERS (1000000), BENCH_SECS (8), BENCH_ROUNDS (6),
//! BENCH_TERMINALS (64), BENCH_SCRAPES (1000).

mod common;

use common::page::{scrape, Person, Reloader, Scraper, SmtpSink};
use common::{env_or, ms, percentile};

use pinwarden::crypto::{HashParams, Hasher, Pepper};
use pinwarden::domain::{Pin, PinRecord, PinSource, Tag, Timestamp, User};
use pinwarden::store::{OpenParams, SledStore, Store};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    (values[(n - 1) / 2] + values[n / 2]) / 2.0
}

fn main() {
    let users = env_or("BENCH_USERS", 1_000_000) as usize;
    let secs = env_or("BENCH_SECS", 8);
    let rounds = env_or("BENCH_ROUNDS", 6);
    let terminals = env_or("BENCH_TERMINALS", 64) as usize;
    let scrapes = env_or("BENCH_SCRAPES", 1000);
    let params = HashParams::default();
    println!("pinwarden metrics benchmark: argon2id {params}, {users} users, {rounds} rounds of {secs}s phases");

    let dir = tempfile::tempdir().expect("temp dir");
    let pepper_path = dir.path().join("pepper");
    let pepper_bytes: [u8; 32] = rand::random();
    std::fs::write(&pepper_path, hex::encode(pepper_bytes)).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pepper_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let seeded = Instant::now();
    seed_store(
        &dir.path().join("store"),
        &Pepper::from_bytes(pepper_bytes),
        params,
        users,
        terminals,
    );
    println!(
        "wrote {users} users through the store API in {:.1}s",
        seeded.elapsed().as_secs_f64()
    );

    let mail = SmtpSink::start(dir.path());
    let config = write_config(dir.path(), &pepper_path, terminals, &mail.config());
    // sled's flusher may hold the store's lock a moment after the seeding handle is dropped.
    std::thread::sleep(Duration::from_millis(500));
    let log = dir.path().join("daemon.log");
    let mut daemon = start(&config, &log);
    let status = wait_ready(&config);
    let tcp: SocketAddr = status["tcp"][0].as_str().unwrap().parse().unwrap();
    let base = format!("http://{}", status["http"].as_str().unwrap());
    let metrics = format!("{base}/metrics");
    let client = reqwest::blocking::Client::new();
    let mut person = Some(Person::sign_in(&base, PAGE_USER, &mail));

    let page = client.get(&metrics).send().unwrap().text().unwrap();
    let counted = format!("pinwarden_users {users}\n");
    assert!(
        page.contains(&counted),
        "the page counts {users} users:\n{page}"
    );
    let mut idle: Vec<Duration> = (0..scrapes).map(|_| scrape(&client, &metrics)).collect();
    idle.sort();

    let mut rate = (Vec::new(), Vec::new());
    let mut p50 = (Vec::new(), Vec::new());
    let loaded = Arc::new(Mutex::new(Vec::new()));
    let views = Arc::new(Mutex::new(Vec::new()));
    for round in 0..rounds {
        // ABBA: off-on, on-off, off-on, …
        for used in [round % 2 == 1, round % 2 == 0] {
            let scraper = used.then(|| Scraper::start(&metrics, Arc::clone(&loaded)));
            let reloader =
                used.then(|| Reloader::start(person.take().unwrap(), Arc::clone(&views)));
            let r = load(tcp, terminals, secs);
            let p = single_terminal(tcp, secs);
            drop(scraper);
            if let Some(reloader) = reloader {
                person = Some(reloader.finish());
            }
            println!(
                "round {round}, HTTP in use {}: {r:.1} decisions/s, 1-terminal p50 {:.2} ms",
                if used { "yes" } else { "no " },
                ms(p)
            );
            let (rates, p50s) = if used {
                (&mut rate.1, &mut p50.1)
            } else {
                (&mut rate.0, &mut p50.0)
            };
            rates.push(r);
            p50s.push(ms(p));
        }
    }
    let mut views = views.lock().unwrap().clone();
    views.sort();
    let mut loaded = loaded.lock().unwrap().clone();
    loaded.sort();
    let rss = common::rss_kib(daemon.id()) / 1024;
    stop(&mut daemon);
    // The daemon's own time per /metrics request (its access log): the render without the
    // network and the client. The first `1 + scrapes` are the idle ones.
    let mut served = served_times(&log);
    let mut served_loaded = served.split_off((1 + scrapes as usize).min(served.len()));
    served.sort();
    served_loaded.sort();

    let paired = |(off, on): &(Vec<f64>, Vec<f64>)| -> Vec<f64> {
        off.iter().zip(on).map(|(a, b)| b / a).collect()
    };
    let (rate_ratios, p50_ratios) = (paired(&rate), paired(&p50));
    let list = |v: &[f64]| {
        v.iter()
            .map(|r| format!("{r:.3}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    println!();
    println!("per round, with/without: rate {}", list(&rate_ratios));
    println!(
        "per round, with/without: 1-terminal p50 {}",
        list(&p50_ratios)
    );
    let (rate_off, rate_on) = (median(rate.0), median(rate.1));
    let (p50_off, p50_on) = (median(p50.0), median(p50.1));
    println!();
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| `/metrics` round trip, idle, {users} users, {scrapes} scrapes | p50 {:.3} ms · p99 {:.3} ms · max {:.3} ms ({} bytes) |",
        ms(percentile(&idle, 0.5)),
        ms(percentile(&idle, 0.99)),
        ms(*idle.last().unwrap()),
        page.len()
    );
    println!(
        "| `/metrics` served (daemon's access log: handler and render), idle | p50 {:.3} ms · p99 {:.3} ms · max {:.3} ms |",
        ms(percentile(&served, 0.5)),
        ms(percentile(&served, 0.99)),
        ms(*served.last().unwrap())
    );
    if !served_loaded.is_empty() {
        println!(
            "| `/metrics` served under load | p50 {:.3} ms · p99 {:.3} ms · max {:.3} ms |",
            ms(percentile(&served_loaded, 0.5)),
            ms(percentile(&served_loaded, 0.99)),
            ms(*served_loaded.last().unwrap())
        );
    }
    if !loaded.is_empty() {
        println!(
            "| `/metrics` round trip under load (1 Hz scraper, {} scrapes) | p50 {:.3} ms · p99 {:.3} ms · max {:.3} ms |",
            loaded.len(),
            ms(percentile(&loaded, 0.5)),
            ms(percentile(&loaded, 0.99)),
            ms(*loaded.last().unwrap())
        );
    }
    if !views.is_empty() {
        println!(
            "| signed-in page load under load (1 Hz, {} loads) | p50 {:.3} ms · p99 {:.3} ms |",
            views.len(),
            ms(percentile(&views, 0.5)),
            ms(percentile(&views, 0.99)),
        );
    }
    println!("| {terminals} terminals, {rounds} rounds | without {rate_off:.1}/s · with scraper and page {rate_on:.1}/s (medians) · median of per-round ratios {:.3} |", median(rate_ratios));
    println!("| 1 terminal p50, {rounds} rounds | without {p50_off:.2} ms · with {p50_on:.2} ms (medians) · median of per-round ratios {:.3} |", median(p50_ratios));
    println!("| daemon RSS after the run | {rss} MiB |");
}

/// The person using the self-service page (one of the seeded users, with an address).
const PAGE_USER: &str = "user0000001";

fn terminal_pin(i: usize) -> String {
    format!("{:06}", 731_000 + i * 7)
}

/// `users` users in 10 000-user transactions; the terminals' users have real tags.
fn seed_store(
    store_dir: &Path,
    pepper: &Pepper,
    params: HashParams,
    users: usize,
    terminals: usize,
) {
    let opened = SledStore::open(
        store_dir,
        OpenParams {
            pepper_fingerprint: &pepper.fingerprint(),
            hash_params: &params.to_string(),
            cache_capacity_mib: 16,
        },
    )
    .expect("open store");
    let hasher = Hasher::new(pepper.clone(), opened.salt, params).unwrap();
    let store = opened.store;
    let mut batch = Vec::with_capacity(10_000);
    for i in 0..users {
        let mut u = User::new_local(format!("user{i:07}"));
        u.groups = vec!["staff".into()];
        if u.id == PAGE_USER {
            u.email = Some("person@example.org".into());
        }
        let tag = if i < terminals {
            hasher.tag(&Pin::new(terminal_pin(i)))
        } else {
            Tag(rand::random())
        };
        u.pin = Some(PinRecord {
            tag,
            set_at: Timestamp::now(),
            expires_at: None,
            source: PinSource::Import,
            temporary: false,
            uses_left: None,
            windows: Vec::new(),
        });
        batch.push(u);
        if batch.len() == 10_000 {
            store.upsert_users(&batch).unwrap();
            batch.clear();
        }
    }
    store.upsert_users(&batch).unwrap();
    store.flush().unwrap();
    assert_eq!(store.user_count().unwrap(), users as u64);
}

fn write_config(dir: &Path, pepper: &Path, terminals: usize, web: &str) -> std::path::PathBuf {
    let path = dir.join("bench.toml");
    let text = format!(
        r#"state_dir = "{state}"
[log]
level = "warn"
[security]
pepper_file = "{pepper}"
hash_queue = {queue}
[http]
listen = "127.0.0.1:0"
[[device]]
id = "lobby-printer"
kind = "printer"
allow_groups = ["staff"]
[[tcp]]
listen = "127.0.0.1:0"
max_connections = {conns}
max_per_source = {conns}
[[tcp.terminal]]
address = "127.0.0.1"
device = "lobby-printer"
{web}"#,
        state = dir.display(),
        pepper = pepper.display(),
        queue = terminals,
        conns = terminals + 8,
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn ask(reader: &mut BufReader<TcpStream>, line: &str) -> String {
    reader.get_mut().write_all(line.as_bytes()).unwrap();
    let mut reply = String::new();
    reader.read_line(&mut reply).unwrap();
    reply
}

/// `terminals` connections, each asking with its own user's PIN as fast as answered;
/// decisions (OK) per second.
fn load(addr: SocketAddr, terminals: usize, secs: u64) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let threads: Vec<_> = (0..terminals)
        .map(|i| {
            let (stop, ok) = (Arc::clone(&stop), Arc::clone(&ok));
            std::thread::spawn(move || {
                let mut r = BufReader::new(TcpStream::connect(addr).unwrap());
                let line = format!("PIN {}\r\n", terminal_pin(i));
                let expected = format!("OK user{i:07} 0");
                while !stop.load(Ordering::Relaxed) {
                    match ask(&mut r, &line).trim_end() {
                        r if r == expected => ok.fetch_add(1, Ordering::Relaxed),
                        "BUSY" => 0,
                        other => panic!("terminal {i}: unexpected reply {other:?}"),
                    };
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::Relaxed);
    threads.into_iter().for_each(|t| t.join().unwrap());
    ok.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

/// One terminal asking as fast as answered for `secs`: the p50 latency.
fn single_terminal(addr: SocketAddr, secs: u64) -> Duration {
    let mut r = BufReader::new(TcpStream::connect(addr).unwrap());
    let line = format!("PIN {}\r\n", terminal_pin(0));
    let mut times = Vec::new();
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        let t = Instant::now();
        assert!(ask(&mut r, &line).starts_with("OK user0000000"));
        times.push(t.elapsed());
    }
    times.sort();
    percentile(&times, 0.5)
}

/// The release binary with the HTTP access log (debug level for `pinwarden::http` only)
/// going to `log`.
fn start(config: &Path, log: &Path) -> std::process::Child {
    std::process::Command::new(common::BIN)
        .args(["run", "-c"])
        .arg(config)
        .env("RUST_LOG", "warn,pinwarden::http=debug")
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("start pinwarden")
}

fn wait_ready(config: &Path) -> serde_json::Value {
    for _ in 0..1200 {
        let out = std::process::Command::new(common::BIN)
            .args(["status", "--json", "-c"])
            .arg(config)
            .output()
            .unwrap();
        if out.status.success() {
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            if v["http"].is_string() {
                return v;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("daemon not ready");
}

fn stop(child: &mut std::process::Child) {
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(child.wait().unwrap().success(), "daemon exit");
}

/// `ms=` of every `/metrics` line of the access log, in order.
fn served_times(log: &Path) -> Vec<Duration> {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .filter(|l| l.contains("http request") && l.contains("/metrics"))
        .filter_map(|l| {
            let value = l.split("ms=").nth(1)?.split_whitespace().next()?;
            Some(Duration::from_secs_f64(value.parse::<f64>().ok()? / 1000.0))
        })
        .collect()
}
