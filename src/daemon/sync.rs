//! Wires directory sync: one source and engine per `[[directory]]`, the sync service, and
//! the ticker that tells the core which sources are stale.

use crate::config::{Config, DirectorySource};
use crate::core::Staleness;
use crate::crypto::{HashPool, Hasher};
use crate::store::Store;
use crate::sync::csv::CsvSource;
use crate::sync::engine::{Engine, EngineSettings};
use crate::sync::ldap::LdapSource;
use crate::sync::scim::ScimSource;
use crate::sync::source::Source;
use crate::sync::SyncService;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

const STALENESS_CHECK: Duration = Duration::from_secs(1);

pub fn engines(
    config: &Config,
    store: &Arc<dyn Store>,
    pool: &Arc<HashPool>,
    hasher: &Hasher,
) -> anyhow::Result<Vec<Engine>> {
    let mut out = Vec::new();
    for d in &config.directories {
        let (kind, source, backoff_max): (_, Arc<dyn Source>, _) = match &d.source {
            DirectorySource::Csv(s) => {
                let key = hasher.derive_key(&format!("csv directory {}", d.name));
                // A file costs nothing to look at: retry at least every interval.
                let cap = d.interval.max(Duration::from_secs(1));
                ("csv", Arc::new(CsvSource::new(s.clone(), key)), cap)
            }
            DirectorySource::Ldap(l) => {
                let settings = crate::config::ldap_settings(l).map_err(anyhow::Error::msg)?;
                let source = LdapSource::new(settings)
                    .map_err(|e| anyhow::anyhow!("directory {}: {e}", d.name))?;
                ("ldap", Arc::new(source), Duration::from_secs(15 * 60))
            }
            DirectorySource::Scim(s) => {
                let source = ScimSource::new((**s).clone()).map_err(anyhow::Error::msg)?;
                ("scim", Arc::new(source), Duration::from_secs(15 * 60))
            }
        };
        let settings = EngineSettings {
            interval: d.interval,
            max_delete_share: d.max_delete_share,
            max_staleness: d.max_staleness,
            backoff_initial: Duration::from_secs(10).min(backoff_max),
            backoff_max,
        };
        out.push(Engine::new(
            d.name.clone(),
            kind,
            source,
            Arc::clone(store),
            Arc::clone(pool),
            settings,
        ));
    }
    Ok(out)
}

/// Keeps `stale` in step with the sources' last successful runs.
pub async fn watch_staleness(
    sync: Arc<SyncService>,
    stale: Arc<Staleness>,
    shutdown: CancellationToken,
) {
    let mut reported = Vec::new();
    loop {
        let now_stale = sync.stale_sources();
        if now_stale != reported {
            tracing::warn!(sources = ?now_stale, "directories past max_staleness changed");
            reported = now_stale.clone();
        }
        stale.set(now_stale);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(STALENESS_CHECK) => {}
        }
    }
}

pub fn start(
    engines: Vec<Engine>,
    stale: Arc<Staleness>,
    tasks: &TaskTracker,
    shutdown: &CancellationToken,
) -> Arc<SyncService> {
    let sync = Arc::new(SyncService::spawn(engines, tasks, shutdown));
    tasks.spawn(watch_staleness(Arc::clone(&sync), stale, shutdown.clone()));
    sync
}
