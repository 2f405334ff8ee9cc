//! The daemon following a real slapd through `[[directory]] kind = "ldap"`: a directory
//! user's PIN works at a terminal; a PIN change, a new user and a deletion made with
//! ldapmodify reach the terminal within an interval; a complete refresh re-hashes nothing
//! that did not change; a frozen server leaves decisions
//! running from the cache, with the error in `status`.

mod common;
#[path = "common/slapd.rs"]
mod slapd;

use common::{Daemon, DEFAULT_TCP};
use slapd::{Slapd, BIND_DN, BIND_PW};
use std::time::Duration;

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
timeout = "1s"
groups = "entries"
group_base_dn = "ou=groups,dc=example,dc=org"
enabled = "boolean"
enabled_attribute = "pinwardenEnabled"
"#,
        url = server.url,
        secret = secret.display()
    );
    // Polling for a change costs a failed attempt each time: room for them.
    let lockout = "[lockout]\nfree_failures = 100\n";
    Daemon::start_with(lockout, &format!("{DEFAULT_TCP}\n{directory}"))
}

/// Asks the terminal until the answer starts with `want` (sync runs every 500 ms).
/// Every miss is a failed attempt: poll slowly enough to stay inside the free failures.
fn eventually(d: &Daemon, line: &str, want: &str) {
    let every = Duration::from_millis(250);
    let got = common::poll_until(common::PATIENCE, every, || match d.terminal().ask(line) {
        got if got.starts_with(want) => Ok(()),
        got => Err(got),
    });
    if let Err(got) = got {
        panic!(
            "`{want}` never came (last: {got})\n{}",
            d.cli_ok(&["audit", "--last", "30"], None)
        );
    }
}

#[test]
fn the_cache_follows_slapd_and_outlives_it() {
    let groups = std::fs::read_to_string(slapd::fixture("groups.ldif")).unwrap();
    let mut server = Slapd::start(&groups);
    let d = start(&server);
    // Locally created users are never touched by sync.
    d.add_user("guest1", "guests", "918273");
    eventually(&d, "PIN 482913", "OK alice");
    eventually(&d, "PIN 0042", "DENY"); // bob: only in `printers`, not allowed here
    eventually(&d, "PIN 7305", "DENY"); // carol: pinwardenEnabled FALSE

    server.ldapmodify(
        "dn: uid=alice,ou=people,dc=example,dc=org\nchangetype: modify\n\
         replace: pinwardenPin\npinwardenPin: 561739\n",
        false,
    );
    server.ldapmodify(
        "dn: uid=dave,ou=people,dc=example,dc=org\nobjectClass: inetOrgPerson\n\
         objectClass: pinwardenUser\nuid: dave\ncn: Dave Dale\nsn: Dale\npinwardenPin: 640182\n\n\
         dn: cn=staff,ou=groups,dc=example,dc=org\nchangetype: modify\n\
         add: member\nmember: uid=dave,ou=people,dc=example,dc=org\n",
        true,
    );
    eventually(&d, "PIN 561739", "OK alice");
    eventually(&d, "PIN 482913", "DENY");
    eventually(&d, "PIN 640182", "OK dave");

    server.ldapdelete("uid=dave,ou=people,dc=example,dc=org");
    eventually(&d, "PIN 640182", "DENY");

    // A complete refresh re-hashes only PINs whose entry changed (entryCSN): here none.
    let out = d.cli_ok(&["sync", "--full"], None);
    assert!(out.contains(" 0 re-hashed"), "{out}");
    eventually(&d, "PIN 561739", "OK alice");

    // A black-holed directory: decisions go on from the cache; status names the failure.
    server.freeze();
    d.wait_status("a sync error", |s| {
        s["directories"][0]["last_error"].is_string()
    });
    assert!(d.terminal().ask("PIN 561739").starts_with("OK alice"));
    assert!(d.terminal().ask("PIN 918273").starts_with("OK guest1"));
    server.thaw();
    let audit = d.wait_audit("\"event\":\"sync\"", Duration::from_secs(5));
    assert!(!audit.contains("561739") && !audit.contains("482913"));
    assert!(!d.logs().contains("561739"), "a PIN reached the log");
}
