//! End-to-end: serial keypads and relays on pseudo-terminal pairs, access rules, duress,
//! unplug/replug without CPU spin. The real binary, started and stopped by signal.

mod common;

use common::pty::Pty;
use common::Daemon;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const GRANTED: u8 = b'G';
const DENIED: u8 = b'D';
const ON: [u8; 4] = [0xA0, 0x01, 0x01, 0xA2];
const OFF: [u8; 4] = [0xA0, 0x01, 0x00, 0xA1];
const KEY_PAUSE: Duration = Duration::from_millis(20);
/// How long a read waits for bytes that must come (it returns as soon as they do). Reads
/// that must stay empty use short windows of their own.
const WITHIN: Duration = Duration::from_secs(10);

/// Door timings a test may change.
#[derive(Clone, Copy)]
struct Tuning {
    pulse: &'static str,
    /// Long by default (the product default): a loaded machine can stall the typist or the
    /// daemon for hundreds of milliseconds between two keys.
    inter_key_timeout: &'static str,
}

const TUNING: Tuning = Tuning {
    pulse: "400ms",
    inter_key_timeout: "5s",
};

fn door_config(dir: &Path, framing: &str, extra_device: &str) -> String {
    door_config_tuned(dir, framing, extra_device, TUNING)
}

fn door_config_tuned(dir: &Path, framing: &str, extra_device: &str, tuning: Tuning) -> String {
    format!(
        r#"
[[keypad]]
port = "{keypad}"
device = "front-door"
framing = "{framing}"
inter_key_timeout = "{inter_key_timeout}"
feedback = {{ granted = [71], denied = [68], busy = [66], locked_out = [76] }}

[[door]]
device = "front-door"
actuator = "serial"
port = "{relay}"
on = [160, 1, 1, 162]
off = [160, 1, 0, 161]
pulse = "{pulse}"
{extra_device}
"#,
        keypad = dir.join("keypad").display(),
        relay = dir.join("relay").display(),
        pulse = tuning.pulse,
        inter_key_timeout = tuning.inter_key_timeout,
    )
}

struct Site {
    daemon: Daemon,
    keypad: Pty,
    relay: Pty,
}

impl Site {
    fn start(framing: &str, top: &str, extra: &str) -> Site {
        Site::launch(framing, top, extra, TUNING)
    }

    fn start_tuned(framing: &str, tuning: Tuning) -> Site {
        Site::launch(framing, "", "", tuning)
    }

    fn launch(framing: &str, top: &str, extra: &str, tuning: Tuning) -> Site {
        let dir = tempfile::tempdir().unwrap();
        let keypad = Pty::plug(&dir.path().join("keypad"));
        let relay = Pty::plug(&dir.path().join("relay"));
        let text = door_config_tuned(dir.path(), framing, extra, tuning);
        let top = format!("time_zone = \"UTC\"\n[lockout]\nfree_failures = 50\n{top}");
        let daemon =
            Daemon::start_edited(|t| t.replace("{EXTRA_TOP}", &top).replace("{EXTRA}", &text));
        // Keep the temp dir holding the symlinks alive with the daemon's.
        std::mem::forget(dir);
        let mut site = Site {
            daemon,
            keypad,
            relay,
        };
        site.wait_audit("\"action\":\"connected\"");
        // The door relocks at start (a crash may have left the relay on).
        assert_eq!(site.relay.read(4, WITHIN), OFF, "relock at start");
        site
    }

    fn wait_audit(&self, needle: &str) -> String {
        self.daemon.wait_audit(needle, Duration::from_secs(10))
    }

    /// Types a PIN and `#`, returns the feedback byte.
    fn enter(&mut self, keys: &str) -> u8 {
        self.keypad.type_slowly(keys.as_bytes(), KEY_PAUSE);
        let got = self.keypad.read(1, WITHIN);
        assert_eq!(got.len(), 1, "one feedback byte for {keys:?}, got {got:?}");
        got[0]
    }
}

