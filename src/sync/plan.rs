//! Turns a fetched batch into the writes of one atomic store batch: which users to add or
//! change (PINs still to hash), which to delete, which entries to skip and why, and the
//! mass-deletion guard. Reads the store only through `Existing`; no I/O, no hashing.

use super::source::{Batch, Deletions, UpstreamUser};
use crate::domain::{normalise_card, Pin, PinSource, Timestamp, UpstreamRef, User, UserOrigin};
use crate::store::{Store, StoreError};
use std::collections::{HashMap, HashSet};

/// What planning reads from the store.
pub trait Existing {
    fn user(&self, id: &str) -> Result<Option<User>, StoreError>;
    fn card_owner(&self, card: &str) -> Result<Option<String>, StoreError>;
}

/// The store as planning sees it.
pub struct StoreReads<'a>(pub &'a dyn Store);

impl Existing for StoreReads<'_> {
    fn user(&self, id: &str) -> Result<Option<User>, StoreError> {
        self.0.user(id)
    }
    fn card_owner(&self, card: &str) -> Result<Option<String>, StoreError> {
        self.0.card_owner(card)
    }
}

/// How many users the source owns once `plan` is applied.
pub fn users_after(existing: &HashMap<String, String>, plan: &Plan) -> u64 {
    let mut ids: HashSet<&str> = existing.values().map(String::as_str).collect();
    ids.extend(plan.users.iter().map(|u| u.id.as_str()));
    for id in &plan.removals {
        ids.remove(id.as_str());
    }
    ids.len() as u64
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("refused: this run would remove {removing} of the source's {of} users, more than max_delete_share allows ({limit}); check the directory, then run `pinwarden sync --force` if the removal is intended")]
    TooManyDeletions {
        removing: usize,
        of: usize,
        limit: usize,
    },
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// The writes a batch asks for. `pins[i] = (index into users, PIN)` still to be hashed.
#[derive(Debug, Default)]
pub struct Plan {
    pub users: Vec<User>,
    pub pins: Vec<(usize, Pin)>,
    pub removals: Vec<String>,
    /// Entries not applied, with the reason (never a PIN).
    pub skipped: Vec<String>,
    /// The batch was a complete listing.
    pub complete: bool,
}

pub struct Settings<'a> {
    pub source: &'a str,
    pub max_delete_share: f64,
    pub force: bool,
}

/// The most users one run may delete: `max_delete_share` of the source, but always one (a
/// single leaver must never need `--force`, whatever the size of the site).
pub fn deletion_limit(users: usize, share: f64) -> usize {
    ((users as f64 * share).floor() as usize).max(1)
}

/// `existing`: key → id of every user the source owns now.
pub fn plan(
    batch: Batch,
    existing: &HashMap<String, String>,
    store: &dyn Existing,
    s: &Settings<'_>,
) -> Result<Plan, PlanError> {
    let mut out = Plan {
        complete: matches!(batch.deletions, Deletions::AllExcept { .. }),
        ..Plan::default()
    };
    let changed = dedupe(batch.changed, &mut out.skipped);
    let changed_keys: HashSet<&str> = changed.iter().map(|u| u.key.as_str()).collect();
    let mut gone: HashSet<String> = match &batch.deletions {
        Deletions::Keys(keys) => keys
            .iter()
            .filter(|k| existing.contains_key(*k) && !changed_keys.contains(k.as_str()))
            .cloned()
            .collect(),
        Deletions::AllExcept { present } => {
            let present: HashSet<&str> = present.iter().map(String::as_str).collect();
            existing
                .keys()
                .filter(|k| !changed_keys.contains(k.as_str()) && !present.contains(k.as_str()))
                .cloned()
                .collect()
        }
    };
    let limit = deletion_limit(existing.len(), s.max_delete_share);
    if gone.len() > limit && !s.force {
        return Err(PlanError::TooManyDeletions {
            removing: gone.len(),
            of: existing.len(),
            limit,
        });
    }
    let by_id: HashMap<&str, &str> = existing
        .iter()
        .map(|(k, id)| (id.as_str(), k.as_str()))
        .collect();
    let mut renamed = Vec::new();
    for entry in changed {
        let Some((user, previous)) =
            merge(&entry, existing, &by_id, &mut gone, store, s, &mut out)?
        else {
            continue;
        };
        if let Some(old_id) = existing.get(&entry.key).filter(|old| **old != user.id) {
            renamed.push(old_id.clone());
        }
        match entry.pin.clone() {
            Some(_) if pin_unchanged(&entry, &previous) => {}
            Some(pin) => out.pins.push((out.users.len(), pin)),
            None => {}
        }
        out.users.push(user);
    }
    let upserted: HashSet<&str> = out.users.iter().map(|u| u.id.as_str()).collect();
    out.removals = gone
        .iter()
        .filter_map(|k| existing.get(k))
        .chain(renamed.iter())
        .filter(|id| !upserted.contains(id.as_str()))
        .cloned()
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    out.removals.sort();
    check_cards(&mut out, store)?;
    Ok(out)
}

