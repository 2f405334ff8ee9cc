//! The lifecycle worker: every `sweep_every` it ends guests that expired or lost their
//! sponsor (audited, `UserAdmin::sweep_guests`), deletes expired PINs (audited), queues the
//! expiry reminders that are due (each exactly once per PIN version and threshold, recorded
//! by the store in the transaction that queues it), gives a generated PIN to users who never
//! had one where `generation = "auto"`, and forgets retired tags past the cooling-off. Its
//! first unit runs at start, so whatever fell due while the daemon was down is caught up.
//! Talks to the store and the admin service; never sends mail itself.

use super::mail::{About, Composer};
use super::settings::{Generation, LifecycleSettings};
use super::users::UserAdmin;
use crate::domain::{
    AuditKind, Lane, MailAction, MailKind, PinAction, Timestamp, User, UserOrigin,
};
use crate::notify::outbox::OutboxHandle;
use crate::store::{Store, USER_PAGE};
use crate::worker::{Context, Next, Worker};
use std::sync::Arc;
use std::time::Duration;

const PRUNE_EVERY: Duration = Duration::from_secs(3600);

pub struct Sweeper {
    store: Arc<dyn Store>,
    admin: Arc<UserAdmin>,
    settings: LifecycleSettings,
    composer: Option<Arc<Composer>>,
    /// The outbox worker, woken when mail is queued.
    outbox: OutboxHandle,
    last_prune: Option<tokio::time::Instant>,
}

impl Sweeper {
    pub fn new(
        store: Arc<dyn Store>,
        admin: Arc<UserAdmin>,
        settings: LifecycleSettings,
        composer: Option<Arc<Composer>>,
        outbox: OutboxHandle,
    ) -> Self {
        Sweeper {
            store,
            admin,
            settings,
            composer,
            outbox,
            last_prune: None,
        }
    }

    fn sweep(&self, now: Timestamp) -> Result<(), String> {
        let swept = self.store.sweep_expired(now).map_err(|e| e.to_string())?;
        for user in swept {
            let at = user.pin.as_ref().and_then(|p| p.expires_at);
            tracing::info!(user = %user.id, "deleted an expired PIN");
            self.store.record(AuditKind::Pin {
                action: PinAction::Expired,
                user: user.id,
                detail: at.map(|t| format!("expired at {t}")),
            });
        }
        Ok(())
    }

    /// The reminder due for `user` now, if any: the smallest threshold already reached.
    /// Thresholds not shorter than the PIN's whole validity are skipped (the new-PIN mail
    /// said until when); after downtime only the most urgent one goes out.
    fn due_threshold(&self, user: &User, now: Timestamp) -> Option<Duration> {
        let pin = user.pin.as_ref()?;
        let expires = pin.expires_at.filter(|e| *e > now)?;
        let validity = pin.set_at.until(expires);
        let left = now.until(expires);
        self.settings
            .expiry_warning
            .iter()
            .copied()
            .filter(|t| *t < validity && left <= *t)
            .min()
    }

    fn remind(&self, user: &User, now: Timestamp) -> Result<bool, String> {
        let (Some(composer), Some(threshold)) = (&self.composer, self.due_threshold(user, now))
        else {
            return Ok(false);
        };
        let Some(pin) = &user.pin else {
            return Ok(false);
        };
        let about = About {
            kind: MailKind::ExpiryReminder,
            lane: Lane::Bulk,
            pin: None,
            sponsor: None,
        };
        let Some(mail) = composer.compose(user, about)? else {
            return Ok(false);
        };
        let queued = self
            .store
            .queue_reminder(&user.id, pin.set_at, threshold.as_secs(), now, &mail)
            .map_err(|e| e.to_string())?;
        if queued {
            self.store.record(AuditKind::Mail {
                action: MailAction::Queued,
                kind: MailKind::ExpiryReminder,
                user: Some(user.id.clone()),
                lane: Some(Lane::Bulk),
                detail: Some(format!("{}s before expiry", threshold.as_secs())),
            });
        }
        Ok(queued)
    }

    /// A user `generation = "auto"` owes a PIN: never had one, enabled, with an address.
    fn owed_a_pin(&self, user: &User) -> bool {
        self.settings.generation == Generation::Auto
            && user.pin.is_none()
            && !user.pin_issued
            && user.enabled
            && user.email.as_deref().is_some_and(|e| !e.is_empty())
    }

    async fn scan(&self, now: Timestamp) -> Result<usize, String> {
        let reminders = self.composer.is_some() && !self.settings.expiry_warning.is_empty();
        if !reminders && self.settings.generation != Generation::Auto {
            return Ok(0);
        }
        let mut queued = 0;
        let mut after: Option<String> = None;
        loop {
            let page = self
                .store
                .users_after(after.as_deref(), USER_PAGE)
                .map_err(|e| e.to_string())?;
            let full = page.len() == USER_PAGE;
            after = page.last().map(|u| u.id.clone());
            for user in page {
                queued += self.scan_user(&user, now, reminders).await?;
            }
            if !full {
                return Ok(queued);
            }
        }
    }

    /// What one user is owed by the scan: a reminder, a generated PIN; how many queued.
    async fn scan_user(
        &self,
        user: &User,
        now: Timestamp,
        reminders: bool,
    ) -> Result<usize, String> {
        let mut queued = 0;
        if reminders && self.remind(user, now)? {
            queued += 1;
        }
        if self.owed_a_pin(user) {
            {
                match self.admin.provision(&user.id).await {
                    Ok(true) => {
                        queued += 1;
                        self.store.record(AuditKind::Pin {
                            action: PinAction::Generated,
                            user: user.id.clone(),
                            detail: Some(match user.origin {
                                UserOrigin::Upstream => "directory carries no PIN".into(),
                                UserOrigin::Local => "user had no PIN".into(),
                            }),
                        });
                    }
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(user = %user.id, error = %e, "could not generate a PIN")
                    }
                }
            }
        }
        Ok(queued)
    }
}

impl Worker for Sweeper {
    async fn work(&mut self, _cx: &Context) -> Result<Next, String> {
        let now = Timestamp::now();
        self.admin.sweep_guests(now).map_err(|e| e.to_string())?;
        self.sweep(now)?;
        if self.scan(now).await? > 0 {
            self.outbox.wake();
        }
        let due = self.last_prune.is_none_or(|at| at.elapsed() >= PRUNE_EVERY);
        if due {
            let before = Timestamp::from_millis(
                now.millis()
                    .saturating_sub(self.settings.cooling_off.as_millis() as i64),
            );
            self.store
                .prune_lifecycle(before)
                .map_err(|e| e.to_string())?;
            self.store.link_prune(now).map_err(|e| e.to_string())?;
            self.last_prune = Some(tokio::time::Instant::now());
        }
        Ok(Next::Idle)
    }

    async fn wait_for_work(&mut self) {
        tokio::time::sleep(self.settings.sweep_every).await
    }
}
