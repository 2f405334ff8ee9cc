use super::*;
use std::path::PathBuf;

fn settings(dir: Option<PathBuf>) -> MailSettings {
    MailSettings {
        templates: dir,
        customer_name: "Acme Print".into(),
        time_zone: "Europe/Berlin".into(),
        date_format: "%Y-%m-%d %H:%M %Z".into(),
        ..MailSettings::default()
    }
}

fn vars(pin: &str) -> MailVars {
    MailVars {
        pin: Some(Zeroizing::new(pin.into())),
        username: "jdoe".into(),
        name: "Jane Doe".into(),
        // 2026-12-03 07:00 UTC = 08:00 in Berlin (CET).
        pin_expiration: Some(Timestamp::from_millis(1_796_281_200_000)),
        sponsor: Some("Sam Host".into()),
        ..Default::default()
    }
}

/// A template directory holding every bundled template, `new_pin.txt` replaced by `new_pin`.
fn dir_with(new_pin: &str, html: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (kind, text) in BUNDLED {
        std::fs::write(dir.path().join(format!("{}.txt", kind.template())), text).unwrap();
    }
    std::fs::write(dir.path().join("new_pin.txt"), new_pin).unwrap();
    if let Some(html) = html {
        std::fs::write(dir.path().join("new_pin.html"), html).unwrap();
    }
    dir
}

#[test]
fn every_bundled_template_renders() {
    let t = Templates::load(&settings(None)).unwrap();
    for kind in MailKind::ALL {
        let r = t.render(kind, &vars("4829")).unwrap();
        assert!(r.subject.contains("Acme Print"), "{kind:?}: {}", r.subject);
        assert!(
            r.text.contains("Jane Doe") && r.text.contains("jdoe"),
            "{kind:?}"
        );
        assert_eq!(r.text.contains("4829"), kind.carries_pin(), "{kind:?}");
        assert!(!r.subject.contains("4829") && !r.text.contains('\u{E000}'));
        assert!(r.html.is_none());
    }
    let new = t.render(MailKind::NewPin, &vars("4829")).unwrap();
    assert!(
        new.text.contains("Valid until: 2026-12-03 08:00 CET"),
        "{}",
        *new.text
    );
    let guest = t.render(MailKind::GuestInvitation, &vars("4829")).unwrap();
    assert!(guest.text.contains("Sam Host has invited you"));
}

#[test]
fn pin_expiration_uses_the_site_zone_and_format_or_says_never() {
    let mut s = settings(None);
    s.time_zone = "America/New_York".into();
    s.date_format = "%d.%m.%Y %H:%M".into();
    let t = Templates::load(&s).unwrap();
    let at = Some(Timestamp::from_millis(1_796_281_200_000));
    assert_eq!(t.expiration(at), "03.12.2026 02:00");
    assert_eq!(t.expiration(None), "never");
    s.time_zone = "Mars/Olympus".into();
    let e = Templates::load(&s).err().unwrap();
    assert_eq!(e.file, "[mail] time_zone");
}

#[test]
fn an_unknown_variable_names_file_and_line() {
    let dir = dir_with(
        "Subject: PIN\n\nHello {{name}},\n\nyour PIN {{pinn}}\n",
        None,
    );
    let e = Templates::load(&settings(Some(dir.path().into())))
        .err()
        .unwrap();
    assert!(e.file.ends_with("new_pin.txt"), "{e}");
    assert_eq!(e.line, Some(5), "{e}");
    let dir = dir_with("Subject: PIN for {{usrname}}\n\nbody\n", None);
    let e = Templates::load(&settings(Some(dir.path().into())))
        .err()
        .unwrap();
    assert_eq!(e.line, Some(1), "{e}");
    let dir = dir_with("Subject: x\n\nok {{pin}}\n", Some("<p>\n{{nme}}</p>"));
    let e = Templates::load(&settings(Some(dir.path().into())))
        .err()
        .unwrap();
    assert!(e.file.ends_with("new_pin.html") && e.line == Some(2), "{e}");
}

#[test]
fn a_malformed_file_is_refused() {
    for (text, line) in [
        ("Hello\n\nbody", 1),
        ("Subject: x\nbody", 2),
        ("Subject: x\n\n{{#if}}", 3),
    ] {
        let dir = dir_with(text, None);
        let e = Templates::load(&settings(Some(dir.path().into())))
            .err()
            .unwrap();
        assert_eq!(e.line, Some(line), "{text:?}: {e}");
    }
}

#[test]
fn the_pin_never_goes_into_a_subject_or_a_reminder() {
    let dir = dir_with("Subject: Your PIN {{pin}}\n\nbody\n", None);
    let e = Templates::load(&settings(Some(dir.path().into())))
        .err()
        .unwrap();
    assert!(e.message.contains("may not carry the PIN"), "{e}");
    let dir = dir_with(include_str!("../../../config/templates/new_pin.txt"), None);
    std::fs::write(
        dir.path().join("expiry_reminder.txt"),
        "Subject: x\n\n{{pin}}\n",
    )
    .unwrap();
    let e = Templates::load(&settings(Some(dir.path().into())))
        .err()
        .unwrap();
    assert!(
        e.file.ends_with("expiry_reminder.txt") && e.line == Some(3),
        "{e}"
    );
}

#[test]
fn a_line_break_in_the_subject_is_refused_at_render() {
    let t = Templates::load(&settings(None)).unwrap();
    for evil in ["Eve\r\nBcc: all@example.org", "Eve\nX: y", "Eve\r"] {
        let mut v = vars("4829");
        v.name = evil.into();
        let dir = dir_with("Subject: Hello {{name}}\n\nbody\n", None);
        let custom = Templates::load(&settings(Some(dir.path().into()))).unwrap();
        let e = custom.render(MailKind::NewPin, &v).err().unwrap();
        assert_eq!(e.line, Some(1));
        assert!(!e.to_string().contains("Bcc"), "{e}");
        // The bundled subjects use no name; bodies may hold it.
        assert!(t.render(MailKind::NewPin, &v).is_ok());
    }
}

#[test]
fn text_is_not_escaped_html_is() {
    let html = "<p>{{name}}: {{pin}} {{customer-name}}</p>";
    let dir = dir_with("Subject: x\n\n{{name}} {{pin}}\n", Some(html));
    let t = Templates::load(&settings(Some(dir.path().into()))).unwrap();
    let mut v = vars("ab12");
    v.name = "Tom & <Jerry>".into();
    let r = t.render(MailKind::NewPin, &v).unwrap();
    assert_eq!(r.text.as_str(), "Tom & <Jerry> ab12\n");
    let html = r.html.unwrap();
    assert_eq!(
        html.as_str(),
        "<p>Tom &amp; &lt;Jerry&gt;: ab12 Acme Print</p>"
    );
}

#[test]
fn preview_shows_a_placeholder_and_bytes_round_trip() {
    let t = Templates::load(&settings(None)).unwrap();
    let r = t
        .render(
            MailKind::ResetPin,
            &MailVars::placeholder("jdoe", "Jane", None),
        )
        .unwrap();
    assert!(r.text.contains(PREVIEW_PIN) && r.text.contains("Valid until: never"));
    let back = Rendered::from_bytes(&r.to_bytes()).unwrap();
    assert_eq!((back.subject, back.text), (r.subject, r.text));
    assert!(Rendered::from_bytes(b"{").is_none());
}
