//! The self-service page in a real browser (Debian chromium through chromedriver): a person
//! asks for a sign-in link, a mail scanner fetches it first (it stays usable), the person
//! opens it, generates a PIN that works at a TCP terminal, tries a weak PIN (the policy's
//! message on the page), and the used link is refused. Screenshots of each page go to
//! `docs/screenshots/` for the README when `PINWARDEN_SCREENSHOTS=docs/screenshots` is set.

mod common;
#[path = "common/web.rs"]
mod web;

use web::Browser;

#[test]
fn a_person_signs_in_by_link_generates_a_pin_that_works_and_sees_policy_errors() {
    let server = web::smtp();
    let d = web::start(&server, false, "");
    let base = format!("http://{}", d.http());
    let browser = Browser::start();

    browser.goto(&format!("{base}/"));
    browser.wait_text("Email me a sign-in link");
    browser.screenshot("1-sign-in");
    browser.fill("#who", "alice@example.org");
    browser.click("button[type=submit]");
    browser.wait_text("Check your mail");
    browser.screenshot("2-check-your-mail");

    let (link, _code) = web::sign_in_mail(&server, 1);
    assert!(link.starts_with(&base), "{link}");
    // A mail scanner opens every link (GET and HEAD): nothing is spent.
    let scanner = reqwest::blocking::Client::new();
    let scanned = scanner.get(&link).send().unwrap();
    assert_eq!(scanned.status(), 200);
    assert!(scanned.text().unwrap().contains("Sign in"));
    assert_eq!(scanner.head(&link).send().unwrap().status(), 200);

    browser.goto(&link);
    browser.wait_text("<button type=\"submit\">Sign in</button>");
    browser.screenshot("3-link-opened");
    browser.click("button[type=submit]");
    browser.wait_text("Generate a new PIN");
    assert!(browser.source().contains("Alice Doe"));
    browser.screenshot("4-account");
    d.wait_audit("web_sign_in", web::WITHIN);

    browser.click("form[action='/pin/new'] button");
    browser.wait_text("shown only this once");
    let pin = browser.text("#pin");
    assert_eq!(pin.len(), 6, "{pin}");
    browser.screenshot("5-new-pin");
    let reply = d.terminal().ask(&format!("PIN {pin}"));
    assert!(reply.starts_with("OK alice"), "{reply}");
    assert_eq!(
        d.terminal().ask("PIN 739146"),
        "DENY",
        "the old PIN is gone"
    );

    browser.goto(&format!("{base}/"));
    browser.fill("#new", "123456");
    browser.fill("#repeat", "123456");
    browser.click("form[action='/pin/change'] button");
    let page = browser.wait_text("id=\"pin-error\"");
    assert!(page.contains("consecutive"), "{page}");
    browser.screenshot("6-policy-error");
    let reply = d.terminal().ask(&format!("PIN {pin}"));
    assert!(
        reply.starts_with("OK alice"),
        "a refused change changes nothing: {reply}"
    );

    // The used link again: refused, in the browser and to a plain POST.
    browser.goto(&link);
    browser.wait_text("has already been used");
    browser.screenshot("7-link-used");
    let replay = scanner.post(&link).form(&[("code", "")]).send().unwrap();
    assert_eq!(replay.status(), 410);

    assert!(!d.logs().contains(&pin), "the PIN is never logged");
    let audit = d.cli_ok(&["audit", "--json"], None);
    assert!(!audit.contains(&pin), "the PIN is never audited");
    browser.goto(&format!("{base}/"));
    browser.click("form[action='/sign-out'] button");
    browser.wait_text("Email me a sign-in link");
    d.wait_audit("web_sign_out", web::WITHIN);
    assert!(
        audit.contains("web:alice"),
        "the generated PIN is audited as alice's: {audit}"
    );
}

fn form_field<'a>(page: &'a str, name: &str) -> &'a str {
    let at = page
        .find(&format!("name=\"{name}\" value=\""))
        .unwrap_or_else(|| panic!("no {name} in {page}"))
        + name.len()
        + 15;
    &page[at..at + page[at..].find('"').unwrap()]
}

