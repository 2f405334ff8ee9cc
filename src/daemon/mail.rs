//! Wiring of the PIN lifecycle: templates (checked at start), the composer that seals PIN
//! mail into the outbox, the admin service with the lifecycle settings, and the lifecycle
//! worker (sweeper, reminders, auto generation).

use crate::config::Config;
use crate::crypto::{HashPool, Hasher};
use crate::lifecycle::mail::Composer;
use crate::lifecycle::sweeper::Sweeper;
use crate::lifecycle::users::UserAdmin;
use crate::notify::{Sealer, Templates};
use crate::store::Store;
use crate::worker::{Settings, Supervisor};
use anyhow::Context;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// The key sealing queued mail bodies, derived from the pepper.
const SEAL_PURPOSE: &str = "mail outbox v1";

pub struct Lifecycle {
    pub templates: Arc<Templates>,
    /// None without `[smtp]`: nothing is queued.
    pub composer: Option<Arc<Composer>>,
    pub users: Arc<UserAdmin>,
    /// Woken whenever mail is queued.
    pub mail_queued: Arc<Notify>,
}

pub fn sealer(hasher: &Hasher) -> Sealer {
    Sealer::new(&hasher.derive_key(SEAL_PURPOSE))
}

pub fn build(
    config: &Config,
    store: &Arc<dyn Store>,
    pool: &Arc<HashPool>,
    hasher: &Hasher,
) -> anyhow::Result<Lifecycle> {
    let templates = Arc::new(
        Templates::load(&config.mail)
            .map_err(anyhow::Error::msg)
            .context("mail templates: fix the template or [mail] templates")?,
    );
    let composer = config
        .smtp
        .as_ref()
        .map(|_| Arc::new(Composer::new(Arc::clone(&templates), sealer(hasher))));
    let mail_queued = Arc::new(Notify::new());
    let users = UserAdmin::new(
        Arc::clone(store),
        Arc::clone(pool),
        config.policy.pin_policy(),
        config.policy.generated_length,
        config.policy.default_expiry,
        config.lockout,
    )
    .with_lifecycle(
        config.lifecycle.clone(),
        composer.clone(),
        Arc::clone(&mail_queued),
    );
    Ok(Lifecycle {
        templates,
        composer,
        users: Arc::new(users),
        mail_queued,
    })
}

/// The lifecycle worker: its first unit runs now, catching up on what fell due while the
/// daemon was down.
pub fn spawn_sweeper(
    config: &Config,
    store: &Arc<dyn Store>,
    life: &Lifecycle,
    supervisor: &Supervisor,
) {
    let sweeper = Sweeper::new(
        Arc::clone(store),
        Arc::clone(&life.users),
        config.lifecycle.clone(),
        life.composer.clone(),
        Arc::clone(&life.mail_queued),
    );
    let retry = Settings::new(Duration::from_secs(5), Duration::from_secs(300));
    supervisor.spawn("pin lifecycle", retry, sweeper);
}
