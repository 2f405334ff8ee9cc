//! `cargo bench --bench e2e`: in one run, measures
//!  1. the raw keyed-argon2 rate on this machine (one thread per core, each reusing its work
//!     memory exactly as the daemon's workers do), and the median time of one computation;
//!  2. the end-to-end TCP `PIN` rate of the real release binary with 64 concurrent terminals
//!     against a store of 100 000 users, and its ratio to (1);
//!  3. the p50/p99 latency at 1 terminal, and its distance from one argon2 computation.
//!
//! The store is seeded directly through the library: 100 000 users carry random tags (their
//! PINs are irrelevant to lookup cost; hashing them all would take half an hour), and the 64
//! users the terminals log in as carry real tags of real PINs. Real OWASP parameters.
//! Environment: BENCH_USERS (100000), BENCH_SECS (10), BENCH_TERMINALS (64).

mod common;

use common::{env_or, ms, percentile};

use pinwarden::crypto::{HashParams, Hasher, Pepper};
use pinwarden::domain::{Pin, PinRecord, PinSource, Tag, Timestamp, User};
use pinwarden::store::{OpenParams, SledStore, Store};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() {
    let users = env_or("BENCH_USERS", 100_000) as usize;
    let secs = env_or("BENCH_SECS", 10);
    let terminals = env_or("BENCH_TERMINALS", 64) as usize;
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let params = HashParams::default();
    println!("pinwarden e2e benchmark: {workers} cores, argon2id {params}, {users} users, {secs}s per phase");

    let dir = tempfile::tempdir().expect("temp dir");
    let pepper_path = dir.path().join("pepper");
    let pepper_bytes: [u8; 32] = rand::random();
    std::fs::write(&pepper_path, hex::encode(pepper_bytes)).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pepper_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let pepper = Pepper::from_bytes(pepper_bytes);

    let (_, raw_rate, hasher) = raw_argon2(
        &dir.path().join("store"),
        &pepper,
        params,
        workers,
        secs,
        users,
        terminals,
    );

    let config = write_config(dir.path(), &pepper_path, terminals);
    let mut daemon = start(&config, dir.path());
    let addr = wait_ready(&config);

    let (rate, busy) = load(addr, terminals, secs);
    let (one_hash, p50, p99) = single_terminal(addr, &hasher, secs);
    let rss = common::rss_kib(daemon.id());
    stop(&mut daemon);

    println!();
    println!("| measure | value |");
    println!("|---|---|");
    println!("| raw keyed argon2, {workers} threads | {raw_rate:.1} hashes/s |");
    println!(
        "| one argon2 computation (median, 1 thread, interleaved with the 1-terminal requests) | {:.2} ms |",
        ms(one_hash)
    );
    println!("| end-to-end TCP PIN, {terminals} terminals, {users} users | {rate:.1} decisions/s ({busy} BUSY) |");
    println!("| end-to-end / raw | {:.3} |", rate / raw_rate);
    println!(
        "| 1 terminal p50 / p99 | {:.2} ms / {:.2} ms |",
        ms(p50),
        ms(p99)
    );
    println!(
        "| 1 terminal p50 minus one argon2 | {:+.2} ms |",
        ms(p50) - ms(one_hash)
    );
    println!("| daemon RSS after the run | {} MiB |", rss / 1024);
}

/// Seeds the store, then measures argon2 alone with the store's own salt.
fn raw_argon2(
    store_dir: &Path,
    pepper: &Pepper,
    params: HashParams,
    workers: usize,
    secs: u64,
    users: usize,
    terminals: usize,
) -> (Duration, f64, Arc<Hasher>) {
    let opened = SledStore::open(
        store_dir,
        OpenParams {
            pepper_fingerprint: &pepper.fingerprint(),
            hash_params: &params.to_string(),
            cache_capacity_mib: 16,
        },
    )
    .expect("open store");
    let hasher = Arc::new(Hasher::new(pepper.clone(), opened.salt, params).unwrap());
    let seed_start = Instant::now();
    seed(&opened.store, &hasher, users, terminals);
    println!(
        "seeded {users} users in {:.1}s",
        seed_start.elapsed().as_secs_f64()
    );
    drop(opened);

    let mut workspace = hasher.workspace();
    let mut single: Vec<Duration> = (0..50)
        .map(|i| {
            let t = Instant::now();
            let pin = Pin::new(format!("{:06}", 100_000 + i));
            std::hint::black_box(hasher.tag_in(&pin, &mut workspace));
            t.elapsed()
        })
        .collect();
    single.sort();
    let rate = common::argon2::raw_rate(&hasher, workers, secs);
    (percentile(&single, 0.5), rate, hasher)
}

fn terminal_pin(i: usize) -> String {
    format!("{:06}", 731_000 + i * 7)
}

