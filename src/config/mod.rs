//! Configuration in two stages: strict raw TOML (`raw.rs`) → the validated, typed `Config`
//! that the daemon runs on and `check-config` prints with secrets redacted. Errors name the
//! key and say how to fix it. Reads only the config file; opens nothing else.

mod access;
mod directory;
mod duration;
mod ldap;
mod mqtt;
mod print;
mod raw;

pub use access::{Access, Feedback, KeypadConfig, NamedSchedule};
pub use directory::{DirectoryConfig, DirectorySource, StaleAction, SyncConfig};
pub use duration::{format_duration, parse_duration, serialize as serialize_duration};
pub use ldap::{with_password as ldap_settings, LdapDirectory};
pub use mqtt::MqttConfig;
pub use print::{CardConfig, TcpMode};

use crate::crypto::HashParams;
use crate::domain::{parse_expiry, DeviceId, Expiry};
use crate::lifecycle::policy::{Charset, PinPolicy};
use raw::RawConfig;
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
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
    pub log: LogConfig,
    pub security: SecurityConfig,
    pub lockout: LockoutPolicy,
    pub policy: PolicyConfig,
    pub store: StoreConfig,
    pub access: Access,
    pub devices: BTreeMap<DeviceId, Device>,
    pub tcp: Vec<TcpConfig>,
    pub keypads: Vec<KeypadConfig>,
    pub doors: Vec<crate::action::door::DoorConfig>,
    pub mqtt: Option<MqttConfig>,
    pub sync: SyncConfig,
    pub directories: Vec<DirectoryConfig>,
    /// The CUPS scheduler print release talks to (`None` when no device has a queue).
    pub cups: Option<crate::action::print::CupsConfig>,
    pub print_queues: Vec<crate::action::print::PrintQueue>,
}

#[derive(Clone, Debug, Serialize)]
pub struct LogConfig {
    pub level: String,
    pub json: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct SecurityConfig {
    pub pepper: PepperSource,
    pub argon2: HashParams,
    pub hash_workers: usize,
    pub hash_queue: usize,
}

/// Where the pepper comes from: a file (created with mode 0600 on first start) or a systemd
/// credential (`LoadCredential=`), which is never created by us.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PepperSource {
    File(PathBuf),
    Credential(String),
}

