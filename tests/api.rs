//! The admin JSON API on the real binary (reqwest, blocking): every route's happy path, a
//! PIN set over the API used at a TCP terminal, generated PINs shown once, token scopes and
//! refusals, and bad input refused with nothing changed (413, a PIN in the URL, path
//! traversal, header injection, malformed bodies, policy refusals, an import with bad rows).
//! The OpenAPI document is fetched, parsed and compared with what the server answers.

mod common;

use common::{Daemon, DEFAULT_TCP};
use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::Method;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::path::Path;

const ADMIN: &str = "admin-token-9f8e7d6c5b4a39281706";
const READ: &str = "read-token-0a1b2c3d4e5f60718293";

/// `[http]` with an admin token `ops` and a read token `portal` (0600 files), `[guests]`,
/// and a CSV directory `hr` (one user) so that sync has a source.
fn start() -> Daemon {
    Daemon::start_prepared(false, |dir| {
        let (admin, read) = (dir.join("ops.token"), dir.join("portal.token"));
        common::write_secret(&admin, &format!("{ADMIN}\n"));
        common::write_secret(&read, READ);
        let hr = dir.join("hr.csv");
        std::fs::write(&hr, "id,name,email,groups\nhal,Hal,,staff\n").unwrap();
        let extra = format!(
            "{DEFAULT_TCP}{}\n[guests]\nallowed = true\nmax_validity = \"1d\"\n\
             [[directory]]\nname = \"hr\"\nkind = \"csv\"\npath = \"{}\"\ninterval = \"1h\"\n",
            http(&admin, &read),
            hr.display()
        );
        (String::new(), extra)
    })
}

fn http(admin: &Path, read: &Path) -> String {
    format!(
        "\n[http]\nlisten = \"127.0.0.1:0\"\n\
         [[http.token]]\nname = \"ops\"\nfile = \"{}\"\nscope = \"admin\"\n\
         [[http.token]]\nname = \"portal\"\nfile = \"{}\"\nscope = \"read\"\n",
        admin.display(),
        read.display()
    )
}

struct Api {
    base: String,
    client: Client,
}

impl Api {
    fn new(d: &Daemon) -> Api {
        Api {
            base: format!("http://{}/api/v1", d.http()),
            client: Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .unwrap(),
        }
    }

    fn request(&self, method: Method, path: &str, token: Option<&str>) -> RequestBuilder {
        let r = self.client.request(method, format!("{}{path}", self.base));
        match token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    /// As the admin token, with an optional JSON body: (status, body as JSON or text).
    fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call_as(ADMIN, method, path, body)
    }

    fn call_as(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut r = self.request(method, path, Some(token));
        if let Some(b) = body {
            r = r.json(&b);
        }
        answer(r.send().unwrap())
    }

    fn users(&self) -> Vec<String> {
        let (status, users) = self.call(Method::GET, "/users", None);
        assert_eq!(status, 200, "{users}");
        let ids = users.as_array().unwrap().iter();
        ids.map(|u| u["id"].as_str().unwrap().to_string()).collect()
    }
}

/// Sends `head` (a request head, maybe part of a body) on a new raw connection and reads
/// the status line and headers of the answer, within 20 s: the connection stays open.
fn raw_head(d: &Daemon, head: &str) -> (std::net::TcpStream, String) {
    let mut s = std::net::TcpStream::connect(d.http()).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    s.write_all(head.as_bytes()).unwrap();
    let mut reader = std::io::BufReader::new(s.try_clone().unwrap());
    let mut answer = String::new();
    loop {
        let mut line = String::new();
        match std::io::BufRead::read_line(&mut reader, &mut line) {
            Ok(0) => break,
            Ok(_) if line == "\r\n" => break,
            Ok(_) => answer.push_str(&line),
            Err(e) => panic!("no answer to {head:?}: {e} (so far {answer:?})"),
        }
    }
    let length = answer.lines().find_map(|l| {
        l.to_ascii_lowercase()
            .strip_prefix("content-length:")
            .map(|v| v.trim().parse::<usize>().unwrap())
    });
    if let Some(n) = length {
        let mut body = vec![0u8; n];
        std::io::Read::read_exact(&mut reader, &mut body).unwrap();
        answer.push_str("\r\n");
        answer.push_str(&String::from_utf8_lossy(&body));
    }
    (s, answer)
}