/// Another browser needs the code; one live link per person (a newer link and a PIN change
/// revoke, expiry ends it); forged, replayed, malformed and cross-site input, a missing CSRF
/// token and header injection are refused and change nothing.
#[test]
fn another_browser_needs_the_code_and_bad_input_changes_nothing() {
    let server = web::smtp();
    let d = web::start(&server, true, "");
    let base = format!("http://{}", d.http());
    let asking = web::client();
    let ask = |who: &str| {
        let r = asking
            .post(format!("{base}/sign-in"))
            .form(&[("who", who)])
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
        let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
            "{cookie}"
        );
        assert!(
            !cookie.contains("Secure"),
            "plain HTTP cannot keep a Secure cookie"
        );
        r.text().unwrap()
    };
    // The same answer for unknown addresses and for a header injection attempt.
    let unknown = ask("nobody@example.org");
    let injected = ask("alice@example.org\r\nBcc: mallory@example.org");
    let known = ask("alice@example.org");
    assert_eq!(unknown, known);
    assert_eq!(injected, known);
    let (first, _) = web::sign_in_mail(&server, 1);
    ask("alice");
    let (link, code) = web::sign_in_mail(&server, 2);
    assert_ne!(first, link);
    let plain = web::client();
    assert_eq!(
        plain.get(&first).send().unwrap().status(),
        410,
        "a newer link revokes"
    );

    // Another browser: no nonce cookie, so the code; a wrong one is counted and refused.
    let other = web::client();
    let asked = other.post(&link).form(&[("code", "")]).send().unwrap();
    assert_eq!(asked.status(), 200);
    assert!(asked.text().unwrap().contains("Code from the mail"));
    let wrong = other
        .post(&link)
        .form(&[("code", "ZZZZZZ")])
        .send()
        .unwrap();
    assert_eq!(wrong.status(), 403);
    let right = other
        .post(&link)
        .form(&[("code", code.as_str())])
        .send()
        .unwrap();
    assert_eq!(right.status(), 303);
    let session = right.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        session.starts_with("pw_session=") && session.contains("HttpOnly"),
        "{session}"
    );
    let replay = other
        .post(&link)
        .form(&[("code", code.as_str())])
        .send()
        .unwrap();
    assert_eq!(replay.status(), 410, "a spent link is refused");
    d.wait_audit("link and code", web::WITHIN);

    let account = other.get(format!("{base}/")).send().unwrap();
    assert_eq!(account.headers()["cache-control"], "no-store");
    let page = account.text().unwrap();
    let csrf = form_field(&page, "csrf").to_string();
    for (form, origin) in [
        (vec![], None),
        (vec![("csrf", "forged")], None),
        (vec![("csrf", csrf.as_str())], Some("http://evil.example")),
    ] {
        let mut post = other.post(format!("{base}/pin/new")).form(&form);
        if let Some(o) = origin {
            post = post.header("origin", o);
        }
        assert_eq!(post.send().unwrap().status(), 403);
    }
    let reply = d.terminal().ask("PIN 739146");
    assert!(
        reply.starts_with("OK alice"),
        "refused forms change nothing: {reply}"
    );

    // A PIN change revokes a live link.
    ask("alice@example.org");
    let (third, _) = web::sign_in_mail(&server, 3);
    assert_eq!(plain.get(&third).send().unwrap().status(), 200);
    let shown = other
        .post(format!("{base}/pin/new"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .unwrap();
    assert_eq!(shown.headers()["cache-control"], "no-store");
    assert!(shown.text().unwrap().contains("shown only this once"));
    let revoked = plain.get(&third).send().unwrap();
    assert_eq!(revoked.status(), 410);
    assert!(revoked.text().unwrap().contains("PIN change"));

    // Expiry: 30 minutes.
    ask("alice@example.org");
    let (fourth, _) = web::sign_in_mail(&server, 4);
    d.set_clock("+31m");
    d.wait_for(web::WITHIN, || {
        let r = plain.get(&fourth).send().map_err(|e| e.to_string())?;
        match r.status().as_u16() {
            410 => Ok(r.text().unwrap()),
            s => Err(format!("status {s}")),
        }
    });
    let late = asking.post(&fourth).form(&[("code", "")]).send().unwrap();
    assert_eq!(late.status(), 410);
    assert!(late.text().unwrap().contains("has expired"));

    // Forged and malformed links, path traversal.
    let forged = format!("{base}/link/{}", "A".repeat(43));
    assert_eq!(plain.get(&forged).send().unwrap().status(), 410);
    assert_eq!(
        plain
            .post(&forged)
            .form(&[("code", "X")])
            .send()
            .unwrap()
            .status(),
        410
    );
    let odd = plain
        .get(format!("{base}/link/..%2F..%2Fetc%2Fpasswd"))
        .send()
        .unwrap();
    assert_eq!(odd.status(), 410);
    assert!(!odd.text().unwrap().contains("root:"));
    let mut raw = std::net::TcpStream::connect(d.http()).unwrap();
    use std::io::{Read, Write};
    raw.write_all(
        b"GET /static/../../../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut answer = String::new();
    raw.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    assert!(!answer.contains("root:"));

    // Nothing went anywhere but to alice, and no token reached the logs.
    for m in server.messages() {
        assert_eq!(common::smtp::envelope_to(&m), "alice@example.org");
    }
    let token = link.rsplit('/').next().unwrap();
    assert!(!d.logs().contains(token), "a link's token is never logged");
    assert!(!d.cli_ok(&["audit", "--json"], None).contains(token));
}

/// `[mail] delivery = "reveal"`: the new-PIN mail carries a link and a code, never the PIN;
/// the page shows the PIN once (a scanner's GET first changes nothing); the link dies once
/// shown, once its PIN is used, and when a newer PIN replaces it.
#[test]
fn a_pin_delivered_by_reveal_link_is_shown_once_and_no_mail_or_store_holds_it() {
    let server = web::smtp();
    let d = web::start(&server, false, "delivery = \"reveal\"");
    let pin = d
        .cli_ok(&["user", "set-pin", "alice", "--generate"], None)
        .trim()
        .to_string();
    assert_eq!(pin.len(), 6, "{pin}");
    let (link, code, mail) = web::link_mail(&server, "/reveal/", 1);
    assert!(!mail.contains(&pin), "the mail carries no PIN: {mail}");
    assert!(
        common::found_in_files(&d.state_dir(), pin.as_bytes()).is_empty(),
        "no PIN in the store or outbox"
    );
    let scanner = reqwest::blocking::Client::new();
    assert_eq!(scanner.get(&link).send().unwrap().status(), 200);
    assert_eq!(scanner.head(&link).send().unwrap().status(), 200);
    // A scanner that submits the form has no code: nothing is shown or spent.
    let submitted = scanner.post(&link).form(&[("code", "")]).send().unwrap();
    assert!(!submitted.text().unwrap().contains(&pin));

    let browser = Browser::start();
    browser.goto(&link);
    browser.wait_text("Show my PIN");
    browser.screenshot("8-reveal-link");
    browser.fill("#code", &code);
    browser.click("button[type=submit]");
    browser.wait_text("shown only this once");
    assert_eq!(browser.text("#pin"), pin);
    browser.screenshot("9-revealed-pin");
    browser.goto(&link);
    browser.wait_text("has already been used");
    let reply = d.terminal().ask(&format!("PIN {pin}"));
    assert!(reply.starts_with("OK alice"), "{reply}");
    d.wait_audit("web_pin_revealed", web::WITHIN);

    // Used at a device before it was shown: the link is closed.
    let second = d.cli_ok(&["user", "set-pin", "alice", "--generate"], None);
    let (link2, _, _) = web::link_mail(&server, "/reveal/", 2);
    assert_eq!(scanner.get(&link2).send().unwrap().status(), 200);
    let reply = d.terminal().ask(&format!("PIN {}", second.trim()));
    assert!(reply.starts_with("OK alice"), "{reply}");
    let closed = scanner.get(&link2).send().unwrap();
    assert_eq!(closed.status(), 410);
    assert!(closed.text().unwrap().contains("its PIN has been used"));

    // Replaced by a newer PIN: the older link is gone.
    d.cli_ok(&["user", "set-pin", "alice", "--generate"], None);
    let (link3, _, _) = web::link_mail(&server, "/reveal/", 3);
    d.cli_ok(&["user", "set-pin", "alice", "--generate"], None);
    web::link_mail(&server, "/reveal/", 4);
    assert_eq!(scanner.get(&link3).send().unwrap().status(), 410);
    assert!(!d.logs().contains(&pin), "the PIN is never logged");
}

/// Signs alice in with `client` (a link spent by the browser that asked for it) and
/// returns the account page's form token; `n`: how many sign-in mails `server` has then.
fn signed_in(
    server: &common::smtp::SmtpServer,
    client: &reqwest::blocking::Client,
    base: &str,
    n: usize,
) -> String {
    let asked = client
        .post(format!("{base}/sign-in"))
        .form(&[("who", "alice@example.org")])
        .send()
        .unwrap();
    assert_eq!(asked.status(), 200);
    let (link, _) = web::sign_in_mail(server, n);
    let spent = client.post(&link).form(&[("code", "")]).send().unwrap();
    assert_eq!(spent.status(), 303, "the asking browser needs no code");
    let page = client
        .get(format!("{base}/"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    form_field(&page, "csrf").to_string()
}

/// "This PIN cannot be used" says someone holds it: a few a day, then no more changes
/// (audited apart), so a signed-in person cannot test PINs for PIN-only doors.
#[test]
fn pins_already_in_use_are_budgeted() {
    let server = web::smtp();
    let d = web::start(&server, true, "");
    d.cli_ok(
        &["user", "add", "bob", "--group", "staff", "--pin-stdin"],
        Some("582947"),
    );
    let base = format!("http://{}", d.http());
    let alice = web::client();
    let csrf = signed_in(&server, &alice, &base, 1);
    let change = |pin: &str| {
        alice
            .post(format!("{base}/pin/change"))
            .form(&[("csrf", csrf.as_str()), ("new", pin), ("repeat", pin)])
            .send()
            .unwrap()
            .text()
            .unwrap()
    };
    for _ in 0..3 {
        let page = change("582947");
        assert!(page.contains("This PIN cannot be used"), "{page}");
    }
    // Past the budget: refused whatever the PIN, bob's included (no more answers).
    for pin in ["582947", "905318"] {
        let page = change(pin);
        assert!(page.contains("try again later"), "{page}");
        assert!(!page.contains("This PIN cannot be used"), "{page}");
    }
    d.wait_audit("too many PINs already in use today", web::WITHIN);
    let reply = d.terminal().ask("PIN 739146");
    assert!(reply.starts_with("OK alice"), "nothing changed: {reply}");
    assert_eq!(d.terminal().ask("PIN 905318"), "DENY");
}

/// A reveal link's token and code at `/link/…` (the sign-in path): unknown there, no
/// session; the reveal still works afterwards.
#[test]
fn a_reveal_link_never_signs_in() {
    let server = web::smtp();
    let d = web::start(&server, false, "delivery = \"reveal\"");
    let pin = d
        .cli_ok(&["user", "set-pin", "alice", "--generate"], None)
        .trim()
        .to_string();
    let (reveal, code, _) = web::link_mail(&server, "/reveal/", 1);
    let as_sign_in = reveal.replace("/reveal/", "/link/");
    assert_ne!(as_sign_in, reveal);
    let client = web::client();
    assert_eq!(client.get(&as_sign_in).send().unwrap().status(), 410);
    let posted = client
        .post(&as_sign_in)
        .form(&[("code", code.as_str())])
        .send()
        .unwrap();
    assert_eq!(posted.status(), 410);
    assert!(
        !posted.headers().contains_key("set-cookie"),
        "no session: {:?}",
        posted.headers()
    );
    let page = client
        .get(reveal.replace(&*reveal_path(&reveal), "/"))
        .send()
        .unwrap();
    assert!(
        page.text().unwrap().contains("Email me a sign-in link"),
        "still signed out"
    );

    let shown = client
        .post(&reveal)
        .form(&[("code", code.as_str())])
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(shown.contains(&pin), "the reveal still works");
}

/// The path part of a link (`/reveal/<token>`).
fn reveal_path(link: &str) -> String {
    let after = link.find("://").unwrap() + 3;
    link[after + link[after..].find('/').unwrap()..].to_string()
}

/// Link requests count against their source whether the address exists or not: past the
/// allowance the answer is the same but nothing is mailed (audited), and a burst of them
/// does not hold up a terminal's decision.
#[test]
fn link_requests_are_budgeted_per_source() {
    let server = web::smtp();
    let d = web::start(&server, true, "");
    let base = format!("http://{}", d.http());
    let client = web::client();
    let ask = |who: &str| {
        let r = client
            .post(format!("{base}/sign-in"))
            .form(&[("who", who)])
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
        r.text().unwrap()
    };
    // Known people only (unknown ones used to be the only ones counted).
    let allowance = 20;
    let mut answer = String::new();
    for i in 1..=allowance {
        let id = format!("u{i:02}");
        let email = format!("{id}@example.org");
        d.cli_ok(
            &["user", "add", &id, "--group", "staff", "--email", &email],
            None,
        );
        answer = ask(&email);
        web::sign_in_mail(&server, i);
    }
    let refused = ask("alice@example.org");
    assert_eq!(refused, answer, "the same answer past the allowance");
    d.wait_audit("too many requests", web::WITHIN);

    // A burst from several threads while a terminal asks for a decision.
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                let c = web::client();
                for _ in 0..25 {
                    let r = c
                        .post(format!("{base}/sign-in"))
                        .form(&[("who", "alice@example.org")])
                        .send()
                        .unwrap();
                    assert_eq!(r.status(), 200);
                }
            });
        }
        let reply = d.terminal().ask("PIN 739146");
        assert!(reply.starts_with("OK alice"), "{reply}");
    });
    // Refused requests make no work at all (decided before the answer): no more mail.
    let mails = server
        .messages()
        .into_iter()
        .filter(|m| m.contains("sign-in link"))
        .count();
    assert_eq!(mails, allowance);
    assert!(!server
        .messages()
        .iter()
        .any(|m| m.contains("alice@example.org")));
}

