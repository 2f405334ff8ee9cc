//! The PIN lifecycle keys of `[policy]` (`generation`, `pin_validity`, `expiry_warning`,
//! `pin_policy`, `cooling_off`) and `[[group]] pin_validity`, parsed into the lifecycle
//! module's own `LifecycleSettings`. Errors name the key and the fix.

use super::duration_key;
use super::raw::{RawGroup, RawPolicy};
use crate::domain::{parse_expiry, Expiry};
use crate::duration::{format_duration, parse_duration};
use crate::lifecycle::settings::{Generation, LifecycleSettings, WeakPins};
use std::time::Duration;

/// Longest reminder threshold and cooling-off period accepted (ten years).
const LONGEST: Duration = Duration::from_secs(3650 * 86_400);

pub fn validate_lifecycle(
    policy: &RawPolicy,
    groups: &[RawGroup],
) -> Result<LifecycleSettings, String> {
    let d = LifecycleSettings::default();
    let generation = match policy.generation.as_deref() {
        None | Some("admin") => Generation::Admin,
        Some("auto") => Generation::Auto,
        Some("user") => Generation::User,
        Some(other) => {
            return Err(format!(
                "policy.generation = \"{other}\": use \"admin\" (the default: administrators \
                 set or generate PINs), \"auto\" (every new user without a PIN gets one by \
                 mail) or \"user\" (people set their own)"
            ))
        }
    };
    let weak_upstream = match policy.pin_policy.as_deref() {
        None | Some("warn") => WeakPins::Warn,
        Some("refuse") => WeakPins::Refuse,
        Some(other) => {
            return Err(format!(
                "policy.pin_policy = \"{other}\": use \"warn\" (keep a weak directory PIN and \
                 report it) or \"refuse\" (leave it out)"
            ))
        }
    };
    let site_validity = policy
        .pin_validity
        .as_deref()
        .map(|v| validity("policy.pin_validity", v))
        .transpose()?;
    let mut group_validity = Vec::new();
    for (i, g) in groups.iter().enumerate() {
        if let Some(v) = &g.pin_validity {
            let key = format!("group[{i}].pin_validity");
            group_validity.push((g.name.clone(), validity(&key, v)?));
        }
    }
    let expiry_warning = warnings(policy.expiry_warning.as_deref().unwrap_or_default())?;
    let cooling_off = duration_key(
        "policy.cooling_off",
        policy.cooling_off.as_deref(),
        d.cooling_off,
    )?;
    if cooling_off > LONGEST {
        return Err(format!(
            "policy.cooling_off = \"{}\" is too long: use at most 3650d (default 365d)",
            format_duration(cooling_off)
        ));
    }
    Ok(LifecycleSettings {
        generation,
        site_validity,
        group_validity,
        expiry_warning,
        weak_upstream,
        cooling_off,
        ..d
    })
}

/// A forced validity: the ranges `--expires` accepts, but never `never`.
fn validity(key: &str, value: &str) -> Result<Duration, String> {
    match parse_expiry(value).map_err(|e| format!("{key}: {e}"))? {
        Expiry::After(d) => Ok(d),
        Expiry::Never => Err(format!(
            "{key} = \"{value}\": a forced validity cannot be never; remove the key so PINs \
             keep the validity they are given"
        )),
    }
}

/// Reminder thresholds, longest first; a duplicate (also `1d` beside `24h`) is refused.
fn warnings(raw: &[String]) -> Result<Vec<Duration>, String> {
    let mut out: Vec<(Duration, &str)> = Vec::with_capacity(raw.len());
    for v in raw {
        let d = parse_duration(v).map_err(|e| format!("policy.expiry_warning \"{v}\": {e}"))?;
        if d < Duration::from_secs(60) || d > LONGEST {
            return Err(format!(
                "policy.expiry_warning \"{v}\" is out of range: use 1m to 3650d, such as \
                 [\"7d\", \"1d\"]"
            ));
        }
        if let Some((_, other)) = out.iter().find(|(o, _)| *o == d) {
            return Err(format!(
                "policy.expiry_warning lists \"{v}\" twice (also as \"{other}\"): each \
                 reminder is sent once, keep one"
            ));
        }
        out.push((d, v));
    }
    let mut thresholds: Vec<Duration> = out.into_iter().map(|(d, _)| d).collect();
    thresholds.sort_unstable_by(|a, b| b.cmp(a));
    Ok(thresholds)
}

/// `check-config` shows the lifecycle settings as they are written: durations as `30d`,
/// group validities as a `group = "24h"` table.
pub fn serialize<S: serde::Serializer>(lc: &LifecycleSettings, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeStruct;
    let human = |d: &Duration| format_duration(*d);
    let groups: std::collections::BTreeMap<&str, String> = lc
        .group_validity
        .iter()
        .map(|(g, d)| (g.as_str(), human(d)))
        .collect();
    let mut st = s.serialize_struct("LifecycleSettings", 7)?;
    st.serialize_field("generation", &lc.generation)?;
    st.serialize_field("pin_validity", &lc.site_validity.as_ref().map(human))?;
    st.serialize_field(
        "expiry_warning",
        &lc.expiry_warning.iter().map(human).collect::<Vec<_>>(),
    )?;
    st.serialize_field("pin_policy", &lc.weak_upstream)?;
    st.serialize_field("cooling_off", &human(&lc.cooling_off))?;
    st.serialize_field("sweep_every", &human(&lc.sweep_every))?;
    st.serialize_field("group_pin_validity", &groups)?;
    st.end()
}
