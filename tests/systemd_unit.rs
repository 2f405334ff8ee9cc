//! The shipped systemd unit: `systemd-analyze security --offline=true` rates its exposure at
//! 1.5 or less, `systemd-analyze verify` finds nothing to say about it, and the settings the
//! daemon relies on (reload by SIGHUP, private files, serial ports) are still there.

use std::path::{Path, PathBuf};
use std::process::Command;

const ANALYZE: &str = "/usr/bin/systemd-analyze";
const BIN: &str = env!("CARGO_BIN_EXE_pinwarden");

fn unit_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/pinwarden.service")
}

fn analyze(args: &[&str], unit: &Path) -> (bool, String, String) {
    assert!(
        Path::new(ANALYZE).exists(),
        "{ANALYZE} is missing: install the Debian package systemd"
    );
    let out = Command::new(ANALYZE)
        .args(args)
        .arg(unit)
        .env("SYSTEMD_COLORS", "0")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The unit with its binary paths pointing at the binary under test (verify checks that
/// the executables exist), in a temp dir under the unit's own name.
fn unit_for_verify(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(unit_path()).unwrap();
    let path = dir.join("pinwarden.service");
    std::fs::write(&path, text.replace("/usr/bin/pinwarden", BIN)).unwrap();
    path
}

#[test]
fn exposure_is_at_most_1_5() {
    let (ok, stdout, stderr) = analyze(&["security", "--offline=true"], &unit_path());
    assert!(ok, "systemd-analyze security failed: {stderr}");
    let line = stdout
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no overall exposure in:\n{stdout}"));
    let figure: f64 = line
        .split(':')
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("cannot read the figure in `{line}`"));
    assert!(figure <= 1.5, "exposure {figure} > 1.5:\n{stdout}");
}

#[test]
fn verify_finds_nothing_to_say() {
    let dir = tempfile::tempdir().unwrap();
    let unit = unit_for_verify(dir.path());
    let (ok, _, stderr) = analyze(&["verify"], &unit);
    assert!(ok, "systemd-analyze verify failed: {stderr}");
    assert!(stderr.trim().is_empty(), "systemd-analyze verify: {stderr}");
}

#[test]
fn what_the_daemon_relies_on_is_still_set() {
    let text = std::fs::read_to_string(unit_path()).unwrap();
    for line in [
        "Type=notify",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "UMask=0077",
        "StateDirectoryMode=0700",
        "SupplementaryGroups=dialout",
        "DeviceAllow=char-ttyUSB rw",
        "DeviceAllow=char-ttyACM rw",
        "LoadCredential=pinwarden-pepper:/etc/pinwarden/pepper",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
    ] {
        assert!(
            text.lines().any(|l| l.trim() == line),
            "the unit lost `{line}`"
        );
    }
    // Serial ports must stay visible: PrivateDevices=yes would hide their nodes.
    assert!(text.lines().any(|l| l.trim() == "PrivateDevices=no"));
}