#[test]
fn typed_keys_open_the_door_with_exactly_one_pulse() {
    let mut s = Site::start("keys", "", "");
    s.daemon.add_user("alice", "staff", "482913");
    assert_eq!(s.enter("482913#"), GRANTED);
    assert_eq!(s.relay.read(4, WITHIN), ON, "relay on at once");
    assert_eq!(s.relay.read(4, WITHIN), OFF, "relay off after the pulse");
    assert_eq!(s.enter("000111#"), DENIED);
    assert!(
        s.relay.read(1, Duration::from_millis(700)).is_empty(),
        "no pulse for a denial"
    );
    assert_eq!(
        s.enter("99*482913#"),
        GRANTED,
        "* clears what was typed before"
    );
    assert_eq!(s.relay.read(8, WITHIN), [ON, OFF].concat());
    s.wait_audit("\"action\":\"unlock\"");
}

#[test]
fn a_second_grant_during_a_pulse_extends_it() {
    // A long pulse, so that on a loaded machine the second grant (an argon2 hash and a
    // decision) still lands inside the first one. The second PIN is typed `GAP` into the
    // pulse: the unextended pulse would end `PULSE - GAP` after it, the extended one
    // `PULSE` after its decision; the threshold sits halfway.
    const PULSE: Duration = Duration::from_secs(3);
    const GAP: Duration = Duration::from_millis(1000);
    let tuning = Tuning {
        pulse: "3s",
        ..TUNING
    };
    let mut s = Site::start_tuned("keys", tuning);
    s.daemon.add_user("alice", "staff", "482913");
    s.keypad.type_bytes(b"482913#");
    assert_eq!(s.relay.read(4, WITHIN), ON);
    let on = Instant::now();
    std::thread::sleep(GAP);
    s.keypad.type_bytes(b"482913#");
    let second = Instant::now();
    assert_eq!(s.keypad.read(2, WITHIN), [GRANTED, GRANTED]);
    let decided = on.elapsed();
    let rest = s.relay.read(4, PULSE + Duration::from_secs(5));
    assert_eq!(
        rest, OFF,
        "one pulse, extended, then one off (second grant seen {decided:?} into the pulse)"
    );
    let held = second.elapsed();
    assert!(
        held >= PULSE - GAP / 2,
        "the pulse was extended from the second grant: off after {held:?}"
    );
    assert!(
        s.relay.read(1, Duration::from_millis(500)).is_empty(),
        "nothing after the off"
    );
    s.wait_audit("unlock_extended");
}

#[test]
fn a_pause_between_keys_discards_the_entry_and_garbage_is_survived() {
    let tuning = Tuning {
        inter_key_timeout: "500ms",
        ..TUNING
    };
    let mut s = Site::start_tuned("keys", tuning);
    s.daemon.add_user("alice", "staff", "482913");
    s.keypad.type_slowly(b"482", KEY_PAUSE);
    // Past the timeout: the sleep can only run longer, never shorter.
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(s.enter("913#"), DENIED, "the first keys timed out");
    s.keypad.type_bytes(&[0xff, 0x00, 0x1b, b'~', 0x80]);
    // In one write: typed slowly, a stall on a loaded machine could split the entry at the
    // short timeout this test needs.
    s.keypad.type_bytes(b"482913#");
    assert_eq!(
        s.keypad.read(1, WITHIN),
        [GRANTED],
        "garbage bytes do not break the keypad"
    );
}

#[test]
fn wiegand8_bursts_are_decoded() {
    let mut s = Site::start("wiegand8", "", "");
    s.daemon.add_user("alice", "staff", "482913");
    let burst = |k: u8| ((!k & 0x0f) << 4) | k;
    let mut bytes: Vec<u8> = [4, 8, 2, 9, 1, 3].into_iter().map(burst).collect();
    bytes.push(burst(11));
    s.keypad.type_slowly(&bytes, KEY_PAUSE);
    assert_eq!(s.keypad.read(1, WITHIN), [GRANTED]);
    s.keypad
        .type_slowly(&[burst(4), 0x44, burst(8), burst(11)], KEY_PAUSE);
    assert_eq!(
        s.keypad.read(1, WITHIN),
        [DENIED],
        "a bad burst resets the entry"
    );
}