fn answer(response: Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[test]
fn every_route_works_and_a_pin_set_over_the_api_opens_at_a_terminal() {
    let mut d = start();
    let api = Api::new(&d);
    let (s, created) = api.call(
        Method::PUT,
        "/users/alice",
        Some(json!({"name": "Alice", "email": "alice@example.org", "groups": ["staff"], "pin": "048213"})),
    );
    assert_eq!(s, 201, "{created}");
    assert!(created.get("generated_pin").is_none(), "{created}");
    assert!(api.users().contains(&"alice".to_string()));
    let (s, alice) = api.call(Method::GET, "/users/alice", None);
    assert_eq!((s, alice["id"].as_str()), (200, Some("alice")), "{alice}");
    assert!(!alice.to_string().contains("048213"), "{alice}");

    // A PIN set over the API opens at the terminal at once.
    let (s, set) = api.call(
        Method::POST,
        "/users/alice/pin",
        Some(json!({"pin": "730194"})),
    );
    assert_eq!(s, 200, "{set}");
    let mut t = d.terminal();
    assert_eq!(t.ask("PIN 730194"), "OK alice 0");
    assert_eq!(t.ask("PIN 048213"), "DENY");

    // A generated PIN is in the answer, once, and works.
    let (s, bob) = api.call(
        Method::PUT,
        "/users/bob",
        Some(json!({"groups": ["staff"], "generate": true})),
    );
    assert_eq!(s, 201, "{bob}");
    let pin = bob["generated_pin"]
        .as_str()
        .expect("generated_pin")
        .to_string();
    assert_eq!(t.ask(&format!("PIN {pin}")), "OK bob 0");
    let (s, again) = api.call(
        Method::POST,
        "/users/bob/pin",
        Some(json!({"generate": true})),
    );
    assert_eq!(s, 200, "{again}");
    let new_pin = again["generated_pin"].as_str().unwrap().to_string();
    assert_ne!(new_pin, pin);
    let (_, shown) = api.call(Method::GET, "/users/bob", None);
    assert!(!shown.to_string().contains(&new_pin), "shown once: {shown}");

    // Disable, enable, validity, duress.
    assert_eq!(api.call(Method::POST, "/users/bob/disable", None).0, 200);
    assert_eq!(t.ask(&format!("PIN {new_pin}")), "DENY");
    assert_eq!(api.call(Method::POST, "/users/bob/enable", None).0, 200);
    assert_eq!(t.ask(&format!("PIN {new_pin}")), "OK bob 0");
    let (s, v) = api.call(
        Method::PUT,
        "/users/bob/validity",
        Some(json!({"expires": "7d"})),
    );
    assert!(s == 200 && v["expires_at"].is_number(), "{s} {v}");
    let (s, v) = api.call(
        Method::PUT,
        "/users/alice/duress",
        Some(json!({"pin": "559013"})),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(api.call(Method::DELETE, "/users/alice/duress", None).0, 200);

    // Status, sync, mail.
    let (s, status) = api.call(Method::GET, "/status", None);
    assert!(s == 200 && status["version"].is_string(), "{status}");
    let (s, synced) = api.call(Method::POST, "/sync", None);
    assert!(s == 200 && synced[0]["source"] == "hr", "{synced}");
    assert!(api.users().contains(&"hal".to_string()), "the sync ran");
    let (s, _) = api.call(
        Method::POST,
        "/sync",
        Some(json!({"source": "hr", "full": true})),
    );
    assert_eq!(s, 200);
    let (s, mail) = api.call(Method::GET, "/mail", None);
    assert!(s == 200 && mail.is_array(), "{mail}");
    let (s, preview) = api.call(
        Method::GET,
        "/mail/preview?template=new_pin&user=alice",
        None,
    );
    assert_eq!(s, 200, "{preview}");
    assert!(preview["subject"].is_string(), "{preview}");

    // Lockouts: wrong PINs at the terminal, listed and cleared over the API.
    for _ in 0..3 {
        assert_eq!(t.ask("PIN 999111"), "DENY");
    }
    let (s, locks) = api.call(Method::GET, "/lockouts", None);
    assert_eq!(s, 200);
    let keys: Vec<String> = locks
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["key"].as_str().map(String::from))
        .collect();
    assert!(
        keys.iter().any(|k| k.starts_with("device:")),
        "no device counter: {locks}"
    );
    for key in &keys {
        let (s, cleared) = api.call(Method::DELETE, &format!("/lockouts/{key}"), None);
        assert_eq!(s, 200, "{cleared}");
    }
    assert_eq!(
        api.call(Method::DELETE, &format!("/lockouts/{}", keys[0]), None)
            .0,
        400,
        "gone"
    );

    // Guests.
    let guest =
        json!({"sponsor": "alice", "id": "gwen", "email": "gwen@example.org", "valid_for": "8h"});
    let (s, g) = api.call(Method::POST, "/guests", Some(guest));
    assert_eq!(s, 201, "{g}");
    let (s, list) = api.call(Method::GET, "/guests?sponsor=alice", None);
    assert!(s == 200 && list.to_string().contains("gwen"), "{list}");
    let (s, g) = api.call(
        Method::POST,
        "/guests/gwen/extend",
        Some(json!({"valid_for": "12h"})),
    );
    assert_eq!(s, 200, "{g}");
    assert_eq!(
        api.call(Method::DELETE, "/guests/gwen?sponsor=alice", None)
            .0,
        200
    );

    // Import a clean file.
    let csv = "id,name,groups,pin\ncarl,Carl,staff,615243\ndora,Dora,staff,\n";
    let r = api
        .request(Method::POST, "/import", Some(ADMIN))
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .unwrap();
    let (s, report) = answer(r);
    assert!(s == 200 && report["added"] == 2, "{s} {report}");
    assert_eq!(t.ask("PIN 615243"), "OK carl 0");

    // Remove; then 404.
    assert_eq!(api.call(Method::DELETE, "/users/bob", None).0, 200);
    assert_eq!(api.call(Method::GET, "/users/bob", None).0, 404);

    // Audit queries: by user and kind, every admin record made here says token:ops.
    let (s, events) = api.call(Method::GET, "/audit?user=alice&kind=admin&limit=50", None);
    assert_eq!(s, 200, "{events}");
    let events = events.as_array().unwrap();
    assert!(!events.is_empty());
    for e in events {
        assert_eq!(e["event"], "admin", "{e}");
        assert_eq!(e["user"], "alice", "{e}");
        assert_eq!(e["by"], "token:ops", "{e}");
    }
    let (s, none) = api.call(Method::GET, "/audit?since=2999-01-01", None);
    assert!(s == 200 && none.as_array().unwrap().is_empty(), "{none}");
    let (s, _) = api.call(
        Method::GET,
        "/audit?device=lobby-printer&until=2999-01-01T00:00:00Z",
        None,
    );
    assert_eq!(s, 200);
    // The CLI asks the same question through the socket.
    let out = d.cli_ok(
        &["audit", "--json", "--user", "alice", "--kind", "admin"],
        None,
    );
    assert!(
        out.lines().count() == events.len() && out.contains("token:ops"),
        "{out}"
    );
    d.stop();
}

#[test]
fn the_openapi_document_parses_and_lists_every_route_served() {
    let mut d = start();
    let api = Api::new(&d);
    let r = api
        .request(Method::GET, "/openapi.json", None)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let doc: Value = r.json().unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    let paths = doc["paths"].as_object().unwrap();
    // What this API serves (the README lists the same).
    let served = [
        ("get", "/api/v1/users"),
        ("get", "/api/v1/users/{id}"),
        ("put", "/api/v1/users/{id}"),
        ("delete", "/api/v1/users/{id}"),
        ("post", "/api/v1/users/{id}/pin"),
        ("put", "/api/v1/users/{id}/duress"),
        ("delete", "/api/v1/users/{id}/duress"),
        ("post", "/api/v1/users/{id}/enable"),
        ("post", "/api/v1/users/{id}/disable"),
        ("put", "/api/v1/users/{id}/validity"),
        ("get", "/api/v1/guests"),
        ("post", "/api/v1/guests"),
        ("delete", "/api/v1/guests/{id}"),
        ("post", "/api/v1/guests/{id}/extend"),
        ("get", "/api/v1/status"),
        ("post", "/api/v1/sync"),
        ("get", "/api/v1/lockouts"),
        ("delete", "/api/v1/lockouts/{key}"),
        ("get", "/api/v1/audit"),
        ("post", "/api/v1/import"),
        ("get", "/api/v1/mail"),
        ("get", "/api/v1/mail/preview"),
        ("get", "/api/v1/openapi.json"),
    ];
    let mut documented: Vec<(String, String)> = paths
        .iter()
        .flat_map(|(p, item)| {
            let methods = item.as_object().unwrap().keys();
            methods.map(move |m| (m.clone(), p.clone()))
        })
        .collect();
    documented.sort();
    let mut expected: Vec<(String, String)> = served
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    expected.sort();
    assert_eq!(documented, expected);
    // Every documented operation is served: with a read token, a route answers 200, 400,
    // 403 or 404 (no such user), never the fallback's 404 or 405.
    let client = Client::new();
    let root = format!("http://{}", d.http());
    for (method, path) in &documented {
        let concrete = path
            .replace("{id}", "nobody")
            .replace("{key}", "device:none");
        let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let r = client
            .request(m, format!("{root}{concrete}"))
            .bearer_auth(READ)
            .send()
            .unwrap();
        let status = r.status().as_u16();
        let body = r.text().unwrap();
        assert!(
            status != 405 && body != "not found\n",
            "{method} {path}: {status} {body}"
        );
        // Every route that is not a GET writes: a read token is refused before its body is
        // read, whatever the body (here a malformed one).
        if method != "get" {
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let r = client
                .request(m, format!("{root}{concrete}"))
                .bearer_auth(READ)
                .header("content-type", "application/json")
                .body("{not json")
                .send()
                .unwrap();
            let (s, e) = answer(r);
            assert_eq!(s, 403, "{method} {path}: {e}");
            assert!(
                e["error"].as_str().unwrap().contains("scope"),
                "{method} {path}: {e}"
            );
        }
    }
    assert!(
        doc["components"]["securitySchemes"]["bearer"].is_object(),
        "{doc}"
    );
    d.stop();
}

#[test]
fn tokens_are_checked_and_a_read_token_cannot_write() {
    let mut d = start();
    let api = Api::new(&d);
    assert_eq!(
        api.call(
            Method::PUT,
            "/users/alice",
            Some(json!({"groups": ["staff"], "pin": "048213"}))
        )
        .0,
        201
    );

    let r = api.request(Method::GET, "/users", None).send().unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer"));
    let wrong = "admin-token-9f8e7d6c5b4a39281707";
    assert_eq!(api.call_as(wrong, Method::GET, "/users", None).0, 401);
    // A wrong token leaves a trace: a refusal in the audit log naming the address, once a
    // minute with a count, never the value presented.
    let refused = d.wait_for(std::time::Duration::from_secs(20), || {
        let (s, events) = api.call(Method::GET, "/audit?kind=refused", None);
        let found = events.as_array().and_then(|a| {
            a.iter()
                .find(|e| {
                    e["frontend"] == "http"
                        && e["peer"]
                            .as_str()
                            .is_some_and(|p| p.starts_with("127.0.0.1:"))
                })
                .cloned()
        });
        found.ok_or(format!("no refusal audited: {s} {events}"))
    });
    assert!(!refused.to_string().contains(wrong), "{refused}");
    // The scheme is case-insensitive.
    let r = api
        .request(Method::GET, "/users", None)
        .header("authorization", format!("bearer {ADMIN}"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        api.call_as(wrong, Method::DELETE, "/users/alice", None).0,
        401
    );
    let r = api
        .request(Method::GET, "/users", None)
        .header("authorization", format!("Basic {ADMIN}"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);

    // Read: reads work, writes are refused (403), audited as the token, and change nothing.
    let (s, users) = api.call_as(READ, Method::GET, "/users", None);
    assert!(s == 200 && users.to_string().contains("alice"));
    assert_eq!(
        api.call_as(READ, Method::GET, "/audit?limit=5", None).0,
        200
    );
    let (s, refused) = api.call_as(READ, Method::DELETE, "/users/alice", None);
    assert_eq!(s, 403, "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("scope = \"admin\""),
        "{refused}"
    );
    let (s, _) = api.call_as(
        READ,
        Method::POST,
        "/users/alice/pin",
        Some(json!({"pin": "730194"})),
    );
    assert_eq!(s, 403);
    assert!(api.users().contains(&"alice".to_string()));
    let mut t = d.terminal();
    assert_eq!(t.ask("PIN 048213"), "OK alice 0", "the PIN is unchanged");
    let (_, refusals) = api.call(Method::GET, "/audit?kind=admin", None);
    let by_portal = refusals
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "refused" && e["by"] == "token:portal")
        .count();
    assert_eq!(by_portal, 2, "{refusals}");
    // SIGHUP does not re-read token files, and says so.
    d.signal(libc::SIGHUP);
    d.wait_for(std::time::Duration::from_secs(20), || {
        let logs = d.logs();
        logs.contains("were not re-read")
            .then_some(())
            .ok_or("no word on the token files after SIGHUP".to_string())
    });
    let logs = d.logs();
    for token in [ADMIN, READ, wrong] {
        assert!(!logs.contains(token), "a token in the daemon log");
    }
    d.stop();
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let mut d = start();
    let api = Api::new(&d);
    assert_eq!(
        api.call(
            Method::PUT,
            "/users/alice",
            Some(json!({"groups": ["staff"], "pin": "048213"}))
        )
        .0,
        201
    );
    let before = api.users();

    // A PIN in the URL is not accepted, whatever the route.
    for path in [
        "/users/alice/pin?pin=730194",
        "/users?PIN=730194",
        "/status?new_p%69n=730194",
    ] {
        let (s, e) = api.call(Method::POST, path, Some(json!({"generate": true})));
        assert_eq!(s, 400, "{path}: {e}");
        assert!(!e.to_string().contains("730194"), "{e}");
    }

    // Path traversal.
    for method in [Method::GET, Method::PUT, Method::DELETE] {
        let (s, e) = api.call(method.clone(), "/users/..%2F..%2Fetc", Some(json!({})));
        assert_eq!(s, 400, "{method}: {e}");
        let (s, _) = api.call(method, "/users/..%2Falice", Some(json!({})));
        assert_eq!(s, 400);
    }

    // Header injection: CR/LF in an id is refused and never reflected into a header.
    let r = api
        .request(
            Method::PUT,
            "/users/eve%0D%0ASet-Cookie:%20x=1",
            Some(ADMIN),
        )
        .json(&json!({"groups": ["staff"]}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("set-cookie").is_none());
    // … and a raw request with a CR inside a header value is refused by the server.
    let mut raw = std::net::TcpStream::connect(d.http()).unwrap();
    let body = r#"{"groups":["staff"]}"#;
    write!(
        raw,
        "PUT /api/v1/users/eve HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN}\r\nX-Note: a\rSet-Cookie: x=1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut reply = String::new();
    let _ = raw.read_to_string(&mut reply);
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");

    // Malformed bodies and unknown fields: 400, never quoting the body.
    let r = api
        .request(Method::POST, "/users/alice/pin", Some(ADMIN))
        .header("content-type", "application/json")
        .body(r#"{"pin": 730194}"#)
        .send()
        .unwrap();
    let (s, e) = answer(r);
    assert!(s == 400 && !e.to_string().contains("730194"), "{s} {e}");
    let (s, e) = api.call(
        Method::POST,
        "/users/alice/pin",
        Some(json!({"pin": "730194", "pni": "1"})),
    );
    assert!(s == 400 && !e.to_string().contains("730194"), "{e}");
    let (s, e) = api.call(Method::POST, "/users/alice/pin", Some(json!({})));
    assert_eq!(s, 400, "{e}");

    // Policy (422), a taken PIN and an existing user (409), no such user (404).
    let (s, e) = api.call(
        Method::POST,
        "/users/alice/pin",
        Some(json!({"pin": "1111"})),
    );
    assert!(s == 422 && !e.to_string().contains("1111"), "{s} {e}");
    assert_eq!(
        api.call(
            Method::PUT,
            "/users/bob",
            Some(json!({"groups": ["staff"], "pin": "048213"}))
        )
        .0,
        409
    );
    assert_eq!(
        api.call(
            Method::PUT,
            "/users/alice",
            Some(json!({"groups": ["staff"]}))
        )
        .0,
        409
    );
    assert_eq!(
        api.call(
            Method::POST,
            "/users/nobody/pin",
            Some(json!({"pin": "730194"}))
        )
        .0,
        404
    );
    assert_eq!(
        api.call(Method::GET, "/audit?user=alice&limit=x", None).0,
        400
    );
    assert_eq!(api.call(Method::GET, "/audit?since=yesterday", None).0, 400);
    assert_eq!(api.call(Method::GET, "/audit?limit=0", None).0, 400);

    // An import with bad rows: every problem reported, nothing applied.
    let csv = "id,name,groups,pin\nann,Ann,staff,730194\nbea,Bea,staff\ncid,Cid,staff,1111\ndee,Dee,staff,730195,extra\n";
    let r = api
        .request(Method::POST, "/import", Some(ADMIN))
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .unwrap();
    let (s, e) = answer(r);
    assert_eq!(s, 422, "{e}");
    let lines: Vec<u64> = e["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [3, 4, 5], "{e}");
    assert!(
        !e.to_string().contains("1111") && !e.to_string().contains("730194"),
        "{e}"
    );
    // An upload declared over 32 MiB is 413 before a byte of it is sent, in the API's JSON
    // form; a moderate one (~1 MiB) is read and checked.
    let (_, refused) = raw_head(
        &d,
        &format!(
            "POST /api/v1/import?dry_run=true HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN}\r\n\
             Content-Type: text/csv\r\nContent-Length: {}\r\n\r\n",
            33 << 20
        ),
    );
    assert!(refused.starts_with("HTTP/1.1 413"), "{refused}");
    assert!(refused.contains("{\"error\":"), "{refused}");
    let moderate = format!(
        "id,name,groups\n{}",
        (0..28_000)
            .map(|i| format!("zed{i:05},Zed Zedson the {i:05}th,staff\n"))
            .collect::<String>()
    );
    assert!(moderate.len() > 900 * 1024, "{}", moderate.len());
    let r = api
        .request(Method::POST, "/import?dry_run=true", Some(ADMIN))
        .header("content-type", "text/csv")
        .body(moderate)
        .send()
        .unwrap();
    let (s, report) = answer(r);
    assert_eq!(s, 200, "{report}");
    assert_eq!(report["rows"], 28_000, "{report}");
    // A body over 64 KiB on another route: 413 in the same JSON form.
    let huge = json!({"groups": ["staff"], "name": "x".repeat(70 * 1024)});
    let (s, e) = api.call(Method::PUT, "/users/huge", Some(huge));
    assert!(s == 413 && e["error"].is_string(), "{s} {e}");

    assert_eq!(api.users(), before, "nothing changed");
    let mut t = d.terminal();
    assert_eq!(t.ask("PIN 048213"), "OK alice 0");
    let logs = d.logs();
    assert!(
        !logs.contains("730194") && !logs.contains("048213"),
        "no PIN in the log"
    );
    d.stop();
}

/// An import upload costs nothing before its caller is known to be an admin and nothing
/// over its limit; one import runs at a time.
#[test]
fn an_import_upload_is_checked_before_its_body_is_read() {
    let mut d = start();
    let head = |token: &str, length: usize| {
        format!(
            "POST /api/v1/import?dry_run=true HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: text/csv\r\nContent-Length: {length}\r\n\r\n"
        )
    };
    // A read token: 403 at once, though none of the 31 MiB announced was sent.
    let (_, refused) = raw_head(&d, &head(READ, 31 << 20));
    assert!(refused.starts_with("HTTP/1.1 403"), "{refused}");
    assert!(refused.contains("scope"), "{refused}");
    // A read token with a malformed body on another write route: 403, not 400.
    let (_, refused) = raw_head(
        &d,
        &format!(
            "POST /api/v1/users/alice/pin HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {READ}\r\n\
             Content-Type: application/json\r\nContent-Length: 5\r\n\r\n{{pin:"
        ),
    );
    assert!(refused.starts_with("HTTP/1.1 403"), "{refused}");

    // An import in progress (its upload half sent) holds the one import place: another is
    // 409 with Retry-After, and is taken again once the first is gone.
    let mut first = std::net::TcpStream::connect(d.http()).unwrap();
    first
        .write_all(format!("{}id,name,groups\n", head(ADMIN, 1000)).as_bytes())
        .unwrap();
    let small = "id,name,groups\nzed,Zed,staff\n";
    let second = |expect: u16| {
        let r = Api::new(&d)
            .request(Method::POST, "/import?dry_run=true", Some(ADMIN))
            .header("content-type", "text/csv")
            .body(small)
            .send()
            .unwrap();
        let retry = r.headers().get("retry-after").cloned();
        let (s, e) = answer(r);
        if s == expect {
            Ok((e, retry))
        } else {
            Err(format!("{s} {e}"))
        }
    };
    let (busy, retry) = d.wait_for(std::time::Duration::from_secs(20), || second(409));
    assert!(retry.is_some(), "409 without Retry-After: {busy}");
    assert!(
        busy["error"].as_str().unwrap().contains("in progress"),
        "{busy}"
    );
    drop(first);
    d.wait_for(std::time::Duration::from_secs(20), || second(200));
    d.stop();
}

#[test]
fn a_token_file_others_may_read_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let (admin, read) = (
        dir.path().join("ops.token"),
        dir.path().join("portal.token"),
    );
    common::write_secret(&admin, ADMIN);
    common::write_secret(&read, READ);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&read, std::fs::Permissions::from_mode(0o644)).unwrap();
    let config = dir.path().join("pinwarden.toml");
    let extra = format!("{DEFAULT_TCP}{}", http(&admin, &read));
    std::fs::write(&config, common::config_text(dir.path(), "", &extra)).unwrap();
    let out = std::process::Command::new(common::BIN)
        .args(["run", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("token portal") && err.contains("chmod 600"),
        "{err}"
    );
    let out = std::process::Command::new(common::BIN)
        .args(["check-config", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("chmod 600"),
        "check-config: {err}"
    );
}
