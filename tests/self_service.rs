//! Self-service at a TCP terminal, end to end: the real binary and a real aiosmtpd.
//! `CHANGE <id> <old> <new>` (the old PIN counted like any ID+PIN attempt, the policy on
//! the new one, a confirmation without the PIN) and `FORGOT <id>` (the same answer and the
//! same queued work for any id, one mail for a known one, the person's cap across a
//! restart, the old PIN still working).

mod common;

use common::smtp::{field, password_file, SmtpOptions, SmtpServer};
use common::Daemon;
use std::path::Path;
use std::time::Duration;

const WITHIN: Duration = Duration::from_secs(30);
const ALICE_PIN: &str = "482913";

/// Plain ASCII templates, so a test can read the PIN out of a message (the pin-changed
/// confirmation is the bundled one).
fn templates(dir: &Path) -> std::path::PathBuf {
    let t = dir.join("templates");
    std::fs::create_dir_all(&t).unwrap();
    let body = |what: &str| {
        format!("Subject: {what} for {{{{username}}}}\n\n{what} PIN=[{{{{pin}}}}] until=[{{{{pinExpiration}}}}]\n")
    };
    for (kind, what) in [
        ("new_pin", "new"),
        ("reset_pin", "reset"),
        ("guest_invitation", "guest"),
        ("forgotten_pin", "forgotten"),
    ] {
        std::fs::write(t.join(format!("{kind}.txt")), body(what)).unwrap();
    }
    std::fs::write(
        t.join("expiry_reminder.txt"),
        "Subject: reminder for {{username}}\n\nreminder until=[{{pinExpiration}}]\n",
    )
    .unwrap();
    t
}

fn start(server: &SmtpServer, policy: &str) -> Daemon {
    Daemon::start_prepared(false, |dir| {
        let secret = password_file(dir);
        let mail = format!(
            "\n[smtp]\nhost = \"127.0.0.1\"\nport = {}\nca_file = \"{}\"\nusername = \"pinwarden\"\n\
             password_file = \"{}\"\nfrom = \"Print room <print@example.org>\"\ntimeout = \"5s\"\n\
             \n[mail]\ntemplates = \"{}\"\n",
            server.port,
            server.ca.display(),
            secret.display(),
            templates(dir).display(),
        );
        (
            format!("\n[policy]\nmin_length = 6\n{policy}\n"),
            format!("{}{mail}", common::DEFAULT_TCP),
        )
    })
}

fn add_alice(d: &Daemon) {
    d.cli_ok(
        &[
            "user",
            "add",
            "alice",
            "--group",
            "staff",
            "--email",
            "alice@example.org",
            "--pin-stdin",
        ],
        Some(ALICE_PIN),
    );
}

fn count(audit: &str, needle: &str) -> usize {
    audit.matches(needle).count()
}

#[test]
fn change_counts_a_wrong_old_pin_refuses_a_weak_new_one_and_confirms_a_good_one() {
    let server = SmtpServer::start(SmtpOptions::secure());
    let d = start(&server, "user_can_change = true");
    add_alice(&d);
    let mut t = d.terminal();

    assert_eq!(t.ask("CHANGE alice 000000 731955"), "DENY");
    let audit = d.wait_audit("\"wrong_pin\"", WITHIN);
    assert!(audit.contains("id+pin change"), "{audit}");
    let status = d.status();
    assert_eq!(
        status["decisions"]["denied"], 1,
        "counted as a failure: {status}"
    );
    assert_eq!(status["decisions"]["granted"], 0, "{status}");

    let weak = t.ask(&format!("CHANGE alice {ALICE_PIN} 123456"));
    assert!(weak.starts_with("ERR 422 PIN must not be a run"), "{weak}");
    assert!(t
        .ask(&format!("ID alice PIN {ALICE_PIN}"))
        .starts_with("OK alice"));

    assert_eq!(
        t.ask(&format!("CHANGE alice {ALICE_PIN} 731955")),
        "OK CHANGED"
    );
    assert_eq!(t.ask(&format!("ID alice PIN {ALICE_PIN}")), "DENY");
    assert!(t.ask("ID alice PIN 731955").starts_with("OK alice"));
    let mail = server.wait_messages(1, WITHIN);
    assert!(mail[0].contains("alice@example.org"), "{}", mail[0]);
    for secret in [ALICE_PIN, "731955", "123456"] {
        assert!(!mail[0].contains(secret), "a PIN in the confirmation");
        assert!(!d.logs().contains(secret), "a PIN in the log");
    }
    let audit = d.wait_audit("\"self_changed\"", WITHIN);
    assert!(audit.contains("\"change_refused\""), "{audit}");
    assert!(!audit.contains("731955") && !audit.contains("123456"));
}

#[test]
fn change_is_not_allowed_unless_configured() {
    let server = SmtpServer::start(SmtpOptions::secure());
    let d = start(&server, "");
    add_alice(&d);
    let reply = d
        .terminal()
        .ask(&format!("CHANGE alice {ALICE_PIN} 731955"));
    assert_eq!(reply, "ERR 403 not allowed");
}

