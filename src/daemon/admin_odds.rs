//! `status`'s attack odds: each device's odds with the real number of users with a PIN it
//! admits (enabled, in one of its groups), and a warning for each mode a sync or an admin
//! change pushed over `[lockout] max_daily_odds`. Reads users; changes nothing. Counting
//! reads every user (a page at a time) and status is polled, so a report is reused for
//! 30 s while the number of users stays the same and is never recomputed more than once
//! every 2 s; past the first, a recount runs on its own thread while status answers with
//! the last report at once (a status during a large sync must not wait for a count).

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
    cache: Arc<Mutex<Option<Cached>>>,
    counting: Arc<std::sync::atomic::AtomicBool>,
}

/// The last report: when, for how many users in the store, what.
type Cached = (Instant, u64, Value, Vec<String>);

impl OddsStatus {
    pub fn new(config: Arc<Config>) -> Self {
        OddsStatus {
            config,
            cache: Arc::default(),
            counting: Arc::default(),
        }
    }

    /// The odds per device (JSON for `status`) and a warning per mode above the ceiling.
    pub fn report(&self, store: &Arc<dyn Store>) -> Result<(Value, Vec<String>), StoreError> {
        use std::sync::atomic::Ordering::SeqCst;
        let total = store.user_count()?;
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, users, value, warnings)) = cache.as_ref() {
            let age = at.elapsed();
            let fresh = age < AT_MOST_EVERY || (age < FRESH && *users == total);
            if !fresh && !self.counting.swap(true, SeqCst) {
                let (config, store) = (Arc::clone(&self.config), Arc::clone(store));
                let (cache, counting) = (Arc::clone(&self.cache), Arc::clone(&self.counting));
                std::thread::spawn(move || {
                    match count(&config, store.as_ref(), total) {
                        Ok(counted) => {
                            *cache.lock().unwrap_or_else(|e| e.into_inner()) = Some(counted)
                        }
                        Err(e) => tracing::warn!(error = %e, "could not count users for the odds"),
                    }
                    counting.store(false, SeqCst);
                });
            }
            return Ok((value.clone(), warnings.clone()));
        }
        drop(cache);
        let counted = count(&self.config, store.as_ref(), total)?;
        let (value, warnings) = (counted.2.clone(), counted.3.clone());
        *self.cache.lock().unwrap_or_else(|e| e.into_inner()) = Some(counted);
        Ok((value, warnings))
    }
}

/// Counts the users each device admits and assesses the odds.
fn count(config: &Config, store: &dyn Store, total: u64) -> Result<Cached, StoreError> {
    {
        let counts = users_per_device(config, store)?;
        let devices = odds::assess(config, &|d| counts.get(d).copied().unwrap_or(0));
        let value = json!({
            "max_daily_odds": config.odds.max_daily_odds,
            "devices": devices.iter().map(|d| json!({
                "device": d.device,
                "users": d.users,
                "summary": odds::summary(d),
                "modes": d.modes,
                "above": !d.above.is_empty(),
            })).collect::<Vec<_>>(),
        });
        let warnings = odds::problems(config, &devices);
        Ok((Instant::now(), total, value, warnings))
    }
}

/// Users with a PIN, enabled, in one of each device's groups.
fn users_per_device(
    config: &Config,
    store: &dyn Store,
) -> Result<BTreeMap<DeviceId, u64>, StoreError> {
    // Page by page: a count never holds the whole directory in memory.
    let mut counts: BTreeMap<DeviceId, u64> =
        config.devices.keys().map(|id| (id.clone(), 0)).collect();
    crate::store::each_user(store, |u| {
        if u.enabled && u.pin.is_some() {
            for (id, device) in &config.devices {
                if u.groups.iter().any(|g| device.allow_groups.contains(g)) {
                    *counts.entry(id.clone()).or_default() += 1;
                }
            }
        }
        Ok::<_, StoreError>(())
    })?;
    Ok(counts)
}
