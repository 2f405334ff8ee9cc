//! What the core counts for `/metrics` and `status`: decisions by device, outcome and deny
//! reason in a fixed table of atomics (devices from the configuration, outcomes and
//! reasons from closed enums: the label values are bounded and never name a user or a
//! credential), and the lockout keys currently locked (`Locks`), kept as the core sets
//! locks so that counting them never walks the lockout counters. Must not render anything.

use crate::domain::{DenyReason, DeviceId, LockoutState, Timestamp};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// The device label of a request for a device not in the configuration (it has a space,
/// which no configured device id has, so it cannot be mistaken for one).
pub const UNKNOWN_DEVICE: &str = "(unknown device)";

/// Every deny reason, in the order of the table's columns.
pub const REASONS: [DenyReason; 19] = [
    DenyReason::UnknownPin,
    DenyReason::UnknownUser,
    DenyReason::UnknownCard,
    DenyReason::WrongPin,
    DenyReason::Disabled,
    DenyReason::NotYetValid,
    DenyReason::AccountExpired,
    DenyReason::PinExpired,
    DenyReason::NoPin,
    DenyReason::GroupNotAllowed,
    DenyReason::OutsideSchedule,
    DenyReason::LockedOut,
    DenyReason::UserLockedOut,
    DenyReason::UnknownDevice,
    DenyReason::StoreUnavailable,
    DenyReason::DirectoryStale,
    DenyReason::UsesExhausted,
    DenyReason::OutsidePinWindow,
    DenyReason::CredentialNotAdmitted,
];

/// A reason's column; exhaustive, so a new reason cannot be left out of the table.
fn reason_index(reason: DenyReason) -> usize {
    match reason {
        DenyReason::UnknownPin => 0,
        DenyReason::UnknownUser => 1,
        DenyReason::UnknownCard => 2,
        DenyReason::WrongPin => 3,
        DenyReason::Disabled => 4,
        DenyReason::NotYetValid => 5,
        DenyReason::AccountExpired => 6,
        DenyReason::PinExpired => 7,
        DenyReason::NoPin => 8,
        DenyReason::GroupNotAllowed => 9,
        DenyReason::OutsideSchedule => 10,
        DenyReason::LockedOut => 11,
        DenyReason::UserLockedOut => 12,
        DenyReason::UnknownDevice => 13,
        DenyReason::StoreUnavailable => 14,
        DenyReason::DirectoryStale => 15,
        DenyReason::UsesExhausted => 16,
        DenyReason::OutsidePinWindow => 17,
        DenyReason::CredentialNotAdmitted => 18,
    }
}

/// How an attempt ended, as counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counted {
    Grant,
    Busy,
    Deny(DenyReason),
}

/// Columns per device: grant, busy, then one per deny reason.
const COLUMNS: usize = 2 + REASONS.len();

fn column(counted: Counted) -> usize {
    match counted {
        Counted::Grant => 0,
        Counted::Busy => 1,
        Counted::Deny(reason) => 2 + reason_index(reason),
    }
}

/// One cell of the table: (device, outcome, reason) and its count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecisionCount<'a> {
    pub device: &'a str,
    /// `grant`, `deny` or `busy` (the audit log's words).
    pub outcome: &'static str,
    /// The deny reason's audit word; `""` for a grant or BUSY.
    pub reason: &'static str,
    pub count: u64,
}

/// Decisions per (device, outcome, reason): one relaxed atomic add per decision, no lock.
pub struct DecisionCounts {
    /// Configured devices (in id order) and their row; the unknown-device row is last.
    rows: BTreeMap<DeviceId, usize>,
    names: Vec<String>,
    cells: Vec<AtomicU64>,
}

impl DecisionCounts {
    pub fn new<'a>(devices: impl IntoIterator<Item = &'a DeviceId>) -> Self {
        let mut names: Vec<String> = devices.into_iter().map(|d| d.0.clone()).collect();
        let rows = names
            .iter()
            .enumerate()
            .map(|(i, name)| (DeviceId(name.clone()), i))
            .collect();
        names.push(UNKNOWN_DEVICE.into());
        let cells = (0..names.len() * COLUMNS)
            .map(|_| AtomicU64::new(0))
            .collect();
        DecisionCounts { rows, names, cells }
    }

    pub fn count(&self, device: &DeviceId, counted: Counted) {
        let row = self
            .rows
            .get(device)
            .copied()
            .unwrap_or(self.names.len() - 1);
        self.cells[row * COLUMNS + column(counted)].fetch_add(1, Ordering::Relaxed);
    }

    /// Every cell, zeros included (a series exists from the start), by device then
    /// grant, busy and the deny reasons.
    pub fn cells(&self) -> Vec<DecisionCount<'_>> {
        let mut out = Vec::with_capacity(self.cells.len());
        for (row, device) in self.names.iter().enumerate() {
            let at = |c: usize| self.cells[row * COLUMNS + c].load(Ordering::Relaxed);
            out.push(DecisionCount {
                device,
                outcome: "grant",
                reason: "",
                count: at(column(Counted::Grant)),
            });
            out.push(DecisionCount {
                device,
                outcome: "busy",
                reason: "",
                count: at(column(Counted::Busy)),
            });
            for reason in REASONS {
                out.push(DecisionCount {
                    device,
                    outcome: "deny",
                    reason: reason.as_str(),
                    count: at(column(Counted::Deny(reason))),
                });
            }
        }
        out
    }

    /// The sum over devices of the cells `which` selects.
    pub fn total(&self, which: impl Fn(Counted) -> bool) -> u64 {
        let mut chosen = vec![which(Counted::Grant), which(Counted::Busy)];
        chosen.extend(REASONS.iter().map(|r| which(Counted::Deny(*r))));
        self.cells
            .iter()
            .enumerate()
            .filter(|(i, _)| chosen[i % COLUMNS])
            .map(|(_, c)| c.load(Ordering::Relaxed))
            .sum()
    }
}

