//! The configuration file exactly as written: strict serde structs (`deny_unknown_fields`),
//! no validation beyond types. `mod.rs` turns this into the typed `Config`.

use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub state_dir: String,
    pub control_socket: Option<String>,
    pub time_zone: Option<String>,
    #[serde(default)]
    pub log: RawLog,
    #[serde(default)]
    pub security: RawSecurity,
    #[serde(default)]
    pub lockout: RawLockout,
    #[serde(default)]
    pub policy: RawPolicy,
    #[serde(default)]
    pub store: RawStore,
    #[serde(default)]
    pub device: Vec<RawDevice>,
    #[serde(default)]
    pub tcp: Vec<RawTcp>,
    #[serde(default)]
    pub schedule: Vec<RawSchedule>,
    #[serde(default)]
    pub group: Vec<RawGroup>,
    #[serde(default)]
    pub keypad: Vec<RawKeypad>,
    #[serde(default)]
    pub door: Vec<RawDoor>,
    pub mqtt: Option<RawMqtt>,
    #[serde(default)]
    pub sync: RawSync,
    #[serde(default)]
    pub directory: Vec<RawDirectory>,
    pub cups: Option<RawCups>,
    pub smtp: Option<RawSmtp>,
    pub mail: Option<RawMail>,
    pub guests: Option<RawGuests>,
    pub recovery: Option<RawRecovery>,
    #[serde(default)]
    pub control: RawControl,
    pub http: Option<RawHttp>,
    pub web: Option<RawWeb>,
}

/// `[web]`: the self-service page (needs `[http]`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWeb {
    pub enabled: Option<bool>,
    pub link_lifetime: Option<String>,
    pub new_pin: Option<String>,
    pub sign_in: Option<Vec<String>>,
}

/// `[http]`: the HTTP listener.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttp {
    pub listen: String,
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
    pub public_url: Option<String>,
    pub max_connections: Option<usize>,
    pub metrics: Option<bool>,
    pub max_per_source: Option<usize>,
    #[serde(default)]
    pub allow_plain_http: bool,
    /// `[[http.token]]`: admin API bearer tokens.
    #[serde(default)]
    pub token: Vec<RawHttpToken>,
}

/// `[[http.token]]`: one admin API token, read from a 0600 file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttpToken {
    pub name: String,
    pub file: String,
    pub scope: String,
}

/// `[control]`: who may use the control socket beyond root and the daemon's own user.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawControl {
    #[serde(default)]
    pub admin_uids: Vec<u32>,
    #[serde(default)]
    pub admin_groups: Vec<String>,
    #[serde(default)]
    pub read_groups: Vec<String>,
}

/// `[guests]`: sponsored guests.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGuests {
    pub allowed: Option<bool>,
    pub max_validity: Option<String>,
}

/// `[recovery]`: forgotten PINs (`FORGOT <id>`) and their caps.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRecovery {
    pub enabled: Option<bool>,
    pub per_person_per_day: Option<u32>,
    pub per_device_per_day: Option<u32>,
    pub spray_alarm_per_hour: Option<u32>,
}

/// `[mail]`: templates, the site's name and date format, pacing and the outbox's age limit.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMail {
    pub templates: Option<String>,
    pub customer_name: Option<String>,
    pub date_format: Option<String>,
    pub preset: Option<String>,
    pub per_minute: Option<u32>,
    pub per_day: Option<u32>,
    pub max_age: Option<String>,
    pub delivery: Option<String>,
}