#[test]
fn the_duress_pin_opens_and_raises_a_silent_event() {
    let mut s = Site::start("keys", "", "");
    s.daemon.add_user("alice", "staff", "482913");
    assert_eq!(s.enter("482913#"), GRANTED);
    assert_eq!(s.relay.read(8, WITHIN), [ON, OFF].concat());
    s.daemon.cli_ok(
        &["user", "set-duress", "alice", "--pin-stdin"],
        Some("730194"),
    );
    let before = s.daemon.cli_ok(&["audit", "--json"], None);
    assert!(
        !before.contains("\"event\":\"duress\""),
        "the normal PIN raised no alarm"
    );
    let same = s
        .daemon
        .cli(&["user", "set-pin", "alice", "--pin-stdin"], Some("730194"));
    assert!(
        !same.status.success(),
        "a PIN equal to the duress PIN is refused"
    );
    assert_eq!(s.enter("730194#"), GRANTED, "opens like the normal PIN");
    assert_eq!(s.relay.read(4, WITHIN), ON);
    let audit = s.wait_audit("\"event\":\"duress\"");
    assert!(audit.contains("\"user\":\"alice\""), "{audit}");
    assert!(!audit.contains("730194"));
}

#[test]
fn outside_the_door_schedule_nobody_enters() {
    // A window that starts two hours from now (UTC) and lasts one hour, every day.
    let now_min = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 60)
        % 1440;
    let hm = |m: u64| format!("{:02}:{:02}", (m / 60) % 24, m % 60);
    let window = format!("Mon-Sun {}-{}", hm(now_min + 120), hm(now_min + 180));
    let top = format!("[[schedule]]\nname = \"later\"\nwindows = [\"{window}\"]\n");
    let mut s = Site::start("keys", &top, "");
    // The device picks up the schedule through the config; rewrite it in place and restart.
    let config = std::fs::read_to_string(&s.daemon.config).unwrap();
    let config = config.replacen(
        "kind = \"door\"",
        "kind = \"door\"\nschedule = \"later\"",
        1,
    );
    std::fs::write(&s.daemon.config, config).unwrap();
    s.daemon.restart();
    s.wait_audit("\"action\":\"connected\"");
    assert_eq!(s.relay.read(4, WITHIN), OFF, "relock at start");
    s.daemon.add_user("alice", "staff", "482913");
    assert_eq!(s.enter("482913#"), DENIED);
    assert!(s.relay.read(1, Duration::from_millis(600)).is_empty());
    s.wait_audit("outside_schedule");
}

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn an_unplugged_keypad_is_reopened_without_spinning() {
    let mut s = Site::start("keys", "", "");
    s.daemon.add_user("alice", "staff", "482913");
    assert_eq!(s.enter("482913#"), GRANTED);
    let link: PathBuf =
        std::fs::read_link(s.daemon.config.parent().unwrap().join("x")).unwrap_or_default();
    drop(link);
    let keypad_link = keypad_link(&s);
    drop(std::mem::replace(
        &mut s.keypad,
        Pty::plug(&keypad_link.with_extension("spare")),
    ));
    let _ = std::fs::remove_file(&keypad_link);
    s.wait_audit("\"action\":\"disconnected\"");
    let pid = s.daemon.pid();
    let before = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(2));
    let used = cpu_ticks(pid) - before;
    assert!(
        used < 50,
        "the daemon used {used} CPU ticks in 2 s with the keypad unplugged"
    );
    s.keypad = Pty::plug(&keypad_link);
    // Reopened after the back-off (up to 30 s once it has grown).
    s.daemon.wait_for(Duration::from_secs(40), || {
        let audit = s.daemon.cli_ok(&["audit", "--json", "--last", "50"], None);
        match audit.matches("\"action\":\"connected\"").count() {
            2.. => Ok(()),
            _ => Err(format!("keypad not reopened:\n{audit}")),
        }
    });
    assert_eq!(
        s.enter("482913#"),
        GRANTED,
        "works again without a daemon restart\n{}",
        s.daemon.logs()
    );
}

fn keypad_link(s: &Site) -> PathBuf {
    let config = std::fs::read_to_string(&s.daemon.config).unwrap();
    let line = config
        .lines()
        .find(|l| l.starts_with("port = ") && l.contains("keypad"))
        .unwrap();
    PathBuf::from(line.trim_start_matches("port = ").trim_matches('"'))
}

#[test]
fn an_absent_keypad_and_a_missing_relay_do_not_stop_the_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let text = door_config(dir.path(), "keys", "");
    let top = "time_zone = \"UTC\"\n";
    let d = Daemon::start_edited(|t| t.replace("{EXTRA_TOP}", top).replace("{EXTRA}", &text));
    d.add_user("alice", "staff", "482913");
    let mut keypad = Pty::plug(&dir.path().join("keypad"));
    // The port is retried with back-off up to 30 s.
    d.wait_audit("\"action\":\"connected\"", Duration::from_secs(35));
    keypad.type_bytes(b"482913#");
    assert_eq!(
        keypad.read(1, WITHIN),
        [b'B'],
        "granted, but the door did not open: the keypad says try again, not granted"
    );
    let audit = d.wait_audit("actuator_failed", Duration::from_secs(5));
    assert!(audit.contains("cannot open relay"), "{audit}");
    assert!(
        audit.contains("\"action\":\"unavailable\""),
        "the absent keypad was audited: {audit}"
    );
}

