//! The PIN lifecycle end to end: the real binary, a real SMTP server (aiosmtpd with
//! STARTTLS and AUTH) and, for expiry, a fake wall clock (libfaketime). PINs generated in
//! `auto` mode arrive by mail and work at a terminal; the outbox survives outages, refusals
//! and kill -9 without losing or repeating a message, and holds no PIN in clear.

mod common;

use common::smtp::{envelope_to, field, password_file, SmtpOptions, SmtpServer};
use common::Daemon;
use std::path::Path;
use std::time::Duration;

const WITHIN: Duration = Duration::from_secs(30);

/// Plain ASCII templates, so a test can read the PIN and validity out of a message.
fn templates(dir: &Path) -> std::path::PathBuf {
    let t = dir.join("templates");
    std::fs::create_dir_all(&t).unwrap();
    let body = |what: &str| {
        format!("Subject: {what} for {{{{username}}}}\n\n{what} PIN=[{{{{pin}}}}] until=[{{{{pinExpiration}}}}] name=[{{{{name}}}}] site=[{{{{customer-name}}}}]\n")
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

/// The `[smtp]` and `[mail]` blocks for `server`, with the password file written to `dir`.
fn mail_blocks(dir: &Path, server: &SmtpServer, mail_extra: &str) -> String {
    let secret = password_file(dir);
    format!(
        "\n[smtp]\nhost = \"127.0.0.1\"\nport = {}\nca_file = \"{}\"\nusername = \"pinwarden\"\n\
         password_file = \"{}\"\nfrom = \"Print room <print@example.org>\"\ntimeout = \"5s\"\n\
         \n[mail]\ntemplates = \"{}\"\ncustomer_name = \"ACME\"\ndate_format = \"%Y-%m-%d %H:%M\"\n{mail_extra}\n",
        server.port,
        server.ca.display(),
        secret.display(),
        templates(dir).display(),
    )
}

/// Starts the daemon with `[policy]` lines, mail to `server`, and the default terminal.
fn start(server: &SmtpServer, policy: &str, mail_extra: &str) -> Daemon {
    start_clocked(false, server, policy, mail_extra)
}

fn start_clocked(faked: bool, server: &SmtpServer, policy: &str, mail_extra: &str) -> Daemon {
    Daemon::start_prepared(faked, |dir| {
        (
            format!("\n[policy]\nmin_length = 6\n{policy}\n"),
            format!(
                "{}{}",
                common::DEFAULT_TCP,
                mail_blocks(dir, server, mail_extra)
            ),
        )
    })
}

fn add(d: &Daemon, id: &str, email: &str) -> String {
    d.cli_ok(
        &[
            "user",
            "add",
            id,
            "--group",
            "staff",
            "--name",
            "Alice Doe",
            "--email",
            email,
        ],
        None,
    )
}

#[test]
fn auto_generation_mails_a_templated_pin_that_works_at_a_terminal() {
    let server = SmtpServer::start(SmtpOptions::secure());
    let d = start(&server, "generation = \"auto\"\npin_validity = \"30d\"", "");
    let out = add(&d, "alice", "alice@example.org");
    assert!(
        !out.contains("PIN"),
        "an auto PIN is the mail's to deliver: {out}"
    );
    let mail = server.wait_messages(1, WITHIN);
    let m = &mail[0];
    assert_eq!(envelope_to(m), "alice@example.org");
    assert!(m.contains("X-TLS: yes") || m.contains("X-TLS: TLS"), "{m}");
    assert!(m.contains("Subject: new for alice"), "{m}");
    assert_eq!(field(m, "name"), "Alice Doe");
    assert_eq!(field(m, "site"), "ACME");
    assert_ne!(
        field(m, "until"),
        "never",
        "a site validity makes every PIN temporary"
    );
    let pin = field(m, "PIN");
    assert_eq!(pin.len(), 6);
    let reply = d.terminal().ask(&format!("PIN {pin}"));
    assert!(reply.starts_with("OK alice"), "{reply}");
    d.wait_audit("\"sent\"", WITHIN);
    let show = d.cli_ok(&["user", "show", "alice", "--json"], None);
    assert!(show.contains("expires_at"), "{show}");
    assert!(!show.contains(&pin), "{show}");
    assert!(!d.logs().contains(&pin), "the PIN is never logged");
}

#[test]
fn an_outage_loses_nothing_and_a_refusal_is_not_retried() {
    let mut server = SmtpServer::start(SmtpOptions::secure());
    server.stop();
    let d = start(&server, "generation = \"auto\"", "");
    add(&d, "alice", "alice@example.org");
    d.wait_status("the mail error in status", |s| {
        s["mail"]["last_error"]
            .as_str()
            .is_some_and(|e| !e.is_empty())
    });
    let list = d.cli_ok(&["mail", "list", "--json"], None);
    assert!(
        list.contains("alice@example.org") && list.contains("new_pin"),
        "{list}"
    );
    server.restart();
    let mail = server.wait_messages(1, Duration::from_secs(90));
    assert_eq!(envelope_to(&mail[0]), "alice@example.org");
    d.wait_for(WITHIN, || {
        let list = d.cli_ok(&["mail", "list", "--json"], None);
        match list.contains("alice@example.org") {
            false => Ok(()),
            true => Err(format!("still queued: {list}")),
        }
    });
    assert_eq!(server.messages().len(), 1, "delivered once");
}

#[test]
fn a_permanent_refusal_is_audited_and_dropped() {
    let server = SmtpServer::start(SmtpOptions {
        refuse_rcpt: Some("550 5.1.1 no such mailbox"),
        ..SmtpOptions::secure()
    });
    let d = start(&server, "generation = \"auto\"", "");
    add(&d, "bob", "bob@example.org");
    let audit = d.wait_audit("\"refused\"", WITHIN);
    assert!(audit.contains("5.1.1"), "{audit}");
    let list = d.cli_ok(&["mail", "list", "--json"], None);
    assert!(!list.contains("bob@example.org"), "not retried: {list}");
    let tries = server
        .events()
        .iter()
        .filter(|e| e.contains("RCPT"))
        .count();
    assert_eq!(tries, 1, "one attempt: {:?}", server.events());
}

#[test]
fn no_starttls_means_nothing_in_clear_and_an_error_in_status() {
    let server = SmtpServer::start(SmtpOptions {
        starttls: false,
        auth: Some("pinwarden:s3cret".into()),
        ..SmtpOptions::default()
    });
    let d = start(&server, "generation = \"auto\"", "");
    add(&d, "carol", "carol@example.org");
    let status = d.wait_status("a STARTTLS error", |s| {
        s["mail"]["last_error"]
            .as_str()
            .is_some_and(|e| e.to_ascii_lowercase().contains("starttls") || e.contains("TLS"))
    });
    assert!(server.messages().is_empty(), "{status}");
    assert!(
        !server
            .events()
            .iter()
            .any(|e| e.starts_with("AUTH") || e.starts_with("DATA")),
        "{:?}",
        server.events()
    );
}

#[test]
fn kill_9_with_mail_queued_sends_each_once_after_restart() {
    let mut server = SmtpServer::start(SmtpOptions::secure());
    server.stop();
    let mut d = start(
        &server,
        "generation = \"auto\"\ncharset = \"alphanumeric\"\ngenerated_length = 12\nmax_length = 12",
        "",
    );
    for i in 0..5 {
        add(&d, &format!("user{i}"), &format!("user{i}@example.org"));
    }
    let list = d.cli_ok(&["mail", "list", "--json"], None);
    let queued: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert_eq!(queued.as_array().map(Vec::len), Some(5), "{list}");
    d.crash_and_restart();
    server.restart();
    let mail = server.wait_messages(5, Duration::from_secs(90));
    let pins: Vec<String> = mail.iter().map(|m| field(m, "PIN")).collect();
    // While they waited, no PIN lay in clear in the state directory.
    for pin in &pins {
        let found = common::found_in_files(d.dir.path(), pin.as_bytes());
        let found: Vec<_> = found
            .into_iter()
            .filter(|p| !p.to_string_lossy().contains("daemon-"))
            .collect();
        assert!(found.is_empty(), "PIN in clear in {found:?}");
    }
    d.wait_for(WITHIN, || {
        let list = d.cli_ok(&["mail", "list", "--json"], None);
        match list.trim() == "[]" {
            true => Ok(()),
            false => Err(format!("still queued: {list}")),
        }
    });
    let mut to: Vec<String> = server
        .messages()
        .iter()
        .map(|m| envelope_to(m).to_string())
        .collect();
    to.sort();
    to.dedup();
    assert_eq!(to.len(), 5, "each once");
    assert_eq!(server.messages().len(), 5, "each once");
}

#[test]
fn a_replaced_pin_is_not_mailed() {
    let mut server = SmtpServer::start(SmtpOptions::secure());
    server.stop();
    let d = start(&server, "generation = \"auto\"", "");
    add(&d, "dave", "dave@example.org");
    d.cli_ok(&["user", "set-pin", "dave", "--pin-stdin"], Some("480213"));
    server.restart();
    d.wait_audit("\"superseded\"", Duration::from_secs(90));
    assert!(server.messages().is_empty(), "{:?}", server.messages());
}

fn messages_to(server: &SmtpServer, to: &str) -> Vec<String> {
    server
        .messages()
        .into_iter()
        .filter(|m| envelope_to(m) == to)
        .collect()
}

#[test]
fn expiry_reminders_go_once_and_the_sweeper_deletes_the_expired_pin() {
    let server = SmtpServer::start(SmtpOptions::secure());
    let mut d = start_clocked(true, &server, "expiry_warning = [\"7d\", \"1d\"]", "");
    d.cli_ok(
        &[
            "user",
            "add",
            "erin",
            "--group",
            "staff",
            "--email",
            "erin@example.org",
        ],
        None,
    );
    d.cli_ok(
        &[
            "user",
            "add",
            "frank",
            "--group",
            "staff",
            "--email",
            "frank@example.org",
        ],
        None,
    );
    let out = d.cli(
        &["user", "set-pin", "erin", "--generate", "--expires", "10d"],
        None,
    );
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("valid until"),
        "--generate prints the validity: {said}"
    );
    d.cli_ok(&["user", "set-pin", "frank", "--generate"], None);
    server.wait_messages(2, WITHIN);
    let pin = field(&messages_to(&server, "erin@example.org")[0], "PIN");

    // 6 days 23 hours before expiry: the 7-day reminder, without the PIN.
    d.set_clock("+73h");
    let reminder = d.wait_for(WITHIN, || {
        match messages_to(&server, "erin@example.org").len() {
            2 => Ok(messages_to(&server, "erin@example.org")[1].clone()),
            n => Err(format!("{n} messages to erin")),
        }
    });
    assert!(reminder.contains("reminder for erin"), "{reminder}");
    assert!(!reminder.contains(&pin), "a reminder carries no PIN");

    // Due while the daemon was down: sent at start.
    d.stop();
    d.set_clock("+218h");
    d.start_again();
    d.wait_for(WITHIN, || {
        match messages_to(&server, "erin@example.org").len() {
            3 => Ok(()),
            n => Err(format!("{n} messages to erin")),
        }
    });

    // Expired: swept within a minute, audited, the PIN denied.
    d.set_clock("+241h");
    d.wait_audit("\"expired\"", Duration::from_secs(70));
    let show = d.cli_ok(&["user", "show", "erin", "--json"], None);
    let show: serde_json::Value = serde_json::from_str(&show).unwrap();
    assert!(show["pin"].is_null(), "{show}");
    assert!(d.terminal().ask(&format!("PIN {pin}")).starts_with("DENY"));
    // Exactly once each, and none for a PIN that never expires.
    assert_eq!(messages_to(&server, "erin@example.org").len(), 3);
    assert_eq!(messages_to(&server, "frank@example.org").len(), 1);
}

#[test]
fn set_validity_moves_the_expiry_without_changing_the_pin() {
    let server = SmtpServer::start(SmtpOptions::secure());
    let d = start(&server, "", "");
    d.cli_ok(
        &[
            "user",
            "add",
            "gina",
            "--group",
            "staff",
            "--pin-stdin",
            "--expires",
            "24h",
        ],
        Some("480213"),
    );
    d.cli_ok(
        &["user", "set-validity", "gina", "--expires", "never"],
        None,
    );
    let show = d.cli_ok(&["user", "show", "gina", "--json"], None);
    let show: serde_json::Value = serde_json::from_str(&show).unwrap();
    assert!(show["pin"]["expires_at"].is_null(), "{show}");
    assert!(d.terminal().ask("PIN 480213").starts_with("OK gina"));
    d.wait_audit("validity_set", WITHIN);
}

#[test]
fn a_group_forces_its_validity_whoever_sets_the_pin() {
    let server = SmtpServer::start(SmtpOptions::secure());
    let d = Daemon::start_prepared(false, |dir| {
        (
            "\n[policy]\nmin_length = 6\n[[group]]\nname = \"guests\"\npin_validity = \"24h\"\n"
                .to_string(),
            format!("{}{}", common::DEFAULT_TCP, mail_blocks(dir, &server, "")),
        )
    });
    d.cli_ok(
        &[
            "user",
            "add",
            "hank",
            "--group",
            "guests",
            "--email",
            "hank@example.org",
            "--generate",
            "--expires",
            "30d",
        ],
        None,
    );
    let show = d.cli_ok(&["user", "show", "hank", "--json"], None);
    let show: serde_json::Value = serde_json::from_str(&show).unwrap();
    let set = show["pin"]["set_at"].as_i64().unwrap();
    let until = show["pin"]["expires_at"].as_i64().unwrap();
    assert_eq!((until - set) / 3_600_000, 24, "{show}");
    let mail = server.wait_messages(1, WITHIN);
    assert_ne!(field(&mail[0], "until"), "never");
}

#[test]
fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let server = SmtpServer::start(SmtpOptions::secure());
    let d = start(&server, "", "");
    let out = d.cli(&["user", "add", "ivan", "--email", "not-an-address"], None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an email address"));
    let out = d.cli(
        &[
            "user",
            "add",
            "ivan",
            "--name",
            "Ivan\r\nBcc: x@evil.example",
        ],
        None,
    );
    assert!(!out.status.success(), "CR/LF in a name is refused");
    let list = d.cli_ok(&["user", "list", "--json"], None);
    assert!(!list.contains("ivan"), "{list}");

    // A template with an unknown variable: check-config names the file and the line.
    let dir = tempfile::tempdir().unwrap();
    let blocks = mail_blocks(dir.path(), &server, "");
    let bad = dir.path().join("templates").join("new_pin.txt");
    std::fs::write(&bad, "Subject: hi\n\nline one\nyour PIN {{pin}} {{pinn}}\n").unwrap();
    let config = dir.path().join("pinwarden.toml");
    std::fs::write(&config, common::config_text(dir.path(), "", &blocks)).unwrap();
    let out = std::process::Command::new(common::BIN)
        .args(["check-config", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("new_pin.txt:4"), "file and line: {stderr}");

    // A password file readable by others is refused at start, naming it.
    let fresh = tempfile::tempdir().unwrap();
    let blocks = mail_blocks(fresh.path(), &server, "");
    use std::os::unix::fs::PermissionsExt;
    let secret = fresh.path().join("smtp-password");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    let config = fresh.path().join("pinwarden.toml");
    std::fs::write(&config, common::config_text(fresh.path(), "", &blocks)).unwrap();
    let out = std::process::Command::new(common::BIN)
        .args(["check-config", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("smtp-password"),
        "{stderr}"
    );
    std::fs::remove_file(&secret).unwrap();
    let out = std::process::Command::new(common::BIN)
        .args(["check-config", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("smtp-password"),
        "{stderr}"
    );
}

#[test]
fn auto_generation_covers_import_rows_and_directory_users_without_a_pin() {
    let server = SmtpServer::start(SmtpOptions::secure());
    let d = Daemon::start_prepared(false, |dir| {
        let users = dir.join("hr.csv");
        std::fs::write(
            &users,
            "id,name,email,groups,pin\numa,Uma Up,uma@example.org,staff,\nvic,Vic Up,vic@example.org,staff,731904\n",
        )
        .unwrap();
        (
            "\n[policy]\nmin_length = 6\ngeneration = \"auto\"\n".to_string(),
            format!(
                "{}{}\n[[directory]]\nname = \"hr\"\nkind = \"csv\"\npath = \"{}\"\ninterval = \"1s\"\n",
                common::DEFAULT_TCP,
                mail_blocks(dir, &server, ""),
                users.display()
            ),
        )
    });
    // The directory user without a PIN gets one by mail; the one with a PIN gets none.
    let mail = server.wait_messages(1, WITHIN);
    assert_eq!(envelope_to(&mail[0]), "uma@example.org");
    let pin = field(&mail[0], "PIN");
    assert!(d
        .terminal()
        .ask(&format!("PIN {pin}"))
        .starts_with("OK uma"));

    // Import rows with an empty PIN column get one too; the row with a PIN does not.
    let file = d.dir.path().join("import.csv");
    std::fs::write(
        &file,
        "id,name,email,groups,pin\nwes,Wes,wes@example.org,staff,\nxia,Xia,xia@example.org,staff,\nyan,Yan,yan@example.org,staff,640271\n",
    )
    .unwrap();
    let out = d.cli_ok(&["import", file.to_str().unwrap(), "--json"], None);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["pins_generated"], 2, "{report}");
    assert_eq!(report["mails_queued"], 2, "{report}");
    server.wait_messages(3, WITHIN);
    let mut to: Vec<String> = server
        .messages()
        .iter()
        .map(|m| envelope_to(m).to_string())
        .collect();
    to.sort();
    assert_eq!(
        to,
        ["uma@example.org", "wes@example.org", "xia@example.org"]
    );
    assert!(!out.contains(&pin));
    d.wait_audit("\"generated\"", WITHIN);
}

#[test]
fn mail_preview_renders_a_placeholder_never_a_pin() {
    let server = SmtpServer::start(SmtpOptions::secure());
    let d = start(&server, "", "");
    d.cli_ok(
        &[
            "user",
            "add",
            "zoe",
            "--name",
            "Zoe Z",
            "--email",
            "zoe@example.org",
            "--pin-stdin",
        ],
        Some("480213"),
    );
    let out = d.cli_ok(&["mail", "preview", "new_pin", "--user", "zoe"], None);
    assert!(
        out.contains("new for zoe") && out.contains("name=[Zoe Z]"),
        "{out}"
    );
    assert!(!out.contains("480213"), "{out}");
    let out = d.cli(&["mail", "preview", "no_such", "--user", "zoe"], None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("new_pin"));
}
