//! The HTTP listener on the real binary: health and readiness, headers every response
//! carries, TLS from PEM files (a certificate made by openssl), and a key file others may
//! read refused at start.

mod common;

use common::{Daemon, DEFAULT_TCP, HTTP};
use std::path::Path;
use std::process::Command;

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
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert!(headers["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));
    let ready = client.get(format!("{base}/readyz")).send().unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.text().unwrap(), "ready\n");
    let missing = client.get(format!("{base}/../etc/passwd")).send().unwrap();
    assert_eq!(missing.status(), 404);
    let status = daemon.status();
    assert!(status["workers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w["name"].as_str().unwrap().starts_with("http listener")));
    daemon.stop();
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
