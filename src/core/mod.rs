//! The authentication core: admits an attempt under its lockout keys (`admission.rs`),
//! computes exactly one tag on the bounded pool, reads what the decision needs, calls the
//! pure `decide`, counts a limited-use or pending PIN's use (`pin_use.rs`, flushed before
//! the OK), persists lockout counters (flushed before a DENY is returned), runs the
//! grant's actions (door unlock, print release) and audits. Frontends call this; it never
//! parses bytes.

mod admission;
mod alarm;
mod audit;
pub mod budget;
pub mod clock;
pub mod decide;
mod flood;
pub mod lockout;
pub mod metrics;
pub mod odds;
mod pin_use;
pub mod schedule;
pub mod selfservice;

use crate::crypto::HashPool;
use crate::domain::{
    AuditKind, AuthRequest, Credential, Decision, DenyReason, DeviceId, Timestamp,
};
use crate::live::Live;
use crate::store::Store;
use admission::{budget_keys, Admission, Gate};
use decide::{AccessRules, DeviceRules, View};
use lockout::LockoutPolicy;
use metrics::{Counted, DecisionCounts, Locks};
use serde::Serialize;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin as StdPin;
use std::sync::Arc;

/// What a frontend tells the person. `Denied` carries no reason: the wire is uniform.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// `action_failed`: granted, but the door actuator (or print release) failed;
    /// `notice` is the short code a terminal can show (e.g. `printer-unavailable`).
    Granted {
        user: String,
        released: u32,
        action_failed: bool,
        notice: Option<&'static str>,
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
    /// The actuator failed (already audited by the action).
    pub failed: bool,
    /// Why, in a code a terminal can show (`printer-unavailable`, …).
    pub notice: Option<&'static str>,
}

pub type ActionFuture<'a> = StdPin<Box<dyn Future<Output = ActionReport> + Send + 'a>>;

/// The actions a grant triggers (door unlock, print release). Supplied by the daemon.
pub trait Actions: Send + Sync + 'static {
    fn after_grant<'a>(&'a self, device: &'a DeviceId, user: &'a str) -> ActionFuture<'a>;
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
    /// The lockout per device (`budget.rs`), replaced by a reload (SIGHUP) and whenever
    /// the population changes; each attempt reads the current one for its device.
    lockout: Live<budget::Budgets>,
    actions: Arc<dyn Actions>,
    gate: Gate,
    /// Decisions by device, outcome and reason (`status`, `/metrics`).
    counts: DecisionCounts,
    /// The lockout keys locked now, kept as locks are set.
    locks: Locks,
    stale: Arc<Staleness>,
    /// Self-change and forgotten PINs (`selfservice.rs`); None: not offered.
    self_service: Option<selfservice::SelfService>,
    /// The credential modes a device takes, where it does not take them all.
    credentials: BTreeMap<DeviceId, Vec<odds::Mode>>,
    /// Failures per device in the current clock hour, for the `alarm` event.
    alarms: std::sync::Mutex<BTreeMap<DeviceId, alarm::Window>>,
    /// Refusal floods being counted for the audit.
    flood: flood::Flood,
}

/// The directory sources whose cache is past `max_staleness`. Set by the daemon from sync
/// status; read here when a view is built, so `decide` stays pure and core never reads
/// sync state itself.
#[derive(Default)]
pub struct Staleness(std::sync::RwLock<std::collections::BTreeSet<String>>);

impl Staleness {
    pub fn set(&self, sources: impl IntoIterator<Item = String>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = sources.into_iter().collect();
    }
    pub fn is_stale(&self, source: &str) -> bool {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(source)
    }
}

/// What `evaluate` found and decided.
struct Evaluated {
    decision: Decision,
    /// The user found, if any.
    user: Option<String>,
    /// The user's duress PIN was presented.
    duress: bool,
    /// The tag of a limited-use or pending PIN presented: a grant must count its use.
    counted: Option<crate::domain::Tag>,
}

impl Core {
    pub fn new(
        store: Arc<dyn Store>,
        pool: Arc<HashPool>,
        devices: BTreeMap<DeviceId, DeviceRules>,
        access: AccessRules,
        lockout: LockoutPolicy,
        actions: Arc<dyn Actions>,
    ) -> Self {
        let counts = DecisionCounts::new(devices.keys());
        // Locks set before this start (a restart inside a lock) count too: read once here.
        let locks = Locks::from_counters(store.lockouts().unwrap_or_default(), clock::now());
        Core {
            store,
            pool,
            devices,
            access,
            lockout: Live::new(budget::Budgets::uniform(lockout)),
            actions,
            gate: Gate::default(),
            counts,
            locks,
            stale: Arc::default(),
            self_service: None,
            credentials: BTreeMap::new(),
            alarms: Default::default(),
            flood: Default::default(),
        }
    }

