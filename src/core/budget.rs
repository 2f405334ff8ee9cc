//! The daily budget derived from the ceiling: each device's effective lockout is the
//! configured `[lockout]`, slowed where the device's population would put a credential
//! mode above `max_daily_odds`. Slowed means a longer sustained refill (`forgive_every`,
//! and `max_backoff` with it so a back-off never refills faster than the budget), never
//! anything shorter: the effective budget is min(configured, what the ceiling allows).
//! The search runs the same arithmetic as the figure (`odds::assess`, hence
//! `device_guesses_per_day`), so what `status` shows is what the core enforces. Pure:
//! the caller passes the population; knows nothing of config files or the store.

use super::lockout::LockoutPolicy;
use super::odds::{self, Mode};
use crate::domain::DeviceId;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// The slowest refill the search goes to: one failure forgiven a day. When even that
/// leaves a mode above the ceiling, the burst (free failures and the back-off ladder of
/// a fresh day) is what exceeds it, and no refill period can help.
pub const SLOWEST: Duration = Duration::from_secs(24 * 3600);

/// One device's effective lockout and what it gives.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Derived {
    /// The lockout the core applies to this device (`device:` and `source:` keys).
    pub policy: LockoutPolicy,
    /// Guesses a day at the device under the configured `[lockout]`…
    pub configured_guesses: u64,
    /// …and under `policy`.
    pub guesses: u64,
    /// `policy` is slower than the configured one.
    pub slowed: bool,
    /// Every mode meets the ceiling under `policy`; false: even `SLOWEST` does not.
    pub feasible: bool,
}

/// The configured lockout with its sustained refill stretched to `every` (never shorter
/// than configured), `max_backoff` at least as long.
pub fn slowed(configured: &LockoutPolicy, every: Duration) -> LockoutPolicy {
    let forgive_every = configured.forgive_every.max(every);
    LockoutPolicy {
        forgive_every,
        max_backoff: configured.max_backoff.max(forgive_every),
        ..*configured
    }
}

/// The fastest refill, searched by the second up to `SLOWEST`, under which `meets` holds;
/// the configured lockout itself when it already does. `meets` must hold for every period
/// longer than one it holds for (guesses a day never grow with a slower refill).
pub fn derive(configured: &LockoutPolicy, meets: impl Fn(&LockoutPolicy) -> bool) -> Derived {
    let result = |policy: LockoutPolicy, feasible| Derived {
        policy,
        configured_guesses: odds::device_guesses_per_day(configured),
        guesses: odds::device_guesses_per_day(&policy),
        slowed: policy != *configured,
        feasible,
    };
    if meets(configured) {
        return result(*configured, true);
    }
    let slowest = slowed(configured, SLOWEST);
    if !meets(&slowest) {
        return result(slowest, false);
    }
    // meets(lo) is false, meets(hi) is true.
    let (mut lo, mut hi) = (configured.forgive_every.as_secs(), SLOWEST.as_secs());
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if meets(&slowed(configured, Duration::from_secs(mid))) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    result(slowed(configured, Duration::from_secs(hi)), true)
}

/// Whether every mode in `modes` stays within `ceiling` at a device admitting `users`
/// users with a PIN among `space` valid PINs, under `policy` (the odds `status` shows).
pub fn within(
    modes: &[Mode],
    users: u64,
    space: f64,
    ceiling: f64,
    policy: &LockoutPolicy,
) -> bool {
    modes.iter().all(|&m| {
        odds::assess(m, users, space, policy)
            .odds
            .is_none_or(|o| o <= ceiling)
    })
}

/// The device's effective lockout for its modes and population.
pub fn for_device(
    configured: &LockoutPolicy,
    modes: &[Mode],
    users: u64,
    space: f64,
    ceiling: f64,
) -> Derived {
    derive(configured, |p| within(modes, users, space, ceiling, p))
}

/// The lockout per device the core applies: the derived one where a device has one, the
/// configured `[lockout]` for every other key. A reload or a recount replaces it whole.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Budgets {
    configured: LockoutPolicy,
    devices: BTreeMap<DeviceId, LockoutPolicy>,
}

impl Budgets {
    /// The configured lockout everywhere (before the first count).
    pub fn uniform(configured: LockoutPolicy) -> Self {
        Budgets {
            configured,
            devices: BTreeMap::new(),
        }
    }

    /// `configured` everywhere but where `derived` slows a device.
    pub fn new(configured: LockoutPolicy, derived: BTreeMap<DeviceId, LockoutPolicy>) -> Self {
        let devices = derived.into_iter().filter(|(_, p)| *p != configured);
        Budgets {
            configured,
            devices: devices.collect(),
        }
    }

    /// The `[lockout]` settings as configured.
    pub fn configured(&self) -> &LockoutPolicy {
        &self.configured
    }

    /// The lockout of an attempt at `device`: its device and source budgets, its user lock.
    pub fn for_device(&self, device: &DeviceId) -> &LockoutPolicy {
        self.devices.get(device).unwrap_or(&self.configured)
    }
}

#[cfg(test)]
#[path = "budget_tests.rs"]
mod tests;
