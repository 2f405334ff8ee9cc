//! What people do themselves at a device: change their own PIN (the old one verified and
//! counted against the failure budgets like any ID+PIN attempt) and ask for a forgotten one
//! (always accepted the same way, whether or not the id exists). The policy, uniqueness and
//! mail are the `PinService`'s (the daemon's, over the lifecycle); core never parses bytes.

use super::admission::{budget_keys, Admission};
use super::metrics::Counted;
use super::Core;
use crate::domain::{
    AuditKind, AuthRequest, Credential, Decision, DecisionOutcome, DenyReason, DeviceId, Origin,
    Pin, Timestamp,
};
use std::future::Future;
use std::pin::Pin as StdPin;
use std::sync::Arc;

/// The audit's credential kind for the old PIN of a change: a decision like an ID+PIN
/// attempt's, but one that opened nothing.
pub const CHANGE_CREDENTIAL: &str = "id+pin change";

/// `CHANGE <id> <old> <new>` and its keypad and MQTT forms.
#[derive(Debug)]
pub struct ChangeRequest {
    pub device: DeviceId,
    pub origin: Origin,
    pub id: String,
    pub old: Pin,
    pub new: Pin,
    pub received_at: Timestamp,
}

/// The answer to a change; only `Refused` carries a reason, and only a policy reason (safe
/// to show: it says nothing about other users).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChangeOutcome {
    Changed,
    /// Wrong id or old PIN, disabled, expired…: the wire says DENY; the audit says why.
    Denied,
    LockedOut,
    Busy,
    /// The new PIN breaks the policy or is not unique; nothing changed.
    Refused(String),
    /// `[policy] user_can_change` is off, or the device does not take changes.
    NotAllowed,
}

/// `FORGOT <id>` and its keypad and MQTT forms.
#[derive(Debug)]
pub struct ForgotRequest {
    pub device: DeviceId,
    pub origin: Origin,
    pub id: String,
    pub received_at: Timestamp,
}

/// The same for a known and an unknown id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForgotOutcome {
    /// Queued: a new PIN goes to the address on record, if there is one and the caps allow.
    Accepted,
    Busy,
    NotAllowed,
}

pub type ServiceFuture<'a, T> = StdPin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why the service did not set a new PIN; each carries the text to show the person.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChangeError {
    /// The policy refused it, or the change failed: nothing about other users.
    Refused(String),
    /// Another user holds this PIN. The answer is a refusal like the policy's, but it is
    /// counted as a failure like a wrong PIN: otherwise it would be a free oracle for
    /// other people's PINs.
    Taken(String),
}

/// The lifecycle side of self-service, supplied by the daemon.
pub trait PinService: Send + Sync + 'static {
    /// Sets `id`'s own new PIN: policy, uniqueness, the confirmation mail.
    fn change<'a>(&'a self, id: &'a str, new: Pin) -> ServiceFuture<'a, Result<(), ChangeError>>;
    /// Queues a forgotten-PIN request (the same whether or not `id` exists): `Accepted`,
    /// or `Busy` when the device's daily requests or the queue are full.
    fn forgot<'a>(
        &'a self,
        id: &'a str,
        device: &'a DeviceId,
    ) -> ServiceFuture<'a, Result<ForgotOutcome, String>>;
}

/// What the core offers people themselves, and the service behind it.
pub struct SelfService {
    pub service: Arc<dyn PinService>,
    /// `[policy] user_can_change`.
    pub change: bool,
    /// `[recovery] enabled` with a mail relay configured.
    pub forgot: bool,
}

/// The old PIN's verification.
enum Verified {
    Yes,
    No(ChangeOutcome),
}

impl Core {
    /// Offers self-change and forgotten PINs through `service`.
    pub fn with_self_service(mut self, self_service: SelfService) -> Self {
        self.self_service = Some(self_service);
        self
    }

    /// Verifies `id` + `old` exactly as an ID+PIN attempt (admission under the device and
    /// source budgets, one argon2, failures counted and flushed before the answer, audited
    /// as a decision of kind `CHANGE_CREDENTIAL`), runs no action, then has the service set
    /// the new PIN. Neither PIN is logged or audited.
    pub async fn change_pin(&self, request: ChangeRequest) -> ChangeOutcome {
        let Some(ss) = self.self_service.as_ref().filter(|s| s.change) else {
            return ChangeOutcome::NotAllowed;
        };
        let ChangeRequest {
            device,
            origin,
            id,
            old,
            new,
            received_at,
        } = request;
        let auth = AuthRequest {
            device,
            credential: Credential::IdPin {
                id: id.clone(),
                pin: old,
            },
            origin,
            received_at,
        };
        if let Verified::No(outcome) = self.verify_old(&auth).await {
            return outcome;
        }
        match ss.service.change(&id, new).await {
            Ok(()) => {
                // Only a change done clears the user's failures: a verified old PIN
                // followed by a taken new one must not wipe the count it adds to.
                if let Err(e) = self
                    .store
                    .update_lockout(&super::lockout::user_key(&id), &|_| None)
                {
                    tracing::warn!(error = %e, "could not reset the user's failure count");
                }
                // The person throws the old PIN away on OK: the new one is on disk first.
                self.flush("a PIN change").await;
                ChangeOutcome::Changed
            }
            Err(ChangeError::Refused(reason)) => ChangeOutcome::Refused(reason),
            Err(ChangeError::Taken(reason)) => {
                // Probing for another person's PIN costs what guessing it does: counted
                // against the user, the device and the source, flushed before the answer.
                self.counts
                    .count(&auth.device, Counted::Deny(DenyReason::WrongPin));
                self.commit_failure(&auth, DenyReason::WrongPin, Some(&id), super::clock::now())
                    .await;
                ChangeOutcome::Refused(reason)
            }
        }
    }

