//! The sled side of directory sync (a child of `sled.rs`; only the sled files name sled):
//! the share-aware PIN tag index, the per-source key index and the one-transaction batch
//! apply. A tag two users hold is in neither's PIN-only index entry but in `shared`.
//! `untag` and `tag` are the only places a tag leaves or enters the index, so they keep
//! `retired_tags` too: a tag that leaves is recorded at the write's time, one that enters
//! again (the same user keeping it through a batch, or anyone taking it) is forgotten there.

use super::{
    abort, bump_count, card_keys, decode, encode, reindex, tag_keys, tx_error, unavailable,
    SledStore, TxResult, TxTrees,
};
use crate::core::lockout::user_key;
use crate::domain::{Timestamp, User, UserOrigin};
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

/// Up to `limit` of `source`'s (key, id) pairs, by key, after the key `after`.
pub(super) fn upstream_keys_after(
    index: &Tree,
    source: &str,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<(String, String)>> {
    let prefix = upstream_key(source, "");
    let from = match after {
        Some(key) => std::ops::Bound::Excluded(upstream_key(source, key)),
        None => std::ops::Bound::Included(prefix.clone()),
    };
    index
        .range::<Vec<u8>, _>((from, std::ops::Bound::Unbounded))
        .take_while(|kv| kv.as_ref().map_or(true, |(k, _)| k.starts_with(&prefix)))
        .take(limit)
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
        return retire(t, key);
    }
    let Some(mut ids) = sharers(t.shared, key)? else {
        return Ok(());
    };
    ids.retain(|i| i != id);
    match ids.as_slice() {
        [] => {
            t.shared.remove(key)?;
            retire(t, key)?;
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

/// Records that `key` left the index at the write's time.
fn retire(t: &TxTrees<'_>, key: &[u8]) -> TxResult<()> {
    t.retired.insert(key, &t.at.millis().to_be_bytes())?;
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
            t.retired.remove(key)?;
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

pub(super) fn owned_by(user: &User, source: &str) -> bool {
    user.origin == UserOrigin::Upstream
        && user.upstream.as_ref().is_some_and(|u| u.source == source)
}

/// Batches up to this many users (upserts and removals) apply in one transaction; larger
/// ones go through the journal in chunks of this size. sled keeps every page a
/// transaction replaces until it commits (about 14 KiB a user): one transaction of 100 000
/// users peaked at 1.7 GiB, chunks of 1 000 at 140 MiB.
pub(crate) const CHUNK: usize = 1000;

/// What a batch does with what its plan could not foresee (an operator's change between
/// plan and apply).
#[derive(Clone, Copy)]
pub(super) enum Mode<'a> {
    /// One transaction: anything unexpected aborts it and nothing changes.
    Strict,
    /// A chunk of a committed journal, which must complete: a user that is no longer the
    /// source's is left alone, and a card held outside the batch is left out. A card may
    /// move from any user of the batch (`touched`), whose own chunk may come later.
    Journal(super::journal::Touched<'a>),
}

/// The trees one part of a batch writes.
pub(super) struct BatchTrees<'a> {
    pub(super) t: TxTrees<'a>,
    pub(super) upstream: &'a TransactionalTree,
    pub(super) lockouts: &'a TransactionalTree,
}

/// Applies `removals` and `upserts` inside one transaction, adding to `out`. Every old
/// index entry of every user touched is dropped first, then the new ones are added, so PINs
/// and cards may move between these users in any order.
pub(super) fn apply_part(
    b: &BatchTrees<'_>,
    source: &str,
    removals: &[String],
    upserts: &[User],
    mode: Mode<'_>,
    out: &mut SyncApplied,
) -> TxResult<()> {
    let t = &b.t;
    let mut existed = HashSet::new();
    let mut left_alone = HashSet::new();
    for id in removals.iter().chain(upserts.iter().map(|u| &u.id)) {
        let Some(old) = load(t.users, id)? else {
            continue;
        };
        if !owned_by(&old, source) {
            match mode {
                Mode::Strict => return abort(StoreError::NotOwned(id.clone())),
                Mode::Journal(_) => {
                    tracing::warn!(user = %id, source, "no longer this source's user: left alone");
                    left_alone.insert(id.as_str());
                    continue;
                }
            }
        }
        retag(t, id, &tag_keys(&old), &[], true)?;
        reindex(t.cards, id, &card_keys(&old), &[], |_| StoreError::TagTaken)?;
        if let Some(up) = &old.upstream {
            let key = upstream_key(&up.source, &up.key);
            if b.upstream.get(&key)?.as_deref() == Some(id.as_bytes()) {
                b.upstream.remove(key)?;
            }
        }
        existed.insert(id.as_str());
    }
    for id in removals
        .iter()
        .filter(|id| !left_alone.contains(id.as_str()))
    {
        if t.users.remove(id.as_bytes())?.is_some() {
            bump_count(t.meta, -1)?;
            b.lockouts.remove(user_key(id).as_bytes())?;
            out.removed += 1;
        }
    }
    for user in upserts
        .iter()
        .filter(|u| !left_alone.contains(u.id.as_str()))
    {
        let Some(up) = user.upstream.as_ref().filter(|_| owned_by(user, source)) else {
            return abort(StoreError::NotOwned(user.id.clone()));
        };
        for key in tag_keys(user) {
            tag(t, &user.id, &key, true)?;
        }
        let mut left_out = Vec::new();
        for key in card_keys(user) {
            let holder = t.cards.get(&key)?;
            let taken = holder.as_ref().filter(|h| h.as_ref() != user.id.as_bytes());
            if let Some(holder) = taken {
                let holder = String::from_utf8_lossy(holder);
                match mode {
                    Mode::Strict => {
                        let card = String::from_utf8_lossy(&key).into_owned();
                        return abort(StoreError::CardTaken(card));
                    }
                    Mode::Journal(touched)
                        if touched.contains(holder.as_ref())?
                            && load(t.users, &holder)?.is_none_or(|h| owned_by(&h, source)) => {}
                    Mode::Journal(_) => {
                        tracing::warn!(user = %user.id, holder = %holder,
                            "a card of the batch is held by another user: left out");
                        left_out.push(key);
                        continue;
                    }
                }
            }
            t.cards.insert(key, user.id.as_bytes())?;
        }
        upstream_key_insert(b.upstream, up, &user.id)?;
        if left_out.is_empty() {
            t.users.insert(user.id.as_bytes(), encode(user))?;
        } else {
            let mut kept = user.clone();
            kept.cards
                .retain(|c| !left_out.iter().any(|k| k == c.as_bytes()));
            t.users.insert(user.id.as_bytes(), encode(&kept))?;
        }
        if existed.contains(user.id.as_str()) {
            out.changed += 1;
        } else {
            bump_count(t.meta, 1)?;
            out.added += 1;
        }
    }
    Ok(())
}

fn upstream_key_insert(
    upstream: &TransactionalTree,
    up: &crate::domain::UpstreamRef,
    id: &str,
) -> TxResult<()> {
    upstream.insert(upstream_key(&up.source, &up.key), id.as_bytes())?;
    Ok(())
}

/// Runs `f` in one transaction over the trees a batch writes and `extra` (the sync state,
/// or the journal). Tags the batch drops retire now.
pub(super) fn in_batch<T>(
    store: &SledStore,
    extra: &Tree,
    f: impl Fn(&BatchTrees<'_>, &TransactionalTree) -> TxResult<T>,
) -> Result<T> {
    let at = Timestamp::now();
    let trees = (
        &store.users,
        &store.tags,
        &store.cards,
        &store.meta,
        &store.shared,
        &store.retired,
        &store.upstream,
        &store.lockouts,
        extra,
    );
    trees
        .transaction(
            |(users, tags, cards, meta, shared, retired, upstream, lockouts, extra)| {
                let b = BatchTrees {
                    t: TxTrees {
                        users,
                        tags,
                        cards,
                        meta,
                        shared,
                        retired,
                        at,
                    },
                    upstream,
                    lockouts,
                };
                f(&b, extra)
            },
        )
        .map_err(tx_error)
}

/// A batch: one transaction when it is small, else through the journal. A batch of this
/// source still in the journal is completed first, and this one refused: it was planned
/// against a store that did not yet hold it.
pub(super) fn apply(store: &SledStore, w: &SyncWrite<'_>) -> Result<SyncApplied> {
    super::journal::settle(store, w.source)?;
    if w.upserts.len() + w.removals.len() <= CHUNK {
        apply_one(store, w)
    } else {
        super::journal::apply(store, w)
    }
}

/// The batch in one transaction, with the source's new sync state.
fn apply_one(store: &SledStore, w: &SyncWrite<'_>) -> Result<SyncApplied> {
    in_batch(store, &store.sync, |b, sync| {
        let mut out = SyncApplied::default();
        apply_part(b, w.source, w.removals, w.upserts, Mode::Strict, &mut out)?;
        // Checked at the end: a later user may share, or free, an earlier one's tag.
        for user in w.upserts {
            for key in tag_keys(user) {
                if b.t.shared.get(&key)?.is_some() {
                    out.collisions.push(user.id.clone());
                    break;
                }
            }
        }
        sync.insert(w.source.as_bytes(), encode(w.state))?;
        Ok(out)
    })
    .map(|mut out| {
        out.collisions.sort();
        out
    })
}
