//! The indexes of `MemoryStore` (a child of `memory.rs`): PIN tags with the shared-tag
//! rule, cards, the per-source key index and a sync batch, on the caller's copy of the
//! tables (which is thrown away on an error). Mirrors `sled.rs` and `sled_sync.rs`:
//! `untag` and `tag` alone move tags out of and into the index, so they alone keep the
//! retired tags (a tag leaving is recorded at `at`, one entering is forgotten there).

use super::Tables;
use crate::core::lockout::user_key;
use crate::domain::{Timestamp, User, UserOrigin};
use crate::store::{Result, StoreError, SyncApplied, SyncWrite};
use std::collections::HashSet;

type TagKey = [u8; 32];

fn tag_keys(user: &User) -> Vec<TagKey> {
    user.tags().iter().map(|t| *t.as_bytes()).collect()
}

/// Drops `id` from tag `key`; when one holder of a shared tag is left, PIN-only login
/// comes back for it. A tag nobody holds any more retires at `at`.
fn untag(t: &mut Tables, id: &str, key: &TagKey, at: Timestamp) {
    if t.tags.get(key).is_some_and(|owner| owner == id) {
        t.tags.remove(key);
        t.retired.insert(*key, at);
        return;
    }
    let Some(ids) = t.shared.get_mut(key) else {
        return;
    };
    ids.retain(|i| i != id);
    match ids.as_slice() {
        [] => {
            t.shared.remove(key);
            t.retired.insert(*key, at);
        }
        [last] => {
            let last = last.clone();
            t.shared.remove(key);
            t.tags.insert(*key, last);
        }
        _ => {}
    }
}

/// Gives `id` tag `key`. Another holder is refused with `TagTaken` unless `share`, in which
/// case all holders leave the PIN-only index.
fn tag(t: &mut Tables, id: &str, key: &TagKey, share: bool) -> Result<()> {
    if let Some(ids) = t.shared.get_mut(key) {
        if !ids.iter().any(|i| i == id) {
            if !share {
                return Err(StoreError::TagTaken);
            }
            ids.push(id.to_owned());
        }
        return Ok(());
    }
    match t.tags.get(key) {
        None => {
            t.tags.insert(*key, id.to_owned());
            t.retired.remove(key);
        }
        Some(owner) if owner == id => {}
        Some(_) if !share => return Err(StoreError::TagTaken),
        Some(_) => {
            let owner = t.tags.remove(key).unwrap_or_default();
            t.shared.insert(*key, vec![owner, id.to_owned()]);
        }
    }
    Ok(())
}

fn retag(t: &mut Tables, id: &str, old: &[TagKey], new: &[TagKey], at: Timestamp) -> Result<()> {
    for key in old.iter().filter(|k| !new.contains(k)) {
        untag(t, id, key, at);
    }
    for key in new {
        tag(t, id, key, false)?;
    }
    Ok(())
}

fn uncard(t: &mut Tables, id: &str, cards: &[String]) {
    for card in cards {
        if t.cards.get(card).is_some_and(|owner| owner == id) {
            t.cards.remove(card);
        }
    }
}

/// Gives `user` its cards; a card another user holds is refused.
fn card(t: &mut Tables, user: &User) -> Result<()> {
    for card in &user.cards {
        if t.cards.get(card).is_some_and(|owner| *owner != user.id) {
            return Err(StoreError::CardTaken(card.clone()));
        }
        t.cards.insert(card.clone(), user.id.clone());
    }
    Ok(())
}

/// Writes `user`, moving its index entries; `insert_only` refuses an existing id. Returns
/// whether the user is new. Tags it drops retire at `at`.
pub(super) fn put_user(
    t: &mut Tables,
    user: &User,
    insert_only: bool,
    at: Timestamp,
) -> Result<bool> {
    let old = t.users.get(&user.id).cloned();
    if insert_only && old.is_some() {
        return Err(StoreError::UserExists(user.id.clone()));
    }
    let old_tags = old.as_ref().map(tag_keys).unwrap_or_default();
    retag(t, &user.id, &old_tags, &tag_keys(user), at)?;
    if let Some(old) = &old {
        let gone: Vec<String> = old
            .cards
            .iter()
            .filter(|c| !user.cards.contains(c))
            .cloned()
            .collect();
        uncard(t, &user.id, &gone);
    }
    card(t, user)?;
    t.users.insert(user.id.clone(), user.clone());
    Ok(old.is_none())
}

/// Removes a user and its index entries (not its lockout counter).
pub(super) fn remove_user(t: &mut Tables, id: &str, at: Timestamp) -> Option<User> {
    let user = t.users.remove(id)?;
    unindex(t, &user, at);
    Some(user)
}

/// Drops every index entry of `user` (tags, cards, its source key).
fn unindex(t: &mut Tables, user: &User, at: Timestamp) {
    for key in tag_keys(user) {
        untag(t, &user.id, &key, at);
    }
    uncard(t, &user.id, &user.cards);
    if let Some(up) = &user.upstream {
        let key = (up.source.clone(), up.key.clone());
        if t.upstream.get(&key).is_some_and(|owner| *owner == user.id) {
            t.upstream.remove(&key);
        }
    }
}

fn owned_by(user: &User, source: &str) -> bool {
    user.origin == UserOrigin::Upstream
        && user.upstream.as_ref().is_some_and(|u| u.source == source)
}

/// One sync batch (without its collisions and state, which the caller adds). Every old
/// index entry of every user touched is dropped first, then the new ones are added, so PINs
/// and cards may move between these users in any order; upstream PINs may be shared.
pub(super) fn apply_batch(t: &mut Tables, w: &SyncWrite<'_>, at: Timestamp) -> Result<SyncApplied> {
    let mut out = SyncApplied::default();
    let mut existed = HashSet::new();
    for id in w.removals.iter().chain(w.upserts.iter().map(|u| &u.id)) {
        let Some(old) = t.users.get(id).cloned() else {
            continue;
        };
        if !owned_by(&old, w.source) {
            return Err(StoreError::NotOwned(id.clone()));
        }
        unindex(t, &old, at);
        existed.insert(id.as_str());
    }
    for id in w.removals {
        if t.users.remove(id).is_some() {
            t.lockouts.remove(&user_key(id));
            out.removed += 1;
        }
    }
    for user in w.upserts {
        let Some(up) = user.upstream.as_ref().filter(|_| owned_by(user, w.source)) else {
            return Err(StoreError::NotOwned(user.id.clone()));
        };
        for key in tag_keys(user) {
            tag(t, &user.id, &key, true)?;
        }
        card(t, user)?;
        t.upstream
            .insert((up.source.clone(), up.key.clone()), user.id.clone());
        t.users.insert(user.id.clone(), user.clone());
        if existed.contains(user.id.as_str()) {
            out.changed += 1;
        } else {
            out.added += 1;
        }
    }
    Ok(out)
}
