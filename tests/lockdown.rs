//! Locked-down files and control socket, with the real binary: under a loose umask (022)
//! nothing in the state dir is open to group or other; the control socket is 0660 and
//! checks the caller's credentials against `[control]`; admin records say who acted.
//! Runs as root (CI does): it runs the CLI as another uid.

mod common;

use common::{Daemon, BIN};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The uid the unprivileged CLI runs as (nobody), and groups it may be given.
const NOBODY: u32 = 65534;
const READERS: u32 = 4242;
const ADMINS: u32 = 4343;

fn require_root() {
    // SAFETY: getuid cannot fail.
    assert_eq!(
        unsafe { libc::getuid() },
        0,
        "tests/lockdown.rs runs the CLI as another user: run it as root (as .ci/run does)"
    );
}

fn loose_umask() {
    // SAFETY: swaps the mask only; every test of this file wants the same loose one.
    unsafe {
        libc::umask(0o022);
    }
}

/// Every entry under `dir` with a group or other bit, but sockets (checked on their own).
fn open_entries(dir: &Path) -> Vec<(PathBuf, u32)> {
    let mut out = Vec::new();
    let meta = std::fs::symlink_metadata(dir).unwrap();
    let mode = meta.permissions().mode() & 0o7777;
    if !meta.file_type().is_socket() && mode & 0o077 != 0 {
        out.push((dir.to_path_buf(), mode));
    }
    if meta.is_dir() {
        for entry in std::fs::read_dir(dir).unwrap() {
            out.extend(open_entries(&entry.unwrap().path()));
        }
    }
    out
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn state_dir_and_every_file_are_private_under_a_loose_umask() {
    loose_umask();
    let mut d = Daemon::start();
    d.add_user("alice", "staff", "482913");
    assert_eq!(d.terminal().ask("PIN 000000"), "DENY");
    let state = d.state_dir();
    assert_eq!(mode(&state), 0o700, "state dir");
    let socket = state.join("control.sock");
    assert_eq!(mode(&socket), 0o660, "control socket");
    d.stop();
    let open = open_entries(&state);
    assert!(open.is_empty(), "open to others: {open:?}");

    // What an older version (or a hand) left open is closed at the next start.
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).unwrap();
    let loose = state.join("store").join("conf");
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).unwrap();
    d.start_again();
    assert_eq!(mode(&state), 0o700);
    assert_eq!(mode(&loose), 0o600);
    d.stop();
    assert!(open_entries(&state).is_empty());
}

/// A daemon whose control socket lies in a directory others may enter, with `control`
/// as its `[control]` block; its config is readable by the unprivileged CLI.
fn daemon_with_control(control: &str) -> (Daemon, PathBuf) {
    require_root();
    loose_umask();
    let control = control.to_string();
    let d = Daemon::start_prepared(false, move |dir| {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let run = dir.join("run");
        std::fs::create_dir(&run).unwrap();
        std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o755)).unwrap();
        let top = format!(
            "control_socket = \"{}\"\n{control}\n",
            run.join("control.sock").display()
        );
        (top, common::DEFAULT_TCP.to_string())
    });
    let socket = d.dir.path().join("run/control.sock");
    (d, socket)
}

/// The CLI run as uid `NOBODY` with primary gid 0 (the socket's group: it may connect)
/// and `groups` as its supplementary groups.
fn cli_as(d: &Daemon, groups: &[u32], args: &[&str]) -> Output {
    let groups = groups.to_vec();
    let mut command = Command::new(BIN);
    command
        .arg("-c")
        .arg(&d.config)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        command.pre_exec(move || {
            let set = |rc: libc::c_int| match rc {
                0 => Ok(()),
                _ => Err(std::io::Error::last_os_error()),
            };
            set(libc::setgroups(groups.len(), groups.as_ptr()))?;
            set(libc::setgid(0))?;
            set(libc::setuid(NOBODY))
        });
    }
    command.output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_caller_outside_the_configured_uids_and_groups_is_refused_and_audited() {
    let (d, socket) = daemon_with_control("");
    assert_eq!(mode(&socket), 0o660);
    d.add_user("alice", "staff", "482913");
    let out = cli_as(&d, &[], &["status"]);
    assert!(!out.status.success(), "status as nobody was answered");
    let err = stderr(&out);
    assert!(err.contains("uid 65534"), "{err}");
    assert!(err.contains("control.read_groups"), "{err}");
    let out = cli_as(&d, &[], &["user", "disable", "alice"]);
    assert!(!out.status.success());
    let audit = d.wait_audit("\"refused\"", common::PATIENCE);
    assert!(audit.contains("uid:65534"), "{audit}");
    let alice = d.cli_ok(&["user", "show", "alice", "--json"], None);
    assert!(
        alice.contains("\"enabled\": true") || alice.contains("\"enabled\":true"),
        "{alice}"
    );
}

