//! The SMTP transport against a real aiosmtpd on loopback: STARTTLS required and verified
//! against a test CA, password and XOAUTH2 logins, one connection reused, refusals sorted
//! into what the outbox does next, nothing sent in clear when STARTTLS is missing, the
//! `check-config --smtp` probe stopping at RCPT TO.

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

fn password(server: &SmtpServer, secret: &str) -> SmtpAuth {
    let file = server.dir.path().join("smtp-password");
    std::fs::write(&file, format!("{secret}\n")).unwrap();
    SmtpAuth::Password {
        username: "pinwarden".into(),
        password_file: file,
    }
}

fn mail(to: &str, subject: &str) -> Mail {
    Mail {
        to: to.into(),
        subject: subject.into(),
        text: Zeroizing::new("Your PIN is valid until 2026-12-03 08:00.".into()),
        html: None,
    }
}

fn secure() -> SmtpOptions {
    SmtpOptions {
        starttls: true,
        auth: Some("pinwarden:s3cret".into()),
        ..SmtpOptions::default()
    }
}

#[tokio::test]
async fn starttls_and_login_deliver_over_one_reused_connection() {
    let server = SmtpServer::start(secure());
    let mailer = Mailer::new(&settings(
        &server,
        SmtpTls::Starttls,
        password(&server, "s3cret"),
    ))
    .unwrap();
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
    std::fs::write(&token_file, "ya29.token\n").unwrap();
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
    std::fs::write(&token_file, "stale-token\n").unwrap();
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
    let mailer = Mailer::new(&settings(
        &server,
        SmtpTls::Starttls,
        password(&server, "s3cret"),
    ))
    .unwrap();
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

#[tokio::test]
async fn refusals_are_sorted_into_drop_or_retry() {
    let refused = SmtpServer::start(SmtpOptions {
        refuse_rcpt: Some(550),
        ..secure()
    });
    let mailer = Mailer::new(&settings(
        &refused,
        SmtpTls::Starttls,
        password(&refused, "s3cret"),
    ))
    .unwrap();
    let err = mailer
        .send(&mail("nobody@example.org", "PIN"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, SendError::Refused(_)),
        "5xx: drop, audit: {err:?}"
    );

    let quota = SmtpServer::start(SmtpOptions {
        refuse_rcpt: Some(452),
        ..secure()
    });
    let mailer = Mailer::new(&settings(
        &quota,
        SmtpTls::Starttls,
        password(&quota, "s3cret"),
    ))
    .unwrap();
    let err = mailer
        .send(&mail("alice@example.org", "PIN"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, SendError::Deferred { quota: true, .. }),
        "4xx quota: pause the lane: {err:?}"
    );

    let wrong = Mailer::new(&settings(
        &quota,
        SmtpTls::Starttls,
        password(&quota, "wrong"),
    ))
    .unwrap();
    let err = wrong
        .send(&mail("alice@example.org", "PIN"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, SendError::Unavailable(ref m) if m.contains("login refused")),
        "a refused login keeps the message: {err:?}"
    );

    for bad in [
        mail("not an address", "PIN"),
        mail("alice@example.org", "PIN\r\nBcc: eve@example.org"),
    ] {
        let err = mailer.send(&bad).await.unwrap_err();
        assert!(matches!(err, SendError::Invalid(_)), "{err:?}");
    }
    assert!(pinwarden::notify::transport::valid_address("alice@example.org").is_ok());
    assert!(pinwarden::notify::transport::valid_address("alice@example.org\r\nBcc: x@y").is_err());
}

#[tokio::test]
async fn a_relay_that_was_down_is_used_again_when_it_returns() {
    let mut server = SmtpServer::start(secure());
    let mailer = Mailer::new(&settings(
        &server,
        SmtpTls::Starttls,
        password(&server, "s3cret"),
    ))
    .unwrap();
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
    let server = SmtpServer::start(secure());
    let mailer = Mailer::new(&settings(
        &server,
        SmtpTls::Starttls,
        password(&server, "s3cret"),
    ))
    .unwrap();
    mailer.probe().await.unwrap();
    let events = server.events();
    assert!(
        events.contains(&"RCPT print@example.org".to_string()),
        "{events:?}"
    );
    assert!(events.contains(&"RSET".to_string()), "{events:?}");
    assert!(server.messages().is_empty(), "the probe sends nothing");

    let wrong = Mailer::new(&settings(
        &server,
        SmtpTls::Starttls,
        password(&server, "nope"),
    ))
    .unwrap();
    let ProbeError { step, .. } = wrong.probe().await.unwrap_err();
    assert_eq!(step, "AUTH");
}