/// The lockout keys the core has locked (or found locked at start), with the lock's end.
/// A lock lifted by someone else (an operator's `lockout clear`, a PIN change, a removed
/// user) is noticed when counted: each key still inside its time is read back from the
/// store. Counting costs one point read per key locked now, never a walk of the counters.
#[derive(Default)]
pub struct Locks(Mutex<HashMap<String, Timestamp>>);

impl Locks {
    /// The locks among `counters` (read once at start).
    pub fn from_counters(counters: Vec<(String, LockoutState)>, now: Timestamp) -> Self {
        let locks = Locks::default();
        for (key, state) in counters {
            if let Some(until) = state.locked_until.filter(|u| *u > now) {
                locks.set(key, until);
            }
        }
        locks
    }

    pub fn set(&self, key: String, until: Timestamp) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, until);
    }

    /// The keys locked at `now`, according to `read` (the store's counter for a key).
    /// Keys whose lock ran out or was lifted are forgotten.
    pub fn active<E>(
        &self,
        now: Timestamp,
        read: impl Fn(&str) -> Result<Option<LockoutState>, E>,
    ) -> Result<usize, E> {
        let candidates: Vec<String> = {
            let mut locks = self.0.lock().unwrap_or_else(|e| e.into_inner());
            locks.retain(|_, until| *until > now);
            locks.keys().cloned().collect()
        };
        let mut active = 0;
        for key in candidates {
            match read(&key)?
                .and_then(|s| s.locked_until)
                .filter(|u| *u > now)
            {
                Some(until) => {
                    active += 1;
                    self.set(key, until);
                }
                None => {
                    self.0
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&key);
                }
            }
        }
        Ok(active)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_and_columns_agree() {
        for (i, reason) in REASONS.iter().enumerate() {
            assert_eq!(reason_index(*reason), i);
        }
    }

    #[test]
    fn counts_land_in_their_cell_and_unknown_devices_share_one_row() {
        let devices = [DeviceId("door".into()), DeviceId("printer".into())];
        let counts = DecisionCounts::new(&devices);
        counts.count(&devices[1], Counted::Grant);
        counts.count(&devices[1], Counted::Grant);
        counts.count(&devices[0], Counted::Deny(DenyReason::WrongPin));
        counts.count(&DeviceId("made-up".into()), Counted::Busy);
        counts.count(&DeviceId("another".into()), Counted::Busy);
        let cells = counts.cells();
        assert_eq!(cells.len(), 3 * COLUMNS);
        let find = |device: &str, outcome: &str, reason: &str| {
            cells
                .iter()
                .find(|c| c.device == device && c.outcome == outcome && c.reason == reason)
                .unwrap()
                .count
        };
        assert_eq!(find("printer", "grant", ""), 2);
        assert_eq!(find("door", "deny", "wrong_pin"), 1);
        assert_eq!(find("door", "grant", ""), 0);
        assert_eq!(find(UNKNOWN_DEVICE, "busy", ""), 2);
        assert_eq!(counts.total(|c| c == Counted::Grant), 2);
        assert_eq!(counts.total(|c| matches!(c, Counted::Deny(_))), 1);
    }

    #[test]
    fn locks_count_only_what_the_store_still_holds_locked() {
        let at = |ms| Timestamp::from_millis(ms);
        let locked = |until| LockoutState {
            locked_until: Some(at(until)),
            ..LockoutState::default()
        };
        let locks = Locks::from_counters(
            vec![
                ("device:a".into(), locked(5_000)),
                ("device:b".into(), locked(500)),
                ("user:c".into(), LockoutState::default()),
            ],
            at(1_000),
        );
        locks.set("user:d".into(), at(9_000));
        locks.set("user:e".into(), at(9_000));
        // user:e was cleared by an operator; device:a is still locked in the store.
        let store = |key: &str| -> Result<Option<LockoutState>, ()> {
            Ok(match key {
                "device:a" | "user:d" => Some(locked(9_000)),
                _ => None,
            })
        };
        assert_eq!(locks.active(at(2_000), store), Ok(2));
        assert_eq!(
            locks.0.lock().unwrap().len(),
            2,
            "lifted locks are forgotten"
        );
        assert_eq!(locks.active(at(9_000), store), Ok(0), "run out");
    }
}
