//! Fault campaign, end to end on the real binary: SIGKILL in the middle of a stream of
//! decisions, of admin writes and of a one-transaction directory sync (nothing acknowledged
//! lost, nothing applied half), and a directory server stopped and started again while the
//! daemon runs (served from the cache meanwhile, followed again after, no restart).
//!
//! Covered elsewhere and not repeated here: a large (journalled) sync killed midway and
//! while rolling forward (`sync_crash.rs`); a broker outage and return (`mqtt.rs`,
//! `events_survive_a_broker_outage_in_order`); a dead and a hung CUPS coming back
//! (`print_release.rs`, `a_dead_or_hung_cups_…_recovers`); an SMTP relay down and back
//! (`lifecycle_mail.rs`, `an_outage_loses_nothing…`; `mail_worker.rs`); a kill with mail
//! queued (`lifecycle_mail.rs`, `kill_9_with_mail_queued_sends_each_once_after_restart`).

#[path = "common/chaos.rs"]
mod chaos;
mod common;
#[path = "common/slapd.rs"]
mod slapd;

use chaos::{pin, show, Rng};
use common::{Daemon, Terminal, DEFAULT_TCP, PATIENCE};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Crashes per test.
const CRASHES: usize = 3;

/// Waits until `acked()` reaches `target` (the stream is then mid-flight), under PATIENCE.
fn wait_acks(d: &Daemon, target: usize, acked: impl Fn() -> usize) {
    d.wait_for(PATIENCE, || match acked() {
        n if n >= target => Ok(()),
        n => Err(format!("{n} of {target} acknowledgements")),
    });
}

/// What a terminal was told before the crash.
#[derive(Default)]
struct Told {
    oks: u64,
    denies: HashMap<String, u64>,
}

/// Victims of wrong ID+PIN attempts, few enough failures each to stay below the user lock.
const VICTIMS: u64 = 10;

#[test]
fn a_kill_during_a_stream_of_decisions_loses_no_counted_use_or_failure() {
    let mut rng = Rng::new("decisions");
    let mut d = chaos::start("", DEFAULT_TCP);
    let uses = 1_000;
    let limited = pin(1);
    d.cli_ok(
        &[
            "user",
            "add",
            "gus",
            "--group",
            "staff",
            "--pin-stdin",
            "--uses",
            "1000",
        ],
        Some(&limited),
    );
    for v in 0..VICTIMS {
        d.add_user(&format!("v{v}"), "staff", &pin(100 + v));
    }
    let mut used = 0;
    let mut failed: HashMap<String, u64> = HashMap::new();
    for round in 0..CRASHES {
        let told = Arc::new(Mutex::new(Told::default()));
        let stream = {
            let (told, addr, limited) = (Arc::clone(&told), d.tcp, limited.clone());
            // Alternately a limited-use grant and a wrong PIN for the next victim.
            std::thread::spawn(move || {
                let mut t = Terminal::connect(addr);
                for i in 0..40u64 {
                    let victim = format!("v{}", (i / 2 + round as u64 * 3) % VICTIMS);
                    let (line, want) = match i % 2 {
                        0 => (format!("PIN {limited}"), "OK gus 0"),
                        _ => (format!("ID {victim} PIN 000000"), "DENY"),
                    };
                    t.send_raw(format!("{line}\r\n").as_bytes());
                    let Ok(answer) = t.try_read_line() else {
                        return;
                    };
                    if answer.is_empty() {
                        return; // the connection closed: the daemon is gone
                    }
                    assert_eq!(answer, want, "{line}");
                    let mut told = told.lock().unwrap();
                    match i % 2 {
                        0 => told.oks += 1,
                        _ => *told.denies.entry(victim).or_default() += 1,
                    }
                }
            })
        };
        let target = rng.between(4, 30) as usize;
        wait_acks(&d, target, || {
            let t = told.lock().unwrap();
            t.oks as usize + t.denies.values().sum::<u64>() as usize
        });
        d.crash_and_restart();
        stream.join().expect("the terminal thread");
        let told = told.lock().unwrap();
        used += told.oks;
        for (victim, n) in &told.denies {
            *failed.entry(victim.clone()).or_default() += n;
        }
        // Counted before the answer: at most the one attempt in flight is counted unanswered.
        let left = show(&d, "gus").unwrap()["pin"]["uses_left"]
            .as_u64()
            .unwrap();
        assert!(
            left <= uses - used && left + 1 >= uses - used,
            "round {round}: {used} grant(s) answered, {left} use(s) left of {uses}"
        );
        used = uses - left;
        for v in 0..VICTIMS {
            let id = format!("v{v}");
            let want = failed.get(&id).copied().unwrap_or(0);
            let got = show(&d, &id).unwrap()["failed_attempts"].as_u64().unwrap();
            assert!(
                got >= want && got <= want + 1,
                "round {round}: {want} DENY(s) answered for {id}, {got} failure(s) recorded"
            );
            failed.insert(id, got);
        }
    }
}

