//! `cargo bench --bench flood`: does a legitimate terminal keep getting answers while an
//! allowed source floods the daemon? In one run, against the real release binary and a real
//! mosquitto, with real argon2 parameters:
//!  1. a terminal at 127.0.0.1 logs in one request after another, quiet, then while
//!     127.0.0.2 (an allowed terminal address of the same device) streams random bytes on
//!     every connection it can open (garbage), then while it opens and holds 200 idle
//!     connections and reopens each one the daemon closes (idle flood);
//!  2. an MQTT controller sends requests at 10/s, quiet, then while another client publishes
//!     64 KiB payloads to the request topic as fast as the broker takes them (oversize).
//!
//! Each phase prints p50/p99 and the ratio of its p99 to the quiet p99 of the same client.
//! Environment: BENCH_SECS (10 per phase).

mod common;

use common::{env_or as env, ms};
#[allow(dead_code)] // shared with the tests, which use all of it
#[path = "../tests/common/mosquitto.rs"]
mod mosquitto;

use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The `q` quantile of `samples` (sorted here).
fn p(samples: &mut [Duration], q: f64) -> Duration {
    samples.sort();
    common::percentile(samples, q)
}

const PIN: &str = "482913";

/// CPU seconds (user + system) the process has used so far.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (ticks(11) + ticks(12)) / hz
}

fn main() {
    let secs = env("BENCH_SECS", 10);
    let broker = mosquitto::Broker::start();
    let dir = tempfile::tempdir().unwrap();
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
[[device]]
id = "door"
kind = "door"
allow_groups = ["staff"]
[[tcp]]
listen = "127.0.0.1:0"
max_connections = 64
line_timeout = "10s"
idle_timeout = "5m"
[[tcp.terminal]]
address = "127.0.0.1"
device = "lobby-printer"
[[tcp.terminal]]
address = "127.0.0.2"
device = "lobby-printer"
[mqtt]
host = "127.0.0.1"
port = {port}
prefix = "bench"
devices = ["door"]
"#,
            state = dir.path().join("var").display(),
            port = broker.port,
        ),
    )
    .unwrap();
    let daemon = common::Bench::start(config, |s| s["mqtt"]["connected"] == true);
    daemon.add_user("alice", "staff", PIN);
    let status: serde_json::Value =
        serde_json::from_str(&daemon.cli_ok(&["status", "--json"])).unwrap();
    let addr: SocketAddr = status["tcp"][0].as_str().unwrap().parse().unwrap();
    let phase = Duration::from_secs(secs);
    println!("pinwarden flood benchmark: {secs}s per phase, argon2id m=19456,t=2,p=1");

    let pid = daemon.pid();
    let mut rows = Vec::new();
    let cpu = cpu_secs(pid);
    let mut quiet = terminal(addr, phase);
    let quiet_cpu = cpu_secs(pid) - cpu;
    let quiet_p99 = p(&mut quiet, 0.99);
    rows.push((
        "TCP terminal, quiet".to_string(),
        quiet,
        quiet_p99,
        quiet_cpu,
    ));
    for (name, flood) in [
        (
            "garbage streams (8 connections of random bytes)",
            Flood::Garbage,
        ),
        (
            "idle flood (200 connections held and reopened)",
            Flood::Idle,
        ),
    ] {
        let stop = Arc::new(AtomicBool::new(false));
        let opened = Arc::new(AtomicU64::new(0));
        let attackers = flood.start(addr, &stop, &opened);
        std::thread::sleep(Duration::from_secs(1));
        let cpu = cpu_secs(pid);
        let samples = terminal(addr, phase);
        let cpu = cpu_secs(pid) - cpu;
        stop.store(true, Ordering::Relaxed);
        for a in attackers {
            let _ = a.join();
        }
        rows.push((
            format!(
                "TCP terminal, {name}; {} attacker connections opened",
                opened.load(Ordering::Relaxed)
            ),
            samples,
            quiet_p99,
            cpu,
        ));
    }

    let cpu = cpu_secs(pid);
    let mut mqtt_quiet = mqtt_requests(broker.port, phase, None);
    let cpu = cpu_secs(pid) - cpu;
    let mqtt_quiet_p99 = p(&mut mqtt_quiet.0, 0.99);
    rows.push((
        "MQTT requests at 10/s, quiet".into(),
        mqtt_quiet.0,
        mqtt_quiet_p99,
        cpu,
    ));
    // As fast as the broker takes them, then at a fixed rate.
    for rate in [0, env("BENCH_OVERSIZE_RATE", 200)] {
        let cpu = cpu_secs(pid);
        let (loud, oversize) = mqtt_requests(broker.port, phase, Some(rate));
        let cpu = cpu_secs(pid) - cpu;
        let pace = if rate == 0 {
            "as fast as the broker takes them".to_string()
        } else {
            format!("{rate}/s")
        };
        rows.push((
            format!("MQTT requests at 10/s, 64 KiB publishes {pace} ({oversize} sent)"),
            loud,
            mqtt_quiet_p99,
            cpu,
        ));
    }
    let after: serde_json::Value =
        serde_json::from_str(&daemon.cli_ok(&["status", "--json"])).unwrap();
    daemon.stop();

    println!();
    println!("| phase | answered | p50 | p99 | p99 / quiet p99 | daemon CPU |");
    println!("|---|---|---|---|---|---|");
    for (name, mut samples, quiet, cpu) in rows {
        let n = samples.len();
        let p50 = p(&mut samples, 0.5);
        let p99 = p(&mut samples, 0.99);
        println!(
            "| {name} | {n} | {:.2} ms | {:.2} ms | {:.2} | {cpu:.1} s |",
            ms(p50),
            ms(p99),
            ms(p99) / ms(quiet)
        );
    }
    println!(
        "\ndecisions: {}; MQTT connected at the end: {}",
        after["decisions"], after["mqtt"]["connected"]
    );
}

