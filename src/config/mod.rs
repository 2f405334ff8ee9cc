//! Configuration in two stages: strict raw TOML (`raw.rs`) → the validated, typed `Config`
//! that the daemon runs on and `check-config` prints with secrets redacted. Errors name the
//! key and say how to fix it. Reads only the config file; opens nothing else.
//!
//! Dependencies run one way: each module defines its own settings types (`TcpConfig` in
//! `frontend::tcp::settings`, `LockoutPolicy` in `core::lockout`, `DoorConfig` in
//! `action::door`, …) and this module only parses into them. No module but `daemon` and
//! `cli` imports `config`.

mod access;
mod devices;
mod directory;
mod guests;
mod http;
mod ldap;
mod lifecycle;
mod mail;
mod mqtt;
pub mod odds;
mod policy;
mod print;
mod raw;
mod security;
mod smtp;
mod tcp;
mod warnings;
mod web;

pub use access::{Access, NamedSchedule};
pub use devices::{Device, DeviceKind};
pub use directory::{DirectoryConfig, DirectorySource, StaleAction, SyncConfig};
pub use ldap::{with_password as ldap_settings, LdapDirectory};
pub use policy::PolicyConfig;
pub use security::{PepperSource, SecurityConfig};
pub use warnings::warnings;

use crate::action::door::{Actuator, DoorConfig};
use crate::action::print::{CupsConfig, PrintQueue};
use crate::core::lockout::LockoutPolicy;
use crate::domain::DeviceId;
use crate::duration::parse_duration;
use crate::frontend::control::access::ControlSettings;
use crate::frontend::keypad::settings::KeypadConfig;
use crate::frontend::mqtt::settings::MqttConfig;
use crate::frontend::tcp::settings::TcpConfig;
use crate::lifecycle::settings::LifecycleSettings;
use crate::notify::{MailSettings, SmtpSettings};
use raw::RawConfig;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const DEFAULT_PATH: &str = "/etc/pinwarden/pinwarden.toml";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

#[derive(Clone, Debug, Serialize)]
pub struct Config {
    pub state_dir: PathBuf,
    pub store_dir: PathBuf,
    pub control_socket: PathBuf,
    /// Who may use the control socket (`[control]`; group names resolved at start).
    pub control: ControlSettings,
    pub log: LogConfig,
    pub security: SecurityConfig,
    pub lockout: LockoutPolicy,
    /// `[lockout] max_daily_odds`, `assumed_users`: the ceiling on attack odds.
    pub odds: crate::core::odds::OddsSettings,
    pub policy: PolicyConfig,
    pub store: StoreConfig,
    pub access: Access,
    pub devices: BTreeMap<DeviceId, Device>,
    pub tcp: Vec<TcpConfig>,
    pub keypads: Vec<KeypadConfig>,
    pub doors: Vec<DoorConfig>,
    pub mqtt: Option<MqttConfig>,
    pub sync: SyncConfig,
    pub directories: Vec<DirectoryConfig>,
    /// The CUPS scheduler print release talks to (`None` when no device has a queue).
    pub cups: Option<CupsConfig>,
    pub print_queues: Vec<PrintQueue>,
    /// The mail relay (`None` without an `[smtp]` block).
    pub smtp: Option<SmtpSettings>,
    /// Generation, forced validities, reminders, weak directory PINs (`[policy]`, `[[group]]`).
    #[serde(serialize_with = "lifecycle::serialize")]
    pub lifecycle: LifecycleSettings,
    /// Templates, pacing and the outbox's age limit (defaults without a `[mail]` block).
    pub mail: MailSettings,
    /// Whether the file has a `[mail]` block (it is pointless without `[smtp]`).
    #[serde(skip)]
    pub mail_declared: bool,
    /// Sponsored guests (`[guests]`; off without it).
    #[serde(serialize_with = "guests::serialize")]
    pub guests: crate::lifecycle::users::GuestSettings,
    /// Self-change (`[policy] user_can_change`) and forgotten PINs (`[recovery]`).
    pub self_service: crate::lifecycle::selfservice::SelfServiceSettings,
    /// The HTTP listener (`[http]`; off without it).
    pub http: Option<crate::frontend::http::HttpSettings>,
    /// The self-service page (`[web]`; off without it).
    pub web: Option<crate::frontend::http::web::WebSettings>,
}

#[derive(Clone, Debug, Serialize)]
pub struct LogConfig {
    pub level: String,
    pub json: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct StoreConfig {
    pub cache_capacity_mib: u64,
    pub audit_retention_days: u32,
    pub audit_max_entries: u64,
    /// A preallocated file of this size beside the store, released when a write finds the
    /// disk full so lockout counters still persist (0: none).
    pub reserve_mib: u64,
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        Config::parse(&text).map_err(|message| ConfigError::Invalid {
            path: path.into(),
            message,
        })
    }