    /// Restricts devices to the credential modes listed (a device not named takes all).
    pub fn with_credentials(mut self, credentials: BTreeMap<DeviceId, Vec<odds::Mode>>) -> Self {
        self.credentials = credentials;
        self
    }

    /// Shares the set of stale directory sources with whoever maintains it.
    pub fn with_staleness(mut self, stale: Arc<Staleness>) -> Self {
        self.stale = stale;
        self
    }

    /// The lockout per device, for a reload or a recount to replace.
    pub fn live_lockout(&self) -> Live<budget::Budgets> {
        self.lockout.clone()
    }

    /// The lockout of an attempt at `device`: its derived budget, for the device key and
    /// its sources alike (a source refilling faster than its device could lock it), and
    /// the user lock, which the derivation leaves as configured.
    fn policy(&self, device: &DeviceId) -> LockoutPolicy {
        *self.lockout.get().for_device(device)
    }

    pub fn stats(&self) -> CoreStats {
        let counts = &self.counts;
        CoreStats {
            granted: counts.total(|c| c == Counted::Grant),
            denied: counts.total(|c| matches!(c, Counted::Deny(_))),
            busy: counts.total(|c| c == Counted::Busy),
            locked_out: counts.total(|c| c == Counted::Deny(DenyReason::LockedOut)),
        }
    }

