//! Audit under flood: refusals that repeat for one key (device, origin, outcome, reason) —
//! locked-out denials and BUSY answers, which cost no argon2 and so come as fast as an
//! attacker sends them — are written once per window, then counted; when the window
//! closes one more record carries the count (`repeated`). Evaluated attempts are always
//! written one by one (argon2 bounds their rate). Pure: time passed in, no I/O.

use crate::domain::AuditKind;
use std::collections::HashMap;
use std::sync::Mutex;

/// One record per key and window.
pub const WINDOW_MS: i64 = 60_000;
/// Keys tracked at once; past this (an attacker cycling keys), records are written as they
/// come, so nothing is hidden, only no longer aggregated.
const MAX_KEYS: usize = 4096;

#[derive(Default)]
pub struct Flood(Mutex<HashMap<String, Window>>);

struct Window {
    start_ms: i64,
    /// The first record of the window, repeated with its count when the window closes.
    first: AuditKind,
    more: u64,
}

impl Flood {
    /// A refusal under `key` at `now_ms`: the records to write now (the refusal itself when
    /// it opens a window; before it, the count of the window it closes).
    pub fn admit(&self, key: String, kind: AuditKind, now_ms: i64) -> Vec<AuditKind> {
        let mut windows = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        if let Some(w) = windows.get_mut(&key) {
            if now_ms < w.start_ms + WINDOW_MS && now_ms >= w.start_ms {
                w.more += 1;
                return out;
            }
            let closed = windows.remove(&key).expect("just seen");
            out.extend(closed.summary());
        }
        if windows.len() < MAX_KEYS {
            windows.insert(
                key,
                Window {
                    start_ms: now_ms,
                    first: kind.clone(),
                    more: 0,
                },
            );
        }
        out.push(kind);
        out
    }

    /// Closes every window older than `WINDOW_MS` at `now_ms`: the counts to write.
    pub fn drain(&self, now_ms: i64) -> Vec<AuditKind> {
        let mut windows = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        windows.retain(|_, w| {
            if now_ms >= w.start_ms + WINDOW_MS || now_ms < w.start_ms {
                out.extend(w.summary());
                false
            } else {
                true
            }
        });
        out
    }
}

impl Window {
    /// The window's first record again with the number that followed it, if any did.
    fn summary(&self) -> Option<AuditKind> {
        if self.more == 0 {
            return None;
        }
        let mut kind = self.first.clone();
        if let AuditKind::Decision { repeated, .. } = &mut kind {
            *repeated = Some(self.more);
        }
        Some(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{DecisionOutcome, DenyReason, DeviceId, Origin};

    fn locked() -> AuditKind {
        AuditKind::Decision {
            device: DeviceId("door".into()),
            origin: Origin::Tcp {
                peer: "10.0.0.9".parse().unwrap(),
            },
            credential: "pin".into(),
            user: None,
            outcome: DecisionOutcome::Deny,
            reason: Some(DenyReason::LockedOut),
            repeated: None,
        }
    }

    fn repeated(kinds: &[AuditKind]) -> Vec<Option<u64>> {
        kinds
            .iter()
            .map(|k| match k {
                AuditKind::Decision { repeated, .. } => *repeated,
                _ => panic!("{k:?}"),
            })
            .collect()
    }

    #[test]
    fn a_flood_is_one_record_then_one_count_per_window() {
        let f = Flood::default();
        let key = || "door|10.0.0.9|locked_out".to_string();
        assert_eq!(repeated(&f.admit(key(), locked(), 0)), [None]);
        for ms in 1..10_000 {
            assert!(f.admit(key(), locked(), ms).is_empty());
        }
        // The next window: the count of the last one, then the new first record.
        let out = f.admit(key(), locked(), WINDOW_MS);
        assert_eq!(repeated(&out), [Some(9_999), None]);
        // A window that saw nothing more closes without a record.
        assert!(f.drain(3 * WINDOW_MS).is_empty());
        assert!(f.drain(4 * WINDOW_MS).is_empty(), "the window is gone");
    }

    #[test]
    fn drain_writes_the_count_of_a_flood_that_stopped() {
        let f = Flood::default();
        f.admit("a".into(), locked(), 0);
        f.admit("a".into(), locked(), 5);
        f.admit("b".into(), locked(), 30_000);
        assert!(f.drain(WINDOW_MS - 1).is_empty(), "still open");
        assert_eq!(repeated(&f.drain(WINDOW_MS)), [Some(1)]);
        assert!(f.drain(WINDOW_MS + 30_000).is_empty(), "b had nothing more");
    }

    #[test]
    fn keys_are_separate_and_bounded() {
        let f = Flood::default();
        for i in 0..MAX_KEYS {
            assert_eq!(f.admit(format!("k{i}"), locked(), 0).len(), 1);
        }
        // Past the bound a new key is written every time, never hidden.
        for _ in 0..3 {
            assert_eq!(f.admit("one more".into(), locked(), 1).len(), 1);
        }
        // A clock that went back closes the window rather than hiding records forever.
        assert_eq!(repeated(&f.admit("k0".into(), locked(), -5)), [None]);
    }
}