/// `[smtp]`: the relay new and reset PINs are mailed through.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSmtp {
    pub host: String,
    pub port: Option<u16>,
    pub tls: Option<String>,
    pub username: Option<String>,
    pub password_file: Option<String>,
    pub token_file: Option<String>,
    pub ca_file: Option<String>,
    pub from: String,
    pub reply_to: Option<String>,
    pub timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLog {
    pub level: Option<String>,
    pub format: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSecurity {
    pub pepper_file: Option<String>,
    pub pepper_credential: Option<String>,
    pub argon2_memory_kib: Option<u32>,
    pub argon2_iterations: Option<u32>,
    pub argon2_parallelism: Option<u32>,
    pub hash_workers: Option<usize>,
    pub hash_queue: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLockout {
    pub free_failures: Option<u32>,
    pub initial_backoff: Option<String>,
    pub max_backoff: Option<String>,
    pub forgive_every: Option<String>,
    pub source_failures: Option<u32>,
    pub user_max_failures: Option<u32>,
    pub user_lock: Option<String>,
    pub user_max_lock: Option<String>,
    pub max_daily_odds: Option<f64>,
    pub assumed_users: Option<u64>,
    pub alarm_per_hour: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    pub min_length: Option<usize>,
    pub max_length: Option<usize>,
    pub charset: Option<String>,
    pub blocklist: Option<Vec<String>>,
    pub generated_length: Option<usize>,
    pub default_expiry: Option<String>,
    pub generation: Option<String>,
    pub pin_validity: Option<String>,
    pub expiry_warning: Option<Vec<String>>,
    pub pin_policy: Option<String>,
    pub cooling_off: Option<String>,
    pub user_can_change: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    pub cache_capacity_mib: Option<u64>,
    pub audit_retention_days: Option<u32>,
    pub audit_max_entries: Option<u64>,
    pub reserve_mib: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDevice {
    pub id: String,
    pub kind: String,
    #[serde(default)]
    pub allow_groups: Vec<String>,
    pub schedule: Option<String>,
    pub fail_mode: Option<String>,
    pub queue: Option<String>,
    pub hold_queue: Option<String>,
    pub credentials: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTcp {
    pub mode: Option<String>,
    pub listen: Option<String>,
    pub max_connections: Option<usize>,
    pub max_per_source: Option<usize>,
    pub idle_timeout: Option<String>,
    pub line_timeout: Option<String>,
    pub card: Option<RawCard>,
    #[serde(default)]
    pub terminal: Vec<RawTerminal>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCard {
    pub regex: Option<String>,
    pub input: Option<String>,
    pub output: Option<String>,
    pub byte_order: Option<String>,
    pub card_then_pin: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCups {
    pub server: Option<String>,
    pub auth: Option<String>,
    pub username: Option<String>,
    pub password_file: Option<String>,
    pub cert_file: Option<String>,
    pub timeout: Option<String>,
    pub release_timeout: Option<String>,
    pub max_backoff: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTerminal {
    pub address: String,
    pub device: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSchedule {
    pub name: String,
    pub windows: Vec<String>,
    #[serde(default)]
    pub holidays: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGroup {
    pub name: String,
    pub schedule: Option<String>,
    pub pin_validity: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFeedback {
    pub granted: Option<Vec<u8>>,
    pub denied: Option<Vec<u8>>,
    pub busy: Option<Vec<u8>>,
    pub locked_out: Option<Vec<u8>>,
    pub card: Option<Vec<u8>>,
    pub changed: Option<Vec<u8>>,
    pub refused: Option<Vec<u8>>,
    pub accepted: Option<Vec<u8>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKeypad {
    pub port: String,
    pub device: String,
    pub baud: Option<u32>,
    pub framing: Option<String>,
    pub inter_key_timeout: Option<String>,
    pub max_length: Option<usize>,
    pub card_prefix: Option<String>,
    pub card_then_pin: Option<String>,
    #[serde(default)]
    pub require_card: bool,
    #[serde(default)]
    pub feedback: RawFeedback,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDoor {
    pub device: String,
    pub actuator: String,
    pub pulse: Option<String>,
    pub port: Option<String>,
    pub baud: Option<u32>,
    pub on: Option<Vec<u8>>,
    pub off: Option<Vec<u8>>,
    pub command: Option<Vec<String>>,
    pub command_timeout: Option<String>,
    pub mqtt_preset: Option<String>,
    pub mqtt_topic: Option<String>,
    pub mqtt_payload: Option<String>,
    pub mqtt_channel: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMqtt {
    pub host: String,
    pub port: Option<u16>,
    pub client_id: Option<String>,
    pub prefix: Option<String>,
    pub username: Option<String>,
    pub password_file: Option<String>,
    pub tls: Option<bool>,
    pub ca_file: Option<String>,
    pub keep_alive: Option<String>,
    #[serde(default)]
    pub devices: Vec<String>,
    pub replay_window: Option<String>,
    pub outbox_max: Option<u64>,
    pub zigbee_base_topic: Option<String>,
    #[serde(default)]
    pub zigbee_keypad: Vec<RawZigbeeKeypad>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawZigbeeKeypad {
    pub name: String,
    pub device: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSync {
    pub on_stale: Option<RawOnStale>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOnStale {
    pub printer: Option<String>,
    pub door: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDirectory {
    pub name: String,
    pub kind: String,
    pub interval: Option<String>,
    pub max_delete_share: Option<f64>,
    pub max_staleness: Option<String>,
    pub path: Option<String>,
    pub delimiter: Option<String>,
    pub url: Option<String>,
    pub token_file: Option<String>,
    pub page_size: Option<u32>,
    pub timeout: Option<String>,
    pub full_every: Option<String>,
    pub attributes: Option<BTreeMap<String, String>>,
    pub ldap: Option<RawLdap>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLdap {
    pub preset: Option<String>,
    pub url: String,
    pub base_dn: String,
    pub starttls: Option<bool>,
    pub ca_file: Option<String>,
    pub bind_dn: Option<String>,
    pub bind_password_file: Option<String>,
    pub filter: Option<String>,
    pub scope: Option<String>,
    pub page_size: Option<u32>,
    pub timeout: Option<String>,
    pub mode: Option<String>,
    pub change_attribute: Option<String>,
    pub high_water_attribute: Option<String>,
    pub server_id_attribute: Option<String>,
    pub server_id_entry_attribute: Option<String>,
    pub groups: Option<String>,
    pub member_of_attribute: Option<String>,
    pub group_base_dn: Option<String>,
    pub group_filter: Option<String>,
    pub group_member_attributes: Option<Vec<String>>,
    pub group_name_attribute: Option<String>,
    pub enabled: Option<String>,
    pub enabled_attribute: Option<String>,
    pub enabled_when_absent: Option<bool>,
}
