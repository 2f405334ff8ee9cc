//! End-to-end: SIGKILL the daemon in the middle of a large directory sync (hashing, staging
//! the journal or rolling it forward); after a restart the store holds the previous user set
//! or the new one, never a mix.

mod common;

use common::Daemon;
use std::time::{Duration, Instant};

const USERS: usize = 20_000;
const OLD: usize = 1_000;

fn pin(generation: u32, i: usize) -> String {
    format!("{}", generation * 10_000_000 + i as u32 * 37)
}

fn write_file(path: &std::path::Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn generation(users: usize, gen: u32, name: &str) -> String {
    let mut text = String::from("id,name,email,groups,pin\n");
    for i in 0..users {
        text.push_str(&format!("u{i:05},{name} {i},,staff,{}\n", pin(gen, i)));
    }
    text
}

#[test]
fn a_sync_killed_midway_leaves_the_old_set_or_the_new_one() {
    let completed = crash_during_a_large_sync(|d| {
        // Somewhere in hashing, staging or applying.
        let _ = d;
        std::thread::sleep(Duration::from_millis(rand_delay()));
    });
    eprintln!("completed from the journal at start: {completed}");
}

#[test]
fn a_sync_killed_while_applying_is_completed_at_the_next_start() {
    let completed = crash_during_a_large_sync(|d| {
        // The user count moves a chunk at a time once the journal rolls forward.
        let deadline = Instant::now() + Duration::from_secs(60);
        while d.status()["users"].as_u64() == Some(OLD as u64) {
            assert!(
                Instant::now() < deadline,
                "the batch never applied\n{}",
                d.logs()
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    });
    assert!(
        completed,
        "the restarted daemon completed the journalled batch"
    );
}

/// Starts a sync of 1 000 → 20 000 users, waits with `wait`, SIGKILLs the daemon, restarts
/// it and checks it holds one whole set; returns whether the start completed the batch
/// from the journal.
fn crash_during_a_large_sync(wait: impl Fn(&Daemon)) -> bool {
    let files = tempfile::tempdir().unwrap();
    let path = files.path().join("users.csv");
    write_file(&path, &generation(OLD, 2, "old"));
    let extra = format!(
        "{}\n[[directory]]\nname = \"hr\"\nkind = \"csv\"\npath = \"{}\"\ninterval = \"1h\"\n",
        common::DEFAULT_TCP,
        path.display()
    );
    // Cheap argon2 so 20 000 PINs hash in seconds; the apply is what is tested.
    let mut d = Daemon::start_edited(|text| {
        text.replace("{EXTRA}", &extra).replace(
            "hash_workers = 2",
            "hash_workers = 2\nargon2_memory_kib = 64\nargon2_iterations = 1",
        )
    });
    d.cli_ok(&["sync"], None);
    assert_eq!(d.status()["users"], OLD);

    // Every old user changes (name and PIN) and 19 000 are added: one batch.
    write_file(&path, &generation(USERS, 3, "new"));
    let mut sync = std::process::Command::new(common::BIN)
        .arg("-c")
        .arg(&d.config)
        .arg("sync")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while d.status()["directories"][0]["running"] != true {
        assert!(
            Instant::now() < deadline,
            "the sync never started\n{}",
            d.logs()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    wait(&d);
    // The next start must not simply apply the file again: make it unreadable first.
    write_file(&path, "id,name\nbroken");
    d.crash_and_restart();
    let _ = sync.wait();

    let status = d.status();
    let count = status["users"].as_u64().unwrap() as usize;
    assert!(
        count == OLD || count == USERS,
        "a mix: {count} users\n{status}"
    );
    let (gen, name, n) = if count == OLD {
        (2, "old", OLD)
    } else {
        (3, "new", USERS)
    };
    let list: serde_json::Value =
        serde_json::from_str(&d.cli_ok(&["user", "list", "--json"], None)).unwrap();
    let users = list.as_array().unwrap();
    assert_eq!(users.len(), n);
    assert!(
        users
            .iter()
            .all(|u| u["name"].as_str().unwrap().starts_with(name)),
        "every user is of the {name} generation"
    );
    assert_eq!(
        status["directories"][0]["users"], n,
        "the source's count is in step"
    );
    let mut t = d.terminal();
    for i in [0, OLD - 1, n - 1] {
        assert_eq!(
            t.ask(&format!("PIN {}", pin(gen, i))),
            format!("OK u{i:05} 0")
        );
    }
    let completed = d
        .logs()
        .contains("completed an interrupted directory sync batch");
    eprintln!("after the crash: the {name} set ({count} users)");
    assert!(
        !completed || count == USERS,
        "a completed batch is the new set"
    );
    completed
}

/// A delay into the run: somewhere in hashing, staging or applying.
fn rand_delay() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    nanos % 3000
}
