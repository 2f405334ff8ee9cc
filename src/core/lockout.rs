//! Pure lockout arithmetic. Devices and source addresses have a leaky-bucket failure budget:
//! `free_failures` failures are free, each further one locks for `initial_backoff` doubling
//! up to `max_backoff`, and one failure is forgiven per `forgive_every`, so sustained
//! guessing is held to that rate whatever the attacker does. A grant does not reset the
//! bucket (someone holding one valid PIN must not buy more guesses). `admits` bounds the
//! attempts in flight under a key by the budget left, so concurrent attempts cannot overrun
//! it. A source address has its own smaller budget (`source_failures` free, one more
//! locks until one is forgiven, leaking at the device's rate), so one attacker at one
//! terminal is held there and cannot lock the other terminals of the device. A user is locked after
//! `user_max_failures` consecutive wrong PINs for `user_lock`, doubling per further failure
//! up to `user_max_lock` (never for good); a grant resets only the user's count.
//! Persistence is the caller's job; time is passed in.

#[path = "lockout_policy.rs"]
mod policy;
pub use policy::LockoutPolicy;

use crate::domain::{LockoutState, Timestamp};
use std::time::Duration;

/// What a lockout counter counts against. Its text form (`device:…`, `source:…`,
/// `user:…`) is the store key and what `status` shows; this type is the only place that
/// spells it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LockoutKey {
    /// A configured device (budgeted).
    Device(String),
    /// A client address (budgeted).
    Source(std::net::IpAddr),
    /// A named user (consecutive wrong ID+PIN attempts).
    User(String),
}

impl LockoutKey {
    /// Reads a key's text form back; `None` for text this type did not write.
    pub fn parse(text: &str) -> Option<Self> {
        let (kind, rest) = text.split_once(':')?;
        match kind {
            "device" => Some(LockoutKey::Device(rest.into())),
            "source" => rest.parse().ok().map(LockoutKey::Source),
            "user" => Some(LockoutKey::User(rest.into())),
            _ => None,
        }
    }
}

impl std::fmt::Display for LockoutKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LockoutKey::Device(device) => write!(f, "device:{device}"),
            LockoutKey::Source(ip) => write!(f, "source:{ip}"),
            LockoutKey::User(id) => write!(f, "user:{id}"),
        }
    }
}

/// The store key of a user's counter.
pub fn user_key(id: &str) -> String {
    LockoutKey::User(id.into()).to_string()
}

/// The bucket at `now`: one failure forgiven per whole `forgive_every` since the anchor
/// (`last_failure` holds the instant leaking is counted from).
fn leaked(state: Option<LockoutState>, policy: &LockoutPolicy, now: Timestamp) -> LockoutState {
    let mut s = state.unwrap_or_default();
    let every = policy.forgive_every.as_millis().max(1);
    if let Some(anchor) = s.last_failure {
        let steps = anchor.until(now).as_millis() / every;
        if steps > 0 {
            s.failures = s
                .failures
                .saturating_sub(steps.min(u32::MAX as u128) as u32);
            let advanced = Duration::from_millis((steps * every).min(u64::MAX as u128) as u64);
            s.last_failure = Some(anchor.plus(advanced));
        }
    }
    if s.failures == 0 {
        s.last_failure = None;
    }
    s
}

/// Whether a budgeted key (device, source) is locked at `now`.
pub fn is_locked(state: Option<LockoutState>, now: Timestamp) -> bool {
    state
        .and_then(|s| s.locked_until)
        .is_some_and(|until| now < until)
}

/// Whether a user is locked (the consecutive-failure lock has not run out).
pub fn user_locked(state: Option<LockoutState>, now: Timestamp) -> bool {
    is_locked(state, now)
}

/// The lock after `failures` failures: none within the free budget, then the initial
/// back-off doubling per further failure, capped at the maximum.
pub fn backoff(failures: u32, policy: &LockoutPolicy) -> Option<Duration> {
    let over = failures.checked_sub(policy.free_failures)?;
    if over == 0 {
        return None;
    }
    let factor = 1u32.checked_shl(over - 1).unwrap_or(u32::MAX);
    Some(
        policy
            .initial_backoff
            .saturating_mul(factor)
            .min(policy.max_backoff),
    )
}

/// Records one failure.
pub fn on_failure(
    state: Option<LockoutState>,
    policy: &LockoutPolicy,
    now: Timestamp,
) -> LockoutState {
    let mut s = leaked(state, policy, now);
    s.failures = s.failures.saturating_add(1);
    s.last_failure = s.last_failure.or(Some(now));
    s.locked_until = backoff(s.failures, policy).map(|d| now.plus(d));
    s
}

/// Records one failure from a source address: like a device, `source_failures` failures
/// are free and one more locks, here until the next failure is forgiven (no doubling: the
/// device's back-off bounds the rate; this only keeps one source below the device's lock).
pub fn on_source_failure(
    state: Option<LockoutState>,
    policy: &LockoutPolicy,
    now: Timestamp,
) -> LockoutState {
    let mut s = leaked(state, policy, now);
    s.failures = s.failures.saturating_add(1);
    let anchor = *s.last_failure.get_or_insert(now);
    s.locked_until =
        (s.failures > policy.source_failures).then(|| anchor.plus(policy.forgive_every));
    s
}

/// Records one failure under `key` by the key's own rule.
pub fn count_failure(
    key: &LockoutKey,
    state: Option<LockoutState>,
    policy: &LockoutPolicy,
    now: Timestamp,
) -> LockoutState {
    match key {
        LockoutKey::Device(_) => on_failure(state, policy, now),
        LockoutKey::Source(_) => on_source_failure(state, policy, now),
        LockoutKey::User(_) => on_user_failure(state, policy, now),
    }
}

/// How many attempts may be in flight under a key at `now`: the failures left in its free
/// budget (`free_failures` for a device, `source_failures` for a source), and at least one
/// (so that over budget attempts go one at a time and each failure's lock applies before
/// the next guess is hashed).
pub fn room(
    key: &LockoutKey,
    state: Option<LockoutState>,
    policy: &LockoutPolicy,
    now: Timestamp,
) -> u32 {
    let level = leaked(state, policy, now).failures;
    let free = match key {
        LockoutKey::Source(_) => policy.source_failures,
        _ => policy.free_failures,
    };
    free.saturating_sub(level).max(1)
}

/// `room` for a device.
pub fn admits(state: Option<LockoutState>, policy: &LockoutPolicy, now: Timestamp) -> u32 {
    room(&LockoutKey::Device(String::new()), state, policy, now)
}

/// Records one failed ID+PIN (or card+PIN) attempt for a user: from `user_max_failures`
/// consecutive failures on, the user is locked for `user_lock`, doubling per further
/// failure, at most `user_max_lock`.
pub fn on_user_failure(
    state: Option<LockoutState>,
    policy: &LockoutPolicy,
    now: Timestamp,
) -> LockoutState {
    let mut s = state.unwrap_or_default();
    s.failures = s.failures.saturating_add(1);
    s.last_failure = Some(now);
    s.locked_until = s
        .failures
        .checked_sub(policy.user_max_failures)
        .map(|over| {
            let factor = 1u32.checked_shl(over).unwrap_or(u32::MAX);
            now.plus(
                policy
                    .user_lock
                    .saturating_mul(factor)
                    .min(policy.user_max_lock),
            )
        });
    s
}

#[cfg(test)]
#[path = "lockout_tests.rs"]
mod tests;
