//! The SMTP transport against a real aiosmtpd on loopback: STARTTLS required and verified
//! against a test CA, password and XOAUTH2 logins, connections reused (lettre's pool may
//! alternate two), refusals sorted into what the outbox does next, nothing sent in clear
//! when STARTTLS is missing, a hung relay costing one deadline, the `check-config --smtp`
//! probe stopping at RCPT TO.

mod common;

use common::smtp::{SmtpOptions, SmtpServer};
use pinwarden::notify::transport::ProbeError;
use pinwarden::notify::{Mail, Mailer, SendError, SmtpAuth, SmtpSettings, SmtpTls};
use std::time::Duration;
use zeroize::Zeroizing;

fn settings(server: &SmtpServer, tls: SmtpTls, auth: SmtpAuth) -> SmtpSettings {
    SmtpSettings {
        host: "127.0.0.1".into(),
        port: server.port,
        tls,
        auth,
        ca_file: Some(server.ca.clone()),
        from: "Print room <print@example.org>".into(),
        reply_to: Some("helpdesk@example.org".into()),
        timeout: Duration::from_secs(10),
    }
}

use common::write_secret as secret_file;

fn password(server: &SmtpServer, secret: &str) -> SmtpAuth {
    let file = server.dir.path().join("smtp-password");
    secret_file(&file, &format!("{secret}\n"));
    SmtpAuth::Password {
        username: "pinwarden".into(),
        password_file: file,
    }
}

/// A mailer that logs in over STARTTLS with `secret` as its password.
fn login_mailer(server: &SmtpServer, secret: &str) -> Mailer {
    Mailer::new(&settings(
        server,
        SmtpTls::Starttls,
        password(server, secret),
    ))
    .unwrap()
}

fn mail(to: &str, subject: &str) -> Mail {
    Mail {
        to: to.into(),
        subject: subject.into(),
        text: Zeroizing::new("Your PIN is valid until 2026-12-03 08:00.".into()),
        html: None,
    }
}

#[tokio::test]
async fn starttls_and_login_deliver_over_reused_connections() {
    let server = SmtpServer::start(SmtpOptions::secure());
    let mailer = login_mailer(&server, "s3cret");
    for i in 0..5 {
        mailer
            .send(&mail("alice@example.org", &format!("Your PIN {i}")))
            .await
            .unwrap();
    }
    let messages = server.wait_messages(5, Duration::from_secs(10));
    let first = &messages[0];
    for line in [
        "X-TLS: yes",
        "X-Auth: yes",
        "X-Envelope-To: alice@example.org",
        "Subject: Your PIN 0",
        "Reply-To: helpdesk@example.org",
        "valid until 2026-12-03 08:00",
    ] {
        assert!(first.contains(line), "{line:?} missing in\n{first}");
    }
    assert!(first.contains("print@example.org"), "{first}");
    let ehlos = server
        .events()
        .iter()
        .filter(|e| e.starts_with("EHLO"))
        .count();
    // Each connection says EHLO twice (before and after STARTTLS); five messages over fresh
    // connections would take ten.
    assert!(
        ehlos <= 4,
        "the connection is reused across messages: {:?}",
        server.events()
    );
}

#[tokio::test]
async fn xoauth2_logs_in_with_the_token_from_its_file() {
    let server = SmtpServer::start(SmtpOptions {
        starttls: true,
        xoauth2: Some("print@example.org:ya29.token".into()),
        ..SmtpOptions::default()
    });
    let token_file = server.dir.path().join("token");
    secret_file(&token_file, "ya29.token\n");
    let auth = SmtpAuth::Xoauth2 {
        username: "print@example.org".into(),
        token_file: token_file.clone(),
    };
    let mailer = Mailer::new(&settings(&server, SmtpTls::Starttls, auth)).unwrap();
    mailer
        .send(&mail("bob@example.org", "Reset"))
        .await
        .unwrap();
    server.wait_messages(1, Duration::from_secs(10));
    assert!(server.events().contains(&"AUTH XOAUTH2 ok".to_string()));

    // A refresher replaces the token; a stale one is refused and nothing is delivered.
    secret_file(&token_file, "stale-token\n");
    let err = mailer
        .send(&mail("bob@example.org", "Reset"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, SendError::Unavailable(ref m) if m.contains("login refused")),
        "{err:?}"
    );
    assert_eq!(server.messages().len(), 1);
}

