//! End-to-end: limited-use and windowed PINs at a TCP terminal. The real binary; uses are
//! counted in the store with the grant, survive a restart, and a race for the last use
//! between two terminals gives exactly one OK.

mod common;

use common::Daemon;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// Many failures allowed: the races below leave one denial each.
const TCP_UTC: &str = r#"time_zone = "UTC"
[lockout]
free_failures = 100
"#;

fn start() -> Daemon {
    Daemon::start_with(TCP_UTC, common::DEFAULT_TCP)
}

/// Days since Monday, today in UTC.
fn today() -> usize {
    let days = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 86_400;
    // 1970-01-01 was a Thursday.
    ((days + 3) % 7) as usize
}

fn show(d: &Daemon, id: &str) -> serde_json::Value {
    serde_json::from_str(&d.cli_ok(&["user", "show", id, "--json"], None)).unwrap()
}

#[test]
fn a_three_use_pin_works_three_times_then_is_denied_with_its_reason() {
    let mut d = start();
    d.cli_ok(
        &[
            "user",
            "add",
            "gus",
            "--group",
            "staff",
            "--pin-stdin",
            "--uses",
            "3",
        ],
        Some("730194"),
    );
    assert_eq!(show(&d, "gus")["pin"]["uses_left"], 3);
    let shown = d.cli_ok(&["user", "show", "gus"], None);
    assert!(shown.contains("uses left: 3"), "{shown}");
    let mut t = d.terminal();
    for n in 1..=3 {
        assert_eq!(t.ask("PIN 730194"), "OK gus 0", "use {n}");
    }
    assert_eq!(t.ask("PIN 730194"), "DENY", "the fourth use");
    assert_eq!(t.ask("ID gus PIN 730194"), "DENY", "by id too");
    let audit = d.wait_audit(r#""reason":"uses_exhausted""#, Duration::from_secs(10));
    assert!(audit.contains(r#""action":"used""#), "{audit}");
    assert!(audit.contains("last use: no use left"), "{audit}");
    assert!(!audit.contains("730194"), "never the PIN: {audit}");
    assert_eq!(show(&d, "gus")["pin"]["uses_left"], 0);
    let list = d.cli_ok(&["user", "list"], None);
    assert!(list.contains("uses-exhausted"), "{list}");

    drop(t);
    d.restart();
    let mut t = d.terminal();
    assert_eq!(t.ask("PIN 730194"), "DENY", "the count survived a restart");
    // A new PIN without --uses is unlimited.
    d.cli_ok(&["user", "set-pin", "gus", "--pin-stdin"], Some("730194"));
    assert!(show(&d, "gus")["pin"].get("uses_left").is_none());
    for _ in 0..4 {
        assert_eq!(t.ask("PIN 730194"), "OK gus 0");
    }
}

#[test]
fn two_terminals_racing_for_the_last_use_get_exactly_one_ok() {
    let d = start();
    d.add_user("gus", "staff", "730194");
    let (mut a, mut b) = (d.terminal(), d.terminal());
    for (round, pin) in ["518273", "604918", "739201", "862047", "951372"]
        .into_iter()
        .enumerate()
    {
        d.cli_ok(
            &["user", "set-pin", "gus", "--pin-stdin", "--uses", "1"],
            Some(pin),
        );
        let line = format!("PIN {pin}\r\n");
        a.send_raw(line.as_bytes());
        b.send_raw(line.as_bytes());
        let answers = [a.read_line(), b.read_line()];
        let oks = answers.iter().filter(|l| *l == "OK gus 0").count();
        assert_eq!(oks, 1, "round {round}: {answers:?}");
        assert!(answers.contains(&"DENY".to_string()), "{answers:?}");
        assert_eq!(show(&d, "gus")["pin"]["uses_left"], 0);
    }
    let audit = d.cli_ok(&["audit", "--json", "--last", "200"], None);
    let exhausted = audit.matches(r#""reason":"uses_exhausted""#).count();
    assert_eq!(exhausted, 5, "{audit}");
}

#[test]
fn a_windowed_pin_works_only_in_its_windows() {
    let d = start();
    let today = today();
    // Today and tomorrow whole, so a run across midnight still falls inside.
    let inside = format!("{},{} 00:00-24:00", DAYS[today], DAYS[(today + 1) % 7]);
    // Neither today nor tomorrow: outside, even across midnight.
    let outside = format!("{} 00:00-24:00", DAYS[(today + 3) % 7]);
    d.cli_ok(
        &[
            "user",
            "add",
            "gus",
            "--group",
            "staff",
            "--pin-stdin",
            "--window",
            &outside,
        ],
        Some("730194"),
    );
    d.cli_ok(
        &[
            "user",
            "add",
            "ida",
            "--group",
            "staff",
            "--pin-stdin",
            "--window",
            &outside,
            "--window",
            &inside,
        ],
        Some("518273"),
    );
    let shown = d.cli_ok(&["user", "show", "ida"], None);
    assert!(
        shown.contains(&inside) && shown.contains(&outside),
        "{shown}"
    );
    assert_eq!(show(&d, "gus")["pin"]["windows"][0], outside.as_str());
    let mut t = d.terminal();
    assert_eq!(t.ask("PIN 730194"), "DENY");
    assert_eq!(t.ask("PIN 518273"), "OK ida 0");
    d.wait_audit(r#""reason":"outside_pin_window""#, Duration::from_secs(10));

    // Checked when set: a bad window is named, and nothing changes.
    let bad = d.cli(
        &[
            "user",
            "set-pin",
            "gus",
            "--pin-stdin",
            "--window",
            "Mon-Fry 08:00-18:00",
        ],
        Some("604918"),
    );
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("Mon-Fry 08:00-18:00"), "{err}");
    let zero = d.cli(
        &["user", "set-pin", "gus", "--pin-stdin", "--uses", "0"],
        Some("604918"),
    );
    assert!(!zero.status.success());
    assert!(String::from_utf8_lossy(&zero.stderr).contains("--uses"));
    assert_eq!(t.ask("PIN 604918"), "DENY", "no PIN was set");
    assert_eq!(show(&d, "gus")["pin"]["windows"][0], outside.as_str());
}
