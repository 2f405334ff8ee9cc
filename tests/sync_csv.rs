//! End-to-end: a CSV `[[directory]]` followed by the real daemon — adds, PIN changes,
//! removals, a broken file, a local user, the mass-deletion guard, PIN collisions and
//! staleness at doors versus printers.

mod common;

use common::Daemon;
use std::path::{Path, PathBuf};
use std::time::Duration;

const HEADER: &str = "id,name,email,groups,pin\n";

fn users_file(dir: &Path, rows: &[&str]) -> PathBuf {
    let path = dir.join("users.csv");
    write(&path, rows);
    path
}

/// Replaces the file atomically, as an export job would (write, then rename).
fn write(path: &Path, rows: &[&str]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, format!("{HEADER}{}\n", rows.join("\n"))).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// A CSV directory polled every 200 ms unless `extra` sets `interval`.
fn directory(path: &Path, extra: &str) -> String {
    let extra = if extra.contains("interval") {
        extra.to_string()
    } else {
        format!("interval = \"200ms\"\n{extra}")
    };
    format!(
        "{}\n[[directory]]\nname = \"hr\"\nkind = \"csv\"\npath = \"{}\"\n{extra}\n",
        common::DEFAULT_TCP,
        path.display()
    )
}

fn wait_until(d: &Daemon, what: &str, mut check: impl FnMut() -> bool) {
    d.wait_for(common::PATIENCE, || match check() {
        true => Ok(()),
        false => Err(format!("waiting for {what}")),
    });
}

fn exists(d: &Daemon, id: &str) -> bool {
    d.cli(&["user", "show", id], None).status.success()
}

fn pin_set_at(d: &Daemon, id: &str) -> serde_json::Value {
    let v: serde_json::Value =
        serde_json::from_str(&d.cli_ok(&["user", "show", id, "--json"], None)).unwrap();
    v["pin"]["set_at"].clone()
}

#[test]
fn import_refuses_rows_of_directory_users_and_changes_nothing() {
    let files = tempfile::tempdir().unwrap();
    let path = users_file(files.path(), &["ann,Ann,,staff,482913"]);
    let d = Daemon::start_with("", &directory(&path, ""));
    wait_until(&d, "the first sync", || exists(&d, "ann"));
    let before = d.cli_ok(&["user", "show", "ann", "--json"], None);
    let file = d.dir.path().join("import.csv");
    std::fs::write(
        &file,
        "id,name,email,groups,pin\nnew,New,,staff,615243\nann,Mallory,,admins,730194\n",
    )
    .unwrap();
    for dry_run in [true, false] {
        let mut args = vec!["import", file.to_str().unwrap()];
        args.extend(dry_run.then_some("--dry-run"));
        let out = d.cli(&args, None);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        assert!(
            stderr.contains("line 3: `ann` comes from directory `hr`: change it there"),
            "{stderr}"
        );
        assert!(stderr.contains("nothing was imported"), "{stderr}");
    }
    assert_eq!(
        d.cli_ok(&["user", "show", "ann", "--json"], None),
        before,
        "the directory's user is unchanged"
    );
    assert!(!exists(&d, "new"), "a refused row refuses the whole file");
    let mut t = d.terminal();
    assert_eq!(t.ask("PIN 482913"), "OK ann 0");
    assert_eq!(t.ask("PIN 730194"), "DENY");
}