#[test]
fn forgot_answers_alike_mails_a_known_person_within_the_cap_and_keeps_the_old_pin() {
    let server = SmtpServer::start(SmtpOptions::secure());
    let mut d = start(&server, "");
    add_alice(&d);
    let mut t = d.terminal();
    assert_eq!(t.ask("FORGOT alice"), "OK FORGOT");
    assert_eq!(t.ask("FORGOT nobody"), "OK FORGOT");
    // The same work for both: each queued a row, and each was settled.
    let audit = d.wait_audit("\"reset_dropped\"", WITHIN);
    assert_eq!(count(&audit, "\"reset_requested\""), 2, "{audit}");
    d.wait_audit("\"reset_issued\"", WITHIN);
    let mail = server.wait_messages(1, WITHIN);
    assert!(mail[0].contains("forgotten for alice"), "{}", mail[0]);
    let new_pin = field(&mail[0], "PIN");
    assert_eq!(new_pin.len(), 6, "{}", mail[0]);
    assert_ne!(new_pin, ALICE_PIN);
    assert!(!d.logs().contains(&new_pin), "the PIN is never logged");
    // Nobody can lock alice out with a reset: her PIN keeps working.
    assert!(t
        .ask(&format!("ID alice PIN {ALICE_PIN}"))
        .starts_with("OK alice"));

    // Three a day; the cap survives a restart.
    assert_eq!(t.ask("FORGOT alice"), "OK FORGOT");
    drop(t);
    server.wait_messages(2, WITHIN);
    d.restart();
    let mut t = d.terminal();
    assert_eq!(t.ask("FORGOT alice"), "OK FORGOT");
    server.wait_messages(3, WITHIN);
    assert_eq!(t.ask("FORGOT alice"), "OK FORGOT");
    d.wait_audit("the person's daily cap", WITHIN);
    d.wait_audit("\"sent\"", WITHIN);
    assert_eq!(
        server.messages().len(),
        3,
        "the fourth request sends nothing"
    );
    assert!(t
        .ask(&format!("ID alice PIN {ALICE_PIN}"))
        .starts_with("OK alice"));

    // The newest mailed PIN (each reset replaced the pending one) takes over at its first
    // use; the earlier mailed one and the old PIN stop working then.
    let mails = server.messages();
    let newest = field(&mails[2], "PIN");
    let earlier = field(&mails[0], "PIN");
    assert!(t.ask(&format!("PIN {earlier}")).starts_with("DENY"));
    assert!(t.ask(&format!("PIN {newest}")).starts_with("OK alice"));
    assert!(t
        .ask(&format!("ID alice PIN {ALICE_PIN}"))
        .starts_with("DENY"));
    assert!(t.ask(&format!("PIN {newest}")).starts_with("OK alice"));
    d.wait_audit("\"first_use\"", WITHIN);
}

#[test]
fn a_taken_pin_costs_a_failure_and_forgot_audits_no_typed_id_and_caps_a_device() {
    let server = SmtpServer::start(SmtpOptions::secure());
    let d = start(
        &server,
        "user_can_change = true\n\n[recovery]\nper_device_per_day = 3",
    );
    add_alice(&d);
    let bob_pin = "731955";
    d.cli_ok(&["user", "add", "bob", "--pin-stdin"], Some(bob_pin));
    let mut t = d.terminal();

    // Bob's PIN: refused as not available, and counted like a wrong PIN.
    let taken = t.ask(&format!("CHANGE alice {ALICE_PIN} {bob_pin}"));
    assert!(
        taken.starts_with("ERR 422 this PIN is not available"),
        "{taken}"
    );
    let status = d.status();
    assert_eq!(status["decisions"]["denied"], 1, "counted: {status}");

    // What is typed after FORGOT may be a PIN: audited only when it names a user.
    let typed = "908172";
    for id in ["alice", typed, "nobody"] {
        assert_eq!(t.ask(&format!("FORGOT {id}")), "OK FORGOT");
    }
    // The device's cap (3 a day) is applied when queueing: BUSY, whatever the id.
    assert_eq!(t.ask("FORGOT alice"), "BUSY");
    assert_eq!(t.ask("FORGOT someone"), "BUSY");
    d.wait_audit("\"reset_issued\"", WITHIN);
    let audit = d.wait_for(WITHIN, || {
        let audit = d.cli_ok(&["audit", "--json", "--last", "200"], None);
        match count(&audit, "\"reset_dropped\"") {
            2 => Ok(audit),
            n => Err(format!("{n} reset_dropped:\n{audit}")),
        }
    });
    assert_eq!(count(&audit, "\"reset_requested\""), 3, "{audit}");
    assert_eq!(count(&audit, "unknown id"), 2, "{audit}");
    for secret in [typed, "nobody", "someone", bob_pin] {
        assert!(!audit.contains(secret), "{secret} in the audit: {audit}");
        assert!(!d.logs().contains(secret), "{secret} in the log");
    }
}
