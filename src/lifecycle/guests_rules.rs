//! The rules and shapes of sponsored guests, apart from the store: `[guests]` settings,
//! what a guest is made from and shown as, and the pure checks (groups only from the
//! sponsor's, an end within the cap and never past the sponsor's). Touches nothing.

use crate::domain::{Pin, Timestamp, User};
use crate::duration::format_duration;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// `[guests]`: whether guests may be created, and for how long at most.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuestSettings {
    /// Off by default: guests are accounts that someone other than an administrator may
    /// ask for, so a site opts in.
    pub allowed: bool,
    /// The longest a guest's access may run, counted from the moment it is given or
    /// extended.
    pub max_validity: Duration,
}

impl Default for GuestSettings {
    fn default() -> Self {
        GuestSettings {
            allowed: false,
            max_validity: Duration::from_secs(7 * 86_400),
        }
    }
}

/// A guest to create. `valid_for` is a duration from now, such as `8h` or `2d`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct NewGuest {
    pub id: String,
    #[serde(default)]
    pub name: String,
    pub email: String,
    /// Groups from the sponsor's; empty: all of the sponsor's.
    #[serde(default)]
    pub groups: Vec<String>,
    pub valid_for: String,
}

/// What creating a guest gives back: the end of the guest's access and, when no mail can
/// deliver it (no `[smtp]`), the PIN to hand over once.
pub struct GuestAdded {
    pub valid_until: Timestamp,
    pub shown: Option<Pin>,
}

/// A guest as listed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GuestView {
    pub id: String,
    pub name: String,
    pub email: Option<String>,
    pub sponsor: String,
    pub groups: Vec<String>,
    pub enabled: bool,
    pub valid_until: Option<Timestamp>,
    /// When the guest's PIN was issued.
    pub pin_set_at: Option<Timestamp>,
}

/// The shortest guest access accepted.
const SHORTEST: Duration = Duration::from_secs(60);

/// When a guest given `valid_for` from `now` ends: refused past `cap` or past the
/// sponsor's own end. Pure, for the rules to be tested alone.
pub fn guest_until(
    now: Timestamp,
    valid_for: Duration,
    cap: Duration,
    sponsor_end: Option<(Timestamp, &str)>,
) -> Result<Timestamp, String> {
    if valid_for < SHORTEST {
        return Err("--valid-for must be at least 1m".into());
    }
    if valid_for > cap {
        return Err(format!(
            "--valid-for {} is longer than a guest may stay ({}, [guests] max_validity or a \
             forced PIN validity): give a shorter one",
            format_duration(valid_for),
            format_duration(cap)
        ));
    }
    let until = now.plus(valid_for);
    match sponsor_end {
        Some((end, sponsor)) if until > end => Err(format!(
            "sponsor `{sponsor}`'s access ends at {end}: a guest cannot outlast their sponsor; \
             give a shorter --valid-for"
        )),
        _ => Ok(until),
    }
}

/// The guest's groups: those asked for, each one the sponsor's; none asked: all of them.
pub fn guest_groups(asked: &[String], sponsor: &User) -> Result<Vec<String>, String> {
    if sponsor.groups.is_empty() {
        return Err(format!(
            "sponsor `{}` is in no group: a guest would be allowed nowhere",
            sponsor.id
        ));
    }
    if asked.is_empty() {
        return Ok(sponsor.groups.clone());
    }
    let mut out: Vec<String> = Vec::with_capacity(asked.len());
    for g in asked {
        if !sponsor.groups.contains(g) {
            return Err(format!(
                "group `{g}`: sponsor `{}` is not in it, and a guest gets only its sponsor's \
                 groups ({})",
                sponsor.id,
                sponsor.groups.join(", ")
            ));
        }
        if !out.contains(g) {
            out.push(g.clone());
        }
    }
    Ok(out)
}

/// When the sponsor's own access ends: their validity or their PIN's expiry, the earlier.
pub(super) fn sponsor_end(sponsor: &User) -> Option<Timestamp> {
    let pin = sponsor.pin.as_ref().and_then(|p| p.expires_at);
    match (sponsor.valid_until, pin) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// How the sponsor is named to the guest: their name, else their id.
pub(super) fn sponsor_name(sponsor: &User) -> &str {
    match sponsor.name.trim() {
        "" => &sponsor.id,
        name => name,
    }
}

pub(super) fn view(u: User) -> GuestView {
    GuestView {
        pin_set_at: u.pin.as_ref().map(|p| p.set_at),
        sponsor: u.sponsor.unwrap_or_default(),
        id: u.id,
        name: u.name,
        email: u.email,
        groups: u.groups,
        enabled: u.enabled,
        valid_until: u.valid_until,
    }
}

#[cfg(test)]
#[path = "guests_tests.rs"]
mod tests;
