//! `/metrics` on the real binary: known traffic at a TCP terminal (grants, wrong PINs, a
//! user lock, a device lock) read back as exact counts, the argon2 histogram counting one
//! computation per evaluated attempt, active lockouts matching `status` (and surviving a
//! restart), no PIN or user id anywhere in the page, and `[http] metrics = false`.

mod common;

use common::{wait_until, Daemon, DEFAULT_TCP, HTTP, PATIENCE};
use std::collections::BTreeMap;

/// One sample line: name, labels, value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the Prometheus text format as we write it (no escapes inside label values).
fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("`series value`");
            let (name, labels) = match series.split_once('{') {
                None => (series, BTreeMap::new()),
                Some((name, rest)) => {
                    let body = rest.strip_suffix('}').expect("labels end in }");
                    let labels = body
                        .split("\",")
                        .filter(|p| !p.is_empty())
                        .map(|pair| {
                            let (k, v) = pair.split_once("=\"").expect("k=\"v\"");
                            (k.to_string(), v.trim_end_matches('"').to_string())
                        })
                        .collect();
                    (name, labels)
                }
            };
            Sample {
                name: name.to_string(),
                labels,
                value: match value {
                    "+Inf" => f64::INFINITY,
                    v => v
                        .parse()
                        .unwrap_or_else(|_| panic!("bad value in `{line}`")),
                },
            }
        })
        .collect()
}

struct Page {
    text: String,
    samples: Vec<Sample>,
}

