//! Self-service settings (`[policy] user_can_change`, `[recovery]`) and the recovery worker:
//! it takes forgotten-PIN requests off the store's queue and, within the caps (per person
//! and per device a day, persisted in the store across restarts) and for a known, enabled
//! user with an address, gives the user a pending PIN and queues the mail in the reset lane,
//! in the same store write as the request leaves the queue. Everything else is dropped,
//! audited. A burst over the site's hourly rate raises an alarm. Never sends mail itself;
//! never tells a device which it was.

use super::users::UserAdmin;
use crate::domain::{AlarmAction, AuditKind, PinAction, Timestamp, User};
use crate::notify::outbox::OutboxHandle;
use crate::store::{ForgotReset, ForgotRow, ForgotSettle, Settled, Store};
use crate::worker::{Context, Next, Worker};
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;
/// Requests settled per unit of work.
const BATCH: usize = 32;
/// How often the queue is looked at without a wake-up (rows left by a failed unit).
const POLL: Duration = Duration::from_secs(60);
/// The cap key counting every request in the site.
const SITE_KEY: &str = "site";

/// What people may do themselves (config parses `[policy] user_can_change` and
/// `[recovery]` into this).
#[derive(Clone, Debug, Default, Serialize)]
pub struct SelfServiceSettings {
    /// `CHANGE <id> <old> <new>` and its keypad and MQTT forms (off by default).
    pub user_can_change: bool,
    pub recovery: RecoverySettings,
}

/// `[recovery]`: forgotten PINs.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct RecoverySettings {
    /// `FORGOT <id>` is accepted (it also needs `[smtp]`: the PIN goes by mail).
    pub enabled: bool,
    /// Resets one person may get in 24 hours.
    pub per_person_per_day: u32,
    /// Requests one device may make in 24 hours (known ids or not).
    pub per_device_per_day: u32,
    /// Requests in the whole site in an hour above which an alarm is raised (0: never).
    pub spray_alarm_per_hour: u32,
    /// Whether the file has a `[recovery]` block (for the misconfiguration warnings).
    #[serde(skip)]
    pub declared: bool,
}

impl Default for RecoverySettings {
    fn default() -> Self {
        RecoverySettings {
            enabled: true,
            per_person_per_day: 3,
            per_device_per_day: 20,
            spray_alarm_per_hour: 50,
            declared: false,
        }
    }
}

/// Wakes the recovery worker when a request is queued.
#[derive(Clone, Default)]
pub struct RecoveryHandle(Arc<Notify>);

impl RecoveryHandle {
    pub fn wake(&self) {
        self.0.notify_one();
    }
}

pub fn person_key(id: &str) -> String {
    format!("person:{id}")
}

pub fn device_key(device: &str) -> String {
    format!("device:{device}")
}

fn ago(now: Timestamp, ms: i64) -> Timestamp {
    Timestamp::from_millis(now.millis().saturating_sub(ms))
}

/// Why a request does not become a reset, as the audit says it.
fn refusal(user: Option<&User>, now: Timestamp) -> Option<&'static str> {
    let Some(user) = user else {
        return Some("unknown id");
    };
    if !user.enabled {
        return Some("user disabled");
    }
    if user.valid_until.is_some_and(|t| t <= now) {
        return Some("account expired");
    }
    if user.email.as_deref().is_none_or(str::is_empty) {
        return Some("no email address on record");
    }
    None
}

pub struct Recovery {
    store: Arc<dyn Store>,
    admin: Arc<UserAdmin>,
    settings: RecoverySettings,
    outbox: OutboxHandle,
    handle: RecoveryHandle,
}

impl Recovery {
    pub fn new(
        store: Arc<dyn Store>,
        admin: Arc<UserAdmin>,
        settings: RecoverySettings,
        outbox: OutboxHandle,
        handle: RecoveryHandle,
    ) -> Self {
        Recovery {
            store,
            admin,
            settings,
            outbox,
            handle,
        }
    }

    fn count(&self, key: &str, since: Timestamp) -> Result<u32, String> {
        let times = self.store.recovery_times(key).map_err(|e| e.to_string())?;
        Ok(times.iter().filter(|t| **t >= since).count() as u32)
    }