impl PepperSource {
    /// The file to read, resolved at daemon start; and whether it may be created.
    pub fn resolve(&self) -> Result<(PathBuf, bool), String> {
        match self {
            PepperSource::File(path) => Ok((path.clone(), true)),
            PepperSource::Credential(name) => {
                let dir = std::env::var_os("CREDENTIALS_DIRECTORY").ok_or_else(|| {
                    format!(
                        "security.pepper_credential = \"{name}\" needs systemd's \
                         LoadCredential={name}:/path/to/pepper (CREDENTIALS_DIRECTORY is not set)"
                    )
                })?;
                Ok((PathBuf::from(dir).join(name), false))
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct LockoutPolicy {
    pub free_failures: u32,
    #[serde(serialize_with = "duration::serialize")]
    pub initial_backoff: Duration,
    #[serde(serialize_with = "duration::serialize")]
    pub max_backoff: Duration,
    /// One failure is forgiven per this period: the sustained guessing rate.
    #[serde(serialize_with = "duration::serialize")]
    pub forgive_every: Duration,
    pub user_max_failures: u32,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        LockoutPolicy {
            free_failures: 5,
            initial_backoff: Duration::from_secs(30),
            max_backoff: Duration::from_secs(3600),
            forgive_every: Duration::from_secs(15 * 60),
            user_max_failures: 10,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct PolicyConfig {
    pub min_length: usize,
    pub max_length: usize,
    pub charset: Charset,
    pub blocklist: Vec<String>,
    pub generated_length: usize,
    #[serde(serialize_with = "serialize_expiry")]
    pub default_expiry: Expiry,
}

impl PolicyConfig {
    pub fn pin_policy(&self) -> PinPolicy {
        PinPolicy {
            min_length: self.min_length,
            max_length: self.max_length,
            charset: self.charset,
            extra_blocklist: self.blocklist.clone(),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct StoreConfig {
    pub cache_capacity_mib: u64,
    pub audit_retention_days: u32,
    pub audit_max_entries: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceKind {
    Printer,
    Door,
}

#[derive(Clone, Debug, Serialize)]
pub struct Device {
    pub id: DeviceId,
    pub kind: DeviceKind,
    pub allow_groups: Vec<String>,
    /// A named `[[schedule]]`: the device admits nobody outside it.
    pub schedule: Option<String>,
    /// Doors only: unlock on any attempt when the store is unreadable. Default: stay locked.
    pub fail_open: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct TcpConfig {
    pub mode: TcpMode,
    /// `None` in dial mode.
    pub listen: Option<SocketAddr>,
    pub max_connections: usize,
    #[serde(serialize_with = "duration::serialize")]
    pub idle_timeout: Duration,
    #[serde(serialize_with = "duration::serialize")]
    pub line_timeout: Duration,
    /// Allow-list: source address → the device that terminal belongs to.
    pub terminals: BTreeMap<IpAddr, DeviceId>,
    /// Dial mode: reader address → its device.
    pub dial: BTreeMap<SocketAddr, DeviceId>,
    /// How card reads become card ids (card and dial modes, and `CARD` lines).
    pub card: Option<CardConfig>,
}

fn serialize_expiry<S: serde::Serializer>(e: &Expiry, s: S) -> Result<S::Ok, S::Error> {
    match e {
        Expiry::Never => s.serialize_str("never"),
        Expiry::After(d) => s.serialize_str(&format_duration(*d)),
    }
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

fn validate(raw: RawConfig) -> Result<Config, String> {
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
    let log = validate_log(&raw.log)?;
    let security = validate_security(&raw.security, &state_dir)?;
    let lockout = validate_lockout(&raw.lockout)?;
    let policy = validate_policy(&raw.policy)?;
    let store = StoreConfig {
        cache_capacity_mib: raw.store.cache_capacity_mib.unwrap_or(16),
        audit_retention_days: raw.store.audit_retention_days.unwrap_or(90),
        audit_max_entries: raw.store.audit_max_entries.unwrap_or(1_000_000),
    };
    if !(1..=1024).contains(&store.cache_capacity_mib) {
        return Err(format!(
            "store.cache_capacity_mib = {} is out of range: use 8 to 32 on an edge box (1 to 1024)",
            store.cache_capacity_mib
        ));
    }
    if store.audit_max_entries < 1000 {
        return Err("store.audit_max_entries must be at least 1000".into());
    }
    let access = access::validate_access(&raw)?;
    let devices = validate_devices(&raw.device, &access)?;
    let tcp = raw
        .tcp
        .iter()
        .enumerate()
        .map(|(i, t)| validate_tcp(i, t, &devices))
        .collect::<Result<Vec<_>, _>>()?;
    let keypads = raw
        .keypad
        .iter()
        .enumerate()
        .map(|(i, k)| access::validate_keypad(i, k, &devices))
        .collect::<Result<Vec<_>, _>>()?;
    let doors = raw
        .door
        .iter()
        .enumerate()
        .map(|(i, d)| access::validate_door(i, d, &devices))
        .collect::<Result<Vec<_>, _>>()?;
    for (i, door) in doors.iter().enumerate() {
        if doors[..i].iter().any(|d| d.device == door.device) {
            return Err(format!(
                "door[{i}].device = \"{}\" has two [[door]] blocks: one actuator per door",
                door.device
            ));
        }
    }
    let mqtt = raw
        .mqtt
        .as_ref()
        .map(|m| mqtt::validate_mqtt(m, &devices))
        .transpose()?;
    if mqtt.is_none() {
        if let Some(i) = doors
            .iter()
            .position(|d| matches!(d.actuator, crate::action::door::Actuator::Mqtt { .. }))
        {
            return Err(format!(
                "door[{i}] uses actuator = \"mqtt\" but there is no [mqtt] block: add one with the broker's host"
            ));
        }
    }
    let sync = directory::validate_sync(&raw.sync)?;
    let directories = directory::validate_directories(&raw.directory)?;
    let print_queues = print::validate_queues(&raw, &devices)?;
    let cups = if print_queues.is_empty() && raw.cups.is_none() {
        None
    } else {
        Some(print::validate_cups(raw.cups.as_ref())?)
    };
    Ok(Config {
        cups,
        print_queues,
        store_dir: state_dir.join("store"),
        state_dir,
        control_socket,
        log,
        security,
        lockout,
        policy,
        store,
        access,
        devices,
        tcp,
        keypads,
        doors,
        mqtt,
        sync,
        directories,
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

fn validate_security(raw: &raw::RawSecurity, state_dir: &Path) -> Result<SecurityConfig, String> {
    let pepper = match (&raw.pepper_file, &raw.pepper_credential) {
        (Some(_), Some(_)) => {
            return Err(
                "security.pepper_file and security.pepper_credential are both set: \
                        keep one"
                    .into(),
            )
        }
        (Some(f), None) => PepperSource::File(absolute(f)),
        (None, Some(name)) if !name.is_empty() && !name.contains('/') => {
            PepperSource::Credential(name.clone())
        }
        (None, Some(name)) => {
            return Err(format!(
                "security.pepper_credential = \"{name}\": give the credential's name, not a path"
            ))
        }
        (None, None) => PepperSource::File(state_dir.join("pepper")),
    };
    let d = HashParams::default();
    let argon2 = HashParams {
        memory_kib: raw.argon2_memory_kib.unwrap_or(d.memory_kib),
        iterations: raw.argon2_iterations.unwrap_or(d.iterations),
        parallelism: raw.argon2_parallelism.unwrap_or(d.parallelism),
    };
    argon2.validate().map_err(|e| {
        format!("security.argon2_*: {e}; the defaults are memory_kib = 19456, iterations = 2, parallelism = 1")
    })?;
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let hash_workers = raw.hash_workers.unwrap_or(cores);
    if !(1..=256).contains(&hash_workers) {
        return Err(format!(
            "security.hash_workers = {hash_workers}: use 1 to 256 (each worker holds about \
             {} MiB while hashing)",
            argon2.memory_kib / 1024
        ));
    }
    let hash_queue = raw.hash_queue.unwrap_or(64);
    if hash_queue > 4096 {
        return Err(format!(
            "security.hash_queue = {hash_queue}: use 0 to 4096 (attempts waiting beyond that get BUSY)"
        ));
    }
    Ok(SecurityConfig {
        pepper,
        argon2,
        hash_workers,
        hash_queue,
    })
}

fn validate_lockout(raw: &raw::RawLockout) -> Result<LockoutPolicy, String> {
    let d = LockoutPolicy::default();
    let p = LockoutPolicy {
        free_failures: raw.free_failures.unwrap_or(d.free_failures),
        initial_backoff: duration_key(
            "lockout.initial_backoff",
            raw.initial_backoff.as_deref(),
            d.initial_backoff,
        )?,
        max_backoff: duration_key(
            "lockout.max_backoff",
            raw.max_backoff.as_deref(),
            d.max_backoff,
        )?,
        forgive_every: duration_key(
            "lockout.forgive_every",
            raw.forgive_every.as_deref(),
            d.forgive_every,
        )?,
        user_max_failures: raw.user_max_failures.unwrap_or(d.user_max_failures),
    };
    if p.free_failures == 0 || p.free_failures > 100 {
        return Err(format!(
            "lockout.free_failures = {}: use 1 to 100 (default 5)",
            p.free_failures
        ));
    }
    if p.initial_backoff.is_zero() || p.max_backoff < p.initial_backoff {
        return Err(
            "lockout.initial_backoff must be above zero and at most lockout.max_backoff \
                    (defaults 30s and 1h)"
                .into(),
        );
    }
    if p.forgive_every < Duration::from_secs(60) {
        return Err(format!(
            "lockout.forgive_every = \"{}\" would let guessing run at more than one a minute: \
             use 1m or more (default 15m)",
            format_duration(p.forgive_every)
        ));
    }
    if !(1..=10).contains(&p.user_max_failures) {
        return Err(format!(
            "lockout.user_max_failures = {}: use 1 to 10 (NIST SP 800-63B allows at most 10 for PINs)",
            p.user_max_failures
        ));
    }
    Ok(p)
}

fn validate_policy(raw: &raw::RawPolicy) -> Result<PolicyConfig, String> {
    let d = PinPolicy::default();
    let charset = match raw.charset.as_deref() {
        None | Some("digits") => Charset::Digits,
        Some("alphanumeric") => Charset::Alphanumeric,
        Some(other) => {
            return Err(format!(
                "policy.charset = \"{other}\": use \"digits\" or \"alphanumeric\""
            ))
        }
    };
    let min_length = raw.min_length.unwrap_or(d.min_length);
    if min_length < PinPolicy::MIN_LENGTH_FLOOR {
        return Err(format!(
            "policy.min_length = {min_length} is below the floor of {}: set it to {} or more",
            PinPolicy::MIN_LENGTH_FLOOR,
            PinPolicy::MIN_LENGTH_FLOOR
        ));
    }
    let policy = PolicyConfig {
        min_length,
        max_length: raw.max_length.unwrap_or(d.max_length.max(min_length)),
        charset,
        blocklist: raw.blocklist.clone().unwrap_or_default(),
        generated_length: raw.generated_length.unwrap_or(min_length),
        default_expiry: match raw.default_expiry.as_deref() {
            None => Expiry::Never,
            Some(v) => parse_expiry(v).map_err(|e| format!("policy.default_expiry: {e}"))?,
        },
    };
    policy
        .pin_policy()
        .validate()
        .map_err(|e| format!("policy: {e}"))?;
    if !(policy.min_length..=policy.max_length).contains(&policy.generated_length) {
        return Err(format!(
            "policy.generated_length = {} must lie between policy.min_length ({}) and \
             policy.max_length ({})",
            policy.generated_length, policy.min_length, policy.max_length
        ));
    }
    Ok(policy)
}

fn validate_devices(
    raw: &[raw::RawDevice],
    access: &Access,
) -> Result<BTreeMap<DeviceId, Device>, String> {
    let mut devices = BTreeMap::new();
    for (i, d) in raw.iter().enumerate() {
        let key = format!("device[{i}]");
        if d.id.is_empty() || d.id.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "{key}.id = {:?}: use a non-empty name without spaces",
                d.id
            ));
        }
        let kind = match d.kind.as_str() {
            "printer" => DeviceKind::Printer,
            "door" => DeviceKind::Door,
            other => {
                return Err(format!(
                    "{key}.kind = \"{other}\": use \"printer\" or \"door\""
                ))
            }
        };
        if d.allow_groups.is_empty() {
            return Err(format!(
                "{key}.allow_groups is empty, so device \"{}\" would deny everyone: list the \
                 groups allowed, for example allow_groups = [\"staff\"]",
                d.id
            ));
        }
        if let Some(name) = &d.schedule {
            access::check_schedule(&access.schedules, name, &format!("{key}.schedule"))?;
        }
        let fail_open = match (d.fail_mode.as_deref(), kind) {
            (None | Some("locked"), _) => false,
            (Some("open"), DeviceKind::Door) => true,
            (Some("open"), DeviceKind::Printer) => {
                return Err(format!("{key}.fail_mode = \"open\" applies to doors only"))
            }
            (Some(other), _) => {
                return Err(format!(
                    "{key}.fail_mode = \"{other}\": use \"locked\" (default) or \"open\""
                ))
            }
        };
        let id = DeviceId(d.id.clone());
        let device = Device {
            id: id.clone(),
            kind,
            allow_groups: d.allow_groups.clone(),
            schedule: d.schedule.clone(),
            fail_open,
        };
        if devices.insert(id, device).is_some() {
            return Err(format!(
                "{key}.id = \"{}\" is declared twice: device ids must be unique",
                d.id
            ));
        }
    }
    Ok(devices)
}

fn validate_tcp(
    i: usize,
    raw: &raw::RawTcp,
    devices: &BTreeMap<DeviceId, Device>,
) -> Result<TcpConfig, String> {
    let key = format!("tcp[{i}]");
    let mode = print::validate_mode(&key, raw.mode.as_deref())?;
    let listen = match (&raw.listen, mode) {
        (Some(l), TcpMode::Dial) => {
            return Err(format!(
                "{key}.listen = \"{l}\": a dial block connects out; list the readers as \
                 [[tcp.terminal]] address = \"ADDRESS:PORT\" instead"
            ))
        }
        (None, TcpMode::Dial) => None,
        (None, _) => {
            return Err(format!(
                "{key}.listen is missing: use ADDRESS:PORT such as \"127.0.0.1:7410\""
            ))
        }
        (Some(l), _) => Some(l.parse::<SocketAddr>().map_err(|_| {
            format!("{key}.listen = \"{l}\": use ADDRESS:PORT such as \"127.0.0.1:7410\"")
        })?),
    };
    let card = print::validate_card(&key, raw.card.as_ref())?;
    if card.is_none() && mode != TcpMode::Terminal {
        return Err(format!(
            "{key} (mode card/dial) needs a [tcp.card] block saying how reads become card ids, \
             for example input = \"hex\", output = \"decimal\""
        ));
    }
    let max_connections = raw.max_connections.unwrap_or(64);
    if !(1..=10_000).contains(&max_connections) {
        return Err(format!(
            "{key}.max_connections = {max_connections}: use 1 to 10000"
        ));
    }
    let idle_timeout = duration_key(
        &format!("{key}.idle_timeout"),
        raw.idle_timeout.as_deref(),
        Duration::from_secs(300),
    )?;
    let line_timeout = duration_key(
        &format!("{key}.line_timeout"),
        raw.line_timeout.as_deref(),
        Duration::from_secs(10),
    )?;
    if raw.terminal.is_empty() {
        return Err(format!(
            "{key} has no [[tcp.terminal]]: every terminal must be listed by source address, \
             for example address = \"127.0.0.1\", device = \"lobby-printer\""
        ));
    }
    let mut terminals = BTreeMap::new();
    let mut dial = BTreeMap::new();
    for (j, t) in raw.terminal.iter().enumerate() {
        let tkey = format!("{key}.terminal[{j}]");
        let device = DeviceId(t.device.clone());
        if !devices.contains_key(&device) {
            return Err(format!(
                "{tkey}.device = \"{}\" is not a declared [[device]]: add one or fix the name",
                t.device
            ));
        }
        let fresh = if mode == TcpMode::Dial {
            let addr: SocketAddr = t.address.parse().map_err(|_| {
                format!(
                    "{tkey}.address = \"{}\": a dial block needs the reader's ADDRESS:PORT, \
                     such as \"10.0.0.31:4001\"",
                    t.address
                )
            })?;
            dial.insert(addr, device).is_none()
        } else {
            let addr: IpAddr = t.address.parse().map_err(|_| {
                format!(
                    "{tkey}.address = \"{}\": use an IP address such as \"10.0.0.21\"",
                    t.address
                )
            })?;
            terminals.insert(addr, device).is_none()
        };
        if !fresh {
            return Err(format!(
                "{tkey}.address = \"{}\" is listed twice in {key}",
                t.address
            ));
        }
    }
    Ok(TcpConfig {
        mode,
        card,
        dial,
        listen,
        max_connections,
        idle_timeout,
        line_timeout,
        terminals,
    })
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
