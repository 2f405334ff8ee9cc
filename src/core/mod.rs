//! The authentication core: reads what a decision needs from the store, computes exactly one
//! tag on the bounded pool, calls the pure `decide`, persists lockout counters (flushed before
//! a DENY is returned) and audits the decision. Frontends call this; it never parses bytes.

pub mod decide;
pub mod lockout;

use crate::config::LockoutPolicy;
use crate::crypto::HashPool;
use crate::domain::{
    AuditEvent, AuditKind, AuthRequest, Credential, Decision, DenyReason, DeviceId, Timestamp,
};
use crate::store::Store;
use decide::View;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// What a frontend tells the person. `Denied` carries no reason: the wire is uniform.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Granted { user: String },
    Denied,
    Busy,
}

#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct CoreStats {
    pub granted: u64,
    pub denied: u64,
    pub busy: u64,
    pub locked_out: u64,
}

pub struct Core {
    store: Arc<dyn Store>,
    pool: Arc<HashPool>,
    devices: BTreeMap<DeviceId, Vec<String>>,
    lockout: LockoutPolicy,
    granted: AtomicU64,
    denied: AtomicU64,
    busy: AtomicU64,
    locked_out: AtomicU64,
}

/// The lockout keys a request is budgeted under.
fn budget_keys(request: &AuthRequest) -> Vec<String> {
    let mut keys = vec![lockout::device_key(&request.device.0)];
    if let Some(ip) = request.origin.source_ip() {
        keys.push(lockout::source_key(ip));
    }
    keys
}

impl Core {
    pub fn new(
        store: Arc<dyn Store>,
        pool: Arc<HashPool>,
        devices: BTreeMap<DeviceId, Vec<String>>,
        lockout: LockoutPolicy,
    ) -> Self {
        Core {
            store,
            pool,
            devices,
            lockout,
            granted: AtomicU64::new(0),
            denied: AtomicU64::new(0),
            busy: AtomicU64::new(0),
            locked_out: AtomicU64::new(0),
        }
    }

    pub fn stats(&self) -> CoreStats {
        CoreStats {
            granted: self.granted.load(Ordering::Relaxed),
            denied: self.denied.load(Ordering::Relaxed),
            busy: self.busy.load(Ordering::Relaxed),
            locked_out: self.locked_out.load(Ordering::Relaxed),
        }
    }

    pub async fn handle(&self, request: AuthRequest) -> Outcome {
        let now = request.received_at;
        let (decision, user) = match self.evaluate(&request, now).await {
            Ok(Some(pair)) => pair,
            Ok(None) => {
                self.busy.fetch_add(1, Ordering::Relaxed);
                self.audit(&request, None, "busy", None);
                return Outcome::Busy;
            }
            Err(_) => (
                Decision::Deny {
                    reason: DenyReason::StoreUnavailable,
                },
                None,
            ),
        };
        match decision {
            Decision::Grant { user } => {
                self.on_grant(&request, &user);
                self.granted.fetch_add(1, Ordering::Relaxed);
                self.audit(&request, Some(user.clone()), "grant", None);
                Outcome::Granted { user }
            }
            Decision::Deny { reason } => {
                if reason.counts_as_failure() {
                    self.on_failure(&request, reason, now).await;
                }
                if reason == DenyReason::LockedOut {
                    self.locked_out.fetch_add(1, Ordering::Relaxed);
                }
                self.denied.fetch_add(1, Ordering::Relaxed);
                self.audit(&request, user, "deny", Some(reason));
                Outcome::Denied
            }
        }
    }

