//! End-to-end print release: the real binary against a real cupsd and ippeveprinter on
//! loopback. PINs at the terminal release exactly the holder's jobs; Find-Me moves them;
//! the shipped locked-down policy stops desk releases; printer and server trouble keep jobs
//! held and say why.

mod common;

use common::cups::Cups;
use common::{Daemon, Terminal};
use std::time::{Duration, Instant};

const POLICY: &str = include_str!("../config/cups/pinwarden-policy.conf");

/// pinwarden with `lobby-printer` on the CUPS queue `lobby` (and `hold_queue`, if given).
fn pinwarden(cups: &Cups, hold_queue: Option<&str>) -> Daemon {
    pinwarden_with(&cups.pinwarden_config(), hold_queue)
}

/// pinwarden with the `[cups]` block `cups_block`.
fn pinwarden_with(cups_block: &str, hold_queue: Option<&str>) -> Daemon {
    let queue = match hold_queue {
        Some(h) => format!("kind = \"printer\"\nqueue = \"lobby\"\nhold_queue = \"{h}\"\n"),
        None => "kind = \"printer\"\nqueue = \"lobby\"\n".to_string(),
    };
    let extra = format!("{cups_block}\n{}", common::DEFAULT_TCP);
    let d = Daemon::start_edited(|text| {
        text.replacen("kind = \"printer\"\n", &queue, 1)
            .replace("{EXTRA}", &extra)
    });
    d.add_user("alice", "staff", "482913");
    d.add_user("bob", "staff", "730194");
    d
}

