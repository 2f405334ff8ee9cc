//! The lockout budget derived from the ceiling, kept current, and `status`'s attack odds:
//! counts the users with a PIN each device admits (enabled, in one of its groups), derives
//! each device's effective lockout from them (`config::odds`, `core::budget`), hands it to
//! the core, and keeps the report `status` shows with its warnings. Recounts at start, on
//! a reload, when an admin write pokes it, when the number of users or a directory's last
//! sync changes (checked every 2 s by cheap point reads) and every 10 min whatever happens.
//! A count reads every user a page at a time, so counts are at least 2 s apart and at
//! least five times as far apart as the last one took. Stores nothing: the budget is
//! derived from the population, not state.

use crate::config::{odds, Config};
use crate::core::budget::Budgets;
use crate::domain::{DeviceId, Timestamp};
use crate::live::Live;
use crate::store::{Store, StoreError};
use crate::worker::{Context, Next, Settings, Supervisor, Worker};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// How often the worker looks for a changed population (a user count, a sync's time).
const CHECK_EVERY: Duration = Duration::from_secs(2);
/// A recount whatever the checks saw (a group or an enabled flag changed by a path that
/// does not poke, e.g. the lifecycle sweeper).
const RECOUNT_EVERY: Duration = Duration::from_secs(600);
/// The name `status` shows for the worker.
pub const NAME: &str = "lockout budget";

pub struct Budget {
    /// The configuration the daemon started with, its `[lockout]` and `[policy]` as reloaded.
    config: Live<Config>,
    store: Arc<dyn Store>,
    /// The core's lockout per device.
    budgets: Live<Budgets>,
    /// The last report: `status`'s odds, its warnings, the devices past the ceiling.
    report: Mutex<Option<Report>>,
    /// One count at a time.
    counting: Mutex<()>,
    wake: Notify,
}

#[derive(Clone, Default)]
struct Report {
    value: Value,
    warnings: Vec<String>,
    infeasible: BTreeSet<DeviceId>,
}

impl Budget {
    pub fn new(config: &Config, store: &Arc<dyn Store>, budgets: Live<Budgets>) -> Arc<Self> {
        Arc::new(Budget {
            config: Live::new(config.clone()),
            store: Arc::clone(store),
            budgets,
            report: Mutex::default(),
            counting: Mutex::default(),
            wake: Notify::new(),
        })
    }

    /// Asks for a recount soon (the population may have changed).
    pub fn poke(&self) {
        self.wake.notify_one();
    }

    /// Takes a reloaded configuration's `[lockout]` and `[policy]` (the rest waits for a
    /// restart); `recount` applies them.
    pub fn reconfigure(&self, new: &Config) {
        let mut config = (*self.config.get()).clone();
        config.lockout = new.lockout;
        config.odds = new.odds;
        config.policy = new.policy.clone();
        self.config.set(config);
    }

    /// The odds per device (JSON for `status`) and a warning per mode above the ceiling
    /// even under the derived budget; empty before the first count.
    pub fn report(&self) -> (Value, Vec<String>) {
        let report = self.report.lock().unwrap_or_else(|e| e.into_inner());
        let r = report.clone().unwrap_or_default();
        (r.value, r.warnings)
    }

