//! `status`'s attack odds: each device's odds with the real number of users with a PIN it
//! admits (enabled, in one of its groups), and a warning for each mode a sync or an admin
//! change pushed over `[lockout] max_daily_odds`. Reads users; changes nothing. Counting
//! reads every user and status is polled, so a report is reused for 30 s while the number
//! of users stays the same and is never recomputed more than once every 2 s.

use crate::config::{odds, Config};
use crate::domain::DeviceId;
use crate::store::{Store, StoreError};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A report is reused this long while the number of users is unchanged…
const FRESH: Duration = Duration::from_secs(30);
/// …and this long whatever changes (an import or sync polled by `status`).
const AT_MOST_EVERY: Duration = Duration::from_secs(2);

pub struct OddsStatus {
    config: Arc<Config>,
    cache: Mutex<Option<Cached>>,
}

/// The last report: when, for how many users in the store, what.
type Cached = (Instant, u64, Value, Vec<String>);

impl OddsStatus {
    pub fn new(config: Arc<Config>) -> Self {
        OddsStatus {
            config,
            cache: Mutex::new(None),
        }
    }

    /// The odds per device (JSON for `status`) and a warning per mode above the ceiling.
    pub fn report(&self, store: &dyn Store) -> Result<(Value, Vec<String>), StoreError> {
        let total = store.user_count()?;
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, users, value, warnings)) = cache.as_ref() {
            let age = at.elapsed();
            if age < AT_MOST_EVERY || (age < FRESH && *users == total) {
                return Ok((value.clone(), warnings.clone()));
            }
        }
        let counts = users_per_device(&self.config, store)?;
        let devices = odds::assess(&self.config, &|d| counts.get(d).copied().unwrap_or(0));
        let value = json!({
            "max_daily_odds": self.config.odds.max_daily_odds,
            "devices": devices.iter().map(|d| json!({
                "device": d.device,
                "users": d.users,
                "summary": odds::summary(d),
                "modes": d.modes,
                "above": !d.above.is_empty(),
            })).collect::<Vec<_>>(),
        });
        let warnings = odds::problems(&self.config, &devices);
        *cache = Some((Instant::now(), total, value.clone(), warnings.clone()));
        Ok((value, warnings))
    }
}

/// Users with a PIN, enabled, in one of each device's groups.
fn users_per_device(
    config: &Config,
    store: &dyn Store,
) -> Result<BTreeMap<DeviceId, u64>, StoreError> {
    let users = store.users()?;
    Ok(config
        .devices
        .iter()
        .map(|(id, device)| {
            let n = users
                .iter()
                .filter(|u| u.enabled && u.pin.is_some())
                .filter(|u| u.groups.iter().any(|g| device.allow_groups.contains(g)))
                .count();
            (id.clone(), n as u64)
        })
        .collect())
}
