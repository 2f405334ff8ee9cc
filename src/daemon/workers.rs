//! The daemon's own background workers: audit pruning and the systemd watchdog, both under
//! the supervisor like every other loop.

use crate::config::{Config, StoreConfig};
use crate::domain::Timestamp;
use crate::store::Store;
use crate::worker::{Context, Next, Settings, Supervisor, Worker};
use std::sync::Arc;
use std::time::Duration;

const AUDIT_PRUNE_EVERY: Duration = Duration::from_secs(600);

pub fn spawn(config: &Config, store: &Arc<dyn Store>, supervisor: &Supervisor) {
    let prune = PruneAudit {
        store: Arc::clone(store),
        cfg: config.store.clone(),
    };
    let retry = Settings::new(Duration::from_secs(10), AUDIT_PRUNE_EVERY);
    supervisor.spawn("audit pruning", retry, prune);
    let mut usec = 0;
    if sd_notify::watchdog_enabled(false, &mut usec) && usec > 0 {
        let every = Duration::from_micros(usec / 2);
        let retry = Settings::new(every, every);
        supervisor.spawn("systemd watchdog", retry, Watchdog(every));
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

/// Pings systemd's watchdog at half its interval (`WatchdogSec=`).
struct Watchdog(Duration);

impl Worker for Watchdog {
    async fn work(&mut self, _cx: &Context) -> Result<Next, String> {
        sd_notify::notify(false, &[sd_notify::NotifyState::Watchdog])
            .map(|_| Next::Idle)
            .map_err(|e| format!("cannot ping the systemd watchdog: {e}"))
    }

    async fn wait_for_work(&mut self) {
        tokio::time::sleep(self.0).await
    }
}
