//! End-to-end: a SCIM 2.0 `[[directory]]` against a small real HTTP server started by the
//! test (tests/fixtures/scim_server.py): paging, incremental runs by `meta.lastModified`,
//! ETag / If-None-Match, deletions on a complete listing and a rejected token.

mod common;

use common::Daemon;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

const EXT: &str = "urn:ietf:params:scim:schemas:extension:pinwarden:2.0:User";

struct Server {
    child: Child,
    port: u16,
    resources: PathBuf,
}

impl Server {
    fn start(dir: &Path, token: &str, users: &[Value]) -> Server {
        let resources = dir.join("resources.json");
        std::fs::write(&resources, serde_json::to_vec(users).unwrap()).unwrap();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/scim_server.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(&resources)
            .arg(token)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run python3 ({e}): install the Debian package `python3`")
            });
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().expect("the server prints its port");
        Server {
            child,
            port,
            resources,
        }
    }

    fn set(&self, users: &[Value]) {
        std::fs::write(&self.resources, serde_json::to_vec(users).unwrap()).unwrap();
    }

    fn stats(&self) -> Value {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        use std::io::{Read, Write};
        write!(stream, "GET /stats HTTP/1.0\r\n\r\n").unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).unwrap();
        serde_json::from_str(text.split("\r\n\r\n").nth(1).unwrap()).unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn user(id: &str, login: &str, pin: &str, modified: &str) -> Value {
    json!({
        "id": id,
        "userName": login,
        "displayName": login.to_uppercase(),
        "active": true,
        "emails": [{"value": format!("{login}@example.org"), "primary": true}],
        "groups": [{"display": "staff"}],
        EXT: {"pin": pin},
        "meta": {"lastModified": modified, "resourceType": "User"}
    })
}

fn summary(out: &str) -> &str {
    out.lines().find(|l| l.starts_with("idp:")).unwrap_or(out)
}

#[test]
fn scim_users_follow_the_server_incrementally_with_etags_and_full_reconciles() {
    let files = tempfile::tempdir().unwrap();
    let token = files.path().join("token");
    common::write_secret(&token, "s3cret-token\n");
    let t1 = "2026-01-01T00:00:00Z";
    let server = Server::start(
        files.path(),
        "s3cret-token",
        &[
            user("1", "ann", "482913", t1),
            user("2", "bob", "730194", t1),
        ],
    );
    let extra = format!(
        r#"{}
[[directory]]
name = "idp"
kind = "scim"
url = "http://127.0.0.1:{}/scim/v2"
token_file = "{}"
page_size = 1
interval = "1h"
full_every = "1h"
attributes = {{ pin = "{EXT}:pin" }}
"#,
        common::DEFAULT_TCP,
        server.port,
        token.display()
    );
    let d = Daemon::start_with("", &extra);
    d.cli_ok(&["sync"], None);
    let mut t = d.terminal();
    assert_eq!(t.ask("PIN 482913"), "OK ann 0");
    let ann = d.cli_ok(&["user", "show", "ann"], None);
    assert!(
        ann.contains("ann@example.org") && ann.contains("Upstream"),
        "{ann}"
    );

    let t2 = "2026-01-02T00:00:00Z";
    server.set(&[
        user("1", "ann", "482913", t1),
        user("2", "bob", "730195", t2),
        user("3", "cat", "905172", t2),
    ]);
    let out = d.cli_ok(&["sync"], None);
    assert!(
        summary(&out).contains("1 added, 1 changed, 0 removed, 2 re-hashed"),
        "only what changed since the cursor is fetched and re-hashed: {out}"
    );
    assert_eq!(t.ask("PIN 730194"), "DENY");
    assert_eq!(t.ask("PIN 730195"), "OK bob 0");
    assert_eq!(t.ask("PIN 905172"), "OK cat 0");

    for _ in 0..2 {
        let out = d.cli_ok(&["sync"], None);
        assert!(summary(&out).contains("0 added, 0 changed"), "{out}");
    }
    assert!(
        server.stats()["not_modified"].as_u64().unwrap() >= 1,
        "If-None-Match was used"
    );

    // A deletion is only visible in a complete listing.
    server.set(&[
        user("1", "ann", "482913", t1),
        user("2", "bob", "730195", t2),
    ]);
    let out = d.cli_ok(&["sync", "--full"], None);
    assert!(summary(&out).contains("1 removed"), "{out}");
    assert_eq!(t.ask("PIN 905172"), "DENY");

    // A bad token: the run fails and says so; decisions go on from the cache.
    common::write_secret(&token, "wrong\n");
    let out = d.cli(&["sync"], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("401"), "{stderr}");
    assert!(
        !stderr.contains("wrong"),
        "the token is never echoed: {stderr}"
    );
    assert_eq!(t.ask("PIN 482913"), "OK ann 0");
    let status = d.status();
    assert_eq!(
        status["directories"][0]["last_error_kind"], "rejected",
        "{status}"
    );
    assert!(!d.logs().contains("482913"), "no PIN in the log");
}

#[test]
fn an_incremental_scim_run_replaces_a_pin_set_here_with_the_unchanged_directory_pin() {
    let files = tempfile::tempdir().unwrap();
    let token = files.path().join("token");
    common::write_secret(&token, "s3cret-token\n");
    let t1 = "2026-01-01T00:00:00Z";
    let server = Server::start(
        files.path(),
        "s3cret-token",
        &[user("1", "ann", "482913", t1)],
    );
    let extra = format!(
        r#"{}
[[directory]]
name = "idp"
kind = "scim"
url = "http://127.0.0.1:{}/scim/v2"
token_file = "{}"
interval = "1h"
full_every = "1h"
attributes = {{ pin = "{EXT}:pin" }}
"#,
        common::DEFAULT_TCP,
        server.port,
        token.display()
    );
    let d = Daemon::start_with("", &extra);
    d.cli_ok(&["sync"], None);
    let out = d.cli_ok(&["sync"], None);
    assert!(
        summary(&out).contains("0 added, 0 changed"),
        "incremental and empty: {out}"
    );

    d.cli_ok(&["user", "set-pin", "ann", "--pin-stdin"], Some("615243"));
    let mut t = d.terminal();
    assert_eq!(t.ask("PIN 615243"), "OK ann 0", "the temporary PIN works");
    let out = d.cli_ok(&["sync"], None);
    assert!(summary(&out).contains("1 re-hashed"), "{out}");
    assert_eq!(
        t.ask("PIN 615243"),
        "DENY",
        "the directory's PIN replaced it"
    );
    assert_eq!(t.ask("PIN 482913"), "OK ann 0");

    let out = d.cli_ok(&["sync"], None);
    assert!(
        summary(&out).contains("0 added, 0 changed, 0 removed, 0 re-hashed"),
        "back to incremental runs: {out}"
    );
    assert!(!d.logs().contains("615243"), "no PIN in the log");
}
