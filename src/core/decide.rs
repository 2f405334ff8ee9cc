//! The pure decision: everything it needs is in the `View` the caller read from the store,
//! and time is passed in. No I/O, no clock, no argon2.

use super::schedule::{Schedule, TimeZone};
use crate::domain::{
    AuthRequest, Credential, Decision, DenyReason, PinRecord, Tag, Timestamp, User,
};
use std::collections::BTreeMap;

/// What a device admits: groups, an optional schedule, and its fail mode.
#[derive(Clone, Debug)]
pub struct DeviceRules {
    pub allow_groups: Vec<String>,
    pub schedule: Option<Schedule>,
    /// Unlock on any attempt when the store is unreadable (an emergency exit door);
    /// the default is to stay locked.
    pub fail_open: bool,
    /// Deny users of a directory whose cache is past its `max_staleness`.
    pub deny_when_stale: bool,
}

/// Schedules that apply across devices.
#[derive(Clone, Debug)]
pub struct AccessRules {
    pub group_schedules: BTreeMap<String, Schedule>,
    pub tz: TimeZone,
}

/// The user id reported when a fail-open door opens without a store.
pub const FAIL_OPEN_USER: &str = "*fail-open*";

#[derive(Clone, Debug)]
pub struct View<'a> {
    /// The device's rules; `None` when the device is not configured.
    pub device: Option<&'a DeviceRules>,
    pub access: &'a AccessRules,
    /// The candidate user is locked after too many failed ID+PIN attempts.
    pub user_locked: bool,
    /// The tag computed from the presented PIN (`None` for a card alone).
    pub tag: Option<Tag>,
    /// The user found by tag (PIN-only) or by id (ID+PIN); `None` when there is none.
    pub candidate: Option<User>,
    /// The candidate's directory has not synced within its `max_staleness`.
    pub directory_stale: bool,
}

pub fn decide(view: &View<'_>, request: &AuthRequest, now: Timestamp) -> Decision {
    let deny = |reason| Decision::Deny { reason };
    let Some(device) = view.device else {
        return deny(DenyReason::UnknownDevice);
    };
    let user = match (&view.candidate, &request.credential) {
        (None, Credential::Pin(_)) => return deny(DenyReason::UnknownPin),
        (None, Credential::IdPin { .. }) => return deny(DenyReason::UnknownUser),
        (None, Credential::CardPin { .. } | Credential::Card { .. }) => {
            return deny(DenyReason::UnknownCard)
        }
        (Some(user), _) => user,
    };
    // A card alone is the whole credential: no PIN to match (and no duress PIN).
    let card_only = matches!(request.credential, Credential::Card { .. });
    if !card_only && user.pin.is_none() && user.duress.is_none() && user.pending_pin.is_none() {
        return deny(DenyReason::NoPin);
    }
    // A pending PIN (sent after a forgotten-PIN request) works like the PIN it replaces
    // at its first use; the store swaps them in the grant's own transaction.
    let matched = [
        (&user.pin, false),
        (&user.duress, true),
        (&user.pending_pin, false),
    ]
    .into_iter()
    .find_map(|(record, duress)| {
        record
            .as_ref()
            .filter(|r| view.tag.is_some_and(|t| r.tag == t))
            .map(|r| (r, duress))
    });
    let (pin, duress) = match matched {
        Some((pin, duress)) => (Some(pin), duress),
        None if card_only => (None, false),
        None => {
            return deny(match request.credential {
                Credential::Pin(_) => DenyReason::UnknownPin,
                _ => DenyReason::WrongPin,
            })
        }
    };
    if view.user_locked {
        return deny(DenyReason::UserLockedOut);
    }
    // The duress PIN is only good while the user's own PIN is.
    let own_pin_dead = |p: &PinRecord| p.expires_at.is_some_and(|at| now >= at);
    if duress && user.pin.as_ref().is_none_or(own_pin_dead) {
        return deny(DenyReason::PinExpired);
    }
    if view.directory_stale && device.deny_when_stale {
        return deny(DenyReason::DirectoryStale);
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
    if pin.is_some_and(|p| p.expires_at.is_some_and(|at| now >= at)) {
        return deny(DenyReason::PinExpired);
    }
    if pin.is_some_and(|p| p.uses_left == Some(0)) {
        return deny(DenyReason::UsesExhausted);
    }
    let groups: Vec<&String> = user
        .groups
        .iter()
        .filter(|g| device.allow_groups.contains(g))
        .collect();
    if groups.is_empty() {
        return deny(DenyReason::GroupNotAllowed);
    }
    let open = |s: &Schedule| s.is_open(now, &view.access.tz);
    if device.schedule.as_ref().is_some_and(|s| !open(s)) {
        return deny(DenyReason::OutsideSchedule);
    }
    let group_open = |g: &&String| view.access.group_schedules.get(*g).is_none_or(open);
    if !groups.iter().any(group_open) {
        return deny(DenyReason::OutsideSchedule);
    }
    if pin.is_some_and(|p| !in_windows(p, now, &view.access.tz)) {
        return deny(DenyReason::OutsidePinWindow);
    }
    Decision::Grant {
        user: user.id.clone(),
        duress,
    }
}

/// Whether `now` is inside the PIN's own windows (a PIN without windows: always). Windows
/// are checked when they are set; one that no longer parses keeps the PIN closed.
pub fn in_windows(pin: &PinRecord, now: Timestamp, tz: &TimeZone) -> bool {
    pin.windows.is_empty() || Schedule::parse(&pin.windows, &[]).is_ok_and(|s| s.is_open(now, tz))
}

/// The decision when the store cannot be read: fail closed, unless the device is a door
/// configured to fail open.
pub fn on_store_failure(device: Option<&DeviceRules>) -> Decision {
    match device {
        Some(d) if d.fail_open => Decision::Grant {
            user: FAIL_OPEN_USER.into(),
            duress: false,
        },
        _ => Decision::Deny {
            reason: DenyReason::StoreUnavailable,
        },
    }
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
