//! The lockout settings (`[lockout]`): the core's own type, which `config` parses into.
//! Plain data; knows nothing of config files or the store.

use serde::Serialize;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct LockoutPolicy {
    pub free_failures: u32,
    #[serde(serialize_with = "crate::duration::serialize")]
    pub initial_backoff: Duration,
    #[serde(serialize_with = "crate::duration::serialize")]
    pub max_backoff: Duration,
    /// One failure is forgiven per this period: the sustained guessing rate.
    #[serde(serialize_with = "crate::duration::serialize")]
    pub forgive_every: Duration,
    /// Failures free per source address (one more locks it until one is forgiven); below
    /// `free_failures`, one attacker at one terminal is held at that terminal and cannot
    /// lock the device's other terminals.
    pub source_failures: u32,
    /// ID+PIN: consecutive failures before the user is locked…
    pub user_max_failures: u32,
    /// …for this long, doubling with every further failure…
    #[serde(serialize_with = "crate::duration::serialize")]
    pub user_lock: Duration,
    /// …up to this: a user is never locked for good.
    #[serde(serialize_with = "crate::duration::serialize")]
    pub user_max_lock: Duration,
    /// An `alarm` event when this many failures at one device fall in one clock hour
    /// (0: never).
    pub alarm_per_hour: u32,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        LockoutPolicy {
            free_failures: 5,
            initial_backoff: Duration::from_secs(30),
            max_backoff: Duration::from_secs(3600),
            forgive_every: Duration::from_secs(15 * 60),
            source_failures: 4,
            user_max_failures: 10,
            user_lock: Duration::from_secs(15 * 60),
            user_max_lock: Duration::from_secs(24 * 3600),
            alarm_per_hour: 10,
        }
    }
}
