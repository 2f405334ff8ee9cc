//! End-to-end: imports stream over the control socket in chunks; other admin commands answer
//! while one is open; a client that goes away stops it, leaving whole chunks; every problem
//! of a file is reported at once; a dry run does no argon2 unless asked to prove uniqueness.

mod common;

use common::{Daemon, PATIENCE};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;

const CHUNK: usize = 1000;

/// One `rows` feed line of `count` users without PINs, numbered from `first`.
fn rows_line(first: usize, count: usize) -> String {
    let rows: Vec<serde_json::Value> = (first..first + count)
        .map(|i| {
            serde_json::json!({
                "line": i + 2, "id": format!("u{i:06}"), "name": format!("User {i}"),
                "email": null, "groups": ["staff"], "pin": null,
            })
        })
        .collect();
    serde_json::json!({ "feed": "rows", "rows": rows }).to_string() + "\n"
}

const END: &str = "{\"feed\":\"end\"}\n";

/// A hand-driven import on the control socket, so a test decides when each line goes.
struct RawImport {
    stream: UnixStream,
    frames: BufReader<UnixStream>,
}

impl RawImport {
    fn start(d: &Daemon) -> RawImport {
        let stream = UnixStream::connect(d.state_dir().join("control.sock")).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        let frames = BufReader::new(stream.try_clone().unwrap());
        let mut raw = RawImport { stream, frames };
        raw.send("{\"cmd\":\"import\"}\n");
        raw
    }

    fn send(&mut self, line: &str) {
        self.stream.write_all(line.as_bytes()).unwrap();
    }

    fn send_chunks(&mut self, chunks: usize) {
        for c in 0..chunks {
            self.send(&rows_line(c * CHUNK, CHUNK));
        }
    }

    /// Reads frames until one satisfies `wanted`; returns it.
    fn frame_until(&mut self, wanted: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        loop {
            let mut line = String::new();
            let n = self.frames.read_line(&mut line).expect("a frame in time");
            assert!(n > 0, "the daemon closed the connection");
            let frame: serde_json::Value = serde_json::from_str(&line).unwrap();
            if wanted(&frame) {
                return frame;
            }
        }
    }
}

fn user_count(d: &Daemon) -> u64 {
    d.status()["users"].as_u64().unwrap()
}

#[test]
fn other_admin_commands_answer_while_a_large_import_is_open() {
    let d = Daemon::start();
    let mut import = RawImport::start(&d);
    import.send_chunks(20);
    import.frame_until(|f| f["progress"]["done"] == 20 * CHUNK);
    // The import is open (no `end` yet): other admin commands are not queued behind it.
    assert_eq!(user_count(&d), 0);
    d.add_user("zed", "staff", "482913");
    assert_eq!(user_count(&d), 1);
    import.send(END);
    import.frame_until(|f| f.as_str() == Some("send_again"));
    import.send_chunks(20);
    import.send(END);
    let done = import.frame_until(|f| f.get("done").is_some());
    assert_eq!(done["done"]["ok"], true, "{done}");
    assert_eq!(done["done"]["data"]["added"], 20 * CHUNK, "{done}");
    assert_eq!(user_count(&d), 20_001);

    // The CLI streams a file of the same size and, without a terminal, prints progress.
    let file = d.dir.path().join("big.csv");
    let mut text = String::from("id,name,groups\n");
    for i in 0..20_000 {
        text.push_str(&format!("v{i:06},Visitor {i},guests\n"));
    }
    std::fs::write(&file, text).unwrap();
    let out = d.cli(&["import", file.to_str().unwrap()], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("/20000 rows"), "{stderr}");
    assert!(
        stderr.contains("imported 20000 row(s): 20000 added"),
        "{stderr}"
    );
    assert_eq!(user_count(&d), 40_001);
}

#[test]
fn a_client_gone_mid_import_stops_it_and_leaves_whole_chunks() {
    let d = Daemon::start();
    // Gone while the file is checked: nothing is applied.
    let mut import = RawImport::start(&d);
    import.send_chunks(3);
    import.frame_until(|f| f["progress"]["done"] == 3 * CHUNK);
    drop(import);
    d.wait_audit("went away while it was checked", PATIENCE);
    assert_eq!(user_count(&d), 0);

    // Gone while it is applied: the chunks applied are whole, the rest never is.
    let mut import = RawImport::start(&d);
    import.send_chunks(6);
    import.send(END);
    import.frame_until(|f| f.as_str() == Some("send_again"));
    import.send_chunks(2);
    import.frame_until(|f| f["progress"]["total"] == 6 * CHUNK);
    drop(import);
    let audit = d.wait_audit("cancelled (", PATIENCE);
    assert!(audit.contains("chunk(s)"), "{audit}");
    let users = user_count(&d);
    assert!(
        users % CHUNK as u64 == 0 && (1000..=2000).contains(&users),
        "whole chunks only: {users}"
    );
    assert!(d.logs().contains("import cancelled"), "{}", d.logs());
}

#[test]
fn every_problem_of_a_file_is_reported_at_once() {
    let d = Daemon::start();
    let file = d.dir.path().join("bad.csv");
    std::fs::write(
        &file,
        "id,name,groups,pin\nann,Ann,staff,730194\nbob,Bob,staff\ncid,Cid,staff,1111\ndee,Dee,staff,730195,extra\n",
    )
    .unwrap();
    let out = d.cli(&["import", file.to_str().unwrap()], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("line 3: expected 4 columns, found 3"),
        "{stderr}"
    );
    assert!(stderr.contains("line 4:"), "the weak PIN: {stderr}");
    assert!(
        stderr.contains("line 5: expected 4 columns, found 5"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("1111") && !stderr.contains("730194"),
        "{stderr}"
    );
    assert_eq!(user_count(&d), 0, "nothing applied");

    // Many problems: a capped list and the count.
    let mut text = String::from("id,name,groups\n");
    for i in 0..500 {
        text.push_str(&format!("x{i},X\n"));
    }
    std::fs::write(&file, text).unwrap();
    let out = d.cli(&["import", file.to_str().unwrap()], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("500 problem(s) in all"), "{stderr}");
    assert!(stderr.lines().count() < 300, "capped: {stderr}");
}

#[test]
fn a_dry_run_does_no_argon2_unless_asked_to_check_uniqueness() {
    let d = Daemon::start();
    let computed = |d: &Daemon| d.status()["hash_pool"]["computed"].as_u64().unwrap();
    let file = d.dir.path().join("pins.csv");
    let mut text = String::from("id,name,groups,pin\n");
    for i in 0..5000 {
        text.push_str(&format!("p{i:05},P,staff,{}\n", 31_000_000 + i * 7));
    }
    std::fs::write(&file, &text).unwrap();
    let before = computed(&d);
    let out = d.cli(&["import", file.to_str().unwrap(), "--dry-run"], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("would import 5000 row(s)"), "{stderr}");
    assert_eq!(computed(&d), before, "a dry run computes no tag");

    let small = d.dir.path().join("few.csv");
    let few: String = text.lines().take(11).map(|l| format!("{l}\n")).collect();
    std::fs::write(&small, few).unwrap();
    let args = [
        "import",
        small.to_str().unwrap(),
        "--dry-run",
        "--check-unique",
    ];
    let out = d.cli(&args, None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(computed(&d), before + 10, "--check-unique hashes every PIN");
    assert_eq!(user_count(&d), 0);
}
