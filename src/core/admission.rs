//! The admission gate in front of every attempt: an attempt waits until each of its budget
//! keys (device, source address) has room for one more in flight — the failures left in
//! the key's free budget, at least one — and is refused as soon as one key is locked, so a
//! locked key costs no argon2 and parallel guesses cannot overrun a budget. Reads lockout
//! counters; must not hash, decide or write counters (`Core` counts failures).

use super::lockout::{self, LockoutKey};
use crate::core::lockout::LockoutPolicy;
use crate::domain::AuthRequest;
use crate::store::{Store, StoreError};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::Notify;

/// How long an attempt may wait for admission before the terminal is told BUSY.
pub(super) const ADMISSION_WAIT: Duration = Duration::from_secs(10);

/// The lockout keys a request is budgeted under.
pub(super) fn budget_keys(request: &AuthRequest) -> Vec<LockoutKey> {
    let mut keys = vec![LockoutKey::Device(request.device.0.clone())];
    if let Some(ip) = request.origin.source_ip() {
        keys.push(LockoutKey::Source(ip));
    }
    keys
}

/// Attempts in flight per budget key (see `lockout::room`).
#[derive(Default)]
pub(super) struct Gate {
    inflight: Mutex<HashMap<String, u32>>,
    changed: Notify,
}

/// An admitted attempt's places under its keys, given back when dropped.
pub(super) struct Admitted<'a> {
    gate: &'a Gate,
    keys: Vec<String>,
}

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        let mut inflight = self.gate.inflight.lock().unwrap_or_else(|e| e.into_inner());
        for key in &self.keys {
            if let Some(n) = inflight.get_mut(key) {
                *n -= 1;
                if *n == 0 {
                    inflight.remove(key);
                }
            }
        }
        drop(inflight);
        self.gate.changed.notify_waiters();
    }
}

pub(super) enum Admission<'a> {
    Admitted(Admitted<'a>),
    Locked,
    TimedOut,
}

impl Gate {
    /// Waits until every key has room for one more attempt in flight; `Locked` as soon as
    /// one is locked, `TimedOut` after `ADMISSION_WAIT`. An unreadable counter is an error
    /// (the caller fails closed).
    pub(super) async fn admit(
        &self,
        budget: Vec<LockoutKey>,
        store: &dyn Store,
        policy: &LockoutPolicy,
    ) -> Result<Admission<'_>, StoreError> {
        let deadline = tokio::time::Instant::now() + ADMISSION_WAIT;
        let keys: Vec<String> = budget.iter().map(LockoutKey::to_string).collect();
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            {
                let now = super::clock::now();
                let mut inflight = self.inflight.lock().unwrap_or_else(|e| e.into_inner());
                let mut fits = true;
                for (kind, key) in budget.iter().zip(&keys) {
                    let state = store.lockout(key)?;
                    if lockout::is_locked(state, now) {
                        return Ok(Admission::Locked);
                    }
                    let room = lockout::room(kind, state, policy, now);
                    fits &= inflight.get(key).copied().unwrap_or(0) < room;
                }
                if fits {
                    for key in &keys {
                        *inflight.entry(key.clone()).or_default() += 1;
                    }
                    return Ok(Admission::Admitted(Admitted { gate: self, keys }));
                }
            }
            tokio::select! {
                _ = changed => {}
                _ = tokio::time::sleep_until(deadline) => return Ok(Admission::TimedOut),
            }
        }
    }
}

#[cfg(test)]
#[path = "admission_tests.rs"]
mod tests;
