//! What people do themselves at a device: change their own PIN (the old one verified and
//! counted against the failure budgets like any ID+PIN attempt) and ask for a forgotten one
//! (always accepted the same way, whether or not the id exists). The policy, uniqueness and
//! mail are the `PinService`'s (the daemon's, over the lifecycle); core never parses bytes.

use super::Core;
use crate::domain::{DeviceId, Origin, Pin, Timestamp};
use std::future::Future;
use std::pin::Pin as StdPin;

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

/// The lifecycle side of self-service, supplied by the daemon.
pub trait PinService: Send + Sync + 'static {
    /// Sets `id`'s own new PIN: policy, uniqueness, the confirmation mail. Err: the policy
    /// reason, safe to show.
    fn change<'a>(&'a self, id: &'a str, new: Pin) -> ServiceFuture<'a, Result<(), String>>;
    /// Queues a forgotten-PIN request (always, whether or not `id` exists).
    fn forgot<'a>(
        &'a self,
        id: &'a str,
        device: &'a DeviceId,
    ) -> ServiceFuture<'a, Result<(), String>>;
}

impl Core {
    pub async fn change_pin(&self, request: ChangeRequest) -> ChangeOutcome {
        let _ = request;
        ChangeOutcome::NotAllowed
    }

    pub async fn forgot_pin(&self, request: ForgotRequest) -> ForgotOutcome {
        let _ = request;
        ForgotOutcome::NotAllowed
    }
}