    pub fn parse(text: &str) -> Result<Config, String> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| e.to_string().trim().to_string())?;
        validate(raw)
    }

    /// The effective configuration as TOML, for `check-config`. Holds no secret values:
    /// the pepper is only ever named by its path.
    pub fn render(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }
}

/// Resolves a configured path against the working directory, dropping `.` components.
fn absolute(path: &str) -> PathBuf {
    let p = PathBuf::from(path);
    let joined = if p.is_absolute() {
        p
    } else {
        std::env::current_dir().map(|cwd| cwd.join(&p)).unwrap_or(p)
    };
    joined
        .components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect()
}

fn duration_key(key: &str, value: Option<&str>, default: Duration) -> Result<Duration, String> {
    match value {
        None => Ok(default),
        Some(v) => parse_duration(v).map_err(|e| format!("{key} = \"{v}\": {e}")),
    }
}

/// Validates section by section, in the order the errors have always been reported.
fn validate(raw: RawConfig) -> Result<Config, String> {
    let (state_dir, control_socket) = validate_paths(&raw)?;
    let control = validate_control(&raw.control)?;
    let log = validate_log(&raw.log)?;
    let security = security::validate_security(&raw.security, &state_dir)?;
    let lockout = security::validate_lockout(&raw.lockout)?;
    let odds = security::validate_odds(&raw.lockout)?;
    let policy = policy::validate_policy(&raw.policy)?;
    let store = validate_store(&raw.store)?;
    let access = access::validate_access(&raw)?;
    let devices = devices::validate_devices(&raw.device, &access)?;
    let io = validate_io(&raw, &devices)?;
    let sync = directory::validate_sync(&raw.sync)?;
    let directories = directory::validate_directories(&raw.directory)?;
    let print_queues = print::validate_queues(&raw, &devices)?;
    let cups = if print_queues.is_empty() && raw.cups.is_none() {
        None
    } else {
        Some(print::validate_cups(raw.cups.as_ref())?)
    };
    let smtp = raw.smtp.as_ref().map(smtp::validate_smtp).transpose()?;
    let lifecycle = lifecycle::validate_lifecycle(&raw.policy, &raw.group)?;
    let mail = mail::validate_mail(raw.mail.as_ref(), raw.time_zone.as_deref())?;
    let guests = guests::validate_guests(raw.guests.as_ref())?;
    let self_service = policy::validate_self_service(&raw.policy, raw.recovery.as_ref())?;
    let http = raw.http.as_ref().map(http::validate_http).transpose()?;
    let has_ldap = directories
        .iter()
        .any(|d| matches!(d.source, directory::DirectorySource::Ldap(_)));
    let web = web::validate_web(raw.web.as_ref(), http.is_some(), has_ldap)?;
    if let (Some(_), Some(http)) = (&web, &http) {
        web::check_web_transport(http)?;
    }
    if web.as_ref().is_some_and(|w| w.directory_password) {
        for d in &directories {
            if let directory::DirectorySource::Ldap(ldap) = &d.source {
                web::check_password_transport(&d.name, &ldap.settings.url, ldap.settings.starttls)?;
            }
        }
    }
    if mail.delivery == crate::notify::PinDelivery::Reveal && web.is_none() {
        return Err(
            "mail.delivery = \"reveal\" sends a link to the self-service page: add \
                    [http] and [web] blocks (or use delivery = \"pin\")"
                .into(),
        );
    }
    Ok(Config {
        http,
        web,
        guests,
        self_service,
        lifecycle,
        mail,
        mail_declared: raw.mail.is_some(),
        cups,
        print_queues,
        smtp,
        store_dir: state_dir.join("store"),
        state_dir,
        control_socket,
        control,
        log,
        security,
        lockout,
        odds,
        policy,
        store,
        access,
        devices,
        tcp: io.tcp,
        keypads: io.keypads,
        doors: io.doors,
        mqtt: io.mqtt,
        sync,
        directories,
    })
}

/// `state_dir` (required) and `control_socket` (default `<state_dir>/control.sock`).
fn validate_paths(raw: &RawConfig) -> Result<(PathBuf, PathBuf), String> {
    if raw.state_dir.trim().is_empty() {
        return Err(
            "state_dir is empty: set it to a writable directory such as \
                    \"/var/lib/pinwarden\""
                .into(),
        );
    }
    let state_dir = absolute(&raw.state_dir);
    let control_socket = raw
        .control_socket
        .as_deref()
        .map(absolute)
        .unwrap_or_else(|| state_dir.join("control.sock"));
    Ok((state_dir, control_socket))
}

