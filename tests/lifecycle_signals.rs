//! End-to-end: systemd readiness notification and draining of in-flight requests.

mod common;

use common::{signal, Daemon, BIN};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn notifies_systemd_ready_after_binding_and_stopping_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        common::config_text(dir.path(), "", common::DEFAULT_TCP),
    )
    .unwrap();
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut child = Command::new(BIN)
        .args(["run", "-c"])
        .arg(&config)
        .env("NOTIFY_SOCKET", &sock_path)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut buf = [0u8; 256];
    let n = sock.recv(&mut buf).expect("READY=1 within 20 s");
    assert_eq!(&buf[..n], b"READY=1\n");
    let status = Command::new(BIN)
        .args(["status", "--json", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "the control socket answers once READY was sent"
    );
    signal(&child, libc::SIGTERM);
    let n = sock.recv(&mut buf).expect("STOPPING=1");
    assert_eq!(&buf[..n], b"STOPPING=1\n");
    assert!(child.wait().unwrap().success());
}

#[test]
fn a_request_in_flight_at_sigterm_is_answered() {
    // Slow argon2 (t=40) keeps the request in flight long enough to signal mid-way.
    let mut d = Daemon::start_edited(|text| {
        text.replace(
            "hash_workers = 2",
            "hash_workers = 2\nargon2_iterations = 40",
        )
        .replace("{EXTRA}", common::DEFAULT_TCP)
    });
    d.add_user("alice", "staff", "482913");
    let mut stream = std::net::TcpStream::connect(d.tcp).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(b"PIN 482913\r\n").unwrap();
    // Signal only once the request is in flight (its PIN is being hashed): before that the
    // daemon may not even have read the line, and a request never read is not in flight.
    d.wait_status("the request's hash in flight", |s| {
        s["hash_pool"]["in_flight"].as_u64() >= Some(1)
    });
    d.stop();
    let mut reply = String::new();
    BufReader::new(stream).read_line(&mut reply).unwrap();
    assert_eq!(
        reply, "OK alice 0\r\n",
        "the in-flight request completed before exit"
    );
}
