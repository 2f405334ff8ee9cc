//! The failure-rate alarm: failures at a device are counted per clock hour, and the count
//! reaching `[lockout] alarm_per_hour` raises one `alarm` event (audit and the MQTT event
//! stream) for that device and hour. Counts live in memory: a restart starts a fresh hour.
//! Owns the window arithmetic (pure) and `Core::count_for_alarm`; must not touch counters.

use super::Core;
use crate::domain::{AlarmAction, AuditKind, DeviceId, Timestamp};

const HOUR_MS: i64 = 3_600_000;

/// Failures at one device in one clock hour.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Window {
    hour: i64,
    failures: u32,
}

impl Window {
    /// Counts one failure at `now`; true when it makes the hour's count reach `limit`
    /// (0: never).
    pub(super) fn count(&mut self, now: Timestamp, limit: u32) -> bool {
        let hour = now.millis().div_euclid(HOUR_MS);
        if hour != self.hour {
            *self = Window { hour, failures: 0 };
        }
        self.failures = self.failures.saturating_add(1);
        limit > 0 && self.failures == limit
    }
}

impl Core {
    /// Counts a failure at `device` and raises the alarm when the hour's count crosses
    /// the limit.
    pub(super) fn count_for_alarm(&self, device: &DeviceId, now: Timestamp) {
        let limit = self.lockout.get().configured().alarm_per_hour;
        let raised = {
            let mut alarms = self.alarms.lock().unwrap_or_else(|e| e.into_inner());
            alarms.entry(device.clone()).or_default().count(now, limit)
        };
        if raised {
            tracing::warn!(%device, limit, "failures at a device above the hourly alarm rate");
            self.record(AuditKind::Alarm {
                action: AlarmAction::FailureRate,
                detail: Some(format!(
                    "device {device}: {limit} failed attempts within this hour \
                     ([lockout] alarm_per_hour = {limit})"
                )),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_alarm_per_device_and_hour_at_the_limit() {
        let at = |minutes: i64| Timestamp::from_millis(10 * HOUR_MS + minutes * 60_000);
        let mut w = Window::default();
        // (minute, limit, raised)
        #[rustfmt::skip]
        let table = [
            (0, 3, false), (10, 3, false), (20, 3, true), (30, 3, false), (59, 3, false),
            (60, 3, false), (61, 3, false), (119, 3, true), (200, 0, false),
        ];
        for (minute, limit, raised) in table {
            assert_eq!(w.count(at(minute), limit), raised, "minute {minute}");
        }
        let mut never = Window::default();
        assert!((0..100).all(|m| !never.count(at(m), 0)));
    }
}
