//! Durable before OK, end to end: an acknowledged write, a SIGKILL at a random instant
//! 0–500 ms after the acknowledgement (sled would otherwise write it on its ~500 ms timer),
//! a restart on the same state, and the change is there. 100 rounds in all over nine kinds
//! of write (and five of a self-service CHANGE); each round is one acknowledged write, one
//! kill and one start. `CHAOS_SEED` (printed) replays a run's kill instants.

#[path = "common/chaos.rs"]
mod chaos;
mod common;

use chaos::{kill_soon_and_restart, pin, show, Rng};
use common::{Daemon, DEFAULT_TCP};

/// The kill comes this long after the acknowledgement at the latest.
const MAX_DELAY_MS: u64 = 500;

/// Rounds per kind: 12 + 8 × 11 = 100.
const ROUNDS: u64 = 11;

fn start() -> Daemon {
    chaos::start("", DEFAULT_TCP)
}

fn crash(d: &mut Daemon, rng: &mut Rng) {
    kill_soon_and_restart(d, rng, MAX_DELAY_MS);
}

#[test]
fn an_added_user_survives_a_kill_right_after_the_ok() {
    let mut rng = Rng::new("user add");
    let mut d = start();
    for n in 0..ROUNDS + 1 {
        let id = format!("u{n}");
        d.add_user(&id, "staff", &pin(n));
        crash(&mut d, &mut rng);
        assert!(show(&d, &id).is_some(), "round {n}: {id} was lost");
        let answer = d.terminal().ask(&format!("PIN {}", pin(n)));
        assert_eq!(answer, format!("OK {id} 0"), "round {n}: its PIN");
    }
}

#[test]
fn a_disable_or_enable_survives_a_kill_right_after_the_ok() {
    let mut rng = Rng::new("user disable");
    let mut d = start();
    d.add_user("alice", "staff", &pin(1));
    for n in 0..ROUNDS {
        // Disable on even rounds, enable on odd ones: each round changes the state.
        let (cmd, enabled) = if n % 2 == 0 {
            ("disable", false)
        } else {
            ("enable", true)
        };
        d.cli_ok(&["user", cmd, "alice"], None);
        crash(&mut d, &mut rng);
        let user = show(&d, "alice").expect("alice");
        assert_eq!(user["enabled"], enabled, "round {n}: `user {cmd}` was lost");
    }
}

#[test]
fn a_new_pin_survives_a_kill_right_after_the_ok() {
    let mut rng = Rng::new("set-pin");
    let mut d = start();
    d.add_user("alice", "staff", &pin(100));
    for n in 0..ROUNDS {
        d.cli_ok(&["user", "set-pin", "alice", "--pin-stdin"], Some(&pin(n)));
        crash(&mut d, &mut rng);
        let answer = d.terminal().ask(&format!("PIN {}", pin(n)));
        assert_eq!(answer, "OK alice 0", "round {n}: the new PIN was lost");
    }
}

#[test]
fn a_removal_survives_a_kill_right_after_the_ok() {
    let mut rng = Rng::new("user remove");
    let mut d = start();
    for n in 0..ROUNDS {
        let id = format!("r{n}");
        d.add_user(&id, "staff", &pin(n));
        d.cli_ok(&["user", "remove", &id], None);
        crash(&mut d, &mut rng);
        assert!(show(&d, &id).is_none(), "round {n}: {id} came back");
    }
}

#[test]
fn an_added_guest_survives_a_kill_right_after_the_ok() {
    let mut rng = Rng::new("guest add");
    let guests = "[guests]\nallowed = true\nmax_validity = \"1d\"\n";
    let mut d = chaos::start(guests, DEFAULT_TCP);
    d.cli_ok(
        &[
            "user", "add", "alice", "--group", "staff", "--group", "guests",
        ],
        None,
    );
    for n in 0..ROUNDS {
        let id = format!("g{n}");
        d.cli_ok(
            &[
                "guest",
                "add",
                &id,
                "--sponsor",
                "alice",
                "--email",
                "guest@example.org",
                "--group",
                "guests",
                "--valid-for",
                "8h",
            ],
            None,
        );
        crash(&mut d, &mut rng);
        let guest = show(&d, &id).unwrap_or_else(|| panic!("round {n}: guest {id} was lost"));
        assert_eq!(guest["groups"], serde_json::json!(["guests"]), "{guest}");
    }
}

