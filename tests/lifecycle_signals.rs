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
    // The door's actuator holds the grant, and so the reply, until the test lets it go: the
    // request is in flight for exactly as long as the test needs, on a fast machine or a
    // loaded one (a slow argon2 gave a window that was too short on the one and longer
    // than the daemon's 5 s shutdown deadline on the other).
    let dir = tempfile::tempdir().unwrap();
    let started = dir.path().join("started");
    let go = dir.path().join("go");
    let door = format!(
        r#"
[[tcp]]
listen = "127.0.0.1:0"
[[tcp.terminal]]
address = "127.0.0.1"
device = "front-door"

[[door]]
device = "front-door"
actuator = "command"
command = ["/bin/sh", "-c", "touch '{started}'; while [ ! -e '{go}' ]; do sleep 0.02; done"]
command_timeout = "60s"
"#,
        started = started.display(),
        go = go.display()
    );
    let mut d = Daemon::start_with("", &door);
    d.add_user("alice", "staff", "482913");
    let mut stream = std::net::TcpStream::connect(d.tcp).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream.write_all(b"PIN 482913\r\n").unwrap();
    d.wait_for(common::PATIENCE, || match started.exists() {
        true => Ok(()),
        false => Err("the request never reached the door".into()),
    });
    d.signal(libc::SIGTERM);
    d.wait_for(common::PATIENCE, || {
        match d
            .logs()
            .contains("shutting down: finishing requests in flight")
        {
            true => Ok(()),
            false => Err("the daemon never started shutting down".into()),
        }
    });
    std::fs::write(&go, "").unwrap();
    let mut reply = String::new();
    BufReader::new(stream).read_line(&mut reply).unwrap();
    assert_eq!(
        reply, "OK alice 0\r\n",
        "the in-flight request completed before exit"
    );
    d.wait_exit();
}
