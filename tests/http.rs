//! The HTTP listener on the real binary: health and readiness, headers every response
//! carries, TLS from PEM files (a certificate made by openssl), and a key file others may
//! read refused at start.

mod common;

use common::{Daemon, DEFAULT_TCP, HTTP};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// A raw connection from another loopback address (Linux routes 127.0.0.0/8 to lo).
fn connect_from(source: &str, addr: SocketAddr) -> TcpStream {
    let stream = common::Terminal::connect_from(source, addr).stream();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

/// The answer to one raw request on a new connection from `source`, closed by the server.
fn raw(source: &str, addr: SocketAddr, request: &str) -> Result<String, String> {
    let mut s = connect_from(source, addr);
    s.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
    let mut reply = Vec::new();
    match s.read_to_end(&mut reply) {
        Ok(_) => Ok(String::from_utf8_lossy(&reply).into_owned()),
        Err(e) if !reply.is_empty() => Ok(format!("{} ({e})", String::from_utf8_lossy(&reply))),
        Err(e) => Err(format!("no answer: {e}")),
    }
}

fn healthz(source: &str, addr: SocketAddr) -> Result<(), String> {
    let reply = raw(
        source,
        addr,
        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )?;
    if reply.starts_with("HTTP/1.1 200") {
        Ok(())
    } else {
        Err(format!("healthz answered {reply:?}"))
    }
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(20))
        .build()
        .unwrap()
}

#[test]
fn health_readiness_and_headers_over_plain_http() {
    let mut daemon = Daemon::start_with("", &format!("{DEFAULT_TCP}{HTTP}"));
    let base = format!("http://{}", daemon.http());
    let client = client();
    let alive = client.get(format!("{base}/healthz")).send().unwrap();
    assert_eq!(alive.status(), 200);
    let headers = alive.headers().clone();
    assert_eq!(alive.text().unwrap(), "ok\n");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "same-origin");
    assert!(headers["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));
    let ready = client.get(format!("{base}/readyz")).send().unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.text().unwrap(), "ready\n");
    // Path traversal on a raw socket (reqwest would normalise `..` away before sending).
    for path in [
        "/../etc/passwd",
        "/api/v1/../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
    ] {
        let reply = raw(
            "127.0.0.1",
            daemon.http(),
            &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        )
        .unwrap();
        assert!(
            reply.starts_with("HTTP/1.1 404") || reply.starts_with("HTTP/1.1 400"),
            "{path}: {reply}"
        );
        assert!(!reply.contains("root:"), "{path}: {reply}");
    }
    let status = daemon.status();
    assert!(status["workers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w["name"].as_str().unwrap().starts_with("http listener")));
    daemon.stop();
}

/// Clients that pipeline requests and never read their answers are dropped once they stall
/// (`/healthz` answers again), and one address cannot take every connection slot.
#[test]
fn stalled_readers_are_dropped_and_one_address_cannot_take_every_slot() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("ops.token");
    common::write_secret(&token, "admin-token-9f8e7d6c5b4a39281706\n");
    let http = format!(
        "[http]\nlisten = \"127.0.0.1:0\"\nmax_connections = 4\nmax_per_source = 2\n\
         [[http.token]]\nname = \"ops\"\nfile = \"{}\"\nscope = \"admin\"\n",
        token.display()
    );
    let mut daemon = Daemon::start_with("", &format!("{DEFAULT_TCP}{http}"));
    let addr = daemon.http();

    // One address: two connections, then a third is refused at accept (503) while another
    // address is still served.
    let held: Vec<TcpStream> = (0..2).map(|_| connect_from("127.0.0.2", addr)).collect();
    let mut third = connect_from("127.0.0.2", addr);
    let mut refused = String::new();
    let _ = third.read_to_string(&mut refused);
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused:?}");
    assert!(refused.contains("Retry-After"), "{refused}");
    healthz("127.0.0.3", addr).unwrap();
    drop(held);

    // Four stalled readers fill every slot: 10 000 pipelined requests for the OpenAPI
    // document each, never read. Their answers must not fit the socket buffers (loopback
    // autotunes the receive buffer up to tcp_rmem's maximum, 32 MiB here): with 1 000, a
    // run found every answer buffered and the connection never stalled.
    const PIPELINED: usize = 10_000;
    let request = "GET /api/v1/openapi.json HTTP/1.1\r\nHost: x\r\n\r\n".repeat(PIPELINED);
    let stalled: Vec<TcpStream> = ["127.0.0.4", "127.0.0.5", "127.0.0.6", "127.0.0.7"]
        .iter()
        .map(|source| {
            let mut s = connect_from(source, addr);
            s.write_all(request.as_bytes()).unwrap();
            s
        })
        .collect();
    // Once they have stalled for the write limit they are closed and /healthz answers.
    daemon.wait_for(Duration::from_secs(90), || {
        healthz("127.0.0.8", addr).map_err(|e| format!("/healthz: {e}"))
    });
    // Each stalled connection was closed by the server (without the limit they would be
    // kept alive after the last answer, and a read would time out).
    for mut s in stalled {
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut sink = vec![0u8; 1 << 16];
        let mut answers = 0usize;
        let mut last = Vec::new();
        loop {
            match s.read(&mut sink) {
                Ok(0) => break,
                Ok(n) => {
                    last.extend_from_slice(&sink[..n]);
                    answers += count(&last, b"HTTP/1.1 200");
                    let keep = last.len().min(11);
                    last.drain(..last.len() - keep);
                }
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
                Err(e) => {
                    panic!("the stalled connection is still open after {answers} answers: {e}")
                }
            }
        }
        assert!(
            answers < PIPELINED,
            "every answer was sent: the connection never stalled"
        );
    }
    daemon.stop();
}

fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}

/// A self-signed certificate for 127.0.0.1 (openssl from Debian's `openssl` package).
fn make_cert(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=127.0.0.1"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl missing: install the Debian package openssl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

#[test]
fn tls_from_pem_files() {
    use std::os::unix::fs::PermissionsExt;
    let mut cert_pem = Vec::new();
    let mut daemon = Daemon::start_prepared(false, |dir| {
        let (cert, key) = make_cert(dir);
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        cert_pem = std::fs::read(&cert).unwrap();
        let http = format!(
            "[http]\nlisten = \"127.0.0.1:0\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
            cert.display(),
            key.display()
        );
        (String::new(), format!("{DEFAULT_TCP}{http}"))
    });
    let addr = daemon.http();
    let client = reqwest::blocking::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&cert_pem).unwrap())
        .timeout(std::time::Duration::from_secs(20))
        .build()
        .unwrap();
    let alive = client
        .get(format!("https://{addr}/healthz"))
        .send()
        .unwrap();
    assert_eq!(alive.status(), 200);
    assert!(alive.headers()["strict-transport-security"]
        .to_str()
        .unwrap()
        .starts_with("max-age="));
    // Plain HTTP to the TLS port is not served.
    let plain = client.get(format!("http://{addr}/healthz")).send();
    assert!(plain.is_err() || plain.unwrap().status() != 200);
    daemon.stop();
}

#[test]
fn a_key_others_may_read_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = make_cert(dir.path());
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let http = format!(
        "[http]\nlisten = \"127.0.0.1:0\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
        cert.display(),
        key.display()
    );
    let config = dir.path().join("pinwarden.toml");
    std::fs::write(
        &config,
        common::config_text(dir.path(), "", &format!("{DEFAULT_TCP}{http}")),
    )
    .unwrap();
    let out = Command::new(common::BIN)
        .args(["run", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("http.tls_key") && err.contains("chmod 600"),
        "{err}"
    );
}