/// Only the page's own origin may POST: `Origin: null`, another port (same site, other
/// origin) and `Sec-Fetch-Site: same-site` are refused and change nothing; the page's
/// origin and a typed request (`none`) pass.
#[test]
fn posts_from_other_origins_are_refused() {
    let server = web::smtp();
    let d = web::start(&server, true, "");
    let base = format!("http://{}", d.http());
    let client = web::client();
    let csrf = signed_in(&server, &client, &base, 1);
    let other_port = format!("http://127.0.0.1:{}", d.http().port() ^ 1);
    for (name, value) in [
        ("origin", "null"),
        ("origin", other_port.as_str()),
        ("origin", "https://127.0.0.1"),
        ("sec-fetch-site", "same-site"),
        ("sec-fetch-site", "cross-site"),
    ] {
        let r = client
            .post(format!("{base}/pin/new"))
            .header(name, value)
            .form(&[("csrf", csrf.as_str())])
            .send()
            .unwrap();
        assert_eq!(r.status(), 403, "{name}: {value}");
        let r = client
            .post(format!("{base}/sign-in"))
            .header(name, value)
            .form(&[("who", "alice@example.org")])
            .send()
            .unwrap();
        assert_eq!(r.status(), 403, "{name}: {value}");
    }
    let reply = d.terminal().ask("PIN 739146");
    assert!(reply.starts_with("OK alice"), "nothing changed: {reply}");
    let ok = client
        .post(format!("{base}/sign-in"))
        .header("origin", base.as_str())
        .header("sec-fetch-site", "same-origin")
        .form(&[("who", "alice@example.org")])
        .send()
        .unwrap();
    assert_eq!(ok.status(), 200);
    let typed = client
        .post(format!("{base}/sign-in"))
        .header("sec-fetch-site", "none")
        .form(&[("who", "alice@example.org")])
        .send()
        .unwrap();
    assert_eq!(typed.status(), 200);
}

/// A person disabled (or removed) while signed in is signed out at the next page load.
#[test]
fn disabling_a_signed_in_person_signs_them_out() {
    let server = web::smtp();
    let d = web::start(&server, true, "");
    let base = format!("http://{}", d.http());
    let client = web::client();
    let csrf = signed_in(&server, &client, &base, 1);
    d.cli_ok(&["user", "disable", "alice"], None);
    let page = client
        .get(format!("{base}/"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        page.contains("Email me a sign-in link"),
        "signed out: {page}"
    );
    let r = client
        .post(format!("{base}/pin/new"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .unwrap();
    assert_ne!(r.status(), 200, "no PIN for a disabled person");
    assert!(!r.text().unwrap().contains("shown only this once"));
    d.wait_audit("no longer enabled", web::WITHIN);
}
