//! Large sync batches (a child of `sled.rs`). One sled transaction holds every page it
//! replaces until it commits, so a 100 000-user batch cannot be one transaction on an edge
//! box. Instead the batch is written to the `sync_journal` tree in chunks (by `stage` as
//! the engine plans them, the rest by `commit`: nobody holds the whole batch), committed
//! by writing its head (the source's new sync state and the ids it touches) and flushing, then
//! rolled forward chunk by chunk: each chunk's transaction applies its users and deletes the
//! chunk from the journal, and the last one writes the sync state and deletes the head.
//!
//! A crash before the head is durable leaves the previous state (the loose chunks are
//! cleared); after it, the next open completes the batch before anything else reads the
//! store. Either way a restart finds the old set or the new one, never a mix. While a batch
//! rolls forward, decisions see its users arrive a chunk at a time, each user whole.
//!
//! Keys: `source NUL kind seq`, kind `h` (head), `c` (counts so far), `r` (a chunk of
//! removals), `u` (a chunk of users) or `s` (staging begun), seq a big-endian u32.

use super::sync::{apply_part, in_batch, owned_by, Mode, CHUNK};
use super::{decode, encode, tx_error, unavailable, SledStore};
use crate::domain::{AuditKind, User};
use crate::store::{Result, Store, StoreError, SyncApplied, SyncState, SyncWrite};
use serde::{Deserialize, Serialize};
use sled::transaction::ConflictableTransactionError;
use sled::Transactional;
use std::collections::HashSet;

const HEAD: u8 = b'h';
const COUNTS: u8 = b'c';
const REMOVALS: u8 = b'r';
const UPSERTS: u8 = b'u';
/// Written when staging begins: a store reopened meanwhile (its open clears uncommitted
/// chunks) has lost it, and the commit is refused rather than missing users.
const STAGING: u8 = b's';

#[derive(Serialize, Deserialize)]
struct Head {
    state: SyncState,
    /// Every user id the batch removes or writes.
    touched: Vec<String>,
}

#[derive(Default, Serialize, Deserialize)]
struct Counts {
    added: usize,
    changed: usize,
    removed: usize,
}

fn prefix(source: &str, kind: u8) -> Vec<u8> {
    let mut k = Vec::with_capacity(source.len() + 2);
    k.extend_from_slice(source.as_bytes());
    k.push(0);
    k.push(kind);
    k
}