#[tokio::test]
async fn without_starttls_offered_nothing_is_sent_in_clear() {
    let server = SmtpServer::start(SmtpOptions::default());
    let mailer = login_mailer(&server, "s3cret");
    let err = mailer
        .send(&mail("alice@example.org", "PIN"))
        .await
        .unwrap_err();
    assert!(matches!(err, SendError::Unavailable(_)), "{err:?}");
    let events = server.events();
    assert!(
        !events
            .iter()
            .any(|e| e.starts_with("AUTH") || e.starts_with("RCPT") || e.starts_with("DATA")),
        "no login, no envelope, no message in clear: {events:?}"
    );
    assert!(server.messages().is_empty());
    let probe = mailer.probe().await.unwrap_err();
    assert_eq!(probe.step, "STARTTLS", "{probe}");

    // Clear text to a loopback relay only when chosen explicitly.
    let clear = Mailer::new(&settings(&server, SmtpTls::None, SmtpAuth::None)).unwrap();
    clear.send(&mail("alice@example.org", "PIN")).await.unwrap();
    assert!(server.wait_messages(1, Duration::from_secs(10))[0].contains("X-TLS: no"));
}

/// What one RCPT TO reply makes of a message.
async fn outcome_of(reply: &'static str) -> SendError {
    let server = SmtpServer::start(SmtpOptions {
        refuse_rcpt: Some(reply),
        ..SmtpOptions::secure()
    });
    let mailer = login_mailer(&server, "s3cret");
    let err = mailer
        .send(&mail("alice@example.org", "PIN"))
        .await
        .unwrap_err();
    assert!(server.messages().is_empty());
    err
}

#[tokio::test]
async fn refusals_are_sorted_into_drop_retry_or_pause() {
    let unknown = outcome_of("550 5.1.1 no such user").await;
    assert!(
        matches!(unknown, SendError::Refused(_)),
        "5xx for this recipient: drop, audit: {unknown:?}"
    );
    let full = outcome_of("452 4.2.2 mailbox full").await;
    assert!(
        matches!(full, SendError::Deferred { quota: false, .. }),
        "a full mailbox defers this message only: {full:?}"
    );
    let rate = outcome_of("451 4.7.1 rate limit exceeded, try later").await;
    assert!(
        matches!(rate, SendError::Deferred { quota: true, .. }),
        "the sender's rate limit pauses the lane: {rate:?}"
    );
    let daily =
        outcome_of("554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException")
            .await;
    assert!(
        matches!(daily, SendError::Deferred { quota: true, .. }),
        "Exchange's daily quota comes as a 5xx and still only pauses: {daily:?}"
    );
    let relay = outcome_of("550 5.7.1 relaying denied").await;
    assert!(
        matches!(relay, SendError::Unavailable(_)),
        "a relay that refuses pinwarden keeps every message: {relay:?}"
    );

    let server = SmtpServer::start(SmtpOptions::secure());
    let wrong = login_mailer(&server, "wrong");
    let err = wrong
        .send(&mail("alice@example.org", "PIN"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, SendError::Unavailable(ref m) if m.contains("login refused")),
        "a refused login keeps the message: {err:?}"
    );

    let mailer = login_mailer(&server, "s3cret");
    for bad in [
        mail("not an address", "PIN"),
        mail("alice@example.org", "PIN\r\nBcc: eve@example.org"),
    ] {
        let err = mailer.send(&bad).await.unwrap_err();
        assert!(matches!(err, SendError::Invalid(_)), "{err:?}");
    }
    assert!(server.messages().is_empty());
    assert!(pinwarden::notify::transport::valid_address("alice@example.org").is_ok());
    assert!(pinwarden::notify::transport::valid_address("alice@example.org\r\nBcc: x@y").is_err());
}

#[tokio::test]
async fn a_secret_file_others_can_read_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let server = SmtpServer::start(SmtpOptions::secure());
    let auth = password(&server, "s3cret");
    let SmtpAuth::Password { password_file, .. } = &auth else {
        unreachable!()
    };
    std::fs::set_permissions(password_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = Mailer::new(&settings(&server, SmtpTls::Starttls, auth.clone()))
        .err()
        .unwrap();
    assert!(err.contains("open to other users (mode 644)"), "{err}");
    std::fs::remove_file(password_file).unwrap();
    let err = Mailer::new(&settings(&server, SmtpTls::Starttls, auth))
        .err()
        .unwrap();
    assert!(err.contains("cannot read smtp.password_file"), "{err}");
}

