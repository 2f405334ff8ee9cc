//! Sponsored guests end to end, on the real binary: a guest gets only what its sponsor has
//! (groups and time), its invitation (real SMTP, aiosmtpd) carries the PIN and the sponsor's
//! name while the sponsor's notice does not carry the PIN, and the guest disappears when it
//! expires (a fake wall clock, libfaketime) or when its sponsor is disabled.

mod common;

use common::smtp::{envelope_to, field, SmtpOptions, SmtpServer};
use common::{Daemon, Terminal};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// Longer than the lifecycle worker's 20 s round.
const WITHIN: Duration = Duration::from_secs(45);

const GUESTS: &str = "\n[guests]\nallowed = true\nmax_validity = \"1d\"\n";

/// The default printer terminal, and a second listener whose terminals are the front door.
fn listeners() -> String {
    format!(
        "{}\n[[tcp]]\nlisten = \"127.0.0.1:0\"\nline_timeout = \"1s\"\n[[tcp.terminal]]\n\
         address = \"127.0.0.1\"\ndevice = \"front-door\"\n\n[[door]]\ndevice = \"front-door\"\n\
         actuator = \"command\"\ncommand = [\"/bin/true\"]\n",
        common::DEFAULT_TCP
    )
}

fn door(d: &Daemon) -> Terminal {
    let addr: SocketAddr = d.status()["tcp"][1].as_str().unwrap().parse().unwrap();
    Terminal::connect(addr)
}

/// ASCII templates a test can read fields out of.
fn templates(dir: &Path) -> std::path::PathBuf {
    let t = dir.join("templates");
    std::fs::create_dir_all(&t).unwrap();
    let files = [
        ("new_pin", "new PIN=[{{pin}}]"),
        ("reset_pin", "reset PIN=[{{pin}}]"),
        ("forgotten_pin", "forgotten PIN=[{{pin}}]"),
        (
            "guest_invitation",
            "invitation PIN=[{{pin}}] sponsor=[{{sponsor}}] until=[{{pinExpiration}}]",
        ),
        (
            "guest_notice",
            "notice guest=[{{username}}] sponsor=[{{sponsor}}] until=[{{pinExpiration}}]",
        ),
        ("expiry_reminder", "reminder until=[{{pinExpiration}}]"),
        ("pin_changed", "changed"),
    ];
    for (kind, body) in files {
        let text = format!("Subject: {kind} for {{{{username}}}}\n\n{body}\n");
        std::fs::write(t.join(format!("{kind}.txt")), text).unwrap();
    }
    t
}

fn mail_blocks(dir: &Path, server: &SmtpServer) -> String {
    format!(
        "\n[smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nfrom = \"print@example.org\"\n\
         timeout = \"5s\"\n\n[mail]\ntemplates = \"{}\"\ncustomer_name = \"ACME\"\n",
        server.port,
        templates(dir).display(),
    )
}

fn add_sponsor(d: &Daemon) {
    d.cli_ok(
        &[
            "user",
            "add",
            "alice",
            "--name",
            "Alice Doe",
            "--email",
            "alice@example.org",
            "--group",
            "staff",
            "--group",
            "guests",
        ],
        None,
    );
}

fn refused(d: &Daemon, args: &[&str], needle: &str) {
    let out = d.cli(args, None);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} was accepted");
    assert!(err.contains(needle), "{args:?}: `{needle}` not in: {err}");
}