    /// Queues a forgotten-PIN request after the admission gate (a locked device or source
    /// cannot ask; the answer is then BUSY). The same work and answer whether or not the id
    /// exists: no user is read here; the lifecycle's worker decides later.
    pub async fn forgot_pin(&self, request: ForgotRequest) -> ForgotOutcome {
        let Some(ss) = self.self_service.as_ref().filter(|s| s.forgot) else {
            return ForgotOutcome::NotAllowed;
        };
        // The budget keys name only the device and the source.
        let auth = AuthRequest {
            device: request.device.clone(),
            credential: Credential::Card {
                card: String::new(),
            },
            origin: request.origin.clone(),
            received_at: request.received_at,
        };
        let admitted = match self
            .gate
            .admit(budget_keys(&auth), &*self.store, &self.policy(&auth.device))
            .await
        {
            Ok(Admission::Admitted(admitted)) => admitted,
            Ok(_) => return ForgotOutcome::Busy,
            Err(e) => {
                tracing::error!(error = %e, "cannot read lockout counters");
                return ForgotOutcome::Busy;
            }
        };
        let queued = ss.service.forgot(&request.id, &request.device).await;
        drop(admitted);
        match queued {
            Ok(outcome) => outcome,
            Err(e) => {
                tracing::error!(device = %request.device, error = %e, "cannot queue a forgotten-PIN request");
                ForgotOutcome::Busy
            }
        }
    }

    async fn verify_old(&self, request: &AuthRequest) -> Verified {
        let Some(device) = self.devices.get(&request.device) else {
            return self.change_denied(request, None, DenyReason::UnknownDevice);
        };
        let keys = budget_keys(request);
        let admitted = match self
            .gate
            .admit(keys, &*self.store, &self.policy(&request.device))
            .await
        {
            Ok(Admission::Admitted(admitted)) => admitted,
            Ok(Admission::Locked) => {
                return self.change_denied(request, None, DenyReason::LockedOut)
            }
            Ok(Admission::TimedOut) => return self.change_busy(request),
            Err(e) => {
                tracing::error!(error = %e, "cannot read lockout counters");
                return self.change_denied(request, None, DenyReason::StoreUnavailable);
            }
        };
        let Some(pin) = request.credential.pin() else {
            return self.change_denied(request, None, DenyReason::NoPin);
        };
        let tag = match self.pool.tag(pin.clone()).await {
            Ok(tag) => tag,
            Err(_) => return self.change_busy(request),
        };
        let now = request.received_at;
        let evaluated = self.evaluate(request, device, Some(tag), now);
        let verified = match evaluated {
            Err(e) => {
                tracing::error!(error = %e, "store unreadable: a PIN change is refused");
                self.change_denied(request, None, DenyReason::StoreUnavailable)
            }
            Ok(super::Evaluated {
                decision: Decision::Deny { reason },
                user,
                duress,
                ..
            }) => {
                if duress {
                    self.raise_duress(request, user.as_deref().unwrap_or("?"));
                }
                self.commit_failure(request, reason, user.as_deref(), super::clock::now())
                    .await;
                self.change_denied(request, user, reason)
            }
            Ok(super::Evaluated {
                decision: Decision::Grant { user, duress: true },
                ..
            }) => {
                // Under threat: the alarm goes off and nothing is changed.
                self.raise_duress(request, &user);
                self.change_denied(request, Some(user), DenyReason::WrongPin)
            }
            Ok(super::Evaluated {
                decision: Decision::Grant { user, .. },
                ..
            }) => {
                // The user's failures are cleared once the change is done (`change_pin`).
                self.change_audit(request, Some(user), DecisionOutcome::Grant, None);
                Verified::Yes
            }
        };
        drop(admitted);
        verified
    }

    fn change_denied(
        &self,
        request: &AuthRequest,
        user: Option<String>,
        reason: DenyReason,
    ) -> Verified {
        self.counts.count(&request.device, Counted::Deny(reason));
        self.change_audit(request, user, DecisionOutcome::Deny, Some(reason));
        if reason == DenyReason::LockedOut {
            return Verified::No(ChangeOutcome::LockedOut);
        }
        Verified::No(ChangeOutcome::Denied)
    }

    fn change_busy(&self, request: &AuthRequest) -> Verified {
        self.counts.count(&request.device, Counted::Busy);
        self.change_audit(request, None, DecisionOutcome::Busy, None);
        Verified::No(ChangeOutcome::Busy)
    }

    fn change_audit(
        &self,
        request: &AuthRequest,
        user: Option<String>,
        outcome: DecisionOutcome,
        reason: Option<DenyReason>,
    ) {
        self.record(AuditKind::Decision {
            device: request.device.clone(),
            origin: request.origin.clone(),
            credential: CHANGE_CREDENTIAL.into(),
            user,
            outcome,
            reason,
            repeated: None,
        });
    }
}

#[cfg(test)]
#[path = "selfservice_tests.rs"]
mod tests;