impl Page {
    /// The value of the one sample named `name` whose labels include `labels`.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let found: Vec<&Sample> = self
            .samples
            .iter()
            .filter(|s| {
                s.name == name
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .collect();
        assert!(found.len() <= 1, "{name} {labels:?} matches {found:?}");
        found.first().map(|s| s.value)
    }

    fn decisions(&self, outcome: &str, reason: &str) -> f64 {
        let labels = [
            ("device", "lobby-printer"),
            ("outcome", outcome),
            ("reason", reason),
        ];
        self.get("pinwarden_decisions_total", &labels)
            .unwrap_or_else(|| panic!("no {outcome}/{reason} series in\n{}", self.text))
    }
}

fn scrape(daemon: &Daemon) -> Page {
    let url = format!("http://{}/metrics", daemon.http());
    let response = reqwest::blocking::Client::builder()
        .timeout(PATIENCE)
        .build()
        .unwrap()
        .get(url)
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    let kind = response.headers()["content-type"].to_str().unwrap();
    assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
    let text = response.text().unwrap();
    Page {
        samples: parse(&text),
        text,
    }
}

/// The failure budget of tests/tcp_terminal.rs: the fourth failure locks the device (and
/// this source), and three wrong PINs for one id lock that user.
const STRICT_LOCKOUT: &str = r#"
[lockout]
free_failures = 3
source_failures = 3
initial_backoff = "1h"
max_backoff = "2h"
user_max_failures = 3
"#;

const PINS: [&str; 6] = ["482913", "730194", "111293", "220394", "330495", "440596"];

#[test]
fn known_traffic_is_counted_exactly_without_pins_or_user_ids() {
    let mut d = Daemon::start_with(STRICT_LOCKOUT, &format!("{DEFAULT_TCP}{HTTP}"));
    d.add_user("alice", "staff", PINS[0]);
    d.add_user("bob", "guests", PINS[1]);
    let mut t = d.terminal();
    // Three grants.
    assert_eq!(t.ask(&format!("PIN {}", PINS[0])), "OK alice 0");
    assert_eq!(t.ask(&format!("PIN {}", PINS[0])), "OK alice 0");
    assert_eq!(t.ask(&format!("ID bob PIN {}", PINS[1])), "OK bob 0");
    // Three wrong PINs for alice: she is locked, the device has used its free failures.
    for wrong in &PINS[2..5] {
        assert_eq!(t.ask(&format!("ID alice PIN {wrong}")), "DENY");
    }
    // An unknown PIN: the fourth failure locks the device and this source.
    assert_eq!(t.ask(&format!("PIN {}", PINS[5])), "DENY");
    // Locked: refused without argon2.
    assert_eq!(t.ask(&format!("PIN {}", PINS[0])), "DENY");

    let expected_locks = d.status()["locked"].as_array().unwrap().len();
    assert_eq!(expected_locks, 3, "device, source and user: {}", d.status());
    let page = wait_until(PATIENCE, || {
        let page = scrape(&d);
        match page.get(
            "pinwarden_argon2_duration_seconds_count",
            &[("work", "attempt")],
        ) {
            Some(7.0) => Ok(page),
            other => Err(format!("attempt count {other:?}:\n{}", page.text)),
        }
    });
    assert_eq!(page.decisions("grant", ""), 3.0);
    assert_eq!(page.decisions("deny", "wrong_pin"), 3.0);
    assert_eq!(page.decisions("deny", "unknown_pin"), 1.0);
    assert_eq!(page.decisions("deny", "locked_out"), 1.0);
    assert_eq!(page.decisions("busy", ""), 0.0);
    let all: f64 = page
        .samples
        .iter()
        .filter(|s| s.name == "pinwarden_decisions_total")
        .map(|s| s.value)
        .sum();
    assert_eq!(all, 8.0, "no decision counted twice or elsewhere");
    assert_eq!(
        page.get(
            "pinwarden_decisions_total",
            &[("device", "front-door"), ("outcome", "grant")]
        ),
        Some(0.0),
        "every configured device has its series from the start"
    );
    // One argon2 computation per evaluated attempt (7: the locked one costs none); the
    // histogram's buckets are cumulative and end at the count.
    let inf = [("work", "attempt"), ("le", "+Inf")];
    assert_eq!(
        page.get("pinwarden_argon2_duration_seconds_bucket", &inf),
        Some(7.0)
    );
    let admin = page.get(
        "pinwarden_argon2_duration_seconds_count",
        &[("work", "admin")],
    );
    assert!(admin >= Some(2.0), "two enrolments hashed: {admin:?}");
    assert_eq!(page.get("pinwarden_lockouts_active", &[]), Some(3.0));
    assert_eq!(page.get("pinwarden_users", &[]), Some(2.0));
    assert_eq!(page.get("pinwarden_hash_in_flight", &[]), Some(0.0));
    assert_eq!(page.get("pinwarden_hash_busy_total", &[]), Some(0.0));
    assert_eq!(
        page.get(
            "pinwarden_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(1.0)
    );
    assert!(page.get("pinwarden_uptime_seconds", &[]).unwrap() >= 0.0);
    let listener = page
        .samples
        .iter()
        .find(|s| s.name == "pinwarden_worker_healthy" && s.labels["worker"].contains("tcp"))
        .unwrap_or_else(|| panic!("no tcp listener worker in\n{}", page.text));
    assert_eq!(listener.value, 1.0);
    for secret in PINS.iter().chain(&["alice", "bob"]) {
        assert!(
            !page.text.contains(secret),
            "`{secret}` appears in /metrics:\n{}",
            page.text
        );
    }

    // Locks set before a restart still count; decision counters start again.
    drop(t);
    d.restart();
    let page = scrape(&d);
    assert_eq!(page.get("pinwarden_lockouts_active", &[]), Some(3.0));
    assert_eq!(page.decisions("grant", ""), 0.0);
    // An operator lifting the user's lock is seen at the next scrape.
    d.cli_ok(&["lockout", "clear", "user:alice"], None);
    let page = scrape(&d);
    assert_eq!(page.get("pinwarden_lockouts_active", &[]), Some(2.0));
    d.stop();
}

#[test]
fn metrics_can_be_turned_off() {
    let http = HTTP.replace("listen", "metrics = false\nlisten");
    let mut d = Daemon::start_with("", &format!("{DEFAULT_TCP}{http}"));
    let base = format!("http://{}", d.http());
    let client = reqwest::blocking::Client::new();
    assert_eq!(
        client
            .get(format!("{base}/metrics"))
            .send()
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        client
            .get(format!("{base}/healthz"))
            .send()
            .unwrap()
            .status(),
        200
    );
    d.stop();
}