#[test]
fn the_cache_follows_the_file_and_never_touches_local_users() {
    let files = tempfile::tempdir().unwrap();
    let path = users_file(
        files.path(),
        &["ann,Ann,,staff,482913", "bob,Bob,,staff,730194"],
    );
    let d = Daemon::start_with("", &directory(&path, ""));
    d.add_user("lou", "staff", "615243");
    wait_until(&d, "the first sync", || {
        exists(&d, "ann") && exists(&d, "bob")
    });
    let mut t = d.terminal();
    assert_eq!(t.ask("PIN 482913"), "OK ann 0");

    write(
        &path,
        &[
            "ann,Ann,,staff,482913",
            "bob,Bob,,staff,730194",
            "cat,Cat,,staff,905172",
        ],
    );
    wait_until(&d, "a new row", || exists(&d, "cat"));
    assert_eq!(t.ask("PIN 905172"), "OK cat 0");

    let before = pin_set_at(&d, "bob");
    write(
        &path,
        &[
            "ann,Ann,,staff,482913",
            "bob,Bob,,staff,730195",
            "cat,Cat,,staff,905172",
        ],
    );
    wait_until(&d, "bob's new PIN", || pin_set_at(&d, "bob") != before);
    assert_eq!(t.ask("PIN 730194"), "DENY", "the old PIN stops working");
    assert_eq!(t.ask("PIN 730195"), "OK bob 0");
    let audit = d.wait_audit("\"rehashed\":1", Duration::from_secs(5));
    assert!(audit.contains("\"outcome\":\"applied\""), "{audit}");

    write(
        &path,
        &[
            "ann,Ann,,staff,482913",
            "bob,Bob,,staff,730195",
            "lou,Lou,,guests,111999",
        ],
    );
    wait_until(&d, "cat's removal", || !exists(&d, "cat"));
    assert_eq!(t.ask("PIN 905172"), "DENY");
    assert_eq!(
        t.ask("PIN 615243"),
        "OK lou 0",
        "the local user keeps its PIN"
    );
    let lou = d.cli_ok(&["user", "show", "lou"], None);
    assert!(lou.contains("Local") && lou.contains("staff"), "{lou}");
    let out = d.cli_ok(&["sync"], None);
    assert!(out.contains("hr: 0 added"), "{out}");

    // A half-written export: a broken row and a missing user. Nothing is applied.
    // Written atomically like the others: the daemon polls the file every 200 ms and must
    // read this broken file, not a truncated one in the middle of the write.
    write(&path, &["ann,Ann,,staff"]);
    let out = d.cli(&["sync"], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("line 2"),
        "{stderr}"
    );
    assert!(!stderr.contains("482913"), "{stderr}");
    assert_eq!(t.ask("PIN 730195"), "OK bob 0", "nobody was deleted");
    let status = d.status();
    let dir = &status["directories"][0];
    assert_eq!(dir["users"], 2, "{status}");
    assert!(
        dir["last_error"].as_str().unwrap().contains("line 2"),
        "{status}"
    );
    assert_eq!(dir["stale"], false);
    let text = d.cli_ok(&["status"], None);
    let line = text
        .lines()
        .find(|l| l.starts_with("directory hr"))
        .unwrap_or_else(|| panic!("no directory line: {text}"));
    assert!(
        line.contains("last success 20") && line.contains(", last error 20"),
        "the text status shows both times: {line}"
    );
}

#[test]
fn a_mass_deletion_is_refused_until_forced() {
    let files = tempfile::tempdir().unwrap();
    let rows: Vec<String> = (0..20).map(|i| format!("u{i:02},U {i},,staff,")).collect();
    let all: Vec<&str> = rows.iter().map(String::as_str).collect();
    let path = users_file(files.path(), &all);
    let d = Daemon::start_with("", &directory(&path, "max_delete_share = 0.1"));
    wait_until(&d, "the first sync", || exists(&d, "u19"));
    write(&path, &all[..15]);
    let audit = d.wait_audit("\"outcome\":\"refused\"", Duration::from_secs(20));
    assert!(
        audit.contains("would remove 5 of the source's 20 users"),
        "{audit}"
    );
    let out = d.cli(&["sync"], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("--force"),
        "{stderr}"
    );
    assert!(exists(&d, "u19"), "nothing was removed");
    let out = d.cli_ok(&["sync", "--force"], None);
    assert!(out.contains("5 removed"), "{out}");
    assert!(!exists(&d, "u19"));
    assert_eq!(d.status()["directories"][0]["users"], 15);
}

