//! The daemon's `Actions`: after a grant, unlock the device's door (if it has one) or
//! release the person's print jobs at it (if it has a print queue), and audit what the
//! actuator or CUPS did.

use crate::action::door::{Door, UnlockResult};
use crate::action::print::{PrintRelease, Released, Trouble};
use crate::core::{ActionFuture, ActionReport, Actions};
use crate::domain::{AuditKind, DeviceId, DoorAction, PrintAction};
use crate::store::Store;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The terminal's notice when the printer reports an error state: jobs stay held.
pub const PRINTER_UNAVAILABLE: &str = "printer-unavailable";
/// The terminal's notice when CUPS cannot be reached, times out or refuses pinwarden.
pub const SERVER_UNAVAILABLE: &str = "print-server-unavailable";

/// The audit sink a door task reports relock failures through.
pub fn door_audit(store: Arc<dyn Store>, door: DeviceId) -> crate::action::door::DoorAudit {
    Arc::new(move |action: DoorAction, detail: Option<String>| {
        let kind = AuditKind::Door {
            door: door.clone(),
            user: None,
            action,
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
    pub print: Option<PrintRelease>,
    pub store: Arc<dyn Store>,
}

impl DaemonActions {
    fn audit(&self, door: &DeviceId, user: &str, action: DoorAction, detail: Option<String>) {
        let kind = AuditKind::Door {
            door: door.clone(),
            user: Some(user.into()),
            action,
            detail,
        };
        self.store.record(kind);
    }

    /// Audits a release and turns it into the report the terminal's reply is built from.
    fn print_report(&self, device: &DeviceId, user: &str, done: Released) -> ActionReport {
        let (action, detail, notice) = match &done.trouble {
            None => (PrintAction::Released, None, None),
            Some(Trouble::Printer(reasons)) => {
                tracing::warn!(%device, reasons, "printer reports trouble: jobs stay held");
                (
                    PrintAction::PrinterUnavailable,
                    Some(reasons.clone()),
                    Some(PRINTER_UNAVAILABLE),
                )
            }
            Some(Trouble::Server(e)) => {
                tracing::error!(%device, error = %e, "print release failed");
                (
                    PrintAction::ServerUnavailable,
                    Some(e.to_string()),
                    Some(SERVER_UNAVAILABLE),
                )
            }
        };
        let detail = match (done.moved, detail) {
            (0, d) => d,
            (n, None) => Some(format!("moved {n} from the hold queue")),
            (n, Some(d)) => Some(format!("moved {n} from the hold queue; {d}")),
        };
        self.store.record(AuditKind::Print {
            device: device.clone(),
            user: user.into(),
            action,
            released: done.released,
            detail,
        });
        ActionReport {
            released: done.released,
            failed: notice.is_some(),
            notice,
        }
    }
}

impl Actions for DaemonActions {
    fn after_grant<'a>(&'a self, device: &'a DeviceId, user: &'a str) -> ActionFuture<'a> {
        Box::pin(async move {
            let mut report = ActionReport::default();
            if let Some(door) = self.doors.get(device) {
                match door.unlock(user).await {
                    UnlockResult::Unlocked => self.audit(device, user, DoorAction::Unlock, None),
                    UnlockResult::Extended => {
                        self.audit(device, user, DoorAction::UnlockExtended, None)
                    }
                    UnlockResult::Failed(e) => {
                        tracing::error!(door = %device, error = %e, "door actuator failed");
                        self.audit(device, user, DoorAction::ActuatorFailed, Some(e));
                        report.failed = true;
                    }
                }
            }
            if let Some(print) = &self.print {
                if let Some(done) = print.release(device, user).await {
                    report = self.print_report(device, user, done);
                }
            }
            report
        })
    }
}