    /// Decisions by device, outcome and reason, zeros included.
    pub fn decision_counts(&self) -> Vec<metrics::DecisionCount<'_>> {
        self.counts.cells()
    }

    /// How many lockout keys (devices, sources, users) are locked now: one store read per
    /// key locked, never a walk of every counter.
    pub fn active_lockouts(&self) -> Result<usize, crate::store::StoreError> {
        self.locks
            .active(clock::now(), |key| self.store.lockout(key))
    }

    pub async fn handle(&self, request: AuthRequest) -> Outcome {
        let now = request.received_at;
        let Some(device) = self.devices.get(&request.device) else {
            return self.deny(&request, None, DenyReason::UnknownDevice).await;
        };
        let mode = odds::Mode::of(&request.credential);
        if self
            .credentials
            .get(&request.device)
            .is_some_and(|modes| !modes.contains(&mode))
        {
            // Not a guess: nothing is hashed or counted.
            return self
                .deny(&request, None, DenyReason::CredentialNotAdmitted)
                .await;
        }
        // A locked key costs no argon2; attempts in flight under a key are bounded by the
        // budget it has left, so parallel guesses cannot overrun it.
        let keys = budget_keys(&request);
        let admitted = match self
            .gate
            .admit(keys, &*self.store, &self.policy(&request.device))
            .await
        {
            Ok(Admission::Admitted(admitted)) => admitted,
            Ok(Admission::Locked) => {
                // No argon2 for a locked key, but no faster answer either: the reply waits
                // about as long as an evaluated one takes (idle, no CPU), so its speed does
                // not tell the attacker when the lock lifts.
                if let Some(typical) = self.pool.typical_tag_time() {
                    tokio::time::sleep(typical).await;
                }
                return self.deny(&request, None, DenyReason::LockedOut).await;
            }
            Ok(Admission::TimedOut) => return self.busy(&request),
            Err(e) => {
                // Unreadable lockout state: fail closed (fail-open is for unreadable users).
                tracing::error!(error = %e, "cannot read lockout counters");
                return self
                    .deny(&request, None, DenyReason::StoreUnavailable)
                    .await;
            }
        };
        let tag = match request.credential.pin() {
            Some(pin) => match self.pool.tag(pin.clone()).await {
                Ok(tag) => Some(tag),
                Err(_) => return self.busy(&request),
            },
            // A card alone: nothing secret to hash.
            None => None,
        };
        let evaluated = match self.evaluate(&request, device, tag, now) {
            Ok(evaluated) => self.count_use(&request, evaluated, now).await,
            Err(e) => Err(e),
        };
        if let Ok(Evaluated {
            decision: Decision::Deny { reason },
            user,
            duress,
            ..
        }) = &evaluated
        {
            if *duress {
                // A person under threat whose duress PIN is refused still raises the alarm.
                self.raise_duress(&request, user.as_deref().unwrap_or("?"));
            }
            // Counted and flushed before the next admitted attempt and before the DENY; on
            // the lockout clock, which wall-clock jumps do not move.
            self.commit_failure(&request, *reason, user.as_deref(), clock::now())
                .await;
        }
        drop(admitted);
        match evaluated {
            Err(e) => self.store_failed(&request, &e).await,
            Ok(Evaluated { decision, user, .. }) => match decision {
                Decision::Grant { user, duress } => self.grant(&request, user, duress).await,
                Decision::Deny { reason } => self.deny(&request, user, reason).await,
            },
        }
    }

    fn busy(&self, request: &AuthRequest) -> Outcome {
        self.counts.count(&request.device, Counted::Busy);
        self.audit(request, None, crate::domain::DecisionOutcome::Busy, None);
        Outcome::Busy
    }

    async fn deny(
        &self,
        request: &AuthRequest,
        user: Option<String>,
        reason: DenyReason,
    ) -> Outcome {
        self.counts.count(&request.device, Counted::Deny(reason));
        self.audit(
            request,
            user,
            crate::domain::DecisionOutcome::Deny,
            Some(reason),
        );
        if reason == DenyReason::LockedOut {
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
        self.counts.count(&request.device, Counted::Grant);
        self.audit(
            request,
            Some(user.clone()),
            crate::domain::DecisionOutcome::Grant,
            None,
        );
        if duress {
            self.raise_duress(request, &user);
        }
        let report = self.actions.after_grant(&request.device, &user).await;
        Outcome::Granted {
            user,
            released: report.released,
            action_failed: report.failed,
            notice: report.notice,
        }
    }

    /// Looks the credential up and decides. The budget keys were checked by `admit`.
    fn evaluate(
        &self,
        request: &AuthRequest,
        device: &DeviceRules,
        tag: Option<crate::domain::Tag>,
        now: Timestamp,
    ) -> Result<Evaluated, crate::store::StoreError> {
        let user = match &request.credential {
            Credential::Pin(_) => match tag.map(|t| self.store.tag_owner(&t)).transpose()? {
                Some(Some(id)) => self.store.user(&id)?,
                _ => None,
            },
            Credential::IdPin { id, .. } => self.store.user(id)?,
            Credential::CardPin { card, .. } | Credential::Card { card } => {
                match self.store.card_owner(card)? {
                    Some(id) => self.store.user(&id)?,
                    None => None,
                }
            }
        };
        let user_locked = match &user {
            Some(u) => {
                lockout::user_locked(self.store.lockout(&lockout::user_key(&u.id))?, clock::now())
            }
            None => false,
        };
        let user_id = user.as_ref().map(|u| u.id.clone());
        let duress = user
            .as_ref()
            .and_then(|u| u.duress.as_ref())
            .is_some_and(|d| tag.is_some_and(|t| d.tag == t));
        let directory_stale = user
            .as_ref()
            .and_then(|u| u.upstream.as_ref())
            .is_some_and(|up| self.stale.is_stale(&up.source));
        let counted = tag.filter(|t| user.as_ref().is_some_and(|u| pin_use::counted(u, t)));
        let view = View {
            device: Some(device),
            access: &self.access,
            user_locked,
            tag,
            candidate: user,
            directory_stale,
        };
        Ok(Evaluated {
            decision: decide::decide(&view, request, now),
            user: user_id,
            duress,
            counted,
        })
    }

    /// Counts the failure under every budget key (auditing a lock it sets) and, for a
    /// wrong PIN for a named user, against that user; then flushes so a power cut cannot
    /// reset the counters, before the DENY is sent.
    async fn commit_failure(
        &self,
        request: &AuthRequest,
        reason: DenyReason,
        user: Option<&str>,
        now: Timestamp,
    ) {
        if !reason.counts_as_failure() {
            return;
        }
        let policy = self.policy(&request.device);
        for budget in budget_keys(request) {
            let key = budget.to_string();
            let bump = |old| Some(lockout::count_failure(&budget, old, &policy, now));
            match self.store.update_lockout(&key, &bump) {
                Ok(Some(state)) if state.locked_until.is_some() => {
                    tracing::warn!(
                        key,
                        failures = state.failures,
                        "failure budget exhausted: locked"
                    );
                    let until = state.locked_until;
                    if let Some(end) = until {
                        self.locks.set(key.clone(), end);
                    }
                    self.record(AuditKind::Lockout {
                        key,
                        failures: state.failures,
                        until,
                    });
                }
                Ok(_) => {}
                Err(e) => tracing::error!(key, error = %e, "could not record a failure"),
            }
        }
        self.count_for_alarm(&request.device, now);
        let max = policy.user_max_failures;
        // A wrong PIN for a named user (ID+PIN, card+PIN) counts against that user.
        if let (DenyReason::WrongPin, Some(id)) = (reason, user) {
            let key = lockout::user_key(id);
            match self.store.update_lockout(&key, &|old| {
                Some(lockout::on_user_failure(old, &policy, now))
            }) {
                Ok(Some(state)) if state.failures >= max => {
                    tracing::warn!(user = %id, "user locked after too many failed attempts");
                    if let Some(end) = state.locked_until {
                        self.locks.set(key.clone(), end);
                    }
                    self.record(AuditKind::Lockout {
                        key,
                        failures: state.failures,
                        until: state.locked_until,
                    });
                }
                Ok(_) => {}
                Err(e) => tracing::error!(key, error = %e, "could not record a user failure"),
            }
        }
        self.flush("lockout counters").await;
    }
}

#[cfg(test)]
#[path = "handle_tests.rs"]
mod handle_tests;
