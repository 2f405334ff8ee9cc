//! End-to-end: network card readers (PaperCut "generic" style) feeding raw lines to the real
//! binary: hex and decimal reads, leading zeros, probe strings in between, card-then-PIN,
//! dial mode with reconnects, and readers outside the allow-list.

mod common;

use common::{Daemon, Terminal};
use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

const TERMINAL_THEN_READER: &str = r#"
[[tcp]]
listen = "127.0.0.1:0"
[tcp.card]
{CARD}
[[tcp.terminal]]
address = "127.0.0.1"
device = "lobby-printer"

[[tcp]]
mode = "card"
listen = "127.0.0.1:0"
[tcp.card]
{CARD}
[[tcp.terminal]]
address = "127.0.0.1"
device = "lobby-printer"
"#;

fn start(card: &str) -> (Daemon, SocketAddr) {
    let d = Daemon::start_with("", &TERMINAL_THEN_READER.replace("{CARD}", card));
    // alice's card 482115 is 0x075B43; bob's is 730194 (0x0B2452).
    d.add_user_with_card("alice", "staff", "00482115", "482913");
    d.add_user_with_card("bob", "staff", "730194", "730195");
    let reader: SocketAddr = d.status()["tcp"][1].as_str().unwrap().parse().unwrap();
    (d, reader)
}

/// The users granted by card alone, in audit order.
fn card_grants(d: &Daemon) -> Vec<String> {
    let audit = d.cli_ok(&["audit", "--json", "--last", "200"], None);
    audit
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["credential"] == "card" && v["outcome"] == "grant")
        .map(|v| v["user"].as_str().unwrap_or("").to_string())
        .collect()
}

fn wait_grants(d: &Daemon, n: usize) -> Vec<String> {
    d.wait_for(common::PATIENCE, || match card_grants(d) {
        grants if grants.len() >= n => Ok(grants),
        grants => Err(format!("only {grants:?}")),
    })
}

#[test]
fn hex_reads_with_probes_in_between_find_the_right_user() {
    let (d, reader) = start("input = \"hex\"\noutput = \"decimal\"");
    let mut r = std::net::TcpStream::connect(reader).unwrap();
    r.write_all(b"075B43\r\nGET / HTTP/1.0\r\n\r\nHELLO\n\xff\xfe\x00\r\n0B2452\n")
        .unwrap();
    r.write_all(b"75b43\r").unwrap();
    assert_eq!(wait_grants(&d, 3), ["alice", "bob", "alice"]);
    // The reader connection survived the probes; the terminal is unaffected.
    r.write_all(b"00000B2452\r\n").unwrap();
    assert_eq!(wait_grants(&d, 4)[3], "bob");
    assert_eq!(d.terminal().ask("PING"), "PONG");
    let audit = d.cli_ok(&["audit", "--json", "--last", "200"], None);
    assert!(!audit.contains("HELLO"), "{audit}");
}

#[test]
fn decimal_reads_with_a_regex_and_leading_zeros() {
    let (d, reader) = start("regex = '^\\x02?([0-9]+)\\x03?$'\ninput = \"decimal\"");
    let mut r = std::net::TcpStream::connect(reader).unwrap();
    r.write_all(b"0000482115\r\n\x02730194\x03\r\nPROBE 1\r\n482115\r\n")
        .unwrap();
    assert_eq!(wait_grants(&d, 3), ["alice", "bob", "alice"]);
    let mut unknown = std::net::TcpStream::connect(reader).unwrap();
    unknown.write_all(b"999\r\n").unwrap();
    d.wait_audit(r#""reason":"unknown_card""#, Duration::from_secs(5));
}

#[test]
fn card_then_pin_at_the_same_device() {
    let (d, reader) = start("input = \"hex\"\ncard_then_pin = \"30s\"");
    let mut r = std::net::TcpStream::connect(reader).unwrap();
    let mut t = d.terminal();
    r.write_all(b"075B43\r\n").unwrap();
    d.wait_audit(r#""action":"waiting_for_pin""#, Duration::from_secs(5));
    assert_eq!(t.ask("PIN 730195"), "DENY", "bob's PIN after alice's card");
    let waits = || {
        d.cli_ok(&["audit", "--json", "--last", "200"], None)
            .matches("waiting_for_pin")
            .count()
    };
    let before = waits();
    r.write_all(b"075B43\r\n").unwrap();
    d.wait_for(common::PATIENCE, || match waits() {
        n if n > before => Ok(()),
        _ => Err("second card read not seen".into()),
    });
    assert_eq!(t.ask("PIN 482913"), "OK alice 0");
    d.wait_audit(r#""credential":"card+pin""#, Duration::from_secs(5));
    // A terminal with its own reader: CARD, then the PIN.
    assert_eq!(t.ask("CARD 075B43"), "NEED PIN");
    assert_eq!(t.ask("PIN 482913"), "OK alice 0");
    assert!(
        card_grants(&d).is_empty(),
        "no card-alone login in card-then-PIN mode"
    );
}

#[test]
fn dial_mode_connects_to_reader_servers_and_reconnects() {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap();
    let d = Daemon::start_with(
        "",
        &format!(
            "{}\n[[tcp]]\nmode = \"dial\"\n[tcp.card]\ninput = \"decimal\"\n\
             [[tcp.terminal]]\naddress = \"{addr}\"\ndevice = \"lobby-printer\"\n",
            common::DEFAULT_TCP
        ),
    );
    d.add_user_with_card("alice", "staff", "482115", "482913");
    let (mut conn, _) = server.accept().unwrap();
    conn.write_all(b"SN:READER-1\r\n482115\r\n").unwrap();
    assert_eq!(wait_grants(&d, 1), ["alice"]);
    drop(conn);
    let (mut conn, _) = server.accept().unwrap();
    conn.write_all(b"0482115\n").unwrap();
    assert_eq!(wait_grants(&d, 2), ["alice", "alice"]);
    d.wait_audit(r#""action":"reader_disconnected""#, Duration::from_secs(5));
}

#[test]
fn a_reader_outside_the_allow_list_is_refused_and_audited() {
    let d = Daemon::start_with(
        "",
        &format!(
            "{}\n[[tcp]]\nmode = \"card\"\nlisten = \"127.0.0.1:0\"\n[tcp.card]\ninput = \"decimal\"\n\
             [[tcp.terminal]]\naddress = \"127.0.0.2\"\ndevice = \"lobby-printer\"\n",
            common::DEFAULT_TCP
        ),
    );
    let reader: SocketAddr = d.status()["tcp"][1].as_str().unwrap().parse().unwrap();
    let mut t = Terminal::connect(reader);
    assert!(t.closed(), "closed before any read");
    d.wait_audit(r#""event":"refused""#, Duration::from_secs(5));
}
