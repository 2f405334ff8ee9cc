//! Misconfiguration warnings (MyQ): settings that are valid one by one but do not work
//! together — PINs generated or made temporary with no mail relay to tell anyone, a
//! reminder that can never go out, `[mail]` or guests without `[smtp]`. Pure: `check-config`
//! prints them (`--strict` makes them errors) and the daemon logs them at start.

use super::Config;
use crate::duration::format_duration;
use crate::lifecycle::settings::Generation;
use std::time::Duration;

/// Every warning for `config`, one sentence each naming the keys involved and the fix.
pub fn warnings(config: &Config) -> Vec<String> {
    let mut out = Vec::new();
    let lc = &config.lifecycle;
    if config.smtp.is_none() {
        if lc.generation == Generation::Auto {
            out.push(
                "policy.generation = \"auto\" generates PINs but there is no [smtp] block: \
                 nobody will receive them; add [smtp] or use generation = \"admin\""
                    .to_string(),
            );
        }
        let temporary = temporary_keys(config);
        if !temporary.is_empty() {
            out.push(format!(
                "{} make PINs temporary but there is no [smtp] block: nobody is told until \
                 when their PIN works or reminded before it expires; add [smtp]",
                temporary.join(", ")
            ));
        }
        if config.guests.allowed {
            out.push(
                "guests.allowed = true but there is no [smtp] block: guests get no invitation \
                 and sponsors no notice, and `guest add` prints the PIN for you to hand over; \
                 add [smtp]"
                    .to_string(),
            );
        }
        if config.mail_declared {
            out.push(
                "[mail] is set but there is no [smtp] block: no mail is sent; add [smtp] \
                 with the relay's host and from"
                    .to_string(),
            );
        }
    }
    if let Some(w) = self_service_warning(config) {
        out.push(w);
    }
    if let Some((key, validity)) = shortest_validity(config) {
        for threshold in lc.expiry_warning.iter().filter(|t| **t >= validity) {
            out.push(format!(
                "policy.expiry_warning \"{}\" is not shorter than {key} = \"{}\": such PINs \
                 never get this reminder (their expiry is in the new-PIN mail instead); use a \
                 shorter threshold",
                format_duration(*threshold),
                format_duration(validity)
            ));
        }
    }
    out
}

/// The keys that make PINs temporary or schedule reminders, as the file spells them.
fn temporary_keys(config: &Config) -> Vec<String> {
    let lc = &config.lifecycle;
    let mut keys = Vec::new();
    if let Some(d) = lc.site_validity {
        keys.push(format!("policy.pin_validity = \"{}\"", format_duration(d)));
    }
    for (group, d) in &lc.group_validity {
        keys.push(format!(
            "[[group]] \"{group}\" pin_validity = \"{}\"",
            format_duration(*d)
        ));
    }
    if !lc.expiry_warning.is_empty() {
        keys.push("policy.expiry_warning".to_string());
    }
    keys
}

/// The shortest forced validity and the key that sets it.
fn shortest_validity(config: &Config) -> Option<(String, Duration)> {
    let lc = &config.lifecycle;
    let site = lc
        .site_validity
        .map(|d| ("policy.pin_validity".to_string(), d));
    let groups = lc
        .group_validity
        .iter()
        .map(|(g, d)| (format!("[[group]] \"{g}\" pin_validity"), *d));
    site.into_iter().chain(groups).min_by_key(|(_, d)| *d)
}

/// Self-service asked for (a `[recovery]` block, or `generation = "user"`) but neither
/// self-change nor a mailed forgotten PIN can work. A site without either, whose PINs an
/// administrator sets, is not warned: that is its way back.
fn self_service_warning(config: &Config) -> Option<String> {
    let ss = &config.self_service;
    let asked = ss.recovery.declared || config.lifecycle.generation == Generation::User;
    let mailed = config.smtp.is_some() && ss.recovery.enabled;
    (asked && !ss.user_can_change && !mailed).then(|| {
        "policy.user_can_change is off and forgotten PINs cannot be mailed (no [smtp] \
         block, or recovery.enabled = false): a person who forgot their PIN has no way back \
         but an administrator; add [smtp] or set policy.user_can_change = true"
            .to_string()
    })
}
