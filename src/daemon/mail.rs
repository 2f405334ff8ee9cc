//! Wiring of the PIN lifecycle: templates (checked at start), the composer that seals PIN
//! mail into the outbox, the admin service with the lifecycle settings, and the lifecycle
//! worker (sweeper, reminders, auto generation).

use crate::config::Config;
use crate::crypto::{HashPool, Hasher};
use crate::domain::{AuditKind, Lane, QueuedMail, Timestamp};
use crate::lifecycle::mail::Composer;
use crate::lifecycle::sweeper::Sweeper;
use crate::lifecycle::users::UserAdmin;
use crate::live::Live;
use crate::notify::outbox::{Currency, MailQueue, MailWorker, OutboxHandle, OutboxSettings};
use crate::notify::{Mailer, Sealer, Templates};
use crate::store::Store;
use crate::worker::{Settings, Supervisor};
use anyhow::Context;
use std::sync::Arc;
use std::time::Duration;

/// The key sealing queued mail bodies, derived from the pepper.
const SEAL_PURPOSE: &str = "mail outbox v1";

pub struct Lifecycle {
    /// Replaced by a reload (SIGHUP).
    pub templates: Live<Templates>,
    /// None without `[smtp]`: nothing is queued.
    pub composer: Option<Arc<Composer>>,
    pub users: Arc<UserAdmin>,
    /// The outbox worker's wake-up and status (idle without `[smtp]`).
    pub outbox: OutboxHandle,
    worker: Option<MailWorker<StoreQueue>>,
}

pub fn sealer(hasher: &Hasher) -> Sealer {
    Sealer::new(&hasher.derive_key(SEAL_PURPOSE))
}

pub fn build(
    config: &Config,
    store: &Arc<dyn Store>,
    pool: &Arc<HashPool>,
    hasher: &Hasher,
    reveal: Option<crate::lifecycle::links::Reveal>,
) -> anyhow::Result<Lifecycle> {
    let templates = Live::new(
        Templates::load(&config.mail)
            .map_err(anyhow::Error::msg)
            .context("mail templates: fix the template or [mail] templates")?,
    );
    let composer = config
        .smtp
        .as_ref()
        .map(|_| Arc::new(Composer::new(templates.clone(), sealer(hasher))));
    let worker = match &config.smtp {
        Some(smtp) => Some(outbox_worker(config, smtp, store, hasher)?),
        None => None,
    };
    let outbox = worker.as_ref().map(MailWorker::handle).unwrap_or_default();
    let users = UserAdmin::new(
        Arc::clone(store),
        Arc::clone(pool),
        config.policy.pin_policy(),
        config.policy.generated_length,
        config.policy.default_expiry,
    )
    .with_lifecycle(config.lifecycle.clone(), composer.clone(), outbox.clone())
    .with_guests(config.guests.clone())
    .with_reveal(reveal);
    Ok(Lifecycle {
        templates,
        composer,
        users: Arc::new(users),
        outbox,
        worker,
    })
}

fn outbox_worker(
    config: &Config,
    smtp: &crate::notify::SmtpSettings,
    store: &Arc<dyn Store>,
    hasher: &Hasher,
) -> anyhow::Result<MailWorker<StoreQueue>> {
    // Fail fast on a secret file that is missing or open to others.
    crate::notify::transport::check_secrets(smtp).map_err(anyhow::Error::msg)?;
    let mailer = Mailer::new(smtp)
        .map_err(anyhow::Error::msg)
        .context("[smtp]")?;
    let m = &config.mail;
    let mut settings = OutboxSettings::new(m.max_age, m.per_minute, m.per_day);
    settings.retry_initial = Duration::from_secs(5);
    settings.retry_max = Duration::from_secs(600);
    let queue = Arc::new(StoreQueue(Arc::clone(store)));
    Ok(MailWorker::new(
        queue,
        Arc::new(mailer),
        Arc::new(sealer(hasher)),
        settings,
    ))
}

/// The outbox worker, when `[smtp]` is configured.
pub fn spawn_outbox(life: &mut Lifecycle, supervisor: &Supervisor) {
    if let Some(worker) = life.worker.take() {
        let retry = Settings::new(Duration::from_secs(1), Duration::from_secs(60));
        supervisor.spawn("mail outbox", retry, worker);
    }
}

/// The outbox as the mail worker sees it, over the store. A message is current while its
/// user still holds the PIN it reports, unexpired.
struct StoreQueue(Arc<dyn Store>);

impl MailQueue for StoreQueue {
    fn peek_after(&self, lane: Lane, after: u64, limit: usize) -> Result<Vec<QueuedMail>, String> {
        self.0
            .mail_peek_after(lane, after, limit)
            .map_err(|e| e.to_string())
    }

    fn update(&self, mail: &QueuedMail) -> Result<(), String> {
        self.0
            .mail_update(mail)
            .map(drop)
            .map_err(|e| e.to_string())
    }

    fn remove(&self, lane: Lane, seq: u64) -> Result<(), String> {
        self.0
            .mail_remove(lane, seq)
            .map(drop)
            .map_err(|e| e.to_string())
    }

    fn check(&self, mail: &QueuedMail) -> Result<Currency, String> {
        let user = self.0.user(&mail.user).map_err(|e| e.to_string())?;
        let Some(user) = user else {
            return Ok(Currency::Superseded("the user was removed".into()));
        };
        let Some(version) = mail.pin_set_at else {
            return Ok(Currency::Current);
        };
        // The PIN it reports is the user's PIN or, for a forgotten-PIN mail, the pending one.
        let reported = [user.pin, user.pending_pin]
            .into_iter()
            .flatten()
            .find(|p| p.set_at == version);
        Ok(match reported {
            None => Currency::Superseded("the PIN was replaced, removed or swept".into()),
            Some(p) if p.expires_at.is_some_and(|e| e <= Timestamp::now()) => {
                Currency::Superseded("the PIN expired".into())
            }
            Some(_) => Currency::Current,
        })
    }

    fn audit(&self, event: AuditKind) {
        self.0.record(event);
    }
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
        life.outbox.clone(),
    );
    let retry = Settings::new(Duration::from_secs(5), Duration::from_secs(300));
    supervisor.spawn("pin lifecycle", retry, sweeper);
}
