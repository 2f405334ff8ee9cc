//! `cargo bench --bench mqtt`: MQTT request → reply latency of the real release binary
//! against a real mosquitto, at a steady 50 requests/s (open loop: requests go out on
//! schedule whatever the replies do). Each request is one argon2 computation (real OWASP
//! parameters), the store lookup, the audit and outbox writes, and two broker hops.
//! Environment: BENCH_REQUESTS (500), BENCH_RATE (50 per second).

mod common;
#[allow(dead_code)] // shared with the tests, which use all of it
#[path = "../tests/common/mosquitto.rs"]
mod mosquitto;

use common::env_or as env;
use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn main() {
    let requests = env("BENCH_REQUESTS", 500) as usize;
    let rate = env("BENCH_RATE", 50);
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
id = "door"
kind = "door"
allow_groups = ["staff"]
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
    daemon.add_user("alice", "staff", "482913");

    let (client, mut connection) =
        Client::new(MqttOptions::new("bench", "127.0.0.1", broker.port), 1024);
    // The bench client must not add Nagle delays of its own either.
    let mut network = connection.eventloop.network_options();
    network.set_tcp_nodelay(true);
    connection.eventloop.set_network_options(network);
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
                        assert_eq!(v["result"], "granted", "{v}");
                        let id = v["id"].as_str().unwrap().to_string();
                        let at = sent
                            .lock()
                            .unwrap()
                            .remove(&id)
                            .expect("a reply we asked for");
                        latencies.lock().unwrap().push(at.elapsed());
                    }
                    Ok(_) => {}
                    // The broker goes away when the bench ends.
                    Err(_) => return,
                }
            }
        });
    }
    client
        .subscribe("bench/reply/door", QoS::AtLeastOnce)
        .unwrap();
    subscribed.recv().unwrap();
    let every = Duration::from_secs_f64(1.0 / rate as f64);
    let start = Instant::now();
    for i in 0..requests {
        let due = start + every * i as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let id = format!("r{i}");
        sent.lock().unwrap().insert(id.clone(), Instant::now());
        let body = format!(r#"{{"id":"{id}","pin":"482913"}}"#);
        client
            .publish("bench/request/door", QoS::AtLeastOnce, false, body)
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while latencies.lock().unwrap().len() < requests {
        assert!(Instant::now() < deadline, "replies missing");
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut samples = latencies.lock().unwrap().clone();
    common::report(
        &format!("MQTT request → reply, {requests} requests at {rate}/s, argon2id m=19456,t=2,p=1"),
        &mut samples,
    );
    daemon.stop();
}