#[test]
fn an_import_survives_a_kill_right_after_the_ok() {
    let mut rng = Rng::new("import");
    let mut d = start();
    let file = d.dir.path().join("import.csv");
    for n in 0..ROUNDS {
        let mut csv = String::from("id,name,email,groups,pin\n");
        for k in 0..3 {
            csv.push_str(&format!("i{n}x{k},Row {k},,staff,{}\n", pin(n * 3 + k)));
        }
        std::fs::write(&file, csv).unwrap();
        d.cli_ok(&["import", file.to_str().unwrap()], None);
        crash(&mut d, &mut rng);
        for k in 0..3 {
            let id = format!("i{n}x{k}");
            assert!(show(&d, &id).is_some(), "round {n}: imported {id} was lost");
        }
    }
}

#[test]
fn failures_counted_for_a_deny_survive_a_kill_right_after_it() {
    let mut rng = Rng::new("lockout");
    let mut d = start();
    for n in 0..ROUNDS {
        let id = format!("v{n}");
        d.add_user(&id, "staff", &pin(n));
        let denies = rng.between(1, 3);
        let mut t = d.terminal();
        for _ in 0..denies {
            assert_eq!(t.ask(&format!("ID {id} PIN 000000")), "DENY");
        }
        drop(t);
        crash(&mut d, &mut rng);
        let user = show(&d, &id).expect("victim");
        let failures = user["failed_attempts"].as_u64().unwrap();
        assert!(
            failures >= denies,
            "round {n}: {denies} DENY(s) answered, {failures} failure(s) after the crash"
        );
    }
}

#[test]
fn a_limited_pins_uses_survive_a_kill_right_after_the_ok() {
    let mut rng = Rng::new("limited use");
    let mut d = start();
    d.cli_ok(
        &[
            "user",
            "add",
            "gus",
            "--group",
            "staff",
            "--pin-stdin",
            "--uses",
            "100",
        ],
        Some(&pin(7)),
    );
    let mut used = 0;
    for n in 0..ROUNDS {
        let uses = rng.between(1, 3);
        let mut t = d.terminal();
        for _ in 0..uses {
            assert_eq!(t.ask(&format!("PIN {}", pin(7))), "OK gus 0");
        }
        drop(t);
        used += uses;
        crash(&mut d, &mut rng);
        let left = show(&d, "gus").expect("gus")["pin"]["uses_left"].clone();
        assert_eq!(left, 100 - used, "round {n}: {used} use(s) granted in all");
    }
}

#[test]
fn a_synced_batch_survives_a_kill_right_after_the_ok() {
    let mut rng = Rng::new("sync");
    let files = tempfile::tempdir().unwrap();
    let path = files.path().join("users.csv");
    write(&path, "id,name,email,groups,pin\n");
    let directory = format!(
        "{DEFAULT_TCP}\n[[directory]]\nname = \"hr\"\nkind = \"csv\"\npath = \"{}\"\n\
         interval = \"1h\"\n",
        path.display()
    );
    let mut d = chaos::start("", &directory);
    let mut csv = String::from("id,name,email,groups,pin\n");
    for n in 0..ROUNDS {
        // The whole listing, growing by two users a round.
        for k in 0..2 {
            csv.push_str(&format!("s{n}x{k},Synced {k},,staff,{}\n", pin(n * 2 + k)));
        }
        write(&path, &csv);
        // Fails (non-zero) unless the source applied.
        d.cli_ok(&["sync"], None);
        // The start after the kill must not simply read the file again.
        write(&path, "id,name\nbroken");
        crash(&mut d, &mut rng);
        for k in 0..2 {
            let id = format!("s{n}x{k}");
            assert!(show(&d, &id).is_some(), "round {n}: synced {id} was lost");
        }
    }
}

/// Beyond the 100: a person's own PIN change at a terminal (`CHANGE`), on disk before
/// `OK CHANGED` (the old PIN is thrown away on that answer).
#[test]
fn a_self_service_change_survives_a_kill_right_after_the_ok() {
    let mut rng = Rng::new("change");
    let mut d = chaos::start("[policy]\nuser_can_change = true\n", DEFAULT_TCP);
    d.add_user("alice", "staff", &pin(0));
    for n in 1..6 {
        let line = format!("CHANGE alice {} {}", pin(n - 1), pin(n));
        assert_eq!(d.terminal().ask(&line), "OK CHANGED", "round {n}");
        crash(&mut d, &mut rng);
        let answer = d.terminal().ask(&format!("ID alice PIN {}", pin(n)));
        assert_eq!(answer, "OK alice 0", "round {n}: the changed PIN was lost");
    }
}

fn write(path: &std::path::Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}
