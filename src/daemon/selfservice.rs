//! Wiring of self-service: the core's `PinService` over the admin service (a person's own
//! new PIN) and the store's forgotten-PIN queue, and the recovery worker that settles the
//! queue. Knows both sides; decides nothing itself.

use super::mail::Lifecycle;
use crate::config::Config;
use crate::core::selfservice::{
    ChangeError, ForgotOutcome, PinService, SelfService, ServiceFuture,
};
use crate::domain::{AuditKind, DeviceId, Pin, PinAction, Timestamp};
use crate::lifecycle::policy::PolicyViolation;
use crate::lifecycle::selfservice::{device_key, Recovery, RecoveryHandle};
use crate::lifecycle::users::{AdminError, UserAdmin};
use crate::store::{ForgotRow, Store};
use crate::worker::{Settings, Supervisor};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the person is told when a change failed for a reason that is not the policy's.
const CHANGE_FAILED: &str = "the PIN could not be changed; try again later";
/// Forgotten-PIN requests waiting for the worker beyond which a new one is refused (BUSY).
pub const FORGOT_QUEUE_MAX: usize = 1_000;
const DAY_MS: i64 = 86_400_000;

struct DaemonPins {
    users: Arc<UserAdmin>,
    store: Arc<dyn Store>,
    recovery: RecoveryHandle,
    /// `[recovery] per_device_per_day`, applied when a request is queued.
    per_device_per_day: u32,
    /// Makes a device's count and its push one step (two requests cannot both take the
    /// last place).
    queueing: Arc<Mutex<()>>,
}

/// Whether one more request from `device` may be queued: the queue is below its bound and
/// the device's requests in the last day (settled, as the store keeps them, and still
/// queued) are below its cap. Independent of the id, so BUSY says nothing about it.
fn may_queue(
    store: &dyn Store,
    device: &DeviceId,
    cap: u32,
    now: Timestamp,
) -> crate::store::Result<bool> {
    let queued = store.forgot_peek(FORGOT_QUEUE_MAX)?;
    if queued.len() >= FORGOT_QUEUE_MAX {
        return Ok(false);
    }
    let day = Timestamp::from_millis(now.millis().saturating_sub(DAY_MS));
    let settled = store.recovery_times(&device_key(&device.0))?;
    let count = settled.iter().filter(|t| **t >= day).count()
        + queued.iter().filter(|r| r.device == *device).count();
    Ok(count < cap as usize)
}

impl PinService for DaemonPins {
    fn change<'a>(&'a self, id: &'a str, new: Pin) -> ServiceFuture<'a, Result<(), ChangeError>> {
        Box::pin(async move {
            match self.users.change_own(id, new).await {
                Ok(()) => Ok(()),
                Err(AdminError::Policy(violation)) => {
                    self.store.record(AuditKind::Pin {
                        action: PinAction::ChangeRefused,
                        user: id.into(),
                        detail: Some(violation.to_string()),
                    });
                    // Not unique: someone holds it. The core counts it as a failure.
                    Err(match violation {
                        PolicyViolation::NotUnique => ChangeError::Taken(violation.to_string()),
                        _ => ChangeError::Refused(violation.to_string()),
                    })
                }
                Err(e) => {
                    tracing::error!(user = %id, error = %e, "a PIN change failed");
                    Err(ChangeError::Refused(CHANGE_FAILED.into()))
                }
            }
        })
    }

    /// The same work for every id: the device's count, one queued row, flushed, one audit
    /// event naming the device only (what was typed may be a PIN; the worker audits the
    /// user when it names one).
    fn forgot<'a>(
        &'a self,
        id: &'a str,
        device: &'a DeviceId,
    ) -> ServiceFuture<'a, Result<ForgotOutcome, String>> {
        Box::pin(async move {
            let now = Timestamp::now();
            let row = ForgotRow {
                seq: 0,
                id: id.into(),
                device: device.clone(),
                at: now,
            };
            let store = Arc::clone(&self.store);
            let queueing = Arc::clone(&self.queueing);
            let cap = self.per_device_per_day;
            let queued = tokio::task::spawn_blocking(move || {
                let _one = queueing.lock().unwrap_or_else(|e| e.into_inner());
                if !may_queue(&*store, &row.device, cap, now)? {
                    return Ok(false);
                }
                store.forgot_push(&row)?;
                store.flush()?;
                Ok::<_, crate::store::StoreError>(true)
            })
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
            if !queued {
                tracing::warn!(device = %device, "forgotten-PIN request refused: the device's daily cap or the queue is full");
                return Ok(ForgotOutcome::Busy);
            }
            self.store.record(AuditKind::Pin {
                action: PinAction::ResetRequested,
                user: String::new(),
                detail: Some(format!("device {device}")),
            });
            self.recovery.wake();
            Ok(ForgotOutcome::Accepted)
        })
    }
}

