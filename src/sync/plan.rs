//! Turns a fetched listing into the writes of one atomic store batch, a chunk of users at a
//! time (`Planner`): which users to add or change (PINs still to hash), which to delete,
//! which entries to skip and why, and the mass-deletion guard (decided from the listing's
//! keys before any user is planned). Reads the store only through `Existing`; no I/O, no
//! hashing.

use super::listing::{printable, Gone, KeySet, Listing};
use super::source::{Batch, UpstreamUser};
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

/// A whole batch planned at once (one chunk): the plan with its removals.
/// `existing`: key → id of every user the source owns now.
pub fn plan(
    batch: Batch,
    existing: &HashMap<String, String>,
    store: &dyn Existing,
    s: &Settings<'_>,
) -> Result<Plan, PlanError> {
    let Listing {
        keys,
        deletions,
        skipped,
        mut chunks,
        ..
    } = Listing::whole(batch);
    let walk = |visit: &mut dyn FnMut(String, String)| {
        for (key, id) in existing {
            visit(key.clone(), id.clone());
        }
        Ok(())
    };
    let mut planner = Planner::new(keys, &deletions, walk, s)?;
    let entries = chunks.next_chunk(usize::MAX).map_err(|e| {
        PlanError::Store(StoreError::Unavailable(format!("reading the batch: {e}")))
    })?;
    let mut out = planner.chunk(entries, store)?;
    out.skipped.splice(0..0, skipped);
    let (removals, _) = planner.finish();
    out.removals = removals;
    Ok(out)
}

/// Plans a listing a chunk at a time. What needs the whole listing is decided up front
/// from its keys (which users it deletes, the mass-deletion guard, whether an id held by
/// another entry is free); what needs the whole batch of users is kept small across
/// chunks (the cards taken so far, renamed ids, counts).
pub struct Planner {
    source: String,
    /// key → id of every user the source owns now, the key as `listed`'s digest.
    existing: HashMap<u128, String>,
    /// The keys of every entry of the listing.
    listed: KeySet,
    /// Keys (`listed`'s digests) whose user is removed; shrinks when another entry takes
    /// a gone user's id over.
    gone: HashSet<u128>,
    taken_over: HashSet<u128>,
    /// Cards given to an earlier user of the batch.
    cards: HashSet<String>,
    /// Old ids of renamed entries (removed at the end).
    renamed: Vec<String>,
    /// Users the source owns now (distinct ids), and how many the batch adds.
    owned: usize,
    added: usize,
    complete: bool,
}

impl Planner {
    /// Decides the deletions and the mass-deletion guard, before any user is planned.
    /// `listed`: the keys of every entry of the listing.
    /// `existing` calls its argument with the (key, id) of every user the source owns now
    /// (a page at a time from the store: only their digests and ids are kept).
    pub fn new(
        listed: KeySet,
        deletions: &Gone,
        existing: impl FnOnce(&mut dyn FnMut(String, String)) -> Result<(), StoreError>,
        s: &Settings<'_>,
    ) -> Result<Planner, PlanError> {
        let mut gone = HashSet::new();
        let mut owned_keys = HashMap::new();
        existing(&mut |key, id| {
            let digest = listed.digest(&key);
            let deleted = match deletions {
                Gone::Keys(_) => false,
                Gone::AllExcept { present } => !listed.holds(digest) && !present.contains(&key),
            };
            if deleted {
                gone.insert(digest);
            }
            owned_keys.insert(digest, id);
        })?;
        let existing = owned_keys;
        if let Gone::Keys(keys) = deletions {
            for key in keys {
                let digest = listed.digest(key);
                if existing.contains_key(&digest) && !listed.holds(digest) {
                    gone.insert(digest);
                }
            }
        }
        let limit = deletion_limit(existing.len(), s.max_delete_share);
        if gone.len() > limit && !s.force {
            return Err(PlanError::TooManyDeletions {
                removing: gone.len(),
                of: existing.len(),
                limit,
            });
        }
        let owned = existing.values().collect::<HashSet<_>>().len();
        Ok(Planner {
            source: s.source.to_owned(),
            listed,
            gone,
            existing,
            taken_over: HashSet::new(),
            cards: HashSet::new(),
            renamed: Vec::new(),
            owned,
            added: 0,
            complete: matches!(deletions, Gone::AllExcept { .. }),
        })
    }