fn seed(store: &SledStore, hasher: &Hasher, users: usize, terminals: usize) {
    let record = |tag| PinRecord {
        tag,
        set_at: Timestamp::now(),
        expires_at: None,
        source: PinSource::Import,
        temporary: false,
        uses_left: None,
        windows: Vec::new(),
    };
    let mut batch = Vec::with_capacity(10_000);
    for i in 0..users {
        let mut u = User::new_local(format!("user{i:06}"));
        u.name = format!("Bench User {i}");
        u.email = Some(format!("user{i}@example.org"));
        u.groups = vec!["staff".into()];
        u.pin = Some(record(if i < terminals {
            hasher.tag(&Pin::new(terminal_pin(i)))
        } else {
            Tag(rand::random())
        }));
        batch.push(u);
        if batch.len() == 10_000 {
            store.upsert_users(&batch).unwrap();
            batch.clear();
        }
    }
    store.upsert_users(&batch).unwrap();
    store.flush().unwrap();
}

fn write_config(dir: &Path, pepper: &Path, terminals: usize) -> std::path::PathBuf {
    let path = dir.join("bench.toml");
    let text = format!(
        r#"state_dir = "{state}"
[log]
level = "warn"
[security]
pepper_file = "{pepper}"
hash_queue = {queue}
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
"#,
        state = dir.display(),
        pepper = pepper.display(),
        queue = terminals,
        conns = terminals + 8,
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn start(config: &Path, dir: &Path) -> Child {
    let log = std::fs::File::create(dir.join("daemon.log")).unwrap();
    // sled's flusher thread may hold the store's lock for a moment after the seeding handle
    // is dropped; give it that moment.
    std::thread::sleep(Duration::from_millis(500));
    Command::new(env!("CARGO_BIN_EXE_pinwarden"))
        .args(["run", "-c"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start the daemon")
}

fn wait_ready(config: &Path) -> SocketAddr {
    for _ in 0..400 {
        let out = Command::new(env!("CARGO_BIN_EXE_pinwarden"))
            .args(["status", "--json", "-c"])
            .arg(config)
            .output()
            .unwrap();
        if out.status.success() {
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            return v["tcp"][0].as_str().unwrap().parse().unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("daemon not ready");
}

fn ask(reader: &mut BufReader<TcpStream>, line: &str) -> String {
    reader.get_mut().write_all(line.as_bytes()).unwrap();
    let mut reply = String::new();
    reader.read_line(&mut reply).unwrap();
    reply
}

/// `terminals` connections, each asking with its own user's PIN as fast as answered.
fn load(addr: SocketAddr, terminals: usize, secs: u64) -> (f64, u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let busy = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let threads: Vec<_> = (0..terminals)
        .map(|i| {
            let (stop, ok, busy) = (Arc::clone(&stop), Arc::clone(&ok), Arc::clone(&busy));
            std::thread::spawn(move || {
                let mut r = BufReader::new(TcpStream::connect(addr).unwrap());
                let line = format!("PIN {}\r\n", terminal_pin(i));
                let expected = format!("OK user{i:06} 0");
                while !stop.load(Ordering::Relaxed) {
                    let reply = ask(&mut r, &line);
                    match reply.trim_end() {
                        r if r == expected => ok.fetch_add(1, Ordering::Relaxed),
                        "BUSY" => busy.fetch_add(1, Ordering::Relaxed),
                        other => panic!("terminal {i}: unexpected reply {other:?}"),
                    };
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::Relaxed);
    threads.into_iter().for_each(|t| t.join().unwrap());
    (
        ok.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64(),
        busy.load(Ordering::Relaxed),
    )
}

/// Alternates one local argon2 computation with one TCP request, so both medians come
/// from the same seconds of this (shared, noisy) machine. Returns (argon2 p50, TCP p50,
/// TCP p99).
fn single_terminal(addr: SocketAddr, hasher: &Hasher, secs: u64) -> (Duration, Duration, Duration) {
    let mut r = BufReader::new(TcpStream::connect(addr).unwrap());
    let line = format!("PIN {}\r\n", terminal_pin(0));
    let mut workspace = hasher.workspace();
    let (mut local, mut remote) = (Vec::new(), Vec::new());
    let end = Instant::now() + Duration::from_secs(secs);
    let mut i = 0u32;
    while Instant::now() < end {
        let t = Instant::now();
        let pin = Pin::new(format!("{:06}", 200_000 + i));
        std::hint::black_box(hasher.tag_in(&pin, &mut workspace));
        local.push(t.elapsed());
        let t = Instant::now();
        assert!(ask(&mut r, &line).starts_with("OK user000000"));
        remote.push(t.elapsed());
        i += 1;
    }
    local.sort();
    remote.sort();
    (
        percentile(&local, 0.5),
        percentile(&remote, 0.5),
        percentile(&remote, 0.99),
    )
}

fn stop(child: &mut Child) {
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert!(status.success(), "daemon exit {status}");
}
