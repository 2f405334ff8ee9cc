//! Self-service at a serial keypad (a pty): `**` id `#` old `#` new `#` new `#` changes one's
//! own PIN, `*#` id `#` asks for a forgotten one (mailed through a real aiosmtpd), each with
//! its own feedback bytes. The real binary; no PIN in the logs or the state.

mod common;

use common::pty::Pty;
use common::smtp::{SmtpOptions, SmtpServer};
use common::Daemon;
use std::path::Path;
use std::time::Duration;

const GRANTED: u8 = b'G';
const DENIED: u8 = b'D';
const CHANGED: u8 = b'C';
const REFUSED: u8 = b'R';
const ACCEPTED: u8 = b'A';
const KEY_PAUSE: Duration = Duration::from_millis(20);
const WITHIN: Duration = Duration::from_secs(10);

struct Site {
    daemon: Daemon,
    keypad: Pty,
    smtp: SmtpServer,
}

fn keypad_block(dir: &Path, feedback: &str) -> String {
    format!(
        r#"
[[keypad]]
port = "{keypad}"
device = "front-door"
framing = "keys"
inter_key_timeout = "5s"
feedback = {{ {feedback} }}

[[door]]
device = "front-door"
actuator = "none"

[smtp]
host = "127.0.0.1"
port = {{SMTP_PORT}}
tls = "none"
from = "Doors <doors@example.org>"
timeout = "5s"
"#,
        keypad = dir.join("keypad").display(),
    )
}

impl Site {
    /// A keypad with distinct bytes for every outcome, mail to aiosmtpd, `[policy]` lines.
    fn start(policy: &str) -> Site {
        Site::start_with(
            "granted = [71], denied = [68], busy = [66], locked_out = [76], \
             changed = [67], refused = [82], accepted = [65]",
            policy,
        )
    }

    fn start_with(feedback: &str, policy: &str) -> Site {
        let smtp = SmtpServer::start(SmtpOptions::default());
        let dir = tempfile::tempdir().unwrap();
        let keypad = Pty::plug(&dir.path().join("keypad"));
        let block =
            keypad_block(dir.path(), feedback).replace("{SMTP_PORT}", &smtp.port.to_string());
        let top = format!(
            "time_zone = \"UTC\"\n[lockout]\nfree_failures = 50\n[policy]\nmin_length = 6\n{policy}\n"
        );
        let daemon =
            Daemon::start_edited(|t| t.replace("{EXTRA_TOP}", &top).replace("{EXTRA}", &block));
        std::mem::forget(dir);
        daemon.wait_audit("\"action\":\"connected\"", WITHIN);
        daemon.cli_ok(
            &[
                "user",
                "add",
                "1042",
                "--group",
                "staff",
                "--email",
                "ada@example.org",
                "--pin-stdin",
            ],
            Some("482913"),
        );
        Site {
            daemon,
            keypad,
            smtp,
        }
    }

    /// Types keys, returns the one feedback byte they earn.
    fn enter(&mut self, keys: &str) -> u8 {
        self.keypad.type_slowly(keys.as_bytes(), KEY_PAUSE);
        let got = self.keypad.read(1, WITHIN);
        assert_eq!(got.len(), 1, "one feedback byte for {keys:?}, got {got:?}");
        got[0]
    }

    /// Types keys that must earn no feedback at all (checked by the next entry's byte).
    fn silent(&mut self, keys: &str) {
        self.keypad.type_slowly(keys.as_bytes(), KEY_PAUSE);
    }

    fn assert_no_pins(&self, pins: &[&str]) {
        let logs = self.daemon.logs();
        for pin in pins {
            assert!(!logs.contains(pin), "{pin} in the logs");
            let found = common::found_in_files(&self.daemon.state_dir(), pin.as_bytes());
            assert!(found.is_empty(), "{pin} in {found:?}");
        }
    }
}

/// Needs nothing of the core's self-service: the keypad itself refuses a new PIN typed
/// differently twice, and a sequence given up with `*` earns nothing.
#[test]
fn a_mistyped_repetition_is_refused_at_the_keypad_and_a_cancelled_sequence_is_silent() {
    let mut s = Site::start("");
    assert_eq!(s.enter("**1042#482913#707172#707173#"), REFUSED);
    s.silent("**1042#482913#*");
    assert_eq!(
        s.enter("*482913#"),
        GRANTED,
        "a habitual leading * still works"
    );
    s.daemon.wait_audit("\"outcome\":\"grant\"", WITHIN);
    let audit = s.daemon.cli_ok(&["audit", "--json", "--last", "200"], None);
    assert_eq!(audit.matches("\"outcome\":\"grant\"").count(), 1, "{audit}");
    assert_eq!(audit.matches("\"outcome\":\"deny\"").count(), 0, "{audit}");
    s.assert_no_pins(&["482913", "707172", "707173"]);
}

/// Without their own bytes, changed and accepted answer like granted, refused like denied:
/// a keypad with two LEDs needs no new configuration.
#[test]
fn new_feedback_defaults_to_the_granted_and_denied_bytes() {
    let mut s = Site::start_with("granted = [71], denied = [68]", "");
    assert_eq!(s.enter("**1042#482913#707172#707173#"), DENIED);
}

/// Needs the core's change_pin (i13-c).
#[test]
fn a_person_changes_their_own_pin_at_the_keypad() {
    let mut s = Site::start("user_can_change = true");
    assert_eq!(
        s.enter("**1042#111111#707172#707172#"),
        DENIED,
        "wrong old PIN"
    );
    assert_eq!(
        s.enter("**1042#482913#123456#123456#"),
        REFUSED,
        "weak new PIN"
    );
    assert_eq!(
        s.enter("482913#"),
        GRANTED,
        "a refused change changes nothing"
    );
    assert_eq!(s.enter("**1042#482913#707172#707172#"), CHANGED);
    assert_eq!(s.enter("707172#"), GRANTED);
    assert_eq!(s.enter("482913#"), DENIED, "the old PIN is gone");
    s.smtp.wait_messages(1, Duration::from_secs(30));
    s.assert_no_pins(&["482913", "707172", "111111", "123456"]);
}

/// Needs the core's forgot_pin (i13-c): the same bytes for a known and an unknown id, one
/// mail for the known one, and the old PIN still opens until the new one is used.
#[test]
fn a_forgotten_pin_is_asked_for_at_the_keypad_the_same_for_any_id() {
    let mut s = Site::start("user_can_change = true");
    assert_eq!(s.enter("*#1042#"), ACCEPTED);
    assert_eq!(s.enter("*#9999#"), ACCEPTED);
    let mails = s.smtp.wait_messages(1, Duration::from_secs(30));
    assert!(
        mails.iter().all(|m| m.contains("ada@example.org")),
        "{mails:?}"
    );
    assert_eq!(s.enter("482913#"), GRANTED, "the old PIN keeps working");
    s.assert_no_pins(&["482913"]);
}

/// Needs the core (i13-c): with `user_can_change` off both sequences answer `denied`.
#[test]
fn self_service_off_answers_denied() {
    let mut s = Site::start_with(
        "granted = [71], denied = [68], changed = [67], refused = [82], accepted = [65]",
        "user_can_change = false",
    );
    assert_eq!(s.enter("**1042#482913#707172#707172#"), DENIED);
    assert_eq!(s.enter("482913#"), GRANTED);
}
