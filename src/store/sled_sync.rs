//! The sled side of directory sync (a child of `sled.rs`, the only other file naming sled):
//! the share-aware PIN tag index, the per-source key index and the one-transaction batch
//! apply. A tag two users hold is in neither's PIN-only index entry but in `shared`.

use super::{
    abort, bump_count, card_keys, decode, encode, reindex, tag_keys, tx_error, unavailable,
    SledStore, TxResult, TxTrees,
};
use crate::domain::{User, UserOrigin};
use crate::store::{Result, StoreError, SyncApplied, SyncWrite};
use sled::transaction::TransactionalTree;
use sled::{Transactional, Tree};
use std::collections::HashSet;

/// The key of the per-source index: `source NUL key`.
pub(super) fn upstream_key(source: &str, key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(source.len() + key.len() + 1);
    k.extend_from_slice(source.as_bytes());
    k.push(0);
    k.extend_from_slice(key.as_bytes());
    k
}

pub(super) fn upstream_keys(index: &Tree, source: &str) -> Result<Vec<(String, String)>> {
    let prefix = upstream_key(source, "");
    index
        .scan_prefix(&prefix)
        .map(|kv| {
            let (k, v) = kv.map_err(unavailable)?;
            Ok((
                String::from_utf8_lossy(&k[prefix.len()..]).into_owned(),
                String::from_utf8_lossy(&v).into_owned(),
            ))
        })
        .collect()
}

fn sharers(shared: &TransactionalTree, key: &[u8]) -> TxResult<Option<Vec<String>>> {
    match shared.get(key)? {
        Some(bytes) => match decode::<Vec<String>>("shared tag", &bytes) {
            Ok(ids) => Ok(Some(ids)),
            Err(e) => abort(e),
        },
        None => Ok(None),
    }
}

/// Drops `id` from tag `key`; when one holder of a shared tag is left, PIN-only login
/// comes back for it.
fn untag(t: &TxTrees<'_>, id: &str, key: &[u8]) -> TxResult<()> {
    if t.tags.get(key)?.as_deref() == Some(id.as_bytes()) {
        t.tags.remove(key)?;
        return Ok(());
    }
    let Some(mut ids) = sharers(t.shared, key)? else {
        return Ok(());
    };
    ids.retain(|i| i != id);
    match ids.as_slice() {
        [] => {
            t.shared.remove(key)?;
        }
        [last] => {
            t.shared.remove(key)?;
            t.tags.insert(key, last.as_bytes())?;
        }
        _ => {
            t.shared.insert(key, encode(&ids))?;
        }
    }
    Ok(())
}

/// Gives `id` tag `key`. Another holder is refused with `TagTaken` unless `share`, in which
/// case both (all) holders leave the PIN-only index. Returns whether the tag is shared.
fn tag(t: &TxTrees<'_>, id: &str, key: &[u8], share: bool) -> TxResult<bool> {
    if let Some(mut ids) = sharers(t.shared, key)? {
        if !ids.iter().any(|i| i == id) {
            if !share {
                return abort(StoreError::TagTaken);
            }
            ids.push(id.to_owned());
            t.shared.insert(key, encode(&ids))?;
        }
        return Ok(true);
    }
    match t.tags.get(key)? {
        None => {
            t.tags.insert(key, id.as_bytes())?;
            Ok(false)
        }
        Some(owner) if owner.as_ref() == id.as_bytes() => Ok(false),
        Some(_) if !share => abort(StoreError::TagTaken),
        Some(owner) => {
            let ids = vec![String::from_utf8_lossy(&owner).into_owned(), id.to_owned()];
            t.tags.remove(key)?;
            t.shared.insert(key, encode(&ids))?;
            Ok(true)
        }
    }
}

/// Moves `id` from the `old` tags to the `new` ones (see `tag` for `share`).
pub(super) fn retag(
    t: &TxTrees<'_>,
    id: &str,
    old: &[Vec<u8>],
    new: &[Vec<u8>],
    share: bool,
) -> TxResult<()> {
    for key in old.iter().filter(|k| !new.contains(k)) {
        untag(t, id, key)?;
    }
    for key in new {
        tag(t, id, key, share)?;
    }
    Ok(())
}

fn load(users: &TransactionalTree, id: &str) -> TxResult<Option<User>> {
    match users.get(id.as_bytes())? {
        Some(bytes) => match decode::<User>("user", &bytes) {
            Ok(u) => Ok(Some(u)),
            Err(e) => abort(e),
        },
        None => Ok(None),
    }
}

fn owned_by(user: &User, source: &str) -> bool {
    user.origin == UserOrigin::Upstream
        && user.upstream.as_ref().is_some_and(|u| u.source == source)
}

/// The batch in one transaction. First every old index entry of every user the batch
/// touches is dropped, then the new ones are added, so PINs and cards may move between
/// users of one batch in any order.
pub(super) fn apply(store: &SledStore, w: &SyncWrite<'_>) -> Result<SyncApplied> {
    let trees = (
        &store.users,
        &store.tags,
        &store.cards,
        &store.meta,
        &store.shared,
        &store.upstream,
        &store.sync,
    );
    trees
        .transaction(|(users, tags, cards, meta, shared, upstream, sync)| {
            let t = TxTrees {
                users,
                tags,
                cards,
                meta,
                shared,
            };
            let mut out = SyncApplied::default();
            let touched = w.removals.iter().chain(w.upserts.iter().map(|u| &u.id));
            let mut existed = HashSet::new();
            for id in touched {
                let Some(old) = load(users, id)? else {
                    continue;
                };
                if !owned_by(&old, w.source) {
                    return abort(StoreError::NotOwned(id.clone()));
                }
                retag(&t, id, &tag_keys(&old), &[], true)?;
                reindex(cards, id, &card_keys(&old), &[], |_| StoreError::TagTaken)?;
                if let Some(up) = &old.upstream {
                    upstream.remove(upstream_key(&up.source, &up.key))?;
                }
                existed.insert(id.as_str());
            }
            for id in w.removals {
                if users.remove(id.as_bytes())?.is_some() {
                    bump_count(meta, -1)?;
                    out.removed += 1;
                }
            }
            for user in w.upserts {
                let Some(up) = user.upstream.as_ref().filter(|_| owned_by(user, w.source)) else {
                    return abort(StoreError::NotOwned(user.id.clone()));
                };
                for key in tag_keys(user) {
                    tag(&t, &user.id, &key, true)?;
                }
                reindex(cards, &user.id, &[], &card_keys(user), |k| {
                    StoreError::CardTaken(String::from_utf8_lossy(k).into_owned())
                })?;
                upstream.insert(upstream_key(&up.source, &up.key), user.id.as_bytes())?;
                users.insert(user.id.as_bytes(), encode(user))?;
                if existed.contains(user.id.as_str()) {
                    out.changed += 1;
                } else {
                    bump_count(meta, 1)?;
                    out.added += 1;
                }
            }
            // Checked at the end: a later user may share, or free, an earlier one's tag.
            for user in w.upserts {
                for key in tag_keys(user) {
                    if shared.get(&key)?.is_some() {
                        out.collisions.push(user.id.clone());
                        break;
                    }
                }
            }
            sync.insert(w.source.as_bytes(), encode(w.state))?;
            Ok(out)
        })
        .map_err(tx_error)
        .map(|mut out| {
            out.collisions.sort();
            out
        })
}

#[cfg(test)]
#[path = "sled_sync_tests.rs"]
mod tests;
