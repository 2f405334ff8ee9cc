//! End-to-end: the real binary, PINs over TCP, restarts, lockouts and hostile input.

mod common;

use common::{found_in_files, Daemon, Terminal};
use std::time::Duration;

#[test]
fn pin_over_tcp_grants_denies_and_survives_restart() {
    let mut d = Daemon::start();
    d.add_user("alice", "staff", "048213");
    let mut t = d.terminal();
    assert_eq!(t.ask("PING"), "PONG");
    assert_eq!(t.ask("PIN 048213"), "OK alice 0");
    assert_eq!(
        t.ask("PIN 48213"),
        "DENY",
        "the leading zero is significant"
    );
    assert_eq!(t.ask("ID alice PIN 048213"), "OK alice 0");
    assert_eq!(t.ask("ID alice PIN 730194"), "DENY");
    assert_eq!(t.ask("ID nobody PIN 048213"), "DENY");
    drop(t);
    d.restart();
    let mut t = d.terminal();
    assert_eq!(
        t.ask("PIN 048213"),
        "OK alice 0",
        "the store survives a restart"
    );
    assert_eq!(t.ask("QUIT"), "BYE");
    assert!(t.closed());
    d.stop();
}

#[test]
fn group_rules_and_disabled_users_deny_uniformly() {
    let d = Daemon::start_with(
        "",
        r#"
[[tcp]]
listen = "127.0.0.1:0"
[[tcp.terminal]]
address = "127.0.0.1"
device = "front-door"
"#,
    );
    d.add_user("alice", "staff", "482913");
    d.add_user("gus", "guests", "730194");
    let mut t = d.terminal();
    assert_eq!(t.ask("PIN 482913"), "OK alice 0");
    assert_eq!(t.ask("PIN 730194"), "DENY", "guests may not open the door");
    d.cli_ok(&["user", "disable", "alice"], None);
    assert_eq!(t.ask("PIN 482913"), "DENY");
    d.cli_ok(&["user", "enable", "alice"], None);
    assert_eq!(t.ask("PIN 482913"), "OK alice 0");
    let audit = d.cli_ok(&["audit", "--json", "--last", "20"], None);
    assert!(audit.contains(r#""reason":"group_not_allowed""#), "{audit}");
    assert!(audit.contains(r#""reason":"disabled""#), "{audit}");
}

// Sources as roomy as the device, so that one terminal reaches the device's lock here
// (by default a source is held below it: tests/lockout_admin.rs).
const STRICT_LOCKOUT: &str = r#"
[lockout]
free_failures = 3
source_failures = 3
initial_backoff = "1h"
max_backoff = "2h"
user_max_failures = 3
"#;

#[test]
fn lockout_engages_after_the_budget_without_argon2_and_survives_restart() {
    let mut d = Daemon::start_with(STRICT_LOCKOUT, common::DEFAULT_TCP);
    d.add_user("alice", "staff", "482913");
    let mut t = d.terminal();
    for wrong in ["111293", "220394", "330495", "440596"] {
        assert_eq!(t.ask(&format!("PIN {wrong}")), "DENY");
    }
    let before = d.status();
    let computed = before["hash_pool"]["computed"].as_u64().unwrap();
    let typical = before["hash_pool"]["median_ms"]
        .as_f64()
        .expect("a median tag time");
    let asked = std::time::Instant::now();
    assert_eq!(
        t.ask("PIN 482913"),
        "DENY",
        "locked: even the right PIN is refused"
    );
    // No timing tell: a locked reply waits about as long as an evaluated one takes (a
    // lower bound, which a loaded machine can only make longer).
    let took = asked.elapsed().as_secs_f64() * 1000.0;
    assert!(
        took >= typical * 0.9,
        "a locked DENY after {took:.1} ms, a tag takes {typical} ms"
    );
    let status = d.status();
    assert_eq!(
        status["hash_pool"]["computed"].as_u64().unwrap(),
        computed,
        "no argon2 work"
    );
    assert!(status["decisions"]["locked_out"].as_u64().unwrap() >= 1);
    let locked = status["locked"].to_string();
    assert!(
        locked.contains("device:lobby-printer") && locked.contains("source:127.0.0.1"),
        "{locked}"
    );
    drop(t);
    d.restart();
    let mut t = d.terminal();
    assert_eq!(
        t.ask("PIN 482913"),
        "DENY",
        "the lockout survives a restart"
    );
    let audit = d.cli_ok(&["audit", "--json", "--last", "50"], None);
    assert!(audit.contains(r#""event":"lockout""#), "{audit}");
    assert!(audit.contains(r#""reason":"locked_out""#), "{audit}");
}

#[test]
fn a_user_is_locked_after_consecutive_id_pin_failures_until_enabled() {
    let d = Daemon::start_with(
        "[lockout]\nfree_failures = 50\nuser_max_failures = 3\n",
        common::DEFAULT_TCP,
    );
    d.add_user("alice", "staff", "482913");
    let mut t = d.terminal();
    assert_eq!(t.ask("ID alice PIN 000111"), "DENY");
    assert_eq!(
        t.ask("ID alice PIN 482913"),
        "OK alice 0",
        "a success resets the count"
    );
    for _ in 0..3 {
        assert_eq!(t.ask("ID alice PIN 000111"), "DENY");
    }
    assert_eq!(t.ask("ID alice PIN 482913"), "DENY");
    assert_eq!(
        t.ask("PIN 482913"),
        "DENY",
        "a locked user cannot use PIN-only either"
    );
    let show = d.cli_ok(&["user", "show", "alice", "--json"], None);
    assert!(show.contains(r#""locked": true"#), "{show}");
    d.cli_ok(&["user", "enable", "alice"], None);
    assert_eq!(t.ask("ID alice PIN 482913"), "OK alice 0");
}

#[test]
fn the_pin_never_reaches_disk_logs_or_audit() {
    const PIN: &str = "48291375";
    // Long PINs, so a chance match against other digits in the store is out of the question.
    let mut d = Daemon::start_with("[policy]\ngenerated_length = 10\n", common::DEFAULT_TCP);
    d.add_user("alice", "staff", PIN);
    let generated = d.cli_ok(
        &["user", "add", "bob", "--group", "staff", "--generate"],
        None,
    );
    let generated = generated.trim().to_string();
    assert_eq!(
        generated.len(),
        10,
        "the generated PIN is printed once: {generated:?}"
    );
    let mut t = d.terminal();
    assert_eq!(t.ask(&format!("PIN {PIN}")), "OK alice 0");
    assert_eq!(t.ask(&format!("PIN {generated}")), "OK bob 0");
    assert_eq!(t.ask(&format!("ID alice PIN {PIN}")), "OK alice 0");
    assert_eq!(
        t.ask("PIN 99999999 trailing"),
        "ERR 400 malformed request: use PIN <pin> or ID <id> PIN <pin>"
    );
    let audit = d.cli_ok(&["audit", "--json"], None);
    let listing = d.cli_ok(&["user", "list", "--json"], None);
    d.stop();
    for secret in [PIN, generated.as_str(), "99999999"] {
        let hits = found_in_files(d.dir.path(), secret.as_bytes());
        assert!(hits.is_empty(), "PIN bytes found in {hits:?}");
        assert!(!audit.contains(secret) && !listing.contains(secret));
    }
    assert!(d.logs().contains("pinwarden ready"), "the log was captured");
}

#[test]
fn garbage_overlong_and_half_lines_never_stall_other_terminals() {
    let d = Daemon::start();
    d.add_user("alice", "staff", "482913");
    let mut noisy = d.terminal();
    noisy.send_raw(b"\xff\xfe\x00garbage\r\n");
    assert_eq!(noisy.read_line(), "ERR 400 request must be printable ASCII");
    noisy.send_raw(&[b'9'; 5000]);
    noisy.send_raw(b"\n");
    assert_eq!(noisy.read_line(), "ERR 413 line too long");
    assert_eq!(
        noisy.ask("GET / HTTP/1.0"),
        "ERR 400 unknown command: use PIN, ID, CARD, PING or QUIT"
    );
    assert_eq!(noisy.ask("PING"), "PONG", "the connection stays usable");

    let mut stalled = d.terminal();
    stalled.send_raw(b"PIN 4829");
    let mut other = d.terminal();
    assert_eq!(
        other.ask("PIN 482913"),
        "OK alice 0",
        "a half-sent line stalls nobody else"
    );
    assert_eq!(
        stalled.read_line(),
        "ERR 408 timeout waiting for end of line"
    );
    assert!(stalled.closed());
    assert_eq!(other.ask("PING"), "PONG");
}

#[test]
fn unknown_sources_and_excess_connections_are_refused() {
    let d = Daemon::start_with(
        "",
        r#"
[[tcp]]
listen = "127.0.0.1:0"
max_connections = 2
[[tcp.terminal]]
address = "127.0.0.1"
device = "lobby-printer"
"#,
    );
    assert_eq!(
        connect_from("127.0.0.2", d.tcp),
        b"",
        "a stranger is closed at once"
    );
    let mut a = d.terminal();
    let mut b = d.terminal();
    assert_eq!(a.ask("PING"), "PONG");
    assert_eq!(b.ask("PING"), "PONG");
    let mut c = Terminal::connect(d.tcp);
    assert_eq!(c.read_line(), "BUSY");
    assert!(c.closed());
    drop(a);
    // The daemon frees the slot once it has seen the close, which takes a moment: until
    // then a new terminal is still told BUSY.
    let mut again = d.wait_for(common::PATIENCE, || {
        let mut t = d.terminal();
        // A refused terminal may see the BUSY line or a reset: either way, not yet.
        t.send_raw(b"PING\r\n");
        match t.try_read_line() {
            Ok(pong) if pong == "PONG" => Ok(t),
            other => Err(format!("a freed slot is reused: got {other:?}")),
        }
    });
    assert_eq!(again.ask("PING"), "PONG");
    assert_eq!(b.ask("PING"), "PONG", "the other terminal kept its slot");
    let audit = d.cli_ok(&["audit", "--json"], None);
    assert!(
        audit.contains("127.0.0.2") && audit.contains("not in the allow-list"),
        "{audit}"
    );
    assert!(audit.contains("connection limit reached"), "{audit}");
}

/// Connects from another loopback source address and returns what the daemon sent before
/// closing (Linux routes all of 127.0.0.0/8 to lo).
fn connect_from(source: &str, to: std::net::SocketAddr) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
        let mut stream = socket.connect(to).await.unwrap();
        let mut got = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut got))
            .await
            .expect("the daemon closes a stranger's connection")
            .ok();
        got
    })
}

#[test]
fn a_valid_pin_does_not_buy_more_guesses() {
    let d = Daemon::start_with(STRICT_LOCKOUT, common::DEFAULT_TCP);
    d.add_user("mallory", "staff", "482913");
    let mut t = d.terminal();
    for wrong in ["111293", "220394", "330495"] {
        assert_eq!(t.ask(&format!("PIN {wrong}")), "DENY");
    }
    assert_eq!(t.ask("PIN 482913"), "OK mallory 0");
    assert_eq!(t.ask("PIN 440596"), "DENY");
    assert_eq!(
        t.ask("PIN 482913"),
        "DENY",
        "the grant did not refill the budget: locked"
    );
}

#[test]
fn concurrent_guesses_cannot_overrun_the_budget() {
    let d = Daemon::start_with(STRICT_LOCKOUT, common::DEFAULT_TCP);
    let before = d.status()["hash_pool"]["computed"].as_u64().unwrap();
    let threads: Vec<_> = (0..20)
        .map(|i| {
            let addr = d.tcp;
            std::thread::spawn(move || {
                Terminal::connect(addr).ask(&format!("PIN {:06}", 510_000 + i * 17))
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), "DENY");
    }
    let computed = d.status()["hash_pool"]["computed"].as_u64().unwrap() - before;
    assert!(
        computed <= 4,
        "{computed} argon2 computations for a budget of 3"
    );
}

#[test]
fn concurrent_valid_logins_are_never_refused_by_the_budget() {
    let d = Daemon::start_with(STRICT_LOCKOUT, common::DEFAULT_TCP);
    d.add_user("alice", "staff", "482913");
    let threads: Vec<_> = (0..20)
        .map(|_| {
            let addr = d.tcp;
            std::thread::spawn(move || Terminal::connect(addr).ask("PIN 482913"))
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), "OK alice 0");
    }
}

#[test]
fn validity_windows_set_from_the_cli_are_enforced() {
    let d = Daemon::start();
    d.cli_ok(
        &[
            "user",
            "add",
            "past",
            "--group",
            "staff",
            "--valid-until",
            "2020-01-01",
            "--pin-stdin",
        ],
        Some("482913"),
    );
    d.cli_ok(
        &[
            "user",
            "add",
            "future",
            "--group",
            "staff",
            "--valid-from",
            "2099-01-01",
            "--pin-stdin",
        ],
        Some("730194"),
    );
    d.cli_ok(
        &[
            "user",
            "add",
            "now",
            "--group",
            "staff",
            "--valid-from",
            "2020-01-01",
            "--valid-until",
            "2099-01-01",
            "--pin-stdin",
        ],
        Some("615284"),
    );
    let mut t = d.terminal();
    assert_eq!(t.ask("PIN 482913"), "DENY");
    assert_eq!(t.ask("PIN 730194"), "DENY");
    assert_eq!(t.ask("PIN 615284"), "OK now 0");
    let audit = d.cli_ok(&["audit", "--json"], None);
    assert!(
        audit.contains("account_expired") && audit.contains("not_yet_valid"),
        "{audit}"
    );
    let bad = d.cli(&["user", "add", "x", "--valid-from", "soon"], None);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("use YYYY-MM-DD"));
}

#[test]
fn one_source_cannot_take_every_slot() {
    let d = Daemon::start_with(
        "",
        r#"
[[tcp]]
listen = "127.0.0.1:0"
max_connections = 4
max_per_source = 2
[[tcp.terminal]]
address = "127.0.0.1"
device = "lobby-printer"
[[tcp.terminal]]
address = "127.0.0.2"
device = "lobby-printer"
"#,
    );
    d.add_user("alice", "staff", "482913");
    // Idle connections from one address: its own slots run out, nobody else's.
    let mut mine: Vec<Terminal> = (0..2).map(|_| d.terminal()).collect();
    for t in &mut mine {
        assert_eq!(t.ask("PING"), "PONG");
    }
    let mut third = d.terminal();
    assert_eq!(third.read_line(), "BUSY");
    assert!(third.closed());
    let mut other = Terminal::connect_from("127.0.0.2", d.tcp);
    assert_eq!(
        other.ask("PIN 482913"),
        "OK alice 0",
        "another terminal gets in"
    );
    drop(mine.pop());
    let mut again = d.wait_for(common::PATIENCE, || {
        let mut t = d.terminal();
        t.send_raw(b"PING\r\n");
        match t.try_read_line() {
            Ok(pong) if pong == "PONG" => Ok(t),
            other => Err(format!("a freed per-source slot is reused: got {other:?}")),
        }
    });
    assert_eq!(again.ask("PING"), "PONG");
    let audit = d.cli_ok(&["audit", "--json"], None);
    assert!(audit.contains("per-source connection limit"), "{audit}");
}

#[test]
fn a_garbage_stream_is_closed_and_a_flood_is_held_to_the_byte_rate() {
    let d = Daemon::start();
    d.add_user("alice", "staff", "482913");
    // Random bytes hold CR and LF: garbage *lines*, each answered ERR. Eight in a row and
    // the connection is closed; a valid request in between resets the count.
    let mut noisy = d.terminal();
    for _ in 0..7 {
        assert!(noisy.ask("GET / HTTP/1.0").starts_with("ERR 400"));
    }
    assert_eq!(noisy.ask("PING"), "PONG");
    for _ in 0..7 {
        assert!(noisy.ask("\u{1}\u{2}").starts_with("ERR 400"));
    }
    assert_eq!(
        noisy.ask("???"),
        "ERR 400 unknown command: use PIN, ID, CARD, PING or QUIT"
    );
    assert_eq!(
        noisy.read_line(),
        "ERR 429 too many malformed lines: closing"
    );
    assert!(noisy.closed());

    // Valid lines as fast as the client can send: what gets answered is bounded by the
    // connection's byte rate (8 KiB at once, then 2 KiB/s), whatever the machine's speed.
    let mut flood = d.terminal();
    let mut writer = flood.stream();
    let started = std::time::Instant::now();
    std::thread::spawn(move || {
        use std::io::Write;
        let lines = b"PING\r\n".repeat(20_000);
        let _ = writer.write_all(&lines);
    });
    let mut other = d.terminal();
    let mut answered = 0usize;
    while started.elapsed() < Duration::from_secs(3) {
        assert_eq!(flood.read_line(), "PONG");
        answered += 1;
    }
    let bound = (8192 + 2048 * (started.elapsed().as_secs() as usize + 1)) / 6 + 1;
    assert!(
        answered <= bound,
        "{answered} lines answered, the rate allows {bound}"
    );
    assert_eq!(
        other.ask("PIN 482913"),
        "OK alice 0",
        "other terminals are served"
    );
}

#[test]
fn a_flood_of_locked_out_requests_is_audited_once_not_once_each() {
    let d = Daemon::start_with(STRICT_LOCKOUT, common::DEFAULT_TCP);
    let mut t = d.terminal();
    for wrong in ["111293", "220394", "330495", "440596"] {
        assert_eq!(t.ask(&format!("PIN {wrong}")), "DENY");
    }
    // 8 terminals × 40 requests at the locked device, as fast as the answers come.
    let floods: Vec<_> = (0..8)
        .map(|_| {
            let mut t = d.terminal();
            std::thread::spawn(move || {
                for i in 0..40 {
                    assert_eq!(t.ask(&format!("PIN {}", 500_000 + i)), "DENY");
                }
            })
        })
        .collect();
    for f in floods {
        f.join().unwrap();
    }
    let locked = d.status()["decisions"]["locked_out"].as_u64().unwrap();
    assert!(locked >= 320, "{locked} locked-out answers counted");
    let audit = d.cli_ok(&["audit", "--json", "--last", "1000"], None);
    let records = audit.matches(r#""reason":"locked_out""#).count();
    assert!(
        (1..=2).contains(&records),
        "{records} audit records for {locked} locked-out answers within a minute\n{audit}"
    );
}