    /// Reads, hashes and decides. `Ok(None)` is BUSY; `Err` is a store failure.
    async fn evaluate(
        &self,
        request: &AuthRequest,
        now: Timestamp,
    ) -> Result<Option<(Decision, Option<String>)>, crate::store::StoreError> {
        let allowed = self.devices.get(&request.device).map(Vec::as_slice);
        let mut source_locked = false;
        for key in budget_keys(request) {
            source_locked |= lockout::is_locked(self.store.lockout(&key)?, now);
        }
        if allowed.is_none() || source_locked {
            // No argon2 work for a locked-out source or an unknown device.
            let reason = if allowed.is_none() {
                DenyReason::UnknownDevice
            } else {
                DenyReason::LockedOut
            };
            return Ok(Some((Decision::Deny { reason }, None)));
        }
        let Ok(tag) = self.pool.tag(request.credential.pin().clone()).await else {
            return Ok(None);
        };
        let user = match &request.credential {
            Credential::Pin(_) => match self.store.tag_owner(&tag)? {
                Some(id) => self.store.user(&id)?,
                None => None,
            },
            Credential::IdPin { id, .. } => self.store.user(id)?,
        };
        let user_locked = match &user {
            Some(u) => lockout::user_locked(
                self.store.lockout(&lockout::user_key(&u.id))?,
                &self.lockout,
            ),
            None => false,
        };
        let user_id = user.as_ref().map(|u| u.id.clone());
        let view = View {
            allowed_groups: allowed,
            source_locked,
            user_locked,
            tag,
            candidate: user,
        };
        Ok(Some((decide::decide(&view, request, now), user_id)))
    }

    fn on_grant(&self, request: &AuthRequest, user: &str) {
        let mut keys = budget_keys(request);
        keys.push(lockout::user_key(user));
        for key in keys {
            if let Err(e) = self.store.update_lockout(&key, &|_| None) {
                tracing::warn!(key, error = %e, "could not reset a lockout counter");
            }
        }
    }

    /// Counts a failure under every budget key (and the user's, for a wrong ID+PIN), then
    /// flushes so a power cut cannot reset the counters, before the DENY is sent.
    async fn on_failure(&self, request: &AuthRequest, reason: DenyReason, now: Timestamp) {
        let policy = self.lockout;
        for key in budget_keys(request) {
            match self
                .store
                .update_lockout(&key, &|old| Some(lockout::on_failure(old, &policy, now)))
            {
                Ok(Some(state)) if state.locked_until.is_some() => {
                    tracing::warn!(
                        key,
                        failures = state.failures,
                        "failure budget exhausted: locked"
                    );
                    self.record(AuditKind::Lockout {
                        key,
                        failures: state.failures,
                        until: state.locked_until,
                    });
                }
                Ok(_) => {}
                Err(e) => tracing::error!(key, error = %e, "could not record a failure"),
            }
        }
        if let (DenyReason::WrongPin, Credential::IdPin { id, .. }) = (reason, &request.credential)
        {
            let key = lockout::user_key(id);
            match self
                .store
                .update_lockout(&key, &|old| Some(lockout::on_user_failure(old, now)))
            {
                Ok(Some(state)) if state.failures == policy.user_max_failures => {
                    tracing::warn!(user = %id, "user locked after too many failed attempts");
                    self.record(AuditKind::Lockout {
                        key,
                        failures: state.failures,
                        until: None,
                    });
                }
                Ok(_) => {}
                Err(e) => tracing::error!(key, error = %e, "could not record a user failure"),
            }
        }
        let store = Arc::clone(&self.store);
        match tokio::task::spawn_blocking(move || store.flush()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "could not flush lockout counters"),
            Err(e) => tracing::error!(error = %e, "flush task failed"),
        }
    }

    fn audit(
        &self,
        request: &AuthRequest,
        user: Option<String>,
        outcome: &str,
        reason: Option<DenyReason>,
    ) {
        self.record(AuditKind::Decision {
            device: request.device.clone(),
            origin: request.origin.clone(),
            credential: request.credential.kind().into(),
            user,
            outcome: outcome.into(),
            reason,
        });
    }

    /// Appends an audit event (frontends report refused connections through this).
    pub fn record(&self, kind: AuditKind) {
        let event = AuditEvent {
            at: Timestamp::now(),
            kind,
        };
        if let Err(e) = self.store.append_audit(&event) {
            tracing::error!(error = %e, "could not write an audit event");
        }
    }
}
