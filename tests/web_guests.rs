//! Sponsors' guests on the self-service page: invite, extend within the cap, end, with the
//! same rules as `pinwarden guest …`, every change audited as `web:<sponsor>`; a missing
//! CSRF token changes nothing.

mod common;
#[path = "common/web.rs"]
mod web;

fn csrf(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    page[at..at + page[at..].find('"').unwrap()].to_string()
}

#[test]
fn a_sponsor_invites_extends_and_ends_a_guest_on_the_page() {
    let server = web::smtp();
    let d = web::start(
        &server,
        false,
        "\n[guests]\nallowed = true\nmax_validity = \"7d\"\n",
    );
    let base = format!("http://{}", d.http());
    let browser = web::client();
    let r = browser
        .post(format!("{base}/sign-in"))
        .form(&[("who", "alice")])
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let (link, _) = web::sign_in_mail(&server, 1);
    let spent = browser.post(&link).form(&[("code", "")]).send().unwrap();
    assert_eq!(spent.status(), 303, "the asking browser");
    let page = browser
        .get(format!("{base}/"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(page.contains("You have no guests."), "{page}");
    let token = csrf(&page);
    let post = |fields: &[(&str, &str)]| {
        let mut form = vec![("csrf", token.as_str())];
        form.extend_from_slice(fields);
        let r = browser
            .post(format!("{base}/guests"))
            .form(&form)
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
        r.text().unwrap()
    };

    let invited = post(&[
        ("action", "invite"),
        ("id", "visitor1"),
        ("name", "Vic Visitor"),
        ("email", "vic@example.org"),
        ("valid_for", "8h"),
    ]);
    assert!(
        invited.contains("Guest visitor1 can come in until"),
        "{invited}"
    );
    assert!(invited.contains("Vic Visitor (visitor1)") && invited.contains("not yet"));
    common::wait_until(web::WITHIN, || {
        let to_vic = server
            .messages()
            .iter()
            .any(|m| common::smtp::envelope_to(m) == "vic@example.org");
        to_vic
            .then_some(())
            .ok_or_else(|| "no invitation to vic yet".to_string())
    });

    let too_long = post(&[
        ("action", "extend"),
        ("id", "visitor1"),
        ("valid_for", "30d"),
    ]);
    assert!(
        too_long.contains("id=\"guest-error\""),
        "past the cap: {too_long}"
    );
    let extended = post(&[
        ("action", "extend"),
        ("id", "visitor1"),
        ("valid_for", "2d"),
    ]);
    assert!(extended.contains("can now come in until"), "{extended}");
    let others = post(&[("action", "end"), ("id", "alice")]);
    assert!(
        others.contains("id=\"guest-error\""),
        "not a guest of alice's: {others}"
    );

    let forged = browser
        .post(format!("{base}/guests"))
        .form(&[("action", "end"), ("id", "visitor1")])
        .send()
        .unwrap();
    assert_eq!(forged.status(), 403, "no CSRF token");
    let ended = post(&[("action", "end"), ("id", "visitor1")]);
    assert!(ended.contains("Guest visitor1 has been ended."), "{ended}");
    assert!(ended.contains("You have no guests."));

    let audit = d.cli_ok(&["audit", "--json"], None);
    for action in ["guest_add", "guest_extend"] {
        assert!(audit.contains(action), "{action} audited: {audit}");
    }
    assert!(audit.contains("web:alice"), "{audit}");
    let list = d.cli_ok(&["guest", "list", "--json"], None);
    assert!(!list.contains("visitor1"), "{list}");
}

/// `[mail] delivery = "reveal"`: a guest's invitation is a reveal link and its code, never
/// the PIN (nor is the sponsor's notice); the PIN it shows works at a terminal.
#[test]
fn a_guest_invitation_under_reveal_delivery_carries_a_link_not_the_pin() {
    let server = web::smtp();
    let d = web::start(
        &server,
        false,
        "delivery = \"reveal\"\n\n[guests]\nallowed = true\nmax_validity = \"7d\"\n",
    );
    let out = d.cli_ok(
        &[
            "guest",
            "add",
            "visitor2",
            "--sponsor",
            "alice",
            "--email",
            "vic@example.org",
            "--valid-for",
            "8h",
        ],
        None,
    );
    let (link, code, mail) = web::link_mail(&server, "/reveal/", 1);
    assert!(mail.contains("vic@example.org"), "to the guest: {mail}");
    let notice = common::wait_until(web::WITHIN, || {
        server
            .messages()
            .into_iter()
            .find(|m| common::smtp::envelope_to(m) == "alice@example.org")
            .ok_or_else(|| "no notice to alice yet".to_string())
    });
    let browser = web::client();
    let shown = browser
        .post(&link)
        .form(&[("code", code.as_str())])
        .send()
        .unwrap();
    assert_eq!(shown.status(), 200);
    let page = shown.text().unwrap();
    let at = page.find("id=\"pin\">").expect("the PIN shown") + 9;
    let pin = page[at..at + page[at..].find('<').unwrap()]
        .trim()
        .to_string();
    assert!(
        pin.len() >= 6 && pin.bytes().all(|b| b.is_ascii_digit()),
        "{pin}"
    );
    assert!(
        !out.contains(&pin),
        "the sponsor's side shows no PIN: {out}"
    );
    assert!(
        !mail.contains(&pin),
        "the invitation carries no PIN: {mail}"
    );
    assert!(!notice.contains(&pin), "nor the sponsor's notice: {notice}");
    for m in server.messages() {
        assert!(!m.contains(&pin), "no mail holds the PIN: {m}");
    }
    let reply = d.terminal().ask(&format!("PIN {pin}"));
    assert!(reply.starts_with("OK visitor2"), "{reply}");
}