/// One legitimate terminal's PIN logins, one after another, for `phase`; each must be OK.
fn terminal(addr: SocketAddr, phase: Duration) -> Vec<Duration> {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_nodelay(true).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    let mut samples = Vec::new();
    let end = Instant::now() + phase;
    let mut line = String::new();
    while Instant::now() < end {
        let t = Instant::now();
        writer
            .write_all(format!("PIN {PIN}\r\n").as_bytes())
            .unwrap();
        line.clear();
        reader.read_line(&mut line).unwrap();
        samples.push(t.elapsed());
        assert!(
            line.starts_with("OK alice"),
            "legitimate login answered {line:?}"
        );
    }
    samples
}

#[derive(Clone, Copy)]
enum Flood {
    Garbage,
    Idle,
}

impl Flood {
    /// Attacker threads from 127.0.0.2 until `stop`; `opened` counts their connections.
    fn start(
        self,
        addr: SocketAddr,
        stop: &Arc<AtomicBool>,
        opened: &Arc<AtomicU64>,
    ) -> Vec<std::thread::JoinHandle<()>> {
        let (count, per_thread) = match self {
            Flood::Garbage => (8, 1),
            Flood::Idle => (4, 50),
        };
        (0..count)
            .map(|i| {
                let (stop, opened) = (Arc::clone(stop), Arc::clone(opened));
                std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    rt.block_on(async move {
                        let tasks: Vec<_> = (0..per_thread)
                            .map(|j| {
                                let (stop, opened) = (Arc::clone(&stop), Arc::clone(&opened));
                                tokio::spawn(attacker(self, addr, stop, opened, i * 1000 + j))
                            })
                            .collect();
                        for t in tasks {
                            let _ = t.await;
                        }
                    })
                })
            })
            .collect()
    }
}