    /// Raises the alarm when this request takes the site over its hourly rate (once per
    /// crossing; it is raised again after the rate has dropped below it).
    fn watch_spray(&self, now: Timestamp) -> Result<(), String> {
        let limit = self.settings.spray_alarm_per_hour;
        if limit == 0 {
            return Ok(());
        }
        let before = self.count(SITE_KEY, ago(now, HOUR_MS))?;
        if before == limit {
            tracing::warn!(limit, "forgotten-PIN requests above the site's hourly rate");
            self.store.record(AuditKind::Alarm {
                action: AlarmAction::ForgotSpray,
                detail: Some(format!(
                    "more than {limit} forgotten-PIN requests in an hour"
                )),
            });
        }
        Ok(())
    }

    /// Settles one request; true when a reset mail was queued.
    async fn settle(&self, row: &ForgotRow, now: Timestamp) -> Result<bool, String> {
        self.watch_spray(now)?;
        let day = ago(now, DAY_MS);
        let mut counted = vec![device_key(&row.device.0), SITE_KEY.to_string()];
        let user = self.store.user(&row.id).map_err(|e| e.to_string())?;
        let device_full = self.count(&counted[0], day)? >= self.settings.per_device_per_day;
        if device_full {
            // Its list already holds the cap: a longer one would change no answer.
            counted.remove(0);
        }
        let dropped = if device_full {
            Some("the device's daily cap is reached")
        } else if let Some(why) = refusal(user.as_ref(), now) {
            Some(why)
        } else if self.count(&person_key(&row.id), day)? >= self.settings.per_person_per_day {
            Some("the person's daily cap is reached")
        } else {
            None
        };
        let mut why = dropped.map(str::to_owned);
        let reset = match (dropped, &user) {
            (None, Some(user)) => match self.admin.forgotten_reset(user).await {
                Ok(Some(reset)) => Some(reset),
                Ok(None) => {
                    why = Some("no mail relay".into());
                    None
                }
                Err(e) => {
                    tracing::warn!(user = %user.id, error = %e, "cannot reset a forgotten PIN");
                    why = Some(format!("cannot reset: {e}"));
                    None
                }
            },
            _ => None,
        };
        let person = person_key(&row.id);
        let settle = ForgotSettle {
            seq: row.seq,
            counted: &counted,
            at: now,
            keep_after: day,
            reset: reset
                .as_ref()
                .zip(user.as_ref())
                .map(|((pending, mail), user)| ForgotReset {
                    id: &user.id,
                    seen: user.pin.as_ref(),
                    pending,
                    mail,
                    person_key: &person,
                }),
        };
        let settled = self
            .store
            .forgot_settle(&settle)
            .map_err(|e| e.to_string())?;
        let reset = match settled {
            Settled::Gone => return Ok(false),
            Settled::Reset => reset,
            Settled::Dropped => {
                if reset.is_some() {
                    why = Some("the user changed meanwhile".into());
                }
                None
            }
        };
        let device = format!("device {}", row.device);
        let (action, detail) = match why {
            None => (PinAction::ResetIssued, device),
            Some(why) => (PinAction::ResetDropped, format!("{device}: {why}")),
        };
        // Only an id that names a user is audited: anything else may be a mistyped PIN.
        self.store.record(AuditKind::Pin {
            action,
            user: user.as_ref().map(|u| u.id.clone()).unwrap_or_default(),
            detail: Some(detail),
        });
        if let Some((_, mail)) = &reset {
            self.admin.reset_queued(mail);
        }
        Ok(reset.is_some())
    }
}

impl Worker for Recovery {
    async fn work(&mut self, _cx: &Context) -> Result<Next, String> {
        let rows = self.store.forgot_peek(BATCH).map_err(|e| e.to_string())?;
        let mut queued = false;
        for row in &rows {
            queued |= self.settle(row, Timestamp::now()).await?;
        }
        if queued {
            self.outbox.wake();
        }
        Ok(if rows.len() == BATCH {
            Next::Again
        } else {
            Next::Idle
        })
    }

    async fn wait_for_work(&mut self) {
        let _ = tokio::time::timeout(POLL, self.handle.0.notified()).await;
    }
}