/// One entry per key (the last wins) and per id; invalid ids are skipped.
fn dedupe(changed: Vec<UpstreamUser>, skipped: &mut Vec<String>) -> Vec<UpstreamUser> {
    let mut last: HashMap<String, usize> = HashMap::new();
    for (i, u) in changed.iter().enumerate() {
        last.insert(u.key.clone(), i);
    }
    let mut ids = HashSet::new();
    let mut out = Vec::with_capacity(last.len());
    for (i, u) in changed.into_iter().enumerate() {
        if last.get(&u.key) != Some(&i) {
            continue;
        }
        if let Err(why) = crate::domain::check_user_id(&u.id) {
            skipped.push(format!("entry `{}`: the id {why}", printable(&u.key)));
        } else if !ids.insert(u.id.clone()) {
            skipped.push(format!(
                "id `{}` is held by two entries of the source",
                u.id
            ));
        } else {
            out.push(u);
        }
    }
    out
}

fn printable(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(80).collect()
}

/// The new record for one changed entry (PIN not yet set), or `None` when it is skipped.
fn merge(
    entry: &UpstreamUser,
    existing: &HashMap<String, String>,
    by_id: &HashMap<&str, &str>,
    gone: &mut HashSet<String>,
    store: &dyn Existing,
    s: &Settings<'_>,
    out: &mut Plan,
) -> Result<Option<(User, Option<UpstreamRef>)>, PlanError> {
    let current = store.user(&entry.id)?;
    let mut user = match current {
        None => User::new_local(entry.id.clone()),
        Some(u) if u.origin == UserOrigin::Local => {
            out.skipped.push(format!(
                "id `{}` belongs to a local user, which sync never changes",
                entry.id
            ));
            return Ok(None);
        }
        Some(u) if u.upstream.as_ref().is_none_or(|r| r.source != s.source) => {
            out.skipped.push(format!(
                "id `{}` belongs to another directory source",
                entry.id
            ));
            return Ok(None);
        }
        Some(u) => {
            let held_by = by_id.get(entry.id.as_str()).copied().unwrap_or("");
            if held_by != entry.key && !gone.remove(held_by) && existing.contains_key(held_by) {
                out.skipped.push(format!(
                    "id `{}` is already held by another entry of this source",
                    entry.id
                ));
                return Ok(None);
            }
            u
        }
    };
    user.origin = UserOrigin::Upstream;
    // Only a PIN this source set can be kept: a PIN set here is temporary.
    let previous = user
        .upstream
        .take()
        .filter(|_| matches!(&user.pin, Some(p) if p.source == PinSource::Upstream));
    user.upstream = Some(UpstreamRef {
        source: s.source.to_owned(),
        key: entry.key.clone(),
        version: entry.version.clone(),
    });
    user.name = printable(&entry.name);
    user.email = entry.email.clone().filter(|e| !e.is_empty());
    user.groups = entry.groups.iter().map(|g| printable(g)).collect();
    user.enabled = entry.enabled;
    user.valid_from = entry.valid_from;
    user.valid_until = entry.valid_until;
    user.cards = Vec::new();
    for raw in &entry.cards {
        match normalise_card(raw) {
            Some(card) if !user.cards.contains(&card) => user.cards.push(card),
            Some(_) => {}
            None => out.skipped.push(format!(
                "user `{}`: a card number has no digits or letters",
                entry.id
            )),
        }
    }
    Ok(Some((user, previous)))
}

/// The source says the entry has not changed since its PIN was hashed: same key, same
/// version, and the PIN on record is the one this source set.
fn pin_unchanged(entry: &UpstreamUser, previous: &Option<UpstreamRef>) -> bool {
    match (previous, &entry.version) {
        (Some(prev), Some(version)) => {
            prev.key == entry.key && prev.version.as_ref() == Some(version)
        }
        _ => false,
    }
}

/// Drops a card another user holds (outside this batch) or an earlier user of the batch
/// took; the user is still applied, without that card.
fn check_cards(out: &mut Plan, store: &dyn Existing) -> Result<(), StoreError> {
    let leaving: HashSet<&str> = out
        .users
        .iter()
        .map(|u| u.id.as_str())
        .chain(out.removals.iter().map(String::as_str))
        .collect();
    let mut taken: HashSet<String> = HashSet::new();
    let mut dropped = Vec::new();
    for (i, user) in out.users.iter().enumerate() {
        for card in &user.cards {
            let elsewhere = match store.card_owner(card)? {
                Some(owner) => owner != user.id && !leaving.contains(owner.as_str()),
                None => false,
            };
            if elsewhere || !taken.insert(card.clone()) {
                dropped.push((i, card.clone()));
            }
        }
    }
    for (i, card) in dropped {
        let user = &mut out.users[i];
        user.cards.retain(|c| *c != card);
        out.skipped.push(format!(
            "user `{}`: card {card} is held by another user; left out",
            user.id
        ));
    }
    Ok(())
}

/// Sets the freshly hashed upstream PIN on a user (overwriting a temporary local one and
/// dropping a pending forgotten-PIN one, which would else replace it on first use).
pub fn set_upstream_pin(user: &mut User, tag: crate::domain::Tag, now: Timestamp) {
    user.pin = Some(crate::domain::PinRecord {
        tag,
        set_at: now,
        expires_at: None,
        source: crate::domain::PinSource::Upstream,
        temporary: false,
        uses_left: None,
        windows: Vec::new(),
    });
    user.pending_pin = None;
    user.pin_issued = true;
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
