//! The authentication core: reads what a decision needs from the store, computes exactly one
//! tag on the bounded pool, calls the pure `decide`, persists lockout counters (flushed before
//! a DENY is returned), runs the grant's actions (door unlock) and audits. Frontends call
//! this; it never parses bytes.

pub mod decide;
pub mod lockout;
pub mod schedule;

use crate::config::LockoutPolicy;
use crate::crypto::HashPool;
use crate::domain::{
    AuditEvent, AuditKind, AuthRequest, Credential, Decision, DenyReason, DeviceId, LockoutState,
    Timestamp,
};
use crate::store::Store;
use decide::{AccessRules, DeviceRules, View};
use serde::Serialize;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin as StdPin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// What a frontend tells the person. `Denied` carries no reason: the wire is uniform.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Granted {
        user: String,
        released: u32,
    },
    Denied,
    /// Denied because the device or source is inside a lockout (keypads may signal it).
    LockedOut,
    Busy,
}

/// What the actions after a grant achieved.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ActionReport {
    /// Print jobs released (0 for doors).
    pub released: u32,
}

pub type ActionFuture<'a> = StdPin<Box<dyn Future<Output = ActionReport> + Send + 'a>>;

/// The actions a grant triggers (door unlock, print release). Supplied by the daemon.
pub trait Actions: Send + Sync + 'static {
    fn after_grant<'a>(&'a self, device: &'a DeviceId, user: &'a str) -> ActionFuture<'a>;
}

/// No actions: grants are only answered and audited.
pub struct NoActions;
impl Actions for NoActions {
    fn after_grant<'a>(&'a self, _: &'a DeviceId, _: &'a str) -> ActionFuture<'a> {
        Box::pin(async { ActionReport::default() })
    }
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
    devices: BTreeMap<DeviceId, DeviceRules>,
    access: AccessRules,
    lockout: LockoutPolicy,
    actions: Arc<dyn Actions>,
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

type Evaluated = (Decision, Option<String>);

