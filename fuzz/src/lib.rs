//! The fuzz targets' bodies: one `run(&[u8])` per decoder, shared by the libFuzzer
//! binaries (nightly) and `tests/fuzz_corpora.rs` (stable), which replays the corpora.

pub mod config_toml;
pub mod control_json;
pub mod csv_import;
pub mod ipp_response;
pub mod keypad;
pub mod ldap_entry;
pub mod mqtt_request;
pub mod scim;
pub mod tcp_session;
pub mod zigbee;
