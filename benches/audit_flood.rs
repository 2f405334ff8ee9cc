//! `cargo bench --bench audit_flood`: issue 15's "a 60 s flood at full rate grows the store
//! by at most 5 MB". The real release binary with real argon2; 8 connections from each of
//! 8 allowed terminal addresses of one device (127.0.0.1–8: 64 in all, each address at its
//! `max_per_source`) send wrong `ID … PIN …` and `PIN …` lines as fast as they are answered
//! for BENCH_SECS (60). The device locks after its free failures, and every later
//! refusal costs no argon2, so the flood runs at the rate the daemon answers refusals. The
//! store directory's size on disk is read before and after (the daemon flushes before each
//! DENY; it is stopped by SIGTERM before the second reading), with the requests sent, the
//! answers by kind and the audit records the flood left.

mod common;

use common::env_or;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SOURCES: usize = 8;
const PER_SOURCE: usize = 8;
const CONNECTIONS: usize = SOURCES * PER_SOURCE;

/// A blocking connection to `addr` from the local address `127.0.0.<source>`.
fn connect_from(source: usize, addr: SocketAddr) -> TcpStream {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    let stream = runtime
        .block_on(async {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind(format!("127.0.0.{source}:0").parse().unwrap())?;
            socket.connect(addr).await
        })
        .expect("connect from a loopback source address");
    let stream = stream.into_std().unwrap();
    stream.set_nonblocking(false).unwrap();
    stream
}

/// Bytes the files under `dir` take on disk (allocated blocks, as `du` counts them) and
/// their apparent size (`du --apparent-size`; sled's files may be sparse).
fn disk_bytes(dir: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let mut total = (0, 0);
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let meta = entry.metadata().unwrap();
        let (blocks, apparent) = if meta.is_dir() {
            disk_bytes(&entry.path())
        } else {
            (meta.blocks() * 512, meta.len())
        };
        total = (total.0 + blocks, total.1 + apparent);
    }
    total
}

fn main() {
    let secs = env_or("BENCH_SECS", 60);
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("var");
    let config = dir.path().join("bench.toml");
    std::fs::write(
        &config,
        format!(
            r#"state_dir = "{state}"
[log]
level = "warn"
[[device]]
id = "lobby-printer"
kind = "printer"
allow_groups = ["staff"]
[[tcp]]
listen = "127.0.0.1:0"
max_connections = 80
{terminals}"#,
            state = state.display(),
            terminals = (1..=SOURCES)
                .map(|i| format!(
                    "[[tcp.terminal]]\naddress = \"127.0.0.{i}\"\ndevice = \"lobby-printer\"\n"
                ))
                .collect::<String>(),
        ),
    )
    .unwrap();
    let daemon = common::Bench::start(config, |s| s["tcp"][0].is_string());
    daemon.add_user("alice", "staff", "482913");
    let status: serde_json::Value =
        serde_json::from_str(&daemon.cli_ok(&["status", "--json"])).unwrap();
    let addr: SocketAddr = status["tcp"][0].as_str().unwrap().parse().unwrap();
    let store = state.join("store");
    let before = disk_bytes(&store);
    let audit_before = daemon
        .cli_ok(&["audit", "--last", "100000000"])
        .lines()
        .count();
    println!("pinwarden audit flood benchmark: {CONNECTIONS} connections from {SOURCES} addresses for {secs}s");

    let stop = Arc::new(AtomicBool::new(false));
    let replies = Arc::new(Mutex::new(BTreeMap::<String, u64>::new()));
    let started = Instant::now();
    let threads: Vec<_> = (0..CONNECTIONS)
        .map(|i| {
            let (stop, replies) = (Arc::clone(&stop), Arc::clone(&replies));
            std::thread::spawn(move || {
                let mut mine = BTreeMap::<String, u64>::new();
                let source = 1 + i / PER_SOURCE;
                let mut r = BufReader::new(connect_from(source, addr));
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let line = match n % 2 {
                        0 => format!("ID alice PIN {:06}\r\n", (i as u64 * 7919 + n) % 1_000_000),
                        _ => format!("PIN {:06}\r\n", (i as u64 * 104_729 + n) % 1_000_000),
                    };
                    if r.get_mut().write_all(line.as_bytes()).is_err() {
                        r = BufReader::new(connect_from(source, addr));
                        continue;
                    }
                    let mut reply = String::new();
                    match r.read_line(&mut reply) {
                        Ok(0) | Err(_) => {
                            *mine.entry("closed".into()).or_default() += 1;
                            r = BufReader::new(connect_from(source, addr));
                        }
                        Ok(_) => {
                            let kind = reply.split_whitespace().next().unwrap_or("").to_string();
                            *mine.entry(kind).or_default() += 1;
                        }
                    }
                }
                let mut all = replies.lock().unwrap();
                for (k, v) in mine {
                    *all.entry(k).or_default() += v;
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::Relaxed);
    threads.into_iter().for_each(|t| t.join().unwrap());
    let elapsed = started.elapsed().as_secs_f64();
    let audit_after = daemon
        .cli_ok(&["audit", "--last", "100000000"])
        .lines()
        .count();
    let rss = daemon.rss_mib();
    daemon.stop();
    let after = disk_bytes(&store);

    let replies = replies.lock().unwrap();
    let sent: u64 = replies.values().sum();
    println!();
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| requests answered in {elapsed:.1} s | {sent} ({:.0}/s) |",
        sent as f64 / elapsed
    );
    println!("| replies by kind | {replies:?} |");
    println!(
        "| audit records the flood added | {} |",
        audit_after - audit_before
    );
    let mib = |b: u64| b as f64 / 1048576.0;
    println!(
        "| store on disk (allocated) before → after | {:.2} MiB → {:.2} MiB (**+{:.2} MiB**) |",
        mib(before.0),
        mib(after.0),
        mib(after.0) - mib(before.0)
    );
    println!(
        "| store, apparent size, before → after | {:.2} MiB → {:.2} MiB (+{:.2} MiB) |",
        mib(before.1),
        mib(after.1),
        mib(after.1) - mib(before.1)
    );
    println!("| daemon RSS at the end | {rss} MiB |");
}
