//! Validation of `[security]` (pepper source, argon2 parameters, hash workers and queue) and
//! of `[lockout]`, parsed into the core's own `LockoutPolicy`. Errors name the key and the
//! fix; reads no files (the pepper is resolved when the daemon starts).

use super::raw::{RawLockout, RawSecurity};
use super::{absolute, duration_key};
use crate::core::lockout::LockoutPolicy;
use crate::core::odds::OddsSettings;
use crate::crypto::HashParams;
use crate::duration::format_duration;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

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

pub fn validate_security(raw: &RawSecurity, state_dir: &Path) -> Result<SecurityConfig, String> {
    let pepper = pepper_source(raw, state_dir)?;
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

/// `security.pepper_file` or `security.pepper_credential`; by default `<state_dir>/pepper`.
fn pepper_source(raw: &RawSecurity, state_dir: &Path) -> Result<PepperSource, String> {
    match (&raw.pepper_file, &raw.pepper_credential) {
        (Some(_), Some(_)) => Err(
            "security.pepper_file and security.pepper_credential are both set: \
                    keep one"
                .into(),
        ),
        (Some(f), None) => Ok(PepperSource::File(absolute(f))),
        (None, Some(name)) if !name.is_empty() && !name.contains('/') => {
            Ok(PepperSource::Credential(name.clone()))
        }
        (None, Some(name)) => Err(format!(
            "security.pepper_credential = \"{name}\": give the credential's name, not a path"
        )),
        (None, None) => Ok(PepperSource::File(state_dir.join("pepper"))),
    }
}

/// `[lockout] max_daily_odds` and `assumed_users`: the ceiling on an attacker's daily odds.
pub fn validate_odds(raw: &RawLockout) -> Result<OddsSettings, String> {
    let d = OddsSettings::default();
    let o = OddsSettings {
        max_daily_odds: raw.max_daily_odds.unwrap_or(d.max_daily_odds),
        assumed_users: raw.assumed_users.unwrap_or(d.assumed_users),
    };
    if !(o.max_daily_odds > 0.0 && o.max_daily_odds < 1.0) {
        return Err(format!(
            "lockout.max_daily_odds = {}: give a chance between 0 and 1, e.g. 0.001 (0.1 % a \
             day, the default)",
            o.max_daily_odds
        ));
    }
    if o.assumed_users == 0 {
        return Err(
            "lockout.assumed_users = 0: give the number of users with a PIN you expect \
             (default 1000); check-config uses it, status uses the real count"
                .into(),
        );
    }
    Ok(o)
}

pub fn validate_lockout(raw: &RawLockout) -> Result<LockoutPolicy, String> {
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
        source_failures: raw
            .source_failures
            .unwrap_or(
                raw.free_failures
                    .unwrap_or(d.free_failures)
                    .saturating_sub(1),
            )
            .max(1),
        user_max_failures: raw.user_max_failures.unwrap_or(d.user_max_failures),
        user_lock: duration_key("lockout.user_lock", raw.user_lock.as_deref(), d.user_lock)?,
        user_max_lock: duration_key(
            "lockout.user_max_lock",
            raw.user_max_lock.as_deref(),
            d.user_max_lock,
        )?,
        alarm_per_hour: raw.alarm_per_hour.unwrap_or(d.alarm_per_hour),
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
    if p.max_backoff < p.forgive_every {
        return Err(format!(
            "lockout.max_backoff = \"{}\" is shorter than lockout.forgive_every = \"{}\": \
             guessing would then refill faster than one failure is forgiven; raise max_backoff \
             to at least forgive_every",
            format_duration(p.max_backoff),
            format_duration(p.forgive_every)
        ));
    }
    if p.source_failures == 0 || p.source_failures > p.free_failures {
        return Err(format!(
            "lockout.source_failures = {}: use 1 to lockout.free_failures ({}); below it, one \
             attacker at one terminal cannot lock the device's other terminals (default \
             free_failures - 1)",
            p.source_failures, p.free_failures
        ));
    }
    if p.user_lock.is_zero() || p.user_max_lock < p.user_lock {
        return Err(
            "lockout.user_lock must be above zero and at most lockout.user_max_lock \
                    (defaults 15m and 24h)"
                .into(),
        );
    }
    if !(1..=10).contains(&p.user_max_failures) {
        return Err(format!(
            "lockout.user_max_failures = {}: use 1 to 10 (NIST SP 800-63B allows at most 10 for PINs)",
            p.user_max_failures
        ));
    }
    Ok(p)
}
