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
