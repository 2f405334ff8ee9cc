//! End-to-end: the admin CLI, import, startup failures and configuration errors.

mod common;

use common::{Daemon, BIN};
use std::process::Command;

#[test]
fn import_reports_every_problem_at_once_and_applies_all_or_nothing() {
    let d = Daemon::start();
    d.add_user("alice", "staff", "482913");
    let bad = d.dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        "id,name,email,groups,pin\nbob,Bob,bob@example.org,staff,730194\ncarol,Carol,,staff\ndan,Dan,dan@,staff,1111\nerin,Erin,,staff,730194\n",
    )
    .unwrap();
    let out = d.cli(&["import", bad.to_str().unwrap()], None);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("line 3: expected 5 columns, found 4"),
        "{stderr}"
    );
    assert!(stderr.contains("line 4"), "{stderr}");
    assert!(
        !stderr.contains("730194") && !stderr.contains("1111"),
        "{stderr}"
    );

    std::fs::write(
        &bad,
        "id,name,email,groups,pin\nbob,Bob,,staff,730194\ncarol,Carol,,staff,730194\ndan,Dan,,staff,4444\n",
    )
    .unwrap();
    let out = d.cli(&["import", bad.to_str().unwrap()], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("line 3: this PIN is also used on line 2"),
        "{stderr}"
    );
    assert!(stderr.contains("line 4"), "{stderr}");
    assert!(
        d.cli(&["user", "show", "bob"], None).status.code() != Some(0),
        "nothing applied"
    );

    let good = d.dir.path().join("users.csv");
    std::fs::write(
        &good,
        "id,name,email,groups,pin\nbob,\"Builder, Bob\",bob@example.org,staff;guests,730194\ncarol,Carol,,guests,\n",
    )
    .unwrap();
    let out = d.cli(&["import", good.to_str().unwrap(), "--dry-run"], None);
    assert!(String::from_utf8_lossy(&out.stderr).contains("would import 2 row(s): 2 added"));
    assert!(
        !d.cli(&["user", "show", "bob"], None).status.success(),
        "dry run applies nothing"
    );
    let out = d.cli(&["import", good.to_str().unwrap()], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut t = d.terminal();
    assert_eq!(t.ask("PIN 730194"), "OK bob 0");
    let list = d.cli_ok(&["user", "list"], None);
    assert!(
        list.contains("Builder, Bob") && list.contains("no-pin"),
        "{list}"
    );
}

#[test]
fn admin_errors_are_one_clear_line_and_non_zero() {
    let d = Daemon::start();
    d.add_user("alice", "staff", "482913");
    #[rustfmt::skip]
    let table: [(&[&str], Option<&str>, &str); 6] = [
        (&["user", "add", "bob", "--pin-stdin"], Some("482913"), "this PIN is not available; choose another"),
        (&["user", "add", "bob", "--pin-stdin"], Some("1234"), "PIN must have at least 6"),
        (&["user", "add", "alice"], None, "user `alice` already exists"),
        (&["user", "set-pin", "zed", "--generate"], None, "no user `zed`"),
        (&["user", "set-pin", "alice"], None, "choose --pin-stdin or --generate"),
        (&["user", "add", "bob", "--generate", "--expires", "3y"], None, "is not an expiry"),
    ];
    for (args, stdin, expected) in table {
        let out = d.cli(args, stdin);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert_eq!(
            stderr.trim().lines().count(),
            1,
            "{args:?}: one line: {stderr}"
        );
        assert!(!stderr.contains("482913"));
    }
}