#[test]
fn upstream_users_sharing_a_pin_lose_pin_only_login_until_it_is_resolved() {
    let files = tempfile::tempdir().unwrap();
    let path = users_file(
        files.path(),
        &["ann,Ann,,staff,482913", "bob,Bob,,staff,482913"],
    );
    let d = Daemon::start_with("", &directory(&path, "interval = \"1h\""));
    let out = d.cli(&["sync", "--full"], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("sharing a PIN: ann, bob"), "{stderr}");
    assert!(!stderr.contains("482913"), "{stderr}");
    let mut t = d.terminal();
    assert_eq!(
        t.ask("PIN 482913"),
        "DENY",
        "PIN-only login is off for both"
    );
    assert_eq!(t.ask("ID ann PIN 482913"), "OK ann 0", "ID+PIN still works");
    assert_eq!(t.ask("ID bob PIN 482913"), "OK bob 0");
    let status = d.status();
    assert_eq!(
        status["pin_collisions"],
        serde_json::json!([["ann", "bob"]]),
        "{status}"
    );
    let audit = d.wait_audit("\"collisions\":2", Duration::from_secs(5));
    assert!(!audit.contains("482913"));

    write(&path, &["ann,Ann,,staff,482913", "bob,Bob,,staff,730194"]);
    d.cli_ok(&["sync"], None);
    assert_eq!(
        t.ask("PIN 482913"),
        "OK ann 0",
        "resolved: PIN-only is back"
    );
    assert_eq!(t.ask("PIN 730194"), "OK bob 0");
    assert_eq!(d.status()["pin_collisions"], serde_json::json!([]));
}

#[test]
fn past_max_staleness_doors_deny_upstream_users_while_printers_keep_deciding() {
    let files = tempfile::tempdir().unwrap();
    let path = users_file(files.path(), &["ann,Ann,,staff,482913"]);
    let door_tcp = r#"
[[tcp]]
listen = "127.0.0.1:0"
[[tcp.terminal]]
address = "127.0.0.1"
device = "front-door"
"#;
    let extra = format!(
        "{}{door_tcp}\n[sync]\non_stale = {{ door = \"deny\" }}\n",
        directory(&path, "max_staleness = \"2s\"")
    );
    let d = Daemon::start_with("", &extra);
    d.add_user("lou", "staff", "615243");
    wait_until(&d, "the first sync", || exists(&d, "ann"));
    let door_addr: std::net::SocketAddr = d.status()["tcp"][1].as_str().unwrap().parse().unwrap();
    let mut door = common::Terminal::connect(door_addr);
    assert_eq!(door.ask("PIN 482913"), "OK ann 0");

    std::fs::remove_file(&path).unwrap();
    wait_until(&d, "the door to deny a stale user", || {
        door.ask("PIN 482913") == "DENY"
    });
    let audit = d.wait_audit("\"reason\":\"directory_stale\"", Duration::from_secs(5));
    assert!(
        audit.contains("cannot read"),
        "the failure is audited: {audit}"
    );
    assert_eq!(
        door.ask("PIN 615243"),
        "OK lou 0",
        "local users are not stale"
    );
    assert_eq!(
        d.terminal().ask("PIN 482913"),
        "OK ann 0",
        "printers decide from cache"
    );
    let status = d.status();
    assert_eq!(status["directories"][0]["stale"], true, "{status}");

    write(&path, &["ann,Ann,,staff,482913"]);
    wait_until(&d, "the directory to be fresh again", || {
        door.ask("PIN 482913") == "OK ann 0"
    });
}

/// `pinwarden sync --json` for the one source: its summary.
fn sync_summary(d: &Daemon, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["sync", "--json"];
    all.extend_from_slice(args);
    let out: serde_json::Value = serde_json::from_str(&d.cli_ok(&all, None)).unwrap();
    assert_eq!(out[0]["ok"], true, "{out}");
    out[0]["summary"].clone()
}