    /// Counts, derives and applies every device's budget (blocking: reads every user).
    pub fn recount(&self) -> Result<(), StoreError> {
        let _one = self.counting.lock().unwrap_or_else(|e| e.into_inner());
        let config = self.config.get();
        let counts = users_per_device(&config, self.store.as_ref())?;
        let devices = odds::assess(&config, &|d| counts.get(d).copied().unwrap_or(0));
        let before = self.budgets.get();
        let derived: BTreeMap<_, _> = devices
            .iter()
            .map(|d| (d.device.clone(), d.budget.policy))
            .collect();
        let after = Budgets::new(config.lockout, derived);
        let mut infeasible = BTreeSet::new();
        let mut report = self.report.lock().unwrap_or_else(|e| e.into_inner());
        let was = report.as_ref().map(|r| &r.infeasible);
        for d in &devices {
            if !d.above.is_empty() {
                infeasible.insert(d.device.clone());
            }
            if before.for_device(&d.device) == after.for_device(&d.device) {
                continue;
            }
            let budget = odds::budget_text(d);
            if d.above.is_empty() || was.is_some_and(|w| w.contains(&d.device)) {
                tracing::info!(device = %d.device, users = d.users, "lockout budget: {budget}");
            } else {
                tracing::warn!(
                    device = %d.device,
                    users = d.users,
                    "lockout budget: {budget}; no refill period keeps this device under \
                     lockout.max_daily_odds (see `pinwarden status` for the fixes)"
                );
            }
        }
        self.budgets.set(after);
        let value = json!({
            "max_daily_odds": config.odds.max_daily_odds,
            "counted_at": Timestamp::now(),
            "devices": devices.iter().map(|d| json!({
                "device": d.device,
                "users": d.users,
                "summary": odds::summary(d),
                "modes": d.modes,
                "budget": {
                    "configured_guesses_per_day": d.budget.configured_guesses,
                    "guesses_per_day": d.budget.guesses,
                    "forgive_every": crate::duration::format_duration(d.budget.policy.forgive_every),
                    "max_backoff": crate::duration::format_duration(d.budget.policy.max_backoff),
                    "slowed": d.budget.slowed,
                    "feasible": d.budget.feasible,
                },
                "above": !d.above.is_empty(),
            })).collect::<Vec<_>>(),
        });
        let warnings = odds::problems(&config, &devices);
        *report = Some(Report {
            value,
            warnings,
            infeasible,
        });
        Ok(())
    }

    /// `recount` on the blocking pool.
    pub async fn recount_now(self: &Arc<Self>) -> Result<(), String> {
        let me = Arc::clone(self);
        match tokio::task::spawn_blocking(move || me.recount()).await {
            Ok(counted) => counted.map_err(|e| format!("could not count users: {e}")),
            Err(_) => Err("the user count panicked".into()),
        }
    }

    /// What changes when users do, read cheaply: the number of users and each directory's
    /// last applied sync.
    fn fingerprint(&self) -> Result<Vec<i64>, StoreError> {
        let mut out = vec![self.store.user_count()? as i64];
        for d in &self.config.get().directories {
            let state = self.store.sync_state(&d.name)?;
            out.push(
                state
                    .and_then(|s| s.last_success)
                    .map_or(-1, |t| t.millis()),
            );
        }
        Ok(out)
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

/// Starts the worker that keeps the budget current.
pub fn spawn(budget: &Arc<Budget>, supervisor: &Supervisor) {
    let keeper = Keeper {
        budget: Arc::clone(budget),
        // `wire` has just counted.
        seen: budget.fingerprint().ok(),
        counted: Instant::now(),
        gap: CHECK_EVERY,
        poked: false,
    };
    let retry = Settings::new(CHECK_EVERY, Duration::from_secs(60));
    supervisor.spawn(NAME, retry, keeper);
}

struct Keeper {
    budget: Arc<Budget>,
    /// The fingerprint at the last count.
    seen: Option<Vec<i64>>,
    counted: Instant,
    /// The least time between two counts.
    gap: Duration,
    poked: bool,
}

impl Worker for Keeper {
    async fn work(&mut self, _cx: &Context) -> Result<Next, String> {
        let budget = Arc::clone(&self.budget);
        let now = tokio::task::spawn_blocking(move || budget.fingerprint())
            .await
            .map_err(|_| "reading the user count panicked".to_string())?
            .map_err(|e| format!("could not read the user count: {e}"))?;
        let due = std::mem::take(&mut self.poked)
            || self.seen.as_ref() != Some(&now)
            || self.counted.elapsed() >= RECOUNT_EVERY;
        if due {
            let started = Instant::now();
            self.budget.recount_now().await?;
            self.seen = Some(now);
            self.counted = Instant::now();
            self.gap = CHECK_EVERY.max(started.elapsed() * 5);
        }
        Ok(Next::Idle)
    }

    async fn wait_for_work(&mut self) {
        tokio::time::sleep_until((self.counted + self.gap).into()).await;
        tokio::select! {
            _ = self.budget.wake.notified() => self.poked = true,
            _ = tokio::time::sleep(CHECK_EVERY) => {}
        }
    }
}