/// `pinwarden check-config --smtp` with `smtp` as the `[smtp]` block: exit status, stderr.
fn check_config_smtp(dir: &std::path::Path, smtp: &str) -> (bool, String) {
    let config = dir.join("pinwarden.toml");
    std::fs::write(&config, common::config_text(dir, "", smtp)).unwrap();
    let out = std::process::Command::new(common::BIN)
        .args(["check-config", "--smtp", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_config_smtp_reaches_rcpt_to_or_names_the_failing_step() {
    let server = SmtpServer::start(SmtpOptions::secure());
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("smtp-password");
    let block = |pass: &str| {
        secret_file(&secret, pass);
        format!(
            "[smtp]\nhost = \"127.0.0.1\"\nport = {}\nca_file = \"{}\"\nusername = \"pinwarden\"\n\
             password_file = \"{}\"\nfrom = \"Print room <print@example.org>\"\n",
            server.port,
            server.ca.display(),
            secret.display()
        )
    };
    let (ok, stderr) = check_config_smtp(dir.path(), &block("s3cret"));
    assert!(ok && stderr.contains("reached RCPT TO"), "{stderr}");
    assert!(server.messages().is_empty(), "nothing is sent");
    assert!(server.events().contains(&"RSET".to_string()));

    let (ok, stderr) = check_config_smtp(dir.path(), &block("wrong"));
    assert!(!ok && stderr.contains("AUTH"), "{stderr}");
    assert!(
        !stderr.contains("wrong"),
        "no secret in the message: {stderr}"
    );

    let clear =
        "[smtp]\nhost = \"mail.example.org\"\ntls = \"none\"\nfrom = \"print@example.org\"\n";
    let (ok, stderr) = check_config_smtp(dir.path(), clear);
    assert!(!ok && stderr.contains("smtp.tls = \"none\""), "{stderr}");
    let (ok, stderr) = check_config_smtp(
        dir.path(),
        "[smtp]\nhost = \"h\"\nfrom = \"not an address\"\n",
    );
    assert!(!ok && stderr.contains("smtp.from"), "{stderr}");
    let (ok, stderr) = check_config_smtp(dir.path(), "");
    assert!(!ok && stderr.contains("no [smtp] block"), "{stderr}");
}

#[tokio::test]
async fn clear_text_only_to_this_host_and_never_with_a_login() {
    let server = SmtpServer::start(SmtpOptions::default());
    let mut remote = settings(&server, SmtpTls::None, SmtpAuth::None);
    remote.host = "mail.example.org".into();
    let err = Mailer::new(&remote).err().unwrap();
    assert!(
        err.contains("only allowed for a relay on this host"),
        "{err}"
    );
    let with_login = settings(&server, SmtpTls::None, password(&server, "s3cret"));
    let err = Mailer::new(&with_login).err().unwrap();
    assert!(err.contains("password in clear"), "{err}");
}

#[tokio::test]
async fn a_relay_that_hangs_mid_dialogue_costs_one_deadline_and_its_connection() {
    let server = SmtpServer::start(SmtpOptions {
        stall_first_data: true,
        ..SmtpOptions::secure()
    });
    let mut s = settings(&server, SmtpTls::Starttls, password(&server, "s3cret"));
    s.timeout = Duration::from_secs(2);
    let mailer = Mailer::new(&s).unwrap();
    let err = mailer
        .send(&mail("alice@example.org", "one"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, SendError::Unavailable(ref m) if m.contains("no answer")),
        "{err:?}"
    );
    // The next message goes over a fresh connection, not the one still waiting for the
    // stalled DATA's reply (which would pair this message with the late answers).
    mailer
        .send(&mail("alice@example.org", "two"))
        .await
        .unwrap();
    let messages = server.wait_messages(1, Duration::from_secs(10));
    assert!(messages[0].contains("Subject: two"), "{}", messages[0]);
    let ehlos = server
        .events()
        .iter()
        .filter(|e| e.starts_with("EHLO"))
        .count();
    assert_eq!(ehlos, 4, "a second connection: {:?}", server.events());
}

#[tokio::test]
async fn a_relay_that_was_down_is_used_again_when_it_returns() {
    let mut server = SmtpServer::start(SmtpOptions::secure());
    let mailer = login_mailer(&server, "s3cret");
    mailer
        .send(&mail("alice@example.org", "one"))
        .await
        .unwrap();
    server.stop();
    let err = mailer
        .send(&mail("alice@example.org", "two"))
        .await
        .unwrap_err();
    assert!(matches!(err, SendError::Unavailable(_)), "{err:?}");
    server.restart();
    mailer
        .send(&mail("alice@example.org", "two"))
        .await
        .unwrap();
    let messages = server.wait_messages(2, Duration::from_secs(10));
    assert!(messages[1].contains("Subject: two"));
}

#[tokio::test]
async fn the_probe_stops_at_rcpt_to_and_names_the_failing_step() {
    let server = SmtpServer::start(SmtpOptions::secure());
    let mailer = login_mailer(&server, "s3cret");
    mailer.probe().await.unwrap();
    let events = server.events();
    assert!(
        events.contains(&"RCPT print@example.org".to_string()),
        "{events:?}"
    );
    assert!(events.contains(&"RSET".to_string()), "{events:?}");
    assert!(server.messages().is_empty(), "the probe sends nothing");

    let wrong = login_mailer(&server, "nope");
    let ProbeError { step, .. } = wrong.probe().await.unwrap_err();
    assert_eq!(step, "AUTH");
}
