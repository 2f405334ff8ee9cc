//! Wiring of self-service: the core's `PinService` over the admin service (a person's own
//! new PIN) and the store's forgotten-PIN queue, and the recovery worker that settles the
//! queue. Knows both sides; decides nothing itself.

use super::mail::Lifecycle;
use crate::config::Config;
use crate::core::selfservice::{PinService, SelfService, ServiceFuture};
use crate::domain::{AuditKind, DeviceId, Pin, PinAction, Timestamp};
use crate::lifecycle::selfservice::{Recovery, RecoveryHandle};
use crate::lifecycle::users::{AdminError, UserAdmin};
use crate::store::{ForgotRow, Store};
use crate::worker::{Settings, Supervisor};
use std::sync::Arc;
use std::time::Duration;

/// What the person is told when a change failed for a reason that is not the policy's.
const CHANGE_FAILED: &str = "the PIN could not be changed; try again later";

struct DaemonPins {
    users: Arc<UserAdmin>,
    store: Arc<dyn Store>,
    recovery: RecoveryHandle,
}

impl PinService for DaemonPins {
    fn change<'a>(&'a self, id: &'a str, new: Pin) -> ServiceFuture<'a, Result<(), String>> {
        Box::pin(async move {
            match self.users.change_own(id, new).await {
                Ok(()) => Ok(()),
                Err(AdminError::Policy(violation)) => {
                    self.store.record(AuditKind::Pin {
                        action: PinAction::ChangeRefused,
                        user: id.into(),
                        detail: Some(violation.to_string()),
                    });
                    Err(violation.to_string())
                }
                Err(e) => {
                    tracing::error!(user = %id, error = %e, "a PIN change failed");
                    Err(CHANGE_FAILED.into())
                }
            }
        })
    }

    /// The same work for every id: one queued row, flushed, one audit event.
    fn forgot<'a>(
        &'a self,
        id: &'a str,
        device: &'a DeviceId,
    ) -> ServiceFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let row = ForgotRow {
                seq: 0,
                id: id.into(),
                device: device.clone(),
                at: Timestamp::now(),
            };
            let store = Arc::clone(&self.store);
            tokio::task::spawn_blocking(move || {
                store.forgot_push(&row)?;
                store.flush()
            })
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
            self.store.record(AuditKind::Pin {
                action: PinAction::ResetRequested,
                user: id.into(),
                detail: Some(format!("device {device}")),
            });
            self.recovery.wake();
            Ok(())
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