#[test]
fn a_cli_without_a_daemon_says_how_to_fix_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        common::config_text(dir.path(), "", common::DEFAULT_TCP),
    )
    .unwrap();
    let out = Command::new(BIN)
        .arg("-c")
        .arg(&config)
        .args(["status"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is the daemon running?"));
}

#[test]
fn check_config_prints_the_effective_config_or_names_the_bad_key() {
    let out = Command::new(BIN)
        .args(["check-config", "-c", "config/pinwarden.toml"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("listen = \"127.0.0.1:7410\"") && text.contains("min_length = 6"),
        "{text}"
    );

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "state_dir = \"/tmp/x\"\n[policy]\nmin_length = 3\n").unwrap();
    let out = Command::new(BIN)
        .args(["check-config", "-c"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("policy.min_length = 3 is below the floor of 4"),
        "{stderr}"
    );
    let out = Command::new(BIN)
        .args(["check-config", "-c", "/nonexistent/p.toml"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read config file"));
}

#[test]
fn a_store_opened_with_another_pepper_refuses_to_start() {
    let mut d = Daemon::start();
    d.add_user("alice", "staff", "482913");
    d.stop();
    let pepper = d.state_dir().join("pepper");
    std::fs::write(&pepper, format!("{}\n", "ab".repeat(32))).unwrap();
    let out = Command::new(BIN)
        .args(["run", "-c"])
        .arg(&d.config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("created with a different pepper"),
        "{stderr}"
    );

    std::fs::remove_file(&pepper).unwrap();
    std::fs::write(&pepper, "0".repeat(64)).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pepper, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = Command::new(BIN)
        .args(["run", "-c"])
        .arg(&d.config)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("chmod 600"));
}

#[test]
fn a_second_daemon_on_the_same_state_refuses_to_start() {
    let d = Daemon::start();
    let out = Command::new(BIN)
        .args(["run", "-c"])
        .arg(&d.config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("in use by another process"), "{stderr}");
    let mut t = d.terminal();
    assert_eq!(t.ask("PING"), "PONG", "the first daemon is unharmed");
}

#[test]
fn sigint_also_stops_cleanly_and_idle_connections_do_not_hold_shutdown() {
    let mut d = Daemon::start();
    let mut idle = d.terminal();
    assert_eq!(idle.ask("PING"), "PONG");
    d.stop_with(libc::SIGINT);
    assert!(idle.closed());
    assert!(d.logs().contains("stopped"));
}

#[test]
fn the_daemon_validates_import_rows_itself() {
    use std::io::{BufRead, BufReader, Write};
    let d = Daemon::start();
    let socket = d.state_dir().join("control.sock");
    let mut stream = std::os::unix::net::UnixStream::connect(&socket).unwrap();
    let request = serde_json::json!({
        "cmd": "import",
        "rows": [
            {"line": 2, "id": "x\r\nOK admin", "name": "", "email": null, "groups": [], "pin": null},
            {"line": 3, "id": "dup", "name": "", "email": null, "groups": [], "pin": null},
            {"line": 4, "id": "dup", "name": "", "email": null, "groups": [], "pin": null}
        ]
    });
    stream.write_all(format!("{request}\n").as_bytes()).unwrap();
    let mut reply = String::new();
    BufReader::new(stream).read_line(&mut reply).unwrap();
    let v: serde_json::Value = serde_json::from_str(&reply).unwrap();
    let done = &v["done"];
    assert_eq!(done["ok"], false, "{reply}");
    let lines: Vec<u64> = done["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [2, 4], "{reply}");
    assert!(
        !d.cli_ok(&["user", "list"], None).contains("dup"),
        "nothing applied"
    );
}

#[test]
fn status_lists_users_locked_by_failed_attempts() {
    let d = Daemon::start_with(
        "[lockout]\nfree_failures = 50\nuser_max_failures = 2\n",
        common::DEFAULT_TCP,
    );
    d.add_user("alice", "staff", "482913");
    let mut t = d.terminal();
    assert_eq!(t.ask("ID alice PIN 000111"), "DENY");
    assert_eq!(t.ask("ID alice PIN 000112"), "DENY");
    let locked = d.status()["locked"].to_string();
    assert!(locked.contains("user:alice"), "{locked}");
}
