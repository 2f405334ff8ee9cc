//! Wires directory sync: one source and engine per `[[directory]]`, and the sync service,
//! whose workers tell the core directly which sources are stale.

use crate::config::{Config, DirectorySource};
use crate::core::Staleness;
use crate::crypto::{HashPool, Hasher};
use crate::store::Store;
use crate::sync::csv::CsvSource;
use crate::sync::engine::{Engine, EngineSettings};
use crate::sync::ldap::LdapSource;
use crate::sync::scim::ScimSource;
use crate::sync::source::Source;
use crate::sync::weak::PinCheck;
use crate::sync::SyncService;
use crate::worker::Supervisor;
use std::sync::Arc;
use std::time::Duration;

/// `pins`: the site's PIN policy and what a sync does with a directory PIN that breaks it.
pub fn engines(
    config: &Config,
    store: &Arc<dyn Store>,
    pool: &Arc<HashPool>,
    hasher: &Hasher,
    pins: &PinCheck,
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
            pins.clone(),
        ));
    }
    Ok(out)
}

/// Starts one worker per source; each publishes its staleness to the core as it changes.
pub fn start(
    engines: Vec<Engine>,
    stale: Arc<Staleness>,
    supervisor: &Supervisor,
) -> Arc<SyncService> {
    let publish = Arc::new(move |names: Vec<String>| stale.set(names));
    Arc::new(SyncService::spawn(engines, supervisor, publish))
}
