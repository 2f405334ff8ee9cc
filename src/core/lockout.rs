//! Pure lockout arithmetic. Devices and source addresses have a leaky-bucket failure budget:
//! `free_failures` failures are free, each further one locks for `initial_backoff` doubling
//! up to `max_backoff`, and one failure is forgiven per `forgive_every`, so sustained
//! guessing is held to that rate whatever the attacker does. A grant does not reset the
//! bucket (someone holding one valid PIN must not buy more guesses). `admits` bounds the
//! attempts in flight under a key by the budget left, so concurrent attempts cannot overrun
//! it. Users have a hard limit of consecutive wrong ID+PIN attempts.
//! Persistence is the caller's job; time is passed in.

#[path = "lockout_policy.rs"]
mod policy;
pub use policy::LockoutPolicy;

use crate::domain::{LockoutState, Timestamp};
use std::time::Duration;

pub fn device_key(device: &str) -> String {
    format!("device:{device}")
}
pub fn source_key(ip: std::net::IpAddr) -> String {
    format!("source:{ip}")
}
pub fn user_key(id: &str) -> String {
    format!("user:{id}")
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

/// Whether a user is locked by the consecutive-failure limit.
pub fn user_locked(state: Option<LockoutState>, policy: &LockoutPolicy) -> bool {
    state.is_some_and(|s| s.failures >= policy.user_max_failures)
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

/// How many attempts may be in flight under a key at `now`: the failures left in the free
/// budget, and at least one (so that over budget attempts go one at a time and each
/// failure's lock applies before the next guess is hashed).
pub fn admits(state: Option<LockoutState>, policy: &LockoutPolicy, now: Timestamp) -> u32 {
    let level = leaked(state, policy, now).failures;
    policy.free_failures.saturating_sub(level).max(1)
}

/// Records one failed ID+PIN attempt for a user: counted, never time-limited.
pub fn on_user_failure(state: Option<LockoutState>, now: Timestamp) -> LockoutState {
    let mut s = state.unwrap_or_default();
    s.failures = s.failures.saturating_add(1);
    s.last_failure = Some(now);
    s
}

#[cfg(test)]
#[path = "lockout_tests.rs"]
mod tests;