#[test]
fn read_groups_may_read_and_admin_groups_may_write_as_themselves() {
    let control =
        format!("[control]\nread_groups = [\"{READERS}\"]\nadmin_groups = [\"{ADMINS}\"]");
    let (d, _) = daemon_with_control(&control);
    d.add_user("alice", "staff", "482913");

    let out = cli_as(&d, &[READERS], &["status", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = cli_as(&d, &[READERS], &["user", "list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = cli_as(&d, &[READERS], &["user", "disable", "alice"]);
    assert!(!out.status.success(), "a reader disabled a user");
    let err = stderr(&out);
    assert!(
        err.contains("uid 65534") && err.contains("control.admin_groups"),
        "{err}"
    );

    let out = cli_as(&d, &[ADMINS], &["user", "disable", "alice"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let audit = d.wait_audit("user_disable", common::PATIENCE);
    let events: Vec<serde_json::Value> = serde_json::Deserializer::from_str(&audit)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let by = |action: &str| {
        events
            .iter()
            .find(|e| e["event"] == "admin" && e["action"] == action)
            .map(|e| e["by"].clone())
    };
    assert_eq!(by("user_disable"), Some("uid:65534".into()), "{audit}");
    assert_eq!(by("user_add"), Some("uid:0".into()), "{audit}");
}

/// `pinwarden run` on `config` with `env`, expected to fail at start: its stderr.
fn start_fails(config: &Path, env: &[(&str, &Path)]) -> String {
    let out = Command::new(BIN)
        .args(["run", "-c"])
        .arg(config)
        .envs(env.iter().map(|(k, v)| (*k, *v)))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success(), "pinwarden started");
    stderr(&out)
}

fn write_config(dir: &Path, extra_top: &str, extra: &str) -> PathBuf {
    let config = dir.join("pinwarden.toml");
    std::fs::write(&config, common::config_text(dir, extra_top, extra)).unwrap();
    config
}

#[test]
fn a_secret_file_open_to_others_stops_the_start_naming_path_mode_and_fix() {
    loose_umask();
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("mqtt.pass");
    std::fs::write(&secret, "s3cret\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o640)).unwrap();
    let mqtt = format!(
        "{}\n[mqtt]\nhost = \"127.0.0.1\"\nport = 1\nusername = \"edge\"\npassword_file = \"{}\"\n",
        common::DEFAULT_TCP,
        secret.display()
    );
    let config = write_config(dir.path(), "", &mqtt);
    let err = start_fails(&config, &[]);
    let shown = secret.display().to_string();
    for part in ["mqtt.password_file", &shown, "640", "chmod 600"] {
        assert!(err.contains(part), "`{part}` not in: {err}");
    }
    assert!(!err.contains("s3cret"), "{err}");
}

#[test]
fn a_systemd_credential_is_taken_as_is() {
    loose_umask();
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("credentials");
    std::fs::create_dir(&creds).unwrap();
    let pepper = creds.join("pinwarden-pepper");
    // systemd hands credentials over in a private directory; the file's own mode is its.
    std::fs::write(&pepper, format!("{}\n", "ab".repeat(32))).unwrap();
    std::fs::set_permissions(&pepper, std::fs::Permissions::from_mode(0o644)).unwrap();
    let top = "[security]\npepper_credential = \"pinwarden-pepper\"\n";
    // Without the credential directory the same open file is refused.
    let outside = dir.path().join("elsewhere");
    std::fs::create_dir(&outside).unwrap();
    let config = write_config(dir.path(), "", common::DEFAULT_TCP);
    let text = std::fs::read_to_string(&config).unwrap();
    let open_pepper = outside.join("pepper");
    std::fs::copy(&pepper, &open_pepper).unwrap();
    std::fs::set_permissions(&open_pepper, std::fs::Permissions::from_mode(0o644)).unwrap();
    let security = "[security]\nhash_workers = 2";
    let file_top = format!(
        "[security]\npepper_file = \"{}\"\nhash_workers = 2",
        open_pepper.display()
    );
    std::fs::write(&config, text.replacen(security, &file_top, 1)).unwrap();
    let err = start_fails(&config, &[]);
    assert!(err.contains("chmod 600"), "{err}");

    std::fs::write(
        &config,
        text.replacen(security, &format!("{top}hash_workers = 2"), 1),
    )
    .unwrap();
    let mut daemon = Command::new(BIN)
        .args(["run", "-c"])
        .arg(&config)
        .env("CREDENTIALS_DIRECTORY", &creds)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let ready = common::poll_until(
        common::PATIENCE,
        std::time::Duration::from_millis(100),
        || {
            if let Some(status) = daemon.try_wait().unwrap() {
                return Ok(Err(format!("exited: {status}")));
            }
            let out = Command::new(BIN)
                .arg("-c")
                .arg(&config)
                .arg("status")
                .output()
                .unwrap();
            match out.status.success() {
                true => Ok(Ok(())),
                false => Err(stderr(&out)),
            }
        },
    );
    common::signal(&daemon, libc::SIGTERM);
    let status = daemon.wait().unwrap();
    let mut log = String::new();
    std::io::Read::read_to_string(&mut daemon.stderr.take().unwrap(), &mut log).unwrap();
    assert_eq!(ready, Ok(Ok(())), "{log}");
    assert!(status.success(), "{log}");
}
