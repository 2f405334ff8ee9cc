//! Signing in to the self-service page with the directory password: an LDAP bind as the
//! person against a real slapd (`[web] sign_in = ["email", "ldap"]`). The right password
//! signs in; a wrong, empty or unknown one gets the same refusal and is counted; nothing
//! stores or logs the password.

mod common;
#[path = "common/slapd.rs"]
mod slapd;

use common::{Daemon, DEFAULT_TCP, HTTP};
use slapd::{Slapd, BIND_DN, BIND_PW};
use std::time::Duration;

const PASSWORD: &str = "correct horse battery";

fn start(server: &Slapd) -> Daemon {
    let secret = server.dir.path().join("bind.pass");
    common::write_secret(&secret, &format!("{BIND_PW}\n"));
    let directory = format!(
        r#"
[[directory]]
name = "corp"
kind = "ldap"
interval = "500ms"
[directory.ldap]
url = "{url}"
base_dn = "ou=people,dc=example,dc=org"
bind_dn = "{BIND_DN}"
bind_password_file = "{secret}"
timeout = "2s"
groups = "entries"
group_base_dn = "ou=groups,dc=example,dc=org"
enabled = "boolean"
enabled_attribute = "pinwardenEnabled"

[web]
sign_in = ["email", "ldap"]
"#,
        url = server.url,
        secret = secret.display()
    );
    Daemon::start_with("", &format!("{DEFAULT_TCP}{HTTP}\n{directory}"))
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(20))
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap()
}

#[test]
fn a_person_signs_in_with_their_directory_password() {
    let server = Slapd::start("");
    server.ldapmodify(
        &format!(
            "dn: uid=alice,ou=people,dc=example,dc=org\nchangetype: modify\n\
             replace: userPassword\nuserPassword: {PASSWORD}\n"
        ),
        false,
    );
    let d = start(&server);
    d.wait_for(common::PATIENCE, || {
        let out = d.cli(&["user", "show", "alice"], None);
        match out.status.success() {
            true => Ok(()),
            false => Err("alice not synced yet".to_string()),
        }
    });
    let base = format!("http://{}", d.http());
    let browser = client();
    let page = browser
        .get(format!("{base}/"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(page.contains("With your directory password"), "{page}");

    for (id, password) in [("alice", "wrong"), ("alice", ""), ("nobody", PASSWORD)] {
        let r = browser
            .post(format!("{base}/sign-in/password"))
            .form(&[("id", id), ("password", password)])
            .send()
            .unwrap();
        assert_eq!(r.status(), 403, "{id}");
        let text = r.text().unwrap();
        assert!(
            text.contains("The user name or password is wrong."),
            "{id}: {text}\n{}",
            d.logs()
        );
    }
    let r = browser
        .post(format!("{base}/sign-in/password"))
        .form(&[("id", "alice"), ("password", PASSWORD)])
        .send()
        .unwrap();
    assert_eq!(r.status(), 303);
    let account = browser
        .get(format!("{base}/"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(account.contains("Alice Archer"), "{account}");
    d.wait_audit("directory password", common::PATIENCE);
    assert!(!d.logs().contains(PASSWORD), "the password is never logged");
    assert!(!d.cli_ok(&["audit", "--json"], None).contains(PASSWORD));
    assert!(
        common::found_in_files(&d.state_dir(), PASSWORD.as_bytes()).is_empty(),
        "nor stored"
    );
}

fn sign_in(browser: &reqwest::blocking::Client, d: &Daemon, id: &str, pw: &str) -> (u16, String) {
    let r = browser
        .post(format!("http://{}/sign-in/password", d.http()))
        .form(&[("id", id), ("password", pw)])
        .send()
        .unwrap();
    (r.status().as_u16(), r.text().unwrap())
}

fn synced(d: &Daemon, id: &str) {
    d.wait_for(common::PATIENCE, || {
        match d.cli(&["user", "show", id], None).status.success() {
            true => Ok(()),
            false => Err(format!("{id} not synced yet")),
        }
    });
}

/// An unknown id costs the same directory search and bind as a wrong password: with the
/// directory down both get the same answer (an unknown id used to be refused at once, without
/// asking it), and with it up both are counted against the same failure budget (the
/// per-source one here; `password` counts both against the source and the id alike).
#[test]
fn an_unknown_id_asks_the_directory_like_a_wrong_password_and_counts_alike() {
    let mut server = Slapd::start("");
    server.ldapmodify(
        &format!(
            "dn: uid=alice,ou=people,dc=example,dc=org\nchangetype: modify\n\
             replace: userPassword\nuserPassword: {PASSWORD}\n"
        ),
        false,
    );
    let d = start(&server);
    synced(&d, "alice");
    let browser = client();

    server.stop();
    let unknown = sign_in(&browser, &d, "nobody", PASSWORD);
    let wrong = sign_in(&browser, &d, "alice", "wrong");
    assert!(
        wrong.1.contains("cannot be reached"),
        "{wrong:?}\n{}",
        d.logs()
    );
    assert_eq!(unknown, wrong, "an unknown id is answered like a known one");

    server.restart();
    // Five failures are free; the sixth starts the source's back-off.
    for n in 0..6 {
        let (status, text) = sign_in(&browser, &d, &format!("nobody{n}"), PASSWORD);
        assert_eq!(status, 403);
        assert!(
            text.contains("The user name or password is wrong."),
            "{text}"
        );
    }
    let (status, text) = sign_in(&browser, &d, "alice", PASSWORD);
    assert_eq!(status, 403, "{text}");
    assert!(
        text.contains("Too many failed attempts"),
        "unknown ids spend the source's budget like wrong passwords: {text}"
    );
    d.wait_audit("directory password from", common::PATIENCE);
}

/// Not a test: the medians of 20 sign-ins with an unknown id and 20 with a wrong password
/// against a real slapd, printed (`cargo test --test web_ldap -- --ignored --nocapture`).
/// Each try comes from its own loopback address and no person is tried more than four
/// times per daemon, so the failure budget never answers in the directory's place.
#[test]
#[ignore]
fn measure_unknown_id_against_wrong_password() {
    let server = Slapd::start("");
    for who in ["alice", "bob", "carol"] {
        server.ldapmodify(
            &format!(
                "dn: uid={who},ou=people,dc=example,dc=org\nchangetype: modify\n\
                 replace: userPassword\nuserPassword: {PASSWORD}\n"
            ),
            false,
        );
    }
    let (mut unknown, mut wrong) = (Vec::new(), Vec::new());
    for round in 0..2u8 {
        let d = start(&server);
        for who in ["alice", "bob", "carol"] {
            synced(&d, who);
        }
        for i in 0..11u8 {
            let from = |net: u8| {
                reqwest::blocking::Client::builder()
                    .local_address(std::net::IpAddr::from([127, net, round, i + 1]))
                    .build()
                    .unwrap()
            };
            let tries = [
                (from(1), format!("nobody{i}"), &mut unknown),
                (
                    from(2),
                    ["alice", "bob", "carol"][i as usize % 3].to_string(),
                    &mut wrong,
                ),
            ];
            for (browser, id, into) in tries {
                let t = std::time::Instant::now();
                let (status, _) = sign_in(&browser, &d, &id, "wrong");
                assert_eq!(status, 403);
                if i > 0 {
                    into.push(t.elapsed());
                }
            }
        }
    }
    for (name, mut times) in [("unknown id", unknown), ("wrong password", wrong)] {
        times.sort();
        println!(
            "{name}: n={} median {:?} min {:?} max {:?}",
            times.len(),
            times[times.len() / 2],
            times[0],
            times[times.len() - 1]
        );
    }
}
