//! End-to-end: every background worker is listed by `pinwarden status` (text and JSON) with
//! its state and last error; a keypad whose port does not exist shows why, and recovers
//! when it is plugged in. The real binary, started and stopped by signal.

mod common;

use common::pty::Pty;
use common::Daemon;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

fn config(dir: &Path) -> String {
    std::fs::write(dir.join("users.csv"), "id,name,email,groups,pin\n").unwrap();
    format!(
        r#"{tcp}
[[keypad]]
port = "{keypad}"
device = "front-door"

[[door]]
device = "front-door"
actuator = "none"

[[directory]]
name = "hr"
kind = "csv"
path = "{csv}"
"#,
        tcp = common::DEFAULT_TCP,
        keypad = dir.join("keypad").display(),
        csv = dir.join("users.csv").display(),
    )
}

/// The worker whose name starts with `prefix`, once `check` holds for it (within 10 s).
fn worker_when(d: &Daemon, prefix: &str, check: impl Fn(&Value) -> bool) -> Value {
    d.wait_for(Duration::from_secs(10), || {
        let status = d.status();
        status["workers"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|w| w["name"].as_str().is_some_and(|n| n.starts_with(prefix)))
            .filter(|w| check(w))
            .cloned()
            .ok_or_else(|| format!("worker {prefix} not as expected: {status:#}"))
    })
}

#[test]
fn a_missing_keypad_shows_its_last_error_in_status_and_recovers_when_plugged_in() {
    let dir = tempfile::tempdir().unwrap();
    let text = config(dir.path());
    let mut d = Daemon::start_edited(|t| t.replace("{EXTRA}", &text));

    let names: Vec<String> = d.status()["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap().to_string())
        .collect();
    for expected in [
        "door front-door",
        "directory hr",
        "audit pruning",
        "control socket",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }

    let failing = worker_when(&d, "keypad front-door", |w| {
        w["failures"].as_u64() >= Some(1)
    });
    assert_eq!(failing["state"], "backing_off", "{failing}");
    let error = failing["last_error"].as_str().unwrap();
    assert!(error.contains("unavailable"), "{error}");
    assert!(failing["last_error_at"].is_number() && failing["retry_at"].is_number());
    let text = d.cli_ok(&["status"], None);
    let line = text
        .lines()
        .find(|l| l.starts_with("worker keypad front-door"))
        .unwrap_or_else(|| panic!("no keypad line in:\n{text}"));
    assert!(line.contains(": backing off until "), "{line}");
    assert!(
        line.contains("last error") && line.contains("unavailable"),
        "{line}"
    );

    let _keypad = Pty::plug(&dir.path().join("keypad"));
    let up = worker_when(&d, "keypad front-door", |w| w["state"] == "working");
    assert_eq!(up["failures"], 0, "the failure streak ended: {up}");
    assert_eq!(
        up["last_error"], failing["last_error"],
        "the last error is kept"
    );
    assert!(up.get("retry_at").is_none(), "{up}");
    let text = d.cli_ok(&["status"], None);
    assert!(
        text.lines()
            .any(|l| l.starts_with("worker keypad front-door")
                && l.contains(": working, last error")),
        "{text}"
    );
    d.wait_audit("\"action\":\"connected\"", Duration::from_secs(5));
    d.stop();
}
