//! Validation of `[policy]`: the PIN rules (length, charset, blocklist), the length of
//! generated PINs and the default expiry. Errors name the key and the fix.

use super::raw::{RawPolicy, RawRecovery};
use crate::domain::{parse_expiry, Expiry};
use crate::duration::format_duration;
use crate::lifecycle::policy::{Charset, PinPolicy};
use crate::lifecycle::selfservice::{RecoverySettings, SelfServiceSettings};
use serde::Serialize;

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

fn serialize_expiry<S: serde::Serializer>(e: &Expiry, s: S) -> Result<S::Ok, S::Error> {
    match e {
        Expiry::Never => s.serialize_str("never"),
        Expiry::After(d) => s.serialize_str(&format_duration(*d)),
    }
}

pub fn validate_policy(raw: &RawPolicy) -> Result<PolicyConfig, String> {
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

/// `[policy] user_can_change` and `[recovery]`.
pub fn validate_self_service(
    policy: &RawPolicy,
    recovery: Option<&RawRecovery>,
) -> Result<SelfServiceSettings, String> {
    let d = RecoverySettings::default();
    let r = recovery.unwrap_or(&RawRecovery {
        enabled: None,
        per_person_per_day: None,
        per_device_per_day: None,
        spray_alarm_per_hour: None,
    });
    let recovery = RecoverySettings {
        enabled: r.enabled.unwrap_or(d.enabled),
        per_person_per_day: r.per_person_per_day.unwrap_or(d.per_person_per_day),
        per_device_per_day: r.per_device_per_day.unwrap_or(d.per_device_per_day),
        spray_alarm_per_hour: r.spray_alarm_per_hour.unwrap_or(d.spray_alarm_per_hour),
        declared: recovery.is_some(),
    };
    if recovery.enabled && (recovery.per_person_per_day == 0 || recovery.per_device_per_day == 0) {
        return Err(
            "recovery.per_person_per_day and recovery.per_device_per_day must be at least 1; \
             to turn forgotten-PIN requests off, set recovery.enabled = false"
                .into(),
        );
    }
    Ok(SelfServiceSettings {
        user_can_change: policy.user_can_change.unwrap_or(false),
        recovery,
    })
}