#[test]
fn a_pin_set_here_on_a_directory_user_lasts_until_the_next_sync_even_with_the_file_unchanged() {
    let files = tempfile::tempdir().unwrap();
    let path = users_file(files.path(), &["ann,Ann,,staff,482913", "bob,Bob,,staff,"]);
    let d = Daemon::start_with("", &directory(&path, "interval = \"1h\"\n"));
    wait_until(&d, "the first sync", || {
        exists(&d, "ann") && exists(&d, "bob")
    });
    d.cli_ok(&["user", "set-pin", "ann", "--pin-stdin"], Some("615243"));
    d.cli_ok(&["user", "set-pin", "bob", "--pin-stdin"], Some("905172"));
    let mut t = d.terminal();
    assert_eq!(t.ask("PIN 615243"), "OK ann 0", "the temporary PIN works");
    assert_eq!(t.ask("PIN 482913"), "DENY");

    let s = sync_summary(&d, &[]);
    assert_eq!(
        s["complete"], true,
        "a local PIN makes the run complete: {s}"
    );
    assert_eq!(
        t.ask("PIN 615243"),
        "DENY",
        "the directory's PIN replaced it"
    );
    assert_eq!(t.ask("PIN 482913"), "OK ann 0");
    assert_eq!(
        t.ask("PIN 905172"),
        "OK bob 0",
        "the directory carries no PIN for bob: his stays"
    );

    let s = sync_summary(&d, &[]);
    assert_eq!(
        s["outcome"], "unchanged",
        "bob's PIN no longer forces complete runs: {s}"
    );
    assert_eq!(t.ask("PIN 905172"), "OK bob 0");
    assert!(!d.logs().contains("615243") && !d.logs().contains("482913"));
}

#[test]
fn weak_directory_pins_are_kept_under_warn_and_listed_by_id() {
    let files = tempfile::tempdir().unwrap();
    let path = users_file(
        files.path(),
        &["ann,Ann,,staff,1234", "bob,Bob,,staff,482913"],
    );
    let d = Daemon::start_with("", &directory(&path, "interval = \"1h\"\n"));
    wait_until(&d, "the first sync", || {
        exists(&d, "ann") && exists(&d, "bob")
    });
    let mut t = d.terminal();
    assert_eq!(t.ask("PIN 1234"), "OK ann 0", "warn keeps a weak PIN");
    assert_eq!(t.ask("PIN 482913"), "OK bob 0");

    let s = sync_summary(&d, &["--full"]);
    assert_eq!(s["weak_pins"], 1, "{s}");
    assert_eq!(s["weak_pin_users"], serde_json::json!(["ann"]), "{s}");
    let status = d.status();
    let dir = &status["directories"][0];
    assert_eq!(dir["weak_pin_policy"], "warn", "{status}");
    assert_eq!(dir["weak_pins"], 1, "{status}");
    assert_eq!(
        dir["weak_pin_users"],
        serde_json::json!(["ann"]),
        "{status}"
    );
    let audit = d.wait_audit("weak_upstream", Duration::from_secs(5));
    assert!(audit.contains("too short"), "{audit}");

    write(&path, &["ann,Ann,,staff,730194", "bob,Bob,,staff,482913"]);
    let s = sync_summary(&d, &[]);
    assert_eq!(s["weak_pins"], 0, "{s}");
    assert_eq!(
        d.status()["directories"][0]["weak_pins"],
        0,
        "a fixed PIN leaves the list"
    );
    assert_eq!(t.ask("PIN 730194"), "OK ann 0");
    assert!(!d.logs().contains("482913"), "no PIN in the log");
}

#[test]
fn weak_directory_pins_are_left_out_under_refuse() {
    let files = tempfile::tempdir().unwrap();
    let path = users_file(
        files.path(),
        &["ann,Ann,,staff,1234", "bob,Bob,,staff,482913"],
    );
    let d = Daemon::start_with(
        "\n[policy]\npin_policy = \"refuse\"\n",
        &directory(&path, "interval = \"1h\"\n"),
    );
    wait_until(&d, "the first sync", || {
        exists(&d, "ann") && exists(&d, "bob")
    });
    let mut t = d.terminal();
    assert_eq!(t.ask("PIN 1234"), "DENY", "refuse leaves a weak PIN out");
    assert_eq!(t.ask("PIN 482913"), "OK bob 0");
    let status = d.status();
    let dir = &status["directories"][0];
    assert_eq!(dir["weak_pin_policy"], "refuse", "{status}");
    assert_eq!(
        dir["weak_pin_users"],
        serde_json::json!(["ann"]),
        "{status}"
    );
    let text = d.cli_ok(&["status"], None);
    assert!(text.contains("weak PIN"), "{text}");
    assert!(!d.logs().contains("1234 "), "no PIN in the log");
}