async fn attacker(
    flood: Flood,
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    opened: Arc<AtomicU64>,
    seed: usize,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // Made once: the attacker's own CPU should go into sending, not into random numbers.
    let mut junk: Vec<u8> = (0..64 * 1024).map(|_| rand::random()).collect();
    if seed % 2 == 1 {
        // Half the streams send malformed lines, half binary with no line end.
        for b in junk.iter_mut().step_by(40) {
            *b = b'\n';
        }
    }
    let mut at = 0;
    while !stop.load(Ordering::Relaxed) {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        let Ok(mut stream) = socket.connect(addr).await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        opened.fetch_add(1, Ordering::Relaxed);
        match flood {
            Flood::Garbage => {
                loop {
                    at = (at + 4096) % junk.len();
                    let write = stream.write_all(&junk[at..at + 4096]);
                    match tokio::time::timeout(Duration::from_millis(200), write).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => break,
                        // The daemon stopped reading (paced): keep the connection stuck.
                        Err(_) => {}
                    }
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                }
            }
            Flood::Idle => {
                let mut buf = [0u8; 256];
                loop {
                    let read = stream.read(&mut buf);
                    match tokio::time::timeout(Duration::from_millis(200), read).await {
                        Ok(Ok(0)) | Ok(Err(_)) => break,
                        Ok(Ok(_)) => {}
                        Err(_) => {
                            if stop.load(Ordering::Relaxed) {
                                return;
                            }
                        }
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A controller's unlock requests at 10/s for `phase`, with or without another client
/// publishing 64 KiB payloads to the request topic meanwhile. Returns the reply latencies
/// and the number of oversize publishes. Every request must be answered.
fn mqtt_requests(port: u16, phase: Duration, oversize: Option<u64>) -> (Vec<Duration>, u64) {
    let tag = match oversize {
        None => "quiet".to_string(),
        Some(rate) => format!("loud{rate}-"),
    };
    let (client, mut connection) = Client::new(
        MqttOptions::new(format!("bench-{tag}"), "127.0.0.1", port),
        1024,
    );
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let latencies: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let (subscribed_tx, subscribed) = std::sync::mpsc::channel();
    {
        let (sent, latencies) = (Arc::clone(&sent), Arc::clone(&latencies));
        std::thread::spawn(move || {
            for event in connection.iter() {
                match event {
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        let _ = subscribed_tx.send(());
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let v: serde_json::Value = serde_json::from_slice(&p.payload).unwrap();
                        let Some(id) = v["id"].as_str() else { continue };
                        if let Some(at) = sent.lock().unwrap().remove(id) {
                            assert_eq!(v["result"], "granted", "{v}");
                            latencies.lock().unwrap().push(at.elapsed());
                        }
                    }
                    Ok(_) => {}
                    Err(_) => return,
                }
            }
        });
    }
    client
        .subscribe("bench/reply/door", QoS::AtLeastOnce)
        .unwrap();
    subscribed.recv().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let published = Arc::new(AtomicU64::new(0));
    let flooder = oversize.map(|rate| {
        let (stop, published) = (Arc::clone(&stop), Arc::clone(&published));
        std::thread::spawn(move || {
            let mut options = MqttOptions::new(format!("bench-oversize{rate}"), "127.0.0.1", port);
            options.set_max_packet_size(1 << 20, 1 << 20);
            let (client, mut connection) = Client::new(options, 64);
            std::thread::spawn(move || for _ in connection.iter() {});
            let payload = vec![b'x'; 64 * 1024];
            let start = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                if rate > 0 {
                    let due = start
                        + Duration::from_secs_f64(
                            published.load(Ordering::Relaxed) as f64 / rate as f64,
                        );
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                }
                if client
                    .publish(
                        "bench/request/door",
                        QoS::AtMostOnce,
                        false,
                        payload.clone(),
                    )
                    .is_ok()
                {
                    published.fetch_add(1, Ordering::Relaxed);
                }
            }
            let _ = client.disconnect();
        })
    });
    if oversize.is_some() {
        std::thread::sleep(Duration::from_secs(1));
    }
    let every = Duration::from_millis(100);
    let start = Instant::now();
    let requests = (phase.as_millis() / every.as_millis()) as usize;
    for i in 0..requests {
        let due = start + every * i as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let id = format!("{tag}{i}");
        sent.lock().unwrap().insert(id.clone(), Instant::now());
        let body = format!(r#"{{"id":"{id}","pin":"{PIN}"}}"#);
        client
            .publish("bench/request/door", QoS::AtLeastOnce, false, body)
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while latencies.lock().unwrap().len() < requests {
        assert!(
            Instant::now() < deadline,
            "{} of {requests} MQTT requests unanswered",
            requests - latencies.lock().unwrap().len()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Ordering::Relaxed);
    if let Some(f) = flooder {
        let _ = f.join();
    }
    let _ = client.disconnect();
    let samples = latencies.lock().unwrap().clone();
    (samples, published.load(Ordering::Relaxed))
}
