//! The pure decision: everything it needs is in the `View` the caller read from the store,
//! and time is passed in. No I/O, no clock, no argon2.

use crate::domain::{AuthRequest, Credential, Decision, DenyReason, Tag, Timestamp, User};

#[derive(Clone, Debug)]
pub struct View<'a> {
    /// Groups allowed on the device; `None` when the device is not configured.
    pub allowed_groups: Option<&'a [String]>,
    /// The device or the source address is inside a lockout period.
    pub source_locked: bool,
    /// The candidate user is locked after too many failed ID+PIN attempts.
    pub user_locked: bool,
    /// The tag computed from the presented PIN.
    pub tag: Tag,
    /// The user found by tag (PIN-only) or by id (ID+PIN); `None` when there is none.
    pub candidate: Option<User>,
}

pub fn decide(view: &View<'_>, request: &AuthRequest, now: Timestamp) -> Decision {
    let deny = |reason| Decision::Deny { reason };
    let Some(allowed) = view.allowed_groups else {
        return deny(DenyReason::UnknownDevice);
    };
    if view.source_locked {
        return deny(DenyReason::LockedOut);
    }
    let user = match (&view.candidate, &request.credential) {
        (None, Credential::Pin(_)) => return deny(DenyReason::UnknownPin),
        (None, Credential::IdPin { .. }) => return deny(DenyReason::UnknownUser),
        (Some(user), _) => user,
    };
    let Some(pin) = &user.pin else {
        return deny(DenyReason::NoPin);
    };
    if pin.tag != view.tag {
        return deny(match request.credential {
            Credential::Pin(_) => DenyReason::UnknownPin,
            Credential::IdPin { .. } => DenyReason::WrongPin,
        });
    }
    if view.user_locked {
        return deny(DenyReason::UserLockedOut);
    }
    if !user.enabled {
        return deny(DenyReason::Disabled);
    }
    if user.valid_from.is_some_and(|from| now < from) {
        return deny(DenyReason::NotYetValid);
    }
    if user.valid_until.is_some_and(|until| now >= until) {
        return deny(DenyReason::AccountExpired);
    }
    if pin.expires_at.is_some_and(|at| now >= at) {
        return deny(DenyReason::PinExpired);
    }
    if !user.in_any_group(allowed) {
        return deny(DenyReason::GroupNotAllowed);
    }
    Decision::Grant {
        user: user.id.clone(),
    }
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
