//! Replays every file of the fuzz corpora (`fuzz/corpus/<target>/`) through the same target
//! bodies the nightly libFuzzer build runs (`fuzz/src/<target>.rs`), on stable: a decoder
//! that starts panicking on an input the fuzzer once found, or on a seed, fails CI.

#[path = "../fuzz/src/config_toml.rs"]
mod config_toml;
#[path = "../fuzz/src/control_json.rs"]
mod control_json;
#[path = "../fuzz/src/csv_import.rs"]
mod csv_import;
#[path = "../fuzz/src/ipp_response.rs"]
mod ipp_response;
#[path = "../fuzz/src/keypad.rs"]
mod keypad;
#[path = "../fuzz/src/ldap_entry.rs"]
mod ldap_entry;
#[path = "../fuzz/src/mqtt_request.rs"]
mod mqtt_request;
#[path = "../fuzz/src/scim.rs"]
mod scim;
#[path = "../fuzz/src/tcp_session.rs"]
mod tcp_session;
#[path = "../fuzz/src/zigbee.rs"]
mod zigbee;

use std::path::{Path, PathBuf};

/// Runs `body` on every file of the target's corpus; fails naming each file that panics.
fn replay(target: &str, body: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e} (the corpus must be checked in)", dir.display()))
        .map(|entry| entry.expect("a corpus entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{}: the corpus is empty", dir.display());
    let failed: Vec<String> = files
        .iter()
        .filter(|path| {
            let data = std::fs::read(path).expect("a corpus file reads");
            std::panic::catch_unwind(|| body(&data)).is_err()
        })
        .map(|p| p.display().to_string())
        .collect();
    assert!(
        failed.is_empty(),
        "{target}: {} of {} corpus inputs panic; reproduce with \
         `cargo +nightly fuzz run {target} <file>`: {failed:#?}",
        failed.len(),
        files.len()
    );
}

#[test]
fn tcp_session_corpus() {
    replay("tcp_session", tcp_session::run);
}

#[test]
fn keypad_corpus() {
    replay("keypad", keypad::run);
}

#[test]
fn mqtt_request_corpus() {
    replay("mqtt_request", mqtt_request::run);
}

#[test]
fn zigbee_corpus() {
    replay("zigbee", zigbee::run);
}

#[test]
fn control_json_corpus() {
    replay("control_json", control_json::run);
}

#[test]
fn csv_import_corpus() {
    replay("csv_import", csv_import::run);
}

#[test]
fn scim_corpus() {
    replay("scim", scim::run);
}

#[test]
fn ldap_entry_corpus() {
    replay("ldap_entry", ldap_entry::run);
}

#[test]
fn ipp_response_corpus() {
    replay("ipp_response", ipp_response::run);
}

#[test]
fn config_toml_corpus() {
    replay("config_toml", config_toml::run);
}