impl Core {
    pub fn new(
        store: Arc<dyn Store>,
        pool: Arc<HashPool>,
        devices: BTreeMap<DeviceId, DeviceRules>,
        access: AccessRules,
        lockout: LockoutPolicy,
        actions: Arc<dyn Actions>,
    ) -> Self {
        Core {
            store,
            pool,
            devices,
            access,
            lockout,
            actions,
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
        let Some(device) = self.devices.get(&request.device) else {
            return self.deny(&request, None, DenyReason::UnknownDevice).await;
        };
        // Reserve a failure under every budget key before any argon2 work, so concurrent
        // attempts see the budget run out; a locked key costs no argon2 at all.
        let reserved = match self.reserve(&request, now) {
            Ok(Some(reserved)) => reserved,
            Ok(None) => return self.deny(&request, None, DenyReason::LockedOut).await,
            Err(e) => return self.store_failed(&request, &e).await,
        };
        let Ok(tag) = self.pool.tag(request.credential.pin().clone()).await else {
            self.refund(&reserved);
            self.busy.fetch_add(1, Ordering::Relaxed);
            self.audit(&request, None, "busy", None);
            return Outcome::Busy;
        };
        match self.evaluate(&request, device, tag, now) {
            Err(e) => {
                self.refund(&reserved);
                self.store_failed(&request, &e).await
            }
            Ok((Decision::Grant { user, duress }, _)) => {
                self.refund(&reserved);
                self.grant(&request, user, duress).await
            }
            Ok((Decision::Deny { reason }, user)) => {
                self.commit_failure(reason, user.as_deref(), &reserved, now)
                    .await;
                self.deny(&request, user, reason).await
            }
        }
    }

    async fn deny(
        &self,
        request: &AuthRequest,
        user: Option<String>,
        reason: DenyReason,
    ) -> Outcome {
        self.denied.fetch_add(1, Ordering::Relaxed);
        self.audit(request, user, "deny", Some(reason));
        if reason == DenyReason::LockedOut {
            self.locked_out.fetch_add(1, Ordering::Relaxed);
            return Outcome::LockedOut;
        }
        Outcome::Denied
    }

    async fn store_failed(&self, request: &AuthRequest, e: &crate::store::StoreError) -> Outcome {
        tracing::error!(error = %e, device = %request.device, "store unreadable: applying the device's fail mode");
        match decide::on_store_failure(self.devices.get(&request.device)) {
            Decision::Grant { user, .. } => self.grant(request, user, false).await,
            Decision::Deny { reason } => self.deny(request, None, reason).await,
        }
    }

    async fn grant(&self, request: &AuthRequest, user: String, duress: bool) -> Outcome {
        if user != decide::FAIL_OPEN_USER {
            if let Err(e) = self
                .store
                .update_lockout(&lockout::user_key(&user), &|_| None)
            {
                tracing::warn!(error = %e, "could not reset the user's failure count");
            }
        }
        self.granted.fetch_add(1, Ordering::Relaxed);
        self.audit(request, Some(user.clone()), "grant", None);
        if duress {
            tracing::warn!(device = %request.device, "duress PIN used");
            self.record(AuditKind::Duress {
                device: request.device.clone(),
                user: user.clone(),
            });
        }
        let report = self.actions.after_grant(&request.device, &user).await;
        Outcome::Granted {
            user,
            released: report.released,
        }
    }

    /// Reserves one failure under each budget key; `None` if a key is locked (then nothing
    /// stays reserved).
    fn reserve(
        &self,
        request: &AuthRequest,
        now: Timestamp,
    ) -> Result<Option<Vec<(String, LockoutState)>>, crate::store::StoreError> {
        let policy = self.lockout;
        let mut reserved = Vec::new();
        for key in budget_keys(request) {
            let locked = Cell::new(false);
            let update = |old: Option<LockoutState>| {
                locked.set(lockout::is_locked(old, now));
                if locked.get() {
                    old
                } else {
                    Some(lockout::on_failure(old, &policy, now))
                }
            };
            let state = self.store.update_lockout(&key, &update);
            match state {
                Ok(Some(state)) if !locked.get() => reserved.push((key, state)),
                Ok(_) => {
                    self.refund(&reserved);
                    return Ok(None);
                }
                Err(e) => {
                    self.refund(&reserved);
                    return Err(e);
                }
            }
        }
        Ok(Some(reserved))
    }

    fn refund(&self, reserved: &[(String, LockoutState)]) {
        let policy = self.lockout;
        for (key, _) in reserved {
            if let Err(e) = self
                .store
                .update_lockout(key, &|old| lockout::refund(old, &policy))
            {
                tracing::warn!(key, error = %e, "could not refund a reserved failure");
            }
        }
    }

    /// Looks the credential up and decides. The budget keys were checked by `reserve`.
    fn evaluate(
        &self,
        request: &AuthRequest,
        device: &DeviceRules,
        tag: crate::domain::Tag,
        now: Timestamp,
    ) -> Result<Evaluated, crate::store::StoreError> {
        let user = match &request.credential {
            Credential::Pin(_) => match self.store.tag_owner(&tag)? {
                Some(id) => self.store.user(&id)?,
                None => None,
            },
            Credential::IdPin { id, .. } => self.store.user(id)?,
            Credential::CardPin { card, .. } => match self.store.card_owner(card)? {
                Some(id) => self.store.user(&id)?,
                None => None,
            },
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
            device: Some(device),
            access: &self.access,
            source_locked: false,
            user_locked,
            tag,
            candidate: user,
        };
        Ok((decide::decide(&view, request, now), user_id))
    }

    /// Keeps the reserved failures (auditing a lock they set), counts a wrong PIN for a
    /// named user against that user, then flushes so a power cut cannot reset the counters, before the
    /// DENY is sent.
    async fn commit_failure(
        &self,
        reason: DenyReason,
        user: Option<&str>,
        reserved: &[(String, LockoutState)],
        now: Timestamp,
    ) {
        if !reason.counts_as_failure() {
            self.refund(reserved);
            return;
        }
        for (key, state) in reserved {
            if state.locked_until.is_some() {
                tracing::warn!(
                    key,
                    failures = state.failures,
                    "failure budget exhausted: locked"
                );
                let (key, failures, until) = (key.clone(), state.failures, state.locked_until);
                self.record(AuditKind::Lockout {
                    key,
                    failures,
                    until,
                });
            }
        }
        let max = self.lockout.user_max_failures;
        // A wrong PIN for a named user (ID+PIN, card+PIN) counts against that user.
        if let (DenyReason::WrongPin, Some(id)) = (reason, user) {
            let key = lockout::user_key(id);
            match self
                .store
                .update_lockout(&key, &|old| Some(lockout::on_user_failure(old, now)))
            {
                Ok(Some(state)) if state.failures == max => {
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

    /// Appends an audit event (frontends and actions report through this).
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
