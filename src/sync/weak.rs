//! Weak directory PINs: the PINs a run is about to hash are checked against the PIN policy
//! in plaintext first (PINs the run does not re-hash are not re-checked). `Warn` keeps them;
//! `Refuse` leaves them out and removes any older PIN on record, so neither the weak PIN nor
//! the one the directory replaced keeps working. Users are named by id and the broken rule by
//! a short name; never the PIN. Pure: no store, no I/O.

use super::plan::Plan;
use crate::lifecycle::policy::{PinPolicy, PolicyViolation};
use crate::lifecycle::settings::WeakPins;
use std::collections::{BTreeMap, HashSet};

/// The longest list of user ids a report, `status` or the audit carries (the count is whole).
pub const LIST_CAP: usize = 50;

/// How a sync checks the directory's PINs: the site's policy and what to do with a weak one.
#[derive(Clone, Debug, Default)]
pub struct PinCheck {
    pub policy: PinPolicy,
    pub weak: WeakPins,
}

/// One directory PIN that breaks the policy: whose, and which rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Weak {
    pub user: String,
    pub rule: &'static str,
}

/// The rule a PIN broke, as a short name for reports and the audit.
pub fn rule_name(v: &PolicyViolation) -> &'static str {
    match v {
        PolicyViolation::TooShort { .. } => "too short",
        PolicyViolation::TooLong { .. } => "too long",
        PolicyViolation::NotDigits => "not digits only",
        PolicyViolation::NotAlphanumeric => "not letters and digits only",
        PolicyViolation::Sequence => "a sequence",
        PolicyViolation::Repeated => "repeated characters",
        PolicyViolation::Common => "too common",
        PolicyViolation::LooksLikeUserId => "contains the user id or a card number",
        PolicyViolation::NotUnique => "not unique",
    }
}

/// Checks every PIN of `plan` still to be hashed; returns the weak ones (in plan order) and
/// the ids of every user whose PIN was checked. Under `Refuse` a weak PIN is taken out of the
/// plan and the user is applied with no PIN at all.
pub fn screen(plan: &mut Plan, check: &PinCheck) -> (Vec<Weak>, Vec<String>) {
    let mut weak = Vec::new();
    let mut refused = HashSet::new();
    let mut checked = Vec::with_capacity(plan.pins.len());
    for (index, pin) in &plan.pins {
        let user = &plan.users[*index];
        checked.push(user.id.clone());
        if let Err(v) = check.policy.check(pin, &user.id, &user.cards) {
            weak.push(Weak {
                user: user.id.clone(),
                rule: rule_name(&v),
            });
            refused.insert(*index);
        }
    }
    if check.weak == WeakPins::Refuse && !refused.is_empty() {
        plan.pins.retain(|(index, _)| !refused.contains(index));
        for index in refused {
            plan.users[index].pin = None;
        }
    }
    (weak, checked)
}

/// The users of one source whose directory PIN is weak, as far as the runs since the daemon
/// started have seen (a PIN is checked when it is re-hashed): for `status`.
#[derive(Debug, Default)]
pub struct WeakList {
    users: BTreeMap<String, &'static str>,
}

impl WeakList {
    /// Folds one applied run in: users whose PIN was checked are listed again only if weak;
    /// removed users leave the list.
    pub fn update(&mut self, checked: &[String], weak: &[Weak], removed: &[String]) {
        for id in checked.iter().chain(removed) {
            self.users.remove(id);
        }
        for w in weak {
            self.users.insert(w.user.clone(), w.rule);
        }
    }

    pub fn contains(&self, id: &str) -> bool {
        self.users.contains_key(id)
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// The first [`LIST_CAP`] ids, sorted.
    pub fn ids(&self) -> Vec<String> {
        self.users.keys().take(LIST_CAP).cloned().collect()
    }
}

/// The first [`LIST_CAP`] ids of `weak`, in order.
pub fn capped_ids(weak: &[Weak]) -> Vec<String> {
    weak.iter().take(LIST_CAP).map(|w| w.user.clone()).collect()
}

#[cfg(test)]
#[path = "weak_tests.rs"]
mod tests;
