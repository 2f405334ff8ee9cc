//! The daemon's own background workers: audit pruning, the store health probe and the
//! systemd watchdog (pinged only while the store writes, the hash pool answers and the
//! listeners run), all under the supervisor like every other loop.

use crate::config::{Config, StoreConfig};
use crate::crypto::HashPool;
use crate::domain::{Pin, Timestamp};
use crate::store::Store;
use crate::worker::{Context, Next, Settings, State, Supervisor, Worker};
use std::sync::Arc;
use std::time::Duration;

const AUDIT_PRUNE_EVERY: Duration = Duration::from_secs(600);
/// How often the store health worker writes, flushes and reads its probe record.
pub const PROBE_EVERY: Duration = Duration::from_secs(2);
/// The name `status` shows for the probe, and that readiness looks for.
pub const STORE_HEALTH: &str = "store health";

pub fn spawn(
    config: &Config,
    store: &Arc<dyn Store>,
    pool: &Arc<HashPool>,
    supervisor: &Supervisor,
) {
    let prune = PruneAudit {
        store: Arc::clone(store),
        cfg: config.store.clone(),
    };
    let retry = Settings::new(Duration::from_secs(10), AUDIT_PRUNE_EVERY);
    supervisor.spawn("audit pruning", retry, prune);
    let health = StoreHealth(Arc::clone(store));
    supervisor.spawn(
        STORE_HEALTH,
        Settings::new(PROBE_EVERY, PROBE_EVERY),
        health,
    );
    let mut usec = 0;
    if sd_notify::watchdog_enabled(false, &mut usec) && usec > 0 {
        let every = Duration::from_micros(usec / 2);
        let retry = Settings::new(every, every);
        let watchdog = Watchdog {
            every,
            store: Arc::clone(store),
            pool: Arc::clone(pool),
            supervisor: supervisor.clone(),
            computed: 0,
        };
        supervisor.spawn("systemd watchdog", retry, watchdog);
    }
}

/// What stops the daemon from being ready (and the watchdog from being pinged): empty when
/// the store writes and every listener runs.
pub fn not_ready(store: &dyn Store, supervisor: &Supervisor) -> Vec<String> {
    let mut why = Vec::new();
    let health = store.write_health();
    if !health.writable {
        let reason = health.reason.unwrap_or_default();
        why.push(format!("store: not writable ({reason})"));
    }
    for w in supervisor.status() {
        let listener = w.name.starts_with("tcp listener")
            || w.name.starts_with("http listener")
            || w.name == "control socket";
        if listener && matches!(w.state, State::BackingOff | State::Stopped) {
            why.push(format!("{}: {}", w.name, w.state));
        }
    }
    why
}

/// Writes, flushes and reads back a probe record every 2 s; the store recovers here when
/// the disk has room again (see `store::GuardedStore`).
struct StoreHealth(Arc<dyn Store>);

impl Worker for StoreHealth {
    async fn work(&mut self, _cx: &Context) -> Result<Next, String> {
        let store = Arc::clone(&self.0);
        match tokio::task::spawn_blocking(move || store.probe()).await {
            Ok(Ok(())) => Ok(Next::Idle),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("the store probe panicked".into()),
        }
    }

    async fn wait_for_work(&mut self) {
        tokio::time::sleep(PROBE_EVERY).await
    }
}

/// Keeps the audit log within its retention; a prune in progress is not interrupted.
struct PruneAudit {
    store: Arc<dyn Store>,
    cfg: StoreConfig,
}

impl Worker for PruneAudit {
    async fn work(&mut self, _cx: &Context) -> Result<Next, String> {
        let retention = Duration::from_secs(u64::from(self.cfg.audit_retention_days) * 86_400);
        let cutoff =
            Timestamp::from_millis(Timestamp::now().millis() - retention.as_millis() as i64);
        let store = Arc::clone(&self.store);
        let max = self.cfg.audit_max_entries;
        match tokio::task::spawn_blocking(move || store.prune_audit(cutoff, max)).await {
            Ok(Ok(n)) => {
                if n > 0 {
                    tracing::info!(removed = n, "pruned old audit events");
                }
                Ok(Next::Idle)
            }
            Ok(Err(e)) => Err(format!("audit pruning failed: {e}")),
            Err(_) => Err("audit pruning panicked".into()),
        }
    }

    async fn wait_for_work(&mut self) {
        tokio::time::sleep(AUDIT_PRUNE_EVERY).await
    }
}

/// Pings systemd's watchdog at half its interval (`WatchdogSec=`), but only while the
/// daemon works: the store's last probe succeeded, the hash pool computes a tag within the
/// interval (a full queue counts when it keeps computing) and every listener runs.
/// Otherwise no ping, and systemd restarts the daemon.
struct Watchdog {
    every: Duration,
    store: Arc<dyn Store>,
    pool: Arc<HashPool>,
    supervisor: Supervisor,
    /// The pool's computed count at the last check.
    computed: u64,
}

impl Watchdog {
    async fn pool_answers(&mut self) -> bool {
        let before = self.computed;
        let job = self.pool.tag(Pin::new("0000"));
        let answered = match tokio::time::timeout(self.every, job).await {
            Ok(Ok(_)) => true,
            // Saturated by real attempts: alive while it keeps computing.
            Ok(Err(_busy)) => self.pool.stats().computed > before,
            Err(_late) => false,
        };
        self.computed = self.pool.stats().computed;
        answered
    }
}

impl Worker for Watchdog {
    async fn work(&mut self, _cx: &Context) -> Result<Next, String> {
        let mut why = not_ready(self.store.as_ref(), &self.supervisor);
        if !self.pool_answers().await {
            why.push(format!(
                "the hash pool did not answer within {:?}",
                self.every
            ));
        }
        if !why.is_empty() {
            return Err(format!("watchdog not pinged: {}", why.join("; ")));
        }
        sd_notify::notify(false, &[sd_notify::NotifyState::Watchdog])
            .map(|_| Next::Idle)
            .map_err(|e| format!("cannot ping the systemd watchdog: {e}"))
    }

    async fn wait_for_work(&mut self) {
        tokio::time::sleep(self.every).await
    }
}

/// Every minute, writes the counts of refusal floods that stopped (`core::flood`).
pub fn spawn_flood_counts(core: &Arc<crate::core::Core>, supervisor: &Supervisor) {
    let every = Duration::from_secs(60);
    let worker = FloodCounts(Arc::clone(core), every);
    supervisor.spawn("audit flood counts", Settings::new(every, every), worker);
}

struct FloodCounts(Arc<crate::core::Core>, Duration);

impl Worker for FloodCounts {
    async fn work(&mut self, _cx: &Context) -> Result<Next, String> {
        self.0.close_floods();
        Ok(Next::Idle)
    }

    async fn wait_for_work(&mut self) {
        tokio::time::sleep(self.1).await
    }
}