/// `[control]`: group names are only checked for shape here; the daemon resolves them.
fn validate_control(raw: &raw::RawControl) -> Result<ControlSettings, String> {
    for (key, names) in [
        ("admin_groups", &raw.admin_groups),
        ("read_groups", &raw.read_groups),
    ] {
        if let Some(bad) = names
            .iter()
            .find(|n| n.is_empty() || n.contains(|c: char| c.is_whitespace() || c == ':'))
        {
            return Err(format!(
                "control.{key} has \"{bad}\": give group names (or gids) as on this system"
            ));
        }
    }
    Ok(ControlSettings {
        admin_uids: raw.admin_uids.clone(),
        admin_groups: raw.admin_groups.clone(),
        read_groups: raw.read_groups.clone(),
    })
}

fn validate_log(raw: &raw::RawLog) -> Result<LogConfig, String> {
    let level = raw.level.clone().unwrap_or_else(|| "info".into());
    if !["error", "warn", "info", "debug", "trace"].contains(&level.as_str()) {
        return Err(format!(
            "log.level = \"{level}\" is not a level: use error, warn, info, debug or trace"
        ));
    }
    let json = match raw.format.as_deref().unwrap_or("text") {
        "text" => false,
        "json" => true,
        other => {
            return Err(format!(
                "log.format = \"{other}\": use \"text\" or \"json\""
            ))
        }
    };
    Ok(LogConfig { level, json })
}

fn validate_store(raw: &raw::RawStore) -> Result<StoreConfig, String> {
    let store = StoreConfig {
        cache_capacity_mib: raw.cache_capacity_mib.unwrap_or(16),
        audit_retention_days: raw.audit_retention_days.unwrap_or(90),
        audit_max_entries: raw.audit_max_entries.unwrap_or(1_000_000),
        reserve_mib: raw.reserve_mib.unwrap_or(8),
    };
    if store.reserve_mib > 1024 {
        return Err(format!(
            "store.reserve_mib = {} is too large: 8 (the default) is plenty for lockout \
             counters; 0 turns the space reserve off",
            store.reserve_mib
        ));
    }
    if !(1..=1024).contains(&store.cache_capacity_mib) {
        return Err(format!(
            "store.cache_capacity_mib = {} is out of range: use 8 to 32 on an edge box (1 to 1024)",
            store.cache_capacity_mib
        ));
    }
    if store.audit_max_entries < 1000 {
        return Err("store.audit_max_entries must be at least 1000".into());
    }
    Ok(store)
}

/// What talks to the outside: TCP listeners and dialled readers, serial keypads, door
/// actuators and the MQTT connection.
struct Io {
    tcp: Vec<TcpConfig>,
    keypads: Vec<KeypadConfig>,
    doors: Vec<DoorConfig>,
    mqtt: Option<MqttConfig>,
}

fn validate_io(raw: &RawConfig, devices: &BTreeMap<DeviceId, Device>) -> Result<Io, String> {
    let tcp = raw
        .tcp
        .iter()
        .enumerate()
        .map(|(i, t)| tcp::validate_tcp(i, t, devices))
        .collect::<Result<Vec<_>, _>>()?;
    let keypads = raw
        .keypad
        .iter()
        .enumerate()
        .map(|(i, k)| access::validate_keypad(i, k, devices))
        .collect::<Result<Vec<_>, _>>()?;
    let doors = validate_doors(&raw.door, devices)?;
    let mqtt = raw
        .mqtt
        .as_ref()
        .map(|m| mqtt::validate_mqtt(m, devices))
        .transpose()?;
    if mqtt.is_none() {
        if let Some(i) = doors
            .iter()
            .position(|d| matches!(d.actuator, Actuator::Mqtt { .. }))
        {
            return Err(format!(
                "door[{i}] uses actuator = \"mqtt\" but there is no [mqtt] block: add one with the broker's host"
            ));
        }
    }
    Ok(Io {
        tcp,
        keypads,
        doors,
        mqtt,
    })
}

/// `[[door]]` blocks: one actuator per door device.
fn validate_doors(
    raw: &[raw::RawDoor],
    devices: &BTreeMap<DeviceId, Device>,
) -> Result<Vec<DoorConfig>, String> {
    let doors = raw
        .iter()
        .enumerate()
        .map(|(i, d)| access::validate_door(i, d, devices))
        .collect::<Result<Vec<_>, _>>()?;
    for (i, door) in doors.iter().enumerate() {
        if doors[..i].iter().any(|d| d.device == door.device) {
            return Err(format!(
                "door[{i}].device = \"{}\" has two [[door]] blocks: one actuator per door",
                door.device
            ));
        }
    }
    Ok(doors)
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