#[test]
fn a_kill_during_a_stream_of_admin_writes_loses_no_acknowledged_change() {
    let mut rng = Rng::new("admin writes");
    let mut d = chaos::start("", DEFAULT_TCP);
    let mut next = 0u64;
    for round in 0..CRASHES {
        // Added, then disabled: each acknowledged step recorded in order.
        let acked: Arc<Mutex<Vec<(u64, &'static str)>>> = Arc::default();
        let writer = {
            let (acked, config, first) = (Arc::clone(&acked), d.config.clone(), next);
            std::thread::spawn(move || {
                for n in first..first + 40 {
                    let id = format!("a{n}");
                    let add = ["user", "add", &id, "--group", "staff", "--pin-stdin"];
                    if !cli(&config, &add, Some(&pin(n))) {
                        return;
                    }
                    acked.lock().unwrap().push((n, "add"));
                    if !cli(&config, &["user", "disable", &id], None) {
                        return;
                    }
                    acked.lock().unwrap().push((n, "disable"));
                }
            })
        };
        let target = rng.between(2, 30) as usize;
        wait_acks(&d, target, || acked.lock().unwrap().len());
        d.crash_and_restart();
        writer.join().expect("the admin thread");
        let acked = acked.lock().unwrap();
        for (n, step) in acked.iter() {
            let id = format!("a{n}");
            let user = show(&d, &id)
                .unwrap_or_else(|| panic!("round {round}: acknowledged `user add {id}` lost"));
            if *step == "disable" {
                assert_eq!(
                    user["enabled"], false,
                    "round {round}: `user disable {id}` lost"
                );
            }
        }
        next = acked.last().map_or(next, |(n, _)| n + 1) + 1;
    }
}

/// Runs the CLI; true when it answered OK, false when the daemon went away under it.
fn cli(config: &std::path::Path, args: &[&str], stdin: Option<&str>) -> bool {
    use std::io::Write;
    let mut child = std::process::Command::new(common::BIN)
        .arg("-c")
        .arg(config)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    child.wait().unwrap().success()
}

/// Users in one sync batch: below the store's 1 000-user chunk, so one transaction.
const SMALL: usize = 600;

fn listing(generation: u64) -> String {
    let mut text = String::from("id,name,email,groups,pin\n");
    for i in 0..SMALL as u64 {
        let pin = 10_000_000 * generation + 1_000_003 + i * 37;
        text.push_str(&format!("s{i:04},gen{generation} {i},,staff,{pin}\n"));
    }
    text
}

fn write(path: &std::path::Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[test]
fn a_kill_during_a_one_transaction_sync_leaves_the_old_set_or_the_new_one() {
    let mut rng = Rng::new("small sync");
    let files = tempfile::tempdir().unwrap();
    let path = files.path().join("users.csv");
    write(&path, &listing(1));
    let directory = format!(
        "{DEFAULT_TCP}\n[[directory]]\nname = \"hr\"\nkind = \"csv\"\npath = \"{}\"\n\
         interval = \"1h\"\n",
        path.display()
    );
    let mut d = chaos::start("", &directory);
    d.cli_ok(&["sync"], None);
    let mut generation = 1;
    for round in 0..CRASHES {
        // Every user's name and PIN change: one batch of SMALL upserts.
        write(&path, &listing(generation + 1));
        let sync = std::process::Command::new(common::BIN)
            .arg("-c")
            .arg(&d.config)
            .arg("sync")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Somewhere in fetching, hashing, applying, or just after the answer.
        let delay = Duration::from_millis(rng.between(0, 1_500));
        std::thread::sleep(delay);
        // The start after the kill must not simply read the file again.
        write(&path, "id,name\nbroken");
        d.crash_and_restart();
        let acknowledged = wait_child(sync);
        let list: serde_json::Value =
            serde_json::from_str(&d.cli_ok(&["user", "list", "--json"], None)).unwrap();
        let names: Vec<&str> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["name"].as_str().unwrap())
            .collect();
        assert_eq!(names.len(), SMALL, "round {round}");
        let new = format!("gen{} ", generation + 1);
        let renamed = names.iter().filter(|n| n.starts_with(&new)).count();
        assert!(
            renamed == 0 || renamed == SMALL,
            "round {round}: a mix, {renamed} of {SMALL} users of the new batch"
        );
        assert!(
            !acknowledged || renamed == SMALL,
            "round {round}: the acknowledged sync was lost"
        );
        eprintln!(
            "round {round}: killed after {delay:?}, the {} set",
            if renamed == 0 { "old" } else { "new" }
        );
        if renamed == SMALL {
            generation += 1;
        }
        // The PINs of the set that is there work.
        let mut t = d.terminal();
        let pin = 10_000_000 * generation + 1_000_003 + 5 * 37;
        assert_eq!(t.ask(&format!("PIN {pin}")), "OK s0005 0", "round {round}");
    }
}

/// Whether the `pinwarden sync` the kill interrupted had answered OK.
fn wait_child(mut child: std::process::Child) -> bool {
    child.wait().unwrap().success()
}

#[test]
fn a_directory_server_stopped_and_started_again_is_followed_without_a_restart() {
    let groups = std::fs::read_to_string(slapd::fixture("groups.ldif")).unwrap();
    let mut server = slapd::Slapd::start(&groups);
    let secret = server.dir.path().join("bind.pass");
    common::write_secret(&secret, &format!("{}\n", slapd::BIND_PW));
    let directory = format!(
        "{DEFAULT_TCP}\n[[directory]]\nname = \"corp\"\nkind = \"ldap\"\ninterval = \"500ms\"\n\
         [directory.ldap]\nurl = \"{}\"\nbase_dn = \"ou=people,dc=example,dc=org\"\n\
         bind_dn = \"{}\"\nbind_password_file = \"{}\"\ntimeout = \"1s\"\ngroups = \"entries\"\n\
         group_base_dn = \"ou=groups,dc=example,dc=org\"\nenabled = \"boolean\"\n\
         enabled_attribute = \"pinwardenEnabled\"\n",
        server.url,
        slapd::BIND_DN,
        secret.display()
    );
    let d = chaos::start("", &directory);
    let pid = d.pid();
    eventually(&d, "PIN 482913", "OK alice");

    server.stop();
    d.wait_status("the outage in status", |s| {
        s["directories"][0]["last_error"].is_string()
    });
    // Served from the cache meanwhile.
    assert!(d.terminal().ask("PIN 482913").starts_with("OK alice"));

    server.restart();
    server.ldapmodify(
        "dn: uid=alice,ou=people,dc=example,dc=org\nchangetype: modify\n\
         replace: pinwardenPin\npinwardenPin: 561739\n",
        false,
    );
    eventually(&d, "PIN 561739", "OK alice");
    eventually(&d, "PIN 482913", "DENY");
    d.wait_status("the error cleared", |s| {
        s["directories"][0]["last_error"].is_null()
    });
    assert_eq!(d.pid(), pid, "the same daemon throughout");
}

/// Asks a fresh terminal until the answer starts with `want`; every miss is a failed
/// attempt, so slowly (the fixture allows 100).
fn eventually(d: &Daemon, line: &str, want: &str) {
    let every = Duration::from_millis(250);
    let got = common::poll_until(PATIENCE, every, || match d.terminal().ask(line) {
        got if got.starts_with(want) => Ok(()),
        got => Err(got),
    });
    if let Err(got) = got {
        panic!("`{want}` never came (last: {got})\n{}", d.logs());
    }
}