#[test]
fn a_guest_gets_only_what_its_sponsor_has_and_leaves_with_its_sponsor() {
    let d = Daemon::start_with(GUESTS, &listeners());
    add_sponsor(&d);
    let guest = |id: &str, extra: &[&str]| {
        let mut args = vec!["guest", "add", id, "--sponsor", "alice"];
        args.extend_from_slice(&["--email", "bob@example.org"]);
        args.extend_from_slice(extra);
        d.cli(&args, None)
    };
    let out = guest("bob", &["--group", "finance", "--valid-for", "8h"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("`finance`"), "{err}");
    let out = guest("bob", &["--group", "guests", "--valid-for", "2d"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("1d"),
        "past the cap: {err}"
    );

    // Without [smtp] the PIN is printed once, for the operator to hand over.
    let out = guest("bob", &["--group", "guests", "--valid-for", "8h"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pin = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(pin.len() >= 6, "a generated PIN on stdout: {pin:?}");
    assert_eq!(d.terminal().ask(&format!("PIN {pin}")), "OK bob 0");
    assert_eq!(door(&d).ask(&format!("PIN {pin}")), "DENY");

    let listed: serde_json::Value =
        serde_json::from_str(&d.cli_ok(&["guest", "list", "--sponsor", "alice", "--json"], None))
            .unwrap();
    assert_eq!(listed[0]["id"], "bob");
    assert_eq!(listed[0]["sponsor"], "alice");
    assert_eq!(listed[0]["groups"], serde_json::json!(["guests"]));
    d.wait_audit("\"detail\":\"sponsor alice, until", WITHIN);

    refused(
        &d,
        &[
            "guest",
            "extend",
            "bob",
            "--sponsor",
            "alice",
            "--valid-for",
            "30h",
        ],
        "1d",
    );
    d.cli_ok(
        &[
            "guest",
            "extend",
            "bob",
            "--sponsor",
            "alice",
            "--valid-for",
            "20h",
        ],
        None,
    );
    assert_eq!(
        d.terminal().ask(&format!("PIN {pin}")),
        "OK bob 0",
        "the PIN is unchanged"
    );
    d.add_user("carol", "staff", "739154");
    refused(&d, &["guest", "end", "carol"], "not a guest");
    refused(
        &d,
        &["guest", "end", "bob", "--sponsor", "carol"],
        "not a guest of `carol`",
    );
    let args = [
        "guest",
        "add",
        "dave",
        "--sponsor",
        "bob",
        "--email",
        "d@example.org",
    ];
    let mut chained = args.to_vec();
    chained.extend_from_slice(&["--valid-for", "1h"]);
    refused(&d, &chained, "guests cannot sponsor");

    d.cli_ok(&["user", "disable", "alice"], None);
    d.wait_audit("\"detail\":\"sponsor alice disabled\"", WITHIN);
    refused(&d, &["user", "show", "bob"], "no user `bob`");
    assert_eq!(d.terminal().ask(&format!("PIN {pin}")), "DENY");
}

#[test]
fn an_invited_guest_is_told_its_pin_and_sponsor_and_leaves_at_expiry() {
    let server = SmtpServer::start(SmtpOptions::default());
    let d = Daemon::start_prepared(true, |dir| {
        (
            GUESTS.to_string(),
            format!("{}{}", common::DEFAULT_TCP, mail_blocks(dir, &server)),
        )
    });
    add_sponsor(&d);
    let out = d.cli_ok(
        &[
            "guest",
            "add",
            "bob",
            "--sponsor",
            "alice",
            "--email",
            "bob@example.org",
            "--name",
            "Bob Guest",
            "--valid-for",
            "8h",
        ],
        None,
    );
    assert!(
        out.trim().is_empty(),
        "the PIN is the mail's to deliver: {out:?}"
    );
    let mail = server.wait_messages(2, WITHIN);
    let invitation = mail
        .iter()
        .find(|m| envelope_to(m) == "bob@example.org")
        .unwrap();
    let notice = mail
        .iter()
        .find(|m| envelope_to(m) == "alice@example.org")
        .unwrap();
    let pin = field(invitation, "PIN");
    assert!(pin.len() >= 6, "{invitation}");
    assert_eq!(field(invitation, "sponsor"), "Alice Doe");
    assert_eq!(field(notice, "guest"), "bob");
    assert_eq!(field(notice, "sponsor"), "Alice Doe");
    assert_eq!(field(notice, "until"), field(invitation, "until"));
    assert!(
        !notice.contains(&pin),
        "the sponsor's notice carries no PIN: {notice}"
    );
    assert_eq!(d.terminal().ask(&format!("PIN {pin}")), "OK bob 0");

    d.set_clock("+9h");
    // Ended by the lifecycle worker, not by anyone on the control socket.
    d.wait_audit("\"detail\":\"expired\",\"by\":\"pinwarden\"", WITHIN);
    let out = d.cli(&["user", "show", "bob"], None);
    assert!(!out.status.success(), "the guest's account is gone");
    assert_eq!(d.terminal().ask(&format!("PIN {pin}")), "DENY");
    d.cli_ok(&["user", "show", "alice"], None);
}