    /// The writes of one chunk of entries (no removals: `finish` has them).
    pub fn chunk(
        &mut self,
        entries: Vec<UpstreamUser>,
        store: &dyn Existing,
    ) -> Result<Plan, PlanError> {
        let mut out = Plan {
            complete: self.complete,
            ..Plan::default()
        };
        for entry in entries {
            let Some((user, previous)) = self.merge(&entry, store, &mut out)? else {
                continue;
            };
            let key = self.listed.digest(&entry.key);
            if let Some(old_id) = self.existing.get(&key).filter(|old| **old != user.id) {
                self.renamed.push(old_id.clone());
            }
            match entry.pin.clone() {
                Some(_) if pin_unchanged(&entry, &previous) => {}
                Some(pin) => out.pins.push((out.users.len(), pin)),
                None => {}
            }
            out.users.push(user);
        }
        self.check_cards(&mut out, store)?;
        Ok(out)
    }

    /// The listing is a complete one (it reconciles deletions).
    pub fn complete(&self) -> bool {
        self.complete
    }

    /// The ids the batch removes (sorted), and how many users the source owns once the
    /// batch is applied.
    pub fn finish(self) -> (Vec<String>, u64) {
        let mut removals: Vec<String> = self
            .gone
            .iter()
            .filter_map(|k| self.existing.get(k))
            .chain(self.renamed.iter())
            .cloned()
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        removals.sort();
        let users = (self.owned + self.added).saturating_sub(removals.len());
        (removals, users as u64)
    }

    /// Whether the store's user `id`, holding something an entry wants, leaves its place
    /// in this batch: it is this source's and its entry is listed or gone.
    fn leaving(&self, id: &str, store: &dyn Existing) -> Result<bool, StoreError> {
        Ok(store.user(id)?.is_some_and(|u| {
            u.origin == UserOrigin::Upstream
                && u.upstream.as_ref().is_some_and(|r| {
                    let key = self.listed.digest(&r.key);
                    r.source == self.source
                        && (self.listed.holds(key)
                            || self.gone.contains(&key)
                            || self.taken_over.contains(&key))
                })
        }))
    }

    /// The new record for one changed entry (PIN not yet set), or `None` when it is skipped.
    fn merge(
        &mut self,
        entry: &UpstreamUser,
        store: &dyn Existing,
        out: &mut Plan,
    ) -> Result<Option<(User, Option<UpstreamRef>)>, PlanError> {
        let current = store.user(&entry.id)?;
        let mut user = match current {
            None => {
                self.added += 1;
                User::new_local(entry.id.clone())
            }
            Some(u) if u.origin == UserOrigin::Local => {
                out.skipped.push(format!(
                    "id `{}` belongs to a local user, which sync never changes",
                    entry.id
                ));
                return Ok(None);
            }
            Some(u) if u.upstream.as_ref().is_none_or(|r| r.source != self.source) => {
                out.skipped.push(format!(
                    "id `{}` belongs to another directory source",
                    entry.id
                ));
                return Ok(None);
            }
            Some(u) => {
                let held_by = u.upstream.as_ref().map_or("", |r| r.key.as_str());
                let held = self.listed.digest(held_by);
                if held_by != entry.key && self.existing.contains_key(&held) {
                    if !self.gone.remove(&held) {
                        out.skipped.push(format!(
                            "id `{}` is already held by another entry of this source",
                            entry.id
                        ));
                        return Ok(None);
                    }
                    self.taken_over.insert(held);
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
            source: self.source.clone(),
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

    /// Drops a card another user holds (outside this batch) or an earlier user of the
    /// batch took; the user is still applied, without that card.
    fn check_cards(&mut self, out: &mut Plan, store: &dyn Existing) -> Result<(), StoreError> {
        let mut dropped = Vec::new();
        for (i, user) in out.users.iter().enumerate() {
            for card in &user.cards {
                let elsewhere = match store.card_owner(card)? {
                    Some(owner) => owner != user.id && !self.leaving(&owner, store)?,
                    None => false,
                };
                if elsewhere || !self.cards.insert(card.clone()) {
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
