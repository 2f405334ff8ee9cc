//! Pure lockout arithmetic: a failure budget with doubling back-off, and the per-user
//! consecutive-failure limit. Persistence is the caller's job; time is passed in.

use crate::config::LockoutPolicy;
use crate::domain::{LockoutState, Timestamp};
use std::time::Duration;

/// Lockout keys. Devices and source addresses have budgets; users have a hard limit.
pub fn device_key(device: &str) -> String {
    format!("device:{device}")
}
pub fn source_key(ip: std::net::IpAddr) -> String {
    format!("source:{ip}")
}
pub fn user_key(id: &str) -> String {
    format!("user:{id}")
}

/// State after forgetting failures that are older than `forget_after`.
fn current(state: Option<LockoutState>, policy: &LockoutPolicy, now: Timestamp) -> LockoutState {
    let s = state.unwrap_or_default();
    let stale = s
        .last_failure
        .is_some_and(|last| last.until(now) >= policy.forget_after)
        && s.locked_until.is_none_or(|until| until <= now);
    if stale {
        LockoutState::default()
    } else {
        s
    }
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

/// The back-off after `failures` failures: none within the free budget, then the initial
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

/// Records one failure for a budgeted key.
pub fn on_failure(
    state: Option<LockoutState>,
    policy: &LockoutPolicy,
    now: Timestamp,
) -> LockoutState {
    let mut s = current(state, policy, now);
    s.failures = s.failures.saturating_add(1);
    s.last_failure = Some(now);
    s.locked_until = backoff(s.failures, policy).map(|d| now.plus(d));
    s
}

/// Records one failed ID+PIN attempt for a user: counted, never time-limited.
pub fn on_user_failure(state: Option<LockoutState>, now: Timestamp) -> LockoutState {
    let mut s = state.unwrap_or_default();
    s.failures = s.failures.saturating_add(1);
    s.last_failure = Some(now);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> LockoutPolicy {
        LockoutPolicy::default()
    }

    #[test]
    fn backoff_table() {
        let p = policy();
        #[rustfmt::skip]
        let table = [
            (0, None), (4, None), (5, None),
            (6, Some(30)), (7, Some(60)), (8, Some(120)), (9, Some(240)),
            (12, Some(1920)), (13, Some(3600)), (40, Some(3600)), (u32::MAX, Some(3600)),
        ];
        for (failures, secs) in table {
            assert_eq!(
                backoff(failures, &p),
                secs.map(Duration::from_secs),
                "{failures} failures"
            );
        }
    }

    #[test]
    fn five_free_then_locked_then_forgotten() {
        let p = policy();
        let t0 = Timestamp::from_millis(1_000_000);
        let mut s = None;
        for i in 1..=5 {
            s = Some(on_failure(s, &p, t0));
            assert!(!is_locked(s, t0), "failure {i} is within the budget");
        }
        s = Some(on_failure(s, &p, t0));
        assert!(is_locked(s, t0));
        assert!(is_locked(s, t0.plus(Duration::from_secs(29))));
        assert!(!is_locked(s, t0.plus(Duration::from_secs(30))));
        let later = t0.plus(Duration::from_secs(31));
        let s2 = on_failure(s, &p, later);
        assert_eq!(
            s2.locked_until,
            Some(later.plus(Duration::from_secs(60))),
            "doubles"
        );
        let much_later = later.plus(p.forget_after);
        assert_eq!(
            on_failure(Some(s2), &p, much_later).failures,
            1,
            "forgotten after quiet period"
        );
    }

    #[test]
    fn user_limit_is_consecutive_failures() {
        let p = policy();
        let mut s = None;
        for _ in 0..9 {
            s = Some(on_user_failure(s, Timestamp::from_millis(0)));
        }
        assert!(!user_locked(s, &p));
        s = Some(on_user_failure(s, Timestamp::from_millis(0)));
        assert!(user_locked(s, &p));
    }
}