#[test]
fn alices_pin_releases_exactly_her_held_jobs() {
    let mut cups = Cups::start("");
    let printer = cups.printer("lobby");
    cups.queue("lobby", printer, &[]);
    cups.submit("lobby", "alice", "alice-report");
    cups.submit("lobby", "Alice@corp.example", "alice-kerberos");
    let bobs = cups.submit("lobby", "bob", "bob-secret");
    let mut d = pinwarden(&cups, None);
    assert_eq!(cups.held("lobby").len(), 3, "{}", cups.logs());

    let mut t = d.terminal();
    assert_eq!(t.ask("PIN 482913"), "OK alice 2");
    cups.wait_printed(printer, &["alice-report", "alice-kerberos"]);
    assert_eq!(cups.held("lobby"), [bobs], "bob's job stays held");
    assert!(
        !cups.printed(printer).iter().any(|p| p.contains("bob")),
        "{:?}",
        cups.printed(printer)
    );
    assert_eq!(t.ask("PIN 482913"), "OK alice 0", "nothing left to release");
    let audit = d.wait_audit(r#""action":"released""#, Duration::from_secs(5));
    assert!(audit.contains(r#""released":2"#), "{audit}");
    assert!(!audit.contains("482913"), "no PIN in the audit log");

    assert_eq!(t.ask("ID bob PIN 730194"), "OK bob 1");
    cups.wait_printed(printer, &["bob-secret"]);
    d.stop();
}

#[test]
fn find_me_moves_jobs_from_the_hold_queue_to_the_terminals_printer() {
    let mut cups = Cups::start("");
    let lobby = cups.printer("lobby");
    let elsewhere = cups.printer("elsewhere");
    cups.queue("lobby", lobby, &[]);
    cups.queue("hold", elsewhere, &[]);
    cups.submit("hold", "alice", "alice-findme");
    let bobs = cups.submit("hold", "bob", "bob-findme");
    let d = pinwarden(&cups, Some("hold"));

    let mut t = d.terminal();
    assert_eq!(t.ask("PIN 482913"), "OK alice 1");
    cups.wait_printed(lobby, &["alice-findme"]);
    assert!(
        cups.printed(elsewhere).is_empty(),
        "{:?}",
        cups.printed(elsewhere)
    );
    assert_eq!(cups.held("hold"), [bobs]);
    let audit = d.wait_audit("moved 1 from the hold queue", Duration::from_secs(5));
    assert!(audit.contains(r#""user":"alice""#), "{audit}");
}

#[test]
fn with_the_shipped_policy_the_owner_cannot_release_from_the_desk_but_pinwarden_can() {
    shipped_policy_holds_until_pinwarden_releases(None);
}

#[test]
fn with_the_shipped_policy_pinwarden_releases_with_its_socket_peer_credentials() {
    shipped_policy_holds_until_pinwarden_releases(Some("auth = \"peer-credentials\"\n"));
}

/// The owner (a real account at a desk) cannot let a job out under the shipped policy;
/// pinwarden can, with `auth` (the local certificate when `None`) on CUPS's socket.
fn shipped_policy_holds_until_pinwarden_releases(auth: Option<&str>) {
    let mut cups = Cups::start(POLICY);
    let printer = cups.printer("lobby");
    let open_printer = cups.printer("open");
    cups.queue("lobby", printer, &["-o", "printer-op-policy=pinwarden"]);
    cups.queue("open", open_printer, &[]);
    let owner = common::cups::DESK_ACCOUNT;
    let job = cups.submit("lobby", owner, "desk-locked");
    let id = job.to_string();

    // The same desk command works where CUPS's default policy applies: the attempt is real.
    let open_job = cups.submit("open", owner, "desk-open").to_string();
    let desk = cups.desk("lp", &["-i", &open_job, "-H", "resume"]);
    assert!(
        desk.status.success(),
        "under the default policy the owner releases from the desk: {}\n{}",
        String::from_utf8_lossy(&desk.stderr),
        cups.logs()
    );
    cups.wait_printed(open_printer, &["desk-open"]);

    for hold in ["resume", "immediate"] {
        let desk = cups.desk("lp", &["-i", &id, "-H", hold]);
        assert!(
            !desk.status.success(),
            "the owner released from the desk with -H {hold}: {}",
            String::from_utf8_lossy(&desk.stdout)
        );
    }
    assert_eq!(
        cups.held("lobby"),
        [job],
        "still held after the desk attempts"
    );

    let d = match auth {
        None => pinwarden(&cups, None),
        Some(auth) => pinwarden_with(
            &cups.pinwarden_config_with(&format!(
                "server = \"{}\"\n{auth}",
                cups.socket().display()
            )),
            None,
        ),
    };
    d.add_user(owner, "staff", "591846");
    assert_eq!(
        d.terminal().ask("PIN 591846"),
        format!("OK {owner} 1"),
        "{}\n{}",
        cups.logs(),
        d.logs()
    );
    cups.wait_printed(printer, &["desk-locked"]);
}

#[test]
fn a_remote_cups_is_reached_over_tcp_with_the_configured_account() {
    // CUPS's default policy trusts an unauthenticated `root` name, which is enough to show
    // the TCP transport end to end; a real remote CUPS would use auth = "basic".
    let mut cups = Cups::start("");
    let printer = cups.printer("lobby");
    cups.queue("lobby", printer, &[]);
    cups.submit("lobby", "alice", "alice-remote");
    let cups_block = cups.pinwarden_config_with(&format!(
        "server = \"{}\"\nauth = \"none\"\nusername = \"root\"\n",
        cups.tcp_address()
    ));
    let extra = format!("{cups_block}\n{}", common::DEFAULT_TCP);
    let d = Daemon::start_edited(|text| {
        text.replacen(
            "kind = \"printer\"\n",
            "kind = \"printer\"\nqueue = \"lobby\"\n",
            1,
        )
        .replace("{EXTRA}", &extra)
    });
    d.add_user("alice", "staff", "482913");
    assert_eq!(d.terminal().ask("PIN 482913"), "OK alice 1", "{}", d.logs());
    cups.wait_printed(printer, &["alice-remote"]);
}

#[test]
fn a_stopped_printer_keeps_jobs_held_and_the_terminal_is_told_why() {
    let mut cups = Cups::start("");
    let printer = cups.printer("lobby");
    cups.queue("lobby", printer, &[]);
    let job = cups.submit("lobby", "alice", "alice-stopped");
    let d = pinwarden(&cups, None);
    cups.disable("lobby");

    let mut t = d.terminal();
    assert_eq!(t.ask("PIN 482913"), "OK alice 0 printer-unavailable");
    assert_eq!(cups.held("lobby"), [job]);
    let audit = d.wait_audit(r#""action":"printer_unavailable""#, Duration::from_secs(5));
    assert!(audit.contains("paused"), "the audit says why: {audit}");

    cups.enable("lobby");
    assert_eq!(t.ask("PIN 482913"), "OK alice 1");
    cups.wait_printed(printer, &["alice-stopped"]);
}

/// Asks for alice's release until CUPS answers again (after a restart or SIGCONT).
fn ask_until_released(d: &Daemon, t: &mut Terminal, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let reply = t.ask("PIN 482913");
        if reply == want {
            return;
        }
        assert!(
            reply == "OK alice 0 print-server-unavailable" && Instant::now() < deadline,
            "unexpected reply {reply:?}\n{}",
            d.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_dead_or_hung_cups_gives_a_clean_answer_blocks_nobody_and_recovers() {
    let mut cups = Cups::start("");
    let printer = cups.printer("lobby");
    cups.queue("lobby", printer, &[]);
    cups.submit("lobby", "alice", "alice-outage");
    let mut d = pinwarden(&cups, None);

    // Hung: requests time out; a second terminal is answered meanwhile.
    cups.signal(libc::SIGSTOP);
    let addr = d.tcp;
    let hung = std::thread::spawn(move || Terminal::connect(addr).ask("PIN 482913"));
    let mut other = d.terminal();
    assert_eq!(other.ask("PING"), "PONG");
    assert_eq!(hung.join().unwrap(), "OK alice 0 print-server-unavailable");
    cups.signal(libc::SIGCONT);

    // Dead: refused at once, audited, and released when it is back.
    cups.kill();
    let mut t = d.terminal();
    assert_eq!(t.ask("PIN 482913"), "OK alice 0 print-server-unavailable");
    let audit = d.wait_audit(r#""action":"server_unavailable""#, Duration::from_secs(5));
    assert!(
        audit.contains(r#""outcome":"grant""#),
        "the decision is audited: {audit}"
    );
    cups.restart();
    ask_until_released(&d, &mut t, "OK alice 1");
    cups.wait_printed(printer, &["alice-outage"]);
    d.stop();
}
