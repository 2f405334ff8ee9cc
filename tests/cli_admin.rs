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
    // The rows follow the request as feed lines (see tests/import_stream.rs).
    let feed = serde_json::json!({
        "feed": "rows",
        "rows": [
            {"line": 2, "id": "x\r\nOK admin", "name": "", "email": null, "groups": [], "pin": null},
            {"line": 3, "id": "dup", "name": "", "email": null, "groups": [], "pin": null},
            {"line": 4, "id": "dup", "name": "", "email": null, "groups": [], "pin": null}
        ]
    });
    let lines = format!("{{\"cmd\":\"import\"}}\n{feed}\n{{\"feed\":\"end\"}}\n");
    stream.write_all(lines.as_bytes()).unwrap();
    let mut frames = BufReader::new(stream);
    let (reply, v) = loop {
        let mut reply = String::new();
        frames.read_line(&mut reply).unwrap();
        let v: serde_json::Value = serde_json::from_str(&reply).unwrap();
        if v.get("done").is_some() {
            break (reply, v); // progress frames come first
        }
    };
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

fn json_of(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

#[test]
fn generated_pins_come_with_their_validity_and_set_validity_moves_it() {
    let d = Daemon::start();
    let out = d.cli(
        &[
            "user",
            "add",
            "bob",
            "--group",
            "staff",
            "--generate",
            "--expires",
            "24h",
        ],
        None,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("generated PIN for bob (valid until 20"),
        "{stderr}"
    );
    let pin = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(pin.len(), 6, "stdout holds the PIN alone: {pin:?}");
    assert!(!stderr.contains(&pin), "the PIN is printed once: {stderr}");

    let added = json_of(&d.cli_ok(
        &[
            "user",
            "add",
            "carol",
            "--group",
            "staff",
            "--generate",
            "--json",
        ],
        None,
    ));
    assert!(added["generated_pin"].as_str().is_some(), "{added}");
    assert!(
        added["expires_at"].is_null() && added["upstream"] == false,
        "{added}"
    );

    let show = json_of(&d.cli_ok(&["user", "show", "bob", "--json"], None));
    let set_at = show["pin"]["set_at"].clone();
    assert!(show["pin"]["expires_at"].is_i64(), "{show}");
    let list = d.cli_ok(&["user", "list"], None);
    assert!(
        list.contains("temporary") && list.contains("until 20"),
        "{list}"
    );

    let moved = json_of(&d.cli_ok(
        &["user", "set-validity", "bob", "--expires", "7d", "--json"],
        None,
    ));
    let week = moved["expires_at"].as_i64().unwrap() - show["pin"]["expires_at"].as_i64().unwrap();
    assert!((6 * 86_400_000..7 * 86_400_000).contains(&week), "{moved}");
    let out = d.cli(&["user", "set-validity", "bob", "--expires", "never"], None);
    assert!(String::from_utf8_lossy(&out.stderr).contains("PIN of bob is now no expiry"));
    let show = json_of(&d.cli_ok(&["user", "show", "bob", "--json"], None));
    assert!(show["pin"]["expires_at"].is_null(), "{show}");
    assert_eq!(show["pin"]["temporary"], false, "{show}");
    assert_eq!(show["pin"]["set_at"], set_at, "the PIN itself is unchanged");
    let mut t = d.terminal();
    assert_eq!(t.ask(&format!("PIN {pin}")), "OK bob 0");

    d.cli_ok(&["user", "add", "dan", "--group", "staff"], None);
    #[rustfmt::skip]
    let refused = [
        (&["user", "set-validity", "bob", "--expires", "2020-01-01"][..], "is in the past"),
        (&["user", "set-validity", "bob", "--expires", "soon"][..], "use never, 1h to 48h"),
        (&["user", "set-validity", "dan", "--expires", "7d"][..], "user `dan` has no PIN"),
        (&["user", "set-validity", "zed", "--expires", "7d"][..], "no user `zed`"),
    ];
    for (args, expected) in refused {
        let out = d.cli(args, None);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains(expected),
            "{args:?}: {stderr}"
        );
    }
    let audit = d.cli_ok(&["audit", "--json", "--last", "50"], None);
    assert!(
        audit.contains("validity_set") && audit.contains("until never"),
        "{audit}"
    );
    assert!(!audit.contains(&pin), "no PIN in the audit log");
}

#[test]
fn json_output_is_the_daemons_answer_and_nothing_else() {
    let d = Daemon::start();
    d.add_user("alice", "staff", "482913");
    for args in [
        &["status", "--json"][..],
        &["user", "list", "--json"][..],
        &["user", "show", "alice", "--json"][..],
    ] {
        json_of(&d.cli_ok(args, None));
    }
    let csv = d.dir.path().join("users.csv");
    std::fs::write(&csv, "id,name,email,groups,pin\nbob,Bob,,staff,730194\n").unwrap();
    let report = json_of(&d.cli_ok(&["import", csv.to_str().unwrap(), "--json"], None));
    assert_eq!(report["added"], 1, "{report}");
    let set = json_of(&d.cli_ok(
        &["user", "set-pin", "alice", "--pin-stdin", "--json"],
        Some("591736"),
    ));
    assert!(
        set.get("generated_pin").is_none() && set["id"] == "alice",
        "{set}"
    );
}

#[test]
fn check_config_warns_and_strict_makes_warnings_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.toml");
    let text = common::config_text(dir.path(), "", "")
        .replace("[log]", "[policy]\ngeneration = \"auto\"\n\n[log]");
    std::fs::write(&path, text).unwrap();
    let check = |strict: bool| {
        let mut cmd = Command::new(BIN);
        cmd.args(["check-config", "-c"]).arg(&path);
        if strict {
            cmd.arg("--strict");
        }
        cmd.output().unwrap()
    };
    let out = check(false);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(
            "warning: policy.generation = \"auto\" generates PINs but there is no [smtp]"
        ),
        "{stderr}"
    );
    let out = check(true);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("1 warning(s), refused under --strict"),
        "{stderr}"
    );
    let out = Command::new(BIN)
        .args(["check-config", "--strict", "-c", "config/pinwarden.toml"])
        .output()
        .unwrap();
    assert!(out.status.success(), "the demo config has no warnings");
}