#[test]
fn a_command_actuator_runs_with_the_door_and_user_in_its_environment() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("opened");
    let keypad_path = dir.path().join("keypad");
    let mut keypad = Pty::plug(&keypad_path);
    let text = format!(
        r#"
[[keypad]]
port = "{}"
device = "front-door"
feedback = {{ granted = [71], denied = [68] }}

[[door]]
device = "front-door"
actuator = "command"
command = ["/bin/sh", "-c", "echo \"$PINWARDEN_DOOR $PINWARDEN_USER\" >> {}"]
command_timeout = "2s"
"#,
        keypad_path.display(),
        out.display()
    );
    let d = Daemon::start_edited(|t| t.replace("{EXTRA_TOP}", "").replace("{EXTRA}", &text));
    d.add_user("alice", "staff", "482913");
    d.wait_audit("\"action\":\"connected\"", Duration::from_secs(10));
    keypad.type_bytes(b"482913#");
    assert_eq!(keypad.read(1, WITHIN), [GRANTED]);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "front-door alice\n");
}

#[test]
fn card_then_pin_within_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let keypad_path = dir.path().join("keypad");
    let mut keypad = Pty::plug(&keypad_path);
    let text = format!(
        r#"
[[keypad]]
port = "{}"
device = "front-door"
framing = "line"
card_prefix = "C"
card_then_pin = "2s"
require_card = true
feedback = {{ granted = [71], denied = [68], card = [75] }}
"#,
        keypad_path.display()
    );
    let top = "[lockout]\nfree_failures = 50\n";
    let d = Daemon::start_edited(|t| t.replace("{EXTRA_TOP}", top).replace("{EXTRA}", &text));
    d.add_user_with_card("alice", "staff", "0004 82115", "482913");
    d.add_user_with_card("bob", "staff", "777001", "730194");
    d.wait_audit("\"action\":\"connected\"", Duration::from_secs(10));
    let mut line = |text: &str| {
        keypad.type_bytes(format!("{text}\r").as_bytes());
        keypad.read(1, WITHIN)
    };
    assert_eq!(line("C000482115"), b"K", "card read: waiting for the PIN");
    assert_eq!(line("482913"), b"G", "alice's card then alice's PIN");
    assert_eq!(
        line("482913"),
        b"D",
        "a PIN without a card is refused where a card is required"
    );
    assert_eq!(line("C777001"), b"K");
    assert_eq!(line("482913"), b"D", "bob's card with alice's PIN");
    assert_eq!(line("C482115"), b"K");
    // Past the window (2 s: wide enough that a loaded machine answers the PINs above in it).
    std::thread::sleep(Duration::from_millis(2200));
    assert_eq!(line("482913"), b"D", "the window closed");
    assert_eq!(line("C999999"), b"K");
    assert_eq!(line("482913"), b"D", "an unknown card");
    let audit = d.cli_ok(&["audit", "--json"], None);
    assert!(
        audit.contains("\"credential\":\"card+pin\",\"user\":\"alice\",\"outcome\":\"grant\""),
        "{audit}"
    );
    assert!(audit.contains("unknown_card"), "{audit}");
    let show = d.cli_ok(&["user", "show", "alice", "--json"], None);
    assert!(show.contains("\"482115\""), "stored normalised: {show}");
    let taken = d.cli(&["user", "add", "carol", "--card", "482115"], None);
    assert!(String::from_utf8_lossy(&taken.stderr).contains("already assigned"));
}

#[test]
fn the_door_is_relocked_at_shutdown_in_the_middle_of_a_pulse() {
    let mut s = Site::start("keys", "", "");
    s.daemon.add_user("alice", "staff", "482913");
    assert_eq!(s.enter("482913#"), GRANTED);
    assert_eq!(s.relay.read(4, WITHIN), ON);
    s.daemon.stop();
    assert_eq!(s.relay.read(4, WITHIN), OFF, "relocked before exit");
}
