//! The daemon's `Actions`: after a grant, unlock the device's door (if it has one) and audit
//! what the actuator did. Print release joins here later.

use crate::action::door::{Door, UnlockResult};
use crate::core::{ActionFuture, ActionReport, Actions};
use crate::domain::{AuditKind, DeviceId};
use crate::store::Store;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The audit sink a door task reports relock failures through.
pub fn door_audit(store: Arc<dyn Store>, door: DeviceId) -> crate::action::door::DoorAudit {
    Arc::new(move |action: &str, detail: Option<String>| {
        let kind = AuditKind::Door {
            door: door.clone(),
            user: None,
            action: action.into(),
            detail,
        };
        store.record(kind);
    })
}

/// The MQTT event outbox, over the store.
pub struct StoreOutbox(pub Arc<dyn Store>);

impl crate::frontend::mqtt::EventOutbox for StoreOutbox {
    fn peek(&self, limit: usize) -> Result<crate::frontend::mqtt::Pending, String> {
        let batch = self.0.outbox_peek(limit).map_err(|e| e.to_string())?;
        Ok(crate::frontend::mqtt::Pending {
            events: batch.events,
            dropped: batch.dropped,
            waiting: batch.pending,
        })
    }

    fn ack(&self, upto: u64, dropped: u64) -> Result<(), String> {
        self.0.outbox_ack(upto, dropped).map_err(|e| e.to_string())
    }
}

pub struct DaemonActions {
    pub doors: BTreeMap<DeviceId, Door>,
    pub store: Arc<dyn Store>,
}

impl DaemonActions {
    fn audit(&self, door: &DeviceId, user: &str, action: &str, detail: Option<String>) {
        let kind = AuditKind::Door {
            door: door.clone(),
            user: Some(user.into()),
            action: action.into(),
            detail,
        };
        self.store.record(kind);
    }
}

impl Actions for DaemonActions {
    fn after_grant<'a>(&'a self, device: &'a DeviceId, user: &'a str) -> ActionFuture<'a> {
        Box::pin(async move {
            let mut report = ActionReport::default();
            if let Some(door) = self.doors.get(device) {
                match door.unlock(user).await {
                    UnlockResult::Unlocked => self.audit(device, user, "unlock", None),
                    UnlockResult::Extended => self.audit(device, user, "unlock_extended", None),
                    UnlockResult::Failed(e) => {
                        tracing::error!(door = %device, error = %e, "door actuator failed");
                        self.audit(device, user, "actuator_failed", Some(e));
                        report.failed = true;
                    }
                }
            }
            report
        })
    }
}