fn key(source: &str, kind: u8, seq: u32) -> Vec<u8> {
    let mut k = prefix(source, kind);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// Writes the batch to the journal, commits it and rolls it forward.
pub(super) fn apply(store: &SledStore, w: &SyncWrite<'_>) -> Result<SyncApplied> {
    clear(store, w.source)?;
    commit(store, w, false)
}

/// Before the first `stage` (and to drop a stopped run's): completes a committed batch of
/// `source` (then refuses, see `settle`), drops anything staged and marks a new staging.
pub(super) fn discard(store: &SledStore, source: &str) -> Result<()> {
    settle(store, source)?;
    clear(store, source)?;
    store
        .journal
        .insert(key(source, STAGING, 0), &[][..])
        .map(|_| ())
        .map_err(unavailable)
}

/// Adds `upserts` to the batch being staged for `source`: in the journal, but nothing
/// reads it before the head is written, and a crash before that drops it.
pub(super) fn stage(store: &SledStore, source: &str, upserts: &[User]) -> Result<()> {
    let next = match store
        .journal
        .scan_prefix(prefix(source, UPSERTS))
        .keys()
        .next_back()
    {
        Some(k) => {
            let k = k.map_err(unavailable)?;
            let seq: [u8; 4] = k[k.len() - 4..].try_into().expect("a 4-byte sequence");
            u32::from_be_bytes(seq) + 1
        }
        None => 0,
    };
    for (seq, chunk) in (next..).zip(upserts.chunks(CHUNK)) {
        store
            .journal
            .insert(key(source, UPSERTS, seq), encode(&chunk))
            .map_err(unavailable)?;
    }
    Ok(())
}

/// Stages `w`'s users and removals after whatever is staged, checks the whole batch,
/// commits it (the head, durable) and rolls it forward. A refused batch is dropped.
/// `staged`: parts were staged since `discard`, and must all still be there.
pub(super) fn commit(store: &SledStore, w: &SyncWrite<'_>, staged: bool) -> Result<SyncApplied> {
    let marker = key(w.source, STAGING, 0);
    if staged && store.journal.get(&marker).map_err(unavailable)?.is_none() {
        clear(store, w.source)?;
        return Err(StoreError::Unavailable(
            "the store was reopened while the sync staged its users; the sync runs again".into(),
        ));
    }
    store.journal.remove(&marker).map_err(unavailable)?;
    stage(store, w.source, w.upserts)?;
    for (seq, chunk) in (0..).zip(w.removals.chunks(CHUNK)) {
        store
            .journal
            .insert(key(w.source, REMOVALS, seq), encode(&chunk))
            .map_err(unavailable)?;
    }
    let touched = match precheck(store, w.source, w.removals) {
        Ok(touched) => touched,
        Err(e) => {
            clear(store, w.source)?;
            return Err(e);
        }
    };
    store.db.flush().map_err(unavailable)?;
    let head = Head {
        state: w.state.clone(),
        touched: touched.into_iter().collect(),
    };
    store
        .journal
        .insert(key(w.source, HEAD, 0), encode(&head))
        .map_err(unavailable)?;
    store.db.flush().map_err(unavailable)?;
    drop(head);
    roll_forward(store, w.source)
}

/// Calls `f` with each staged chunk of users of `source`, in order.
fn each_staged(
    store: &SledStore,
    source: &str,
    mut f: impl FnMut(Vec<User>) -> Result<()>,
) -> Result<()> {
    for bytes in store.journal.scan_prefix(prefix(source, UPSERTS)).values() {
        f(decode("sync journal chunk", &bytes.map_err(unavailable)?)?)?;
    }
    Ok(())
}

/// Refuses, before the batch is committed, what one transaction would refuse: a user the
/// source does not own, or a card held by a user outside the batch (or by two of it).
/// Reads the staged users twice rather than holding them; returns every id the batch
/// touches.
fn precheck(store: &SledStore, source: &str, removals: &[String]) -> Result<HashSet<String>> {
    let mut touched: HashSet<String> = removals.iter().cloned().collect();
    each_staged(store, source, |users| {
        for user in users {
            if !owned_by(&user, source) {
                return Err(StoreError::NotOwned(user.id));
            }
            touched.insert(user.id);
        }
        Ok(())
    })?;
    for id in &touched {
        if let Some(bytes) = store.users.get(id.as_bytes()).map_err(unavailable)? {
            let user: User = decode("user", &bytes)?;
            if !owned_by(&user, source) {
                return Err(StoreError::NotOwned(id.clone()));
            }
        }
    }
    let mut cards = HashSet::new();
    each_staged(store, source, |users| {
        for card in users.into_iter().flat_map(|u| u.cards) {
            if let Some(holder) = store.cards.get(card.as_bytes()).map_err(unavailable)? {
                if !touched.contains(String::from_utf8_lossy(&holder).as_ref()) {
                    return Err(StoreError::CardTaken(card));
                }
            }
            if !cards.insert(card.clone()) {
                return Err(StoreError::CardTaken(card));
            }
        }
        Ok(())
    })?;
    Ok(touched)
}

/// Completes a committed batch of `source` whose roll-forward failed while the daemon ran
/// (an I/O error). Anything planned since was planned against a store without it, so when
/// there was one the caller's write is refused and its sync runs again.
pub(super) fn settle(store: &SledStore, source: &str) -> Result<()> {
    if store
        .journal
        .get(key(source, HEAD, 0))
        .map_err(unavailable)?
        .is_none()
    {
        return Ok(());
    }
    let done = roll_forward(store, source)
        .map_err(|e| StoreError::Unavailable(format!("completing an interrupted batch: {e}")))?;
    record_completed(store, source, &done);
    Err(StoreError::Unavailable(
        "an interrupted batch of this source was completed first; the sync runs again".into(),
    ))
}

fn record_completed(store: &SledStore, source: &str, done: &SyncApplied) {
    tracing::warn!(source = %source, added = done.added, changed = done.changed,
        removed = done.removed, "completed an interrupted directory sync batch");
    store.record(AuditKind::Sync {
        source: source.into(),
        outcome: crate::domain::SyncOutcome::Completed,
        added: done.added,
        changed: done.changed,
        removed: done.removed,
        rehashed: 0,
        collisions: done.collisions.len(),
        skipped: 0,
        error: None,
    });
}

/// At open: completes every committed batch and clears the chunks of any that never
/// committed. A batch that cannot be completed is left in the journal, loudly: the daemon
/// still starts and decides from the cache, and that source's syncs fail (in `status`)
/// until it completes.
pub(super) fn recover(store: &SledStore) -> Result<()> {
    let mut sources = Vec::new();
    for entry in store.journal.iter().keys() {
        let k = entry.map_err(unavailable)?;
        if let Some(nul) = k.iter().position(|b| *b == 0) {
            let source = String::from_utf8_lossy(&k[..nul]).into_owned();
            if sources.last() != Some(&source) {
                sources.push(source);
            }
        }
    }
    for source in sources {
        if store
            .journal
            .get(key(&source, HEAD, 0))
            .map_err(unavailable)?
            .is_some()
        {
            match roll_forward(store, &source) {
                Ok(done) => record_completed(store, &source, &done),
                Err(e) => tracing::error!(source = %source, error = %e,
                    "cannot complete an interrupted directory sync batch; its syncs fail until it can"),
            }
        } else {
            clear(store, &source)?;
        }
    }
    Ok(())
}

fn clear(store: &SledStore, source: &str) -> Result<()> {
    let mut whole = source.as_bytes().to_vec();
    whole.push(0);
    for k in store.journal.scan_prefix(&whole).keys() {
        store
            .journal
            .remove(k.map_err(unavailable)?)
            .map_err(unavailable)?;
    }
    Ok(())
}

fn roll_forward(store: &SledStore, source: &str) -> Result<SyncApplied> {
    let head_key = key(source, HEAD, 0);
    let Some(bytes) = store.journal.get(&head_key).map_err(unavailable)? else {
        return Ok(SyncApplied::default());
    };
    let head: Head = decode("sync journal head", &bytes)?;
    drop(bytes);
    let touched: HashSet<String> = head.touched.iter().cloned().collect();
    for kind in [REMOVALS, UPSERTS] {
        let chunks: Vec<_> = store
            .journal
            .scan_prefix(prefix(source, kind))
            .keys()
            .collect::<std::result::Result<_, _>>()
            .map_err(unavailable)?;
        for chunk_key in chunks {
            let Some(bytes) = store.journal.get(&chunk_key).map_err(unavailable)? else {
                continue;
            };
            let (removals, upserts) = if kind == REMOVALS {
                (
                    decode::<Vec<String>>("sync journal chunk", &bytes)?,
                    Vec::new(),
                )
            } else {
                (
                    Vec::new(),
                    decode::<Vec<User>>("sync journal chunk", &bytes)?,
                )
            };
            apply_chunk(store, source, &chunk_key, &removals, &upserts, &touched)?;
        }
    }
    finish(store, source, &head.state, &touched)
}

/// The counts of the chunks applied so far.
fn counts_so_far(
    journal: &sled::transaction::TransactionalTree,
    key: &[u8],
) -> std::result::Result<Counts, sled::transaction::UnabortableTransactionError> {
    Ok(journal
        .get(key)?
        .and_then(|v| serde_json::from_slice(&v).ok())
        .unwrap_or_default())
}

/// One chunk in one transaction, which also deletes it from the journal.
fn apply_chunk(
    store: &SledStore,
    source: &str,
    chunk_key: &[u8],
    removals: &[String],
    upserts: &[User],
    touched: &HashSet<String>,
) -> Result<()> {
    let counts_key = key(source, COUNTS, 0);
    in_batch(store, &store.journal, |b, journal| {
        let mut out = SyncApplied::default();
        apply_part(
            b,
            source,
            removals,
            upserts,
            Mode::Journal(touched),
            &mut out,
        )?;
        let mut counts: Counts = counts_so_far(journal, &counts_key)?;
        counts.added += out.added;
        counts.changed += out.changed;
        counts.removed += out.removed;
        journal.insert(counts_key.as_slice(), encode(&counts))?;
        journal.remove(chunk_key)?;
        Ok(())
    })
}

/// The last step: the sync state (with its cursor) and the end of the journal entry, in one
/// transaction; then which of the batch's users share a PIN.
fn finish(
    store: &SledStore,
    source: &str,
    state: &SyncState,
    touched: &HashSet<String>,
) -> Result<SyncApplied> {
    let counts_key = key(source, COUNTS, 0);
    let head_key = key(source, HEAD, 0);
    let counts = (&store.sync, &store.journal)
        .transaction(|(sync, journal)| {
            let counts: Counts = counts_so_far(journal, &counts_key)?;
            sync.insert(source.as_bytes(), encode(state))?;
            journal.remove(counts_key.as_slice())?;
            journal.remove(head_key.as_slice())?;
            Ok::<_, ConflictableTransactionError<StoreError>>(counts)
        })
        .map_err(tx_error)?;
    store.db.flush().map_err(unavailable)?;
    let mut collisions = Vec::new();
    for entry in store.shared.iter().values() {
        let ids: Vec<String> = decode("shared tag", &entry.map_err(unavailable)?)?;
        collisions.extend(ids.into_iter().filter(|id| touched.contains(id)));
    }
    collisions.sort();
    collisions.dedup();
    Ok(SyncApplied {
        added: counts.added,
        changed: counts.changed,
        removed: counts.removed,
        collisions,
    })
}

#[cfg(test)]
#[path = "sled_journal_tests.rs"]
mod tests;