/// The core's self-service: change as `[policy] user_can_change` says; forgotten PINs
/// when `[recovery]` is on and there is a mail relay to send them.
pub fn build(
    config: &Config,
    store: &Arc<dyn Store>,
    life: &Lifecycle,
    recovery: &RecoveryHandle,
) -> SelfService {
    let ss = &config.self_service;
    SelfService {
        service: Arc::new(DaemonPins {
            users: Arc::clone(&life.users),
            store: Arc::clone(store),
            recovery: recovery.clone(),
            per_device_per_day: ss.recovery.per_device_per_day,
            queueing: Arc::default(),
        }),
        change: ss.user_can_change,
        forgot: ss.recovery.enabled && config.smtp.is_some(),
    }
}

/// The recovery worker; its first unit runs now, settling requests left by a restart.
pub fn spawn_recovery(
    config: &Config,
    store: &Arc<dyn Store>,
    life: &Lifecycle,
    recovery: RecoveryHandle,
    supervisor: &Supervisor,
) {
    let worker = Recovery::new(
        Arc::clone(store),
        Arc::clone(&life.users),
        config.self_service.recovery,
        life.outbox.clone(),
        recovery,
    );
    let retry = Settings::new(Duration::from_secs(5), Duration::from_secs(300));
    supervisor.spawn("pin recovery", retry, worker);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{ForgotSettle, MemoryStore};

    fn row(id: &str, device: &str) -> ForgotRow {
        ForgotRow {
            seq: 0,
            id: id.into(),
            device: DeviceId(device.into()),
            at: Timestamp::now(),
        }
    }

    #[test]
    fn a_device_is_refused_at_its_daily_cap_counting_settled_and_queued_requests() {
        let store = MemoryStore::new();
        let lobby = DeviceId("lobby".into());
        let now = Timestamp::now();
        // Two settled yesterday-and-today, one still queued: the cap of 3 is reached,
        // whatever the ids were.
        let counted = [device_key("lobby")];
        for (id, at) in [
            ("alice", now.millis() - 1_000),
            ("482913", now.millis() - 2_000),
        ] {
            let seq = store.forgot_push(&row(id, "lobby")).unwrap();
            let settle = ForgotSettle {
                seq,
                counted: &counted,
                at: Timestamp::from_millis(at),
                keep_after: Timestamp::from_millis(0),
                reset: None,
            };
            assert_eq!(
                store.forgot_settle(&settle).unwrap(),
                crate::store::Settled::Dropped
            );
        }
        assert!(
            store.forgot_peek(10).unwrap().is_empty(),
            "settled rows leave the queue"
        );
        assert!(may_queue(&store, &lobby, 3, now).unwrap());
        store.forgot_push(&row("nobody", "lobby")).unwrap();
        assert!(!may_queue(&store, &lobby, 3, now).unwrap());
        // Another device has its own count; a day later the settled ones no longer count.
        assert!(may_queue(&store, &DeviceId("door".into()), 3, now).unwrap());
        let tomorrow = Timestamp::from_millis(now.millis() + DAY_MS);
        assert!(may_queue(&store, &lobby, 3, tomorrow).unwrap());
    }

    #[test]
    fn the_queue_is_bounded() {
        let store = MemoryStore::new();
        for n in 0..FORGOT_QUEUE_MAX {
            store
                .forgot_push(&row(&format!("u{n}"), &format!("d{n}")))
                .unwrap();
        }
        let fresh = DeviceId("fresh".into());
        assert!(!may_queue(&store, &fresh, 20, Timestamp::now()).unwrap());
    }
}
