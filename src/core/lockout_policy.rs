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
