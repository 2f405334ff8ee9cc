//! Large sync batches (a child of `sled.rs`). One sled transaction holds every page it
//! replaces until it commits, so a 100 000-user batch cannot be one transaction on an edge
//! box. Instead the batch is written to the `sync_journal` tree in chunks (by `stage` as
//! the engine plans them, the rest by `commit`: nobody holds the whole batch), committed
//! by writing its head (the source's new sync state) and flushing, then
//! rolled forward chunk by chunk: each chunk's transaction applies its users and deletes the
//! chunk from the journal, and the last one writes the sync state and deletes the head.
//!
//! A crash before the head is durable leaves the previous state (the loose chunks are
//! cleared); after it, the next open completes the batch before anything else reads the
//! store. Either way a restart finds the old set or the new one, never a mix. While a batch
//! rolls forward, decisions see its users arrive a chunk at a time, each user whole.
//!
//! Keys: `source NUL kind seq`, kind `h` (head), `c` (counts so far), `r` (a chunk of
//! removals), `u` (a chunk of users) or `s` (staging begun), seq a big-endian u32; and
//! `source NUL kind item`, kind `t` (an id the batch touches) or `k` (a card a user of the
//! batch holds), written by the commit's check. The batch's ids and cards live here, not
//! in memory, so a commit holds a chunk of users whatever the batch's size; they outlive
//! the head until `clear_scratch` (or the next batch's `clear`) removes them.

use super::sync::{apply_part, in_batch, owned_by, Mode, CHUNK};
use super::{decode, encode, tx_error, unavailable, SledStore};
use crate::domain::{AuditKind, User};
use crate::store::{Result, Store, StoreError, SyncApplied, SyncState, SyncWrite};
use serde::{Deserialize, Serialize};
use sled::transaction::ConflictableTransactionError;
use sled::Transactional;

const HEAD: u8 = b'h';
const COUNTS: u8 = b'c';
const REMOVALS: u8 = b'r';
const UPSERTS: u8 = b'u';
/// Written when staging begins: a store reopened meanwhile (its open clears uncommitted
/// chunks) has lost it, and the commit is refused rather than missing users.
const STAGING: u8 = b's';
/// `source NUL t id`: a user id the batch removes or writes.
const TOUCHED: u8 = b't';
/// `source NUL k card`: a card a user of the batch holds.
const CARDS: u8 = b'k';

#[derive(Serialize, Deserialize)]
struct Head {
    state: SyncState,
    /// Every user id the batch touches, in a head written before the ids moved to their
    /// own keys (`TOUCHED`); moved there at the first roll-forward step.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
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

/// `source NUL kind item`: one member of the batch's touched ids or cards.
fn member(source: &str, kind: u8, item: &str) -> Vec<u8> {
    let mut k = prefix(source, kind);
    k.extend_from_slice(item.as_bytes());
    k
}

/// Whether the batch of `source` touches user `id`.
fn touches(store: &SledStore, source: &str, id: &str) -> Result<bool> {
    store
        .journal
        .contains_key(member(source, TOUCHED, id))
        .map_err(unavailable)
}

/// Records that the batch touches `id`.
fn touch(store: &SledStore, source: &str, id: &str) -> Result<()> {
    store
        .journal
        .insert(member(source, TOUCHED, id), &[][..])
        .map(|_| ())
        .map_err(unavailable)
}

/// The batch's touched ids as a roll-forward transaction reads them.
#[derive(Clone, Copy)]
pub(super) struct Touched<'a> {
    journal: &'a sled::transaction::TransactionalTree,
    source: &'a str,
}

impl Touched<'_> {
    pub(super) fn contains(
        &self,
        id: &str,
    ) -> std::result::Result<bool, sled::transaction::UnabortableTransactionError> {
        Ok(self
            .journal
            .get(member(self.source, TOUCHED, id))?
            .is_some())
    }
}

/// Writes the batch to the journal, commits it and rolls it forward.
pub(super) fn apply(store: &SledStore, w: &SyncWrite<'_>) -> Result<SyncApplied> {
    clear(store, w.source)?;
    commit(store, w, false)?;
    roll_forward(store, w.source)
}

/// Removes up to `max` of the touched ids and cards a completed batch of `source` left;
/// whether none is left. Nothing while a batch is committed (its roll-forward reads them).
pub(super) fn clear_scratch(store: &SledStore, source: &str, max: usize) -> Result<bool> {
    if store
        .journal
        .contains_key(key(source, HEAD, 0))
        .map_err(unavailable)?
    {
        return Ok(true);
    }
    let mut left = max.max(1);
    for kind in [TOUCHED, CARDS] {
        for k in store.journal.scan_prefix(prefix(source, kind)).keys() {
            if left == 0 {
                return Ok(false);
            }
            store
                .journal
                .remove(k.map_err(unavailable)?)
                .map_err(unavailable)?;
            left -= 1;
        }
    }
    Ok(true)
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

/// Stages `w`'s users and removals after whatever is staged, checks the whole batch and
/// commits it (the head, durable); `roll_forward` (or `roll_forward_some`, or the next
/// open) applies it. A refused batch is dropped.
/// `staged`: parts were staged since `discard`, and must all still be there.
pub(super) fn commit(store: &SledStore, w: &SyncWrite<'_>, staged: bool) -> Result<()> {
    let mut check = begin(store, w, staged)?;
    while !check_some(store, w.source, &mut check, usize::MAX)? {}
    commit_head(store, w, check)
}

/// What the commit's check has read so far. The caller keeps it between steps, so the
/// store may be closed and opened again (`open_mid_batch`) while the check goes on.
pub(crate) struct Check {
    /// (holder, card): cards the store gives to a user not yet seen in the batch; at the
    /// end every such holder must be in it.
    held: Vec<(String, String)>,
    /// The next chunk of staged users to read.
    next: u32,
}

/// The commit's first step: the staging must be whole (`staged`), `w`'s own users and
/// removals join the journal, and the removals are checked.
fn begin(store: &SledStore, w: &SyncWrite<'_>, staged: bool) -> Result<Check> {
    let marker = key(w.source, STAGING, 0);
    if staged {
        whole(store, w.source)?;
    } else {
        store
            .journal
            .insert(&marker, &[][..])
            .map_err(unavailable)?;
    }
    stage(store, w.source, w.upserts)?;
    for (seq, chunk) in (0..).zip(w.removals.chunks(CHUNK)) {
        store
            .journal
            .insert(key(w.source, REMOVALS, seq), encode(&chunk))
            .map_err(unavailable)?;
    }
    let check = Check {
        held: Vec::new(),
        next: 0,
    };
    for id in w.removals {
        if let Err(e) = stored_owned_by(store, id, w.source) {
            clear(store, w.source)?;
            return Err(e);
        }
        touch(store, w.source, id)?;
    }
    Ok(check)
}

/// The staging marker is there: no reopen that clears uncommitted chunks (`recover`)
/// came since staging began. Else the staged parts are dropped and the commit refused.
fn whole(store: &SledStore, source: &str) -> Result<()> {
    if store
        .journal
        .get(key(source, STAGING, 0))
        .map_err(unavailable)?
        .is_none()
    {
        clear(store, source)?;
        return Err(StoreError::Again(
            "the store was reopened while the sync staged its users; the sync runs again".into(),
        ));
    }
    Ok(())
}

/// A stored user `id` must belong to `source` (or not exist).
fn stored_owned_by(store: &SledStore, id: &str, source: &str) -> Result<()> {
    if let Some(bytes) = store.users.get(id.as_bytes()).map_err(unavailable)? {
        let user: User = decode("user", &bytes)?;
        if !owned_by(&user, source) {
            return Err(StoreError::NotOwned(id.to_owned()));
        }
    }
    Ok(())
}

/// Refuses, before the batch is committed, what one transaction would refuse: a user the
/// source does not own, or a card held by a user outside the batch (or by two of it).
/// Reads up to `chunks` staged chunks; whether every one has been read. A refused batch
/// is dropped.
fn check_some(store: &SledStore, source: &str, check: &mut Check, chunks: usize) -> Result<bool> {
    let result = check_chunks(store, source, check, chunks);
    if result.is_err() {
        clear(store, source)?;
    }
    result
}

fn check_chunks(store: &SledStore, source: &str, check: &mut Check, chunks: usize) -> Result<bool> {
    let from = key(source, UPSERTS, check.next);
    let to = key(source, UPSERTS, u32::MAX);
    for (read, entry) in store.journal.range(from..=to).enumerate() {
        if read == chunks {
            return Ok(false);
        }
        let (k, bytes) = entry.map_err(unavailable)?;
        let seq: [u8; 4] = k[k.len() - 4..].try_into().expect("a 4-byte sequence");
        check.next = u32::from_be_bytes(seq) + 1;
        let users: Vec<User> = decode("sync journal chunk", &bytes)?;
        for user in users {
            if !owned_by(&user, source) {
                return Err(StoreError::NotOwned(user.id));
            }
            stored_owned_by(store, &user.id, source)?;
            for card in &user.cards {
                let seen = store
                    .journal
                    .insert(member(source, CARDS, card), &[][..])
                    .map_err(unavailable)?;
                if seen.is_some() {
                    return Err(StoreError::CardTaken(card.clone()));
                }
                if let Some(holder) = store.cards.get(card.as_bytes()).map_err(unavailable)? {
                    let holder = String::from_utf8_lossy(&holder).into_owned();
                    if holder != user.id && !touches(store, source, &holder)? {
                        check.held.push((holder, card.clone()));
                    }
                }
            }
            touch(store, source, &user.id)?;
        }
    }
    Ok(true)
}

/// The commit's last step: every card held outside the batch refused, then the head
/// (the new sync state and every id the batch touches) written and made durable.
fn commit_head(store: &SledStore, w: &SyncWrite<'_>, check: Check) -> Result<()> {
    whole(store, w.source)?;
    for (holder, card) in &check.held {
        if !touches(store, w.source, holder)? {
            let card = card.clone();
            clear(store, w.source)?;
            return Err(StoreError::CardTaken(card));
        }
    }
    store
        .journal
        .remove(key(w.source, STAGING, 0))
        .map_err(unavailable)?;
    store.db.flush().map_err(unavailable)?;
    let head = Head {
        state: w.state.clone(),
        touched: Vec::new(),
    };
    store
        .journal
        .insert(key(w.source, HEAD, 0), encode(&head))
        .map_err(unavailable)?;
    store.db.flush().map(|_| ()).map_err(unavailable)
}

impl SledStore {
    /// `Store::commit_sync` in steps, so the caller can close and open the store
    /// (`open_mid_batch`) between them: `commit_sync_begin` completes an interrupted batch
    /// of the source (then refuses) and adds `w`'s own part to the staged batch;
    /// `commit_sync_check` reads up to `chunks` staged chunks (of up to 1 000 users) until
    /// it returns true; `commit_sync_head` commits; `roll_forward_sync` applies.
    pub(crate) fn commit_sync_begin(&self, w: &SyncWrite<'_>) -> Result<Check> {
        settle(self, w.source)?;
        begin(self, w, true)
    }

    pub(crate) fn commit_sync_check(
        &self,
        source: &str,
        check: &mut Check,
        chunks: usize,
    ) -> Result<bool> {
        check_some(self, source, check, chunks)
    }

    pub(crate) fn commit_sync_head(&self, w: &SyncWrite<'_>, check: Check) -> Result<()> {
        commit_head(self, w, check)
    }

    /// Applies up to `chunks` of the committed batch's chunks, or completes it.
    pub(crate) fn roll_forward_sync(&self, source: &str, chunks: usize) -> Result<Rolled> {
        roll_forward_some(self, source, chunks)
    }

    /// After `Rolled::Done`: removes up to `max` of what the batch's check kept in the
    /// journal; whether it is all gone.
    pub(crate) fn clear_sync_scratch(&self, source: &str, max: usize) -> Result<bool> {
        clear_scratch(self, source, max)
    }
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
    Err(StoreError::Again(
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

/// Applies the committed batch of `source` whole (nothing committed: nothing to do).
pub(super) fn roll_forward(store: &SledStore, source: &str) -> Result<SyncApplied> {
    loop {
        match roll_forward_some(store, source, usize::MAX)? {
            Rolled::Done(done) => {
                clear_scratch(store, source, usize::MAX)?;
                return Ok(done);
            }
            Rolled::Gone => return Ok(SyncApplied::default()),
            Rolled::More(_) => {}
        }
    }
}

/// What one step of a roll-forward did.
pub(crate) enum Rolled {
    /// Chunks applied (this many users or removals); more remain.
    More(usize),
    /// The batch is complete (its counts, over every step).
    Done(SyncApplied),
    /// No batch is committed (none was, or a reopen's `recover` completed it).
    Gone,
}

/// Applies up to `chunks` chunks of the committed batch of `source`, or, when none is
/// left, completes it. Each step reads the head again, so the store may be closed and
/// opened between steps (without `recover`, which would complete the batch itself).
fn roll_forward_some(store: &SledStore, source: &str, chunks: usize) -> Result<Rolled> {
    let head_key = key(source, HEAD, 0);
    let Some(bytes) = store.journal.get(&head_key).map_err(unavailable)? else {
        return Ok(Rolled::Gone);
    };
    let mut head: Head = decode("sync journal head", &bytes)?;
    drop(bytes);
    if !head.touched.is_empty() {
        // A head from before the ids had their own keys: moved there, then the head
        // written again without them, so the ids are read from one place only.
        for id in std::mem::take(&mut head.touched) {
            touch(store, source, &id)?;
        }
        store
            .journal
            .insert(&head_key, encode(&head))
            .map_err(unavailable)?;
    }
    let mut applied = 0;
    let mut left = chunks.max(1);
    for kind in [REMOVALS, UPSERTS] {
        let keys: Vec<_> = store
            .journal
            .scan_prefix(prefix(source, kind))
            .keys()
            .take(left)
            .collect::<std::result::Result<_, _>>()
            .map_err(unavailable)?;
        for chunk_key in keys {
            left -= 1;
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
            applied += removals.len() + upserts.len();
            apply_chunk(store, source, &chunk_key, &removals, &upserts)?;
        }
        if left == 0 {
            return Ok(Rolled::More(applied));
        }
    }
    finish(store, source, &head.state).map(Rolled::Done)
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
) -> Result<()> {
    let counts_key = key(source, COUNTS, 0);
    in_batch(store, &store.journal, |b, journal| {
        let mut out = SyncApplied::default();
        let touched = Touched { journal, source };
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
/// transaction; then which of the batch's users share a PIN. The touched ids stay for
/// that, and for `clear_scratch` to remove.
fn finish(store: &SledStore, source: &str, state: &SyncState) -> Result<SyncApplied> {
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
        for id in ids {
            if touches(store, source, &id)? {
                collisions.push(id);
            }
        }
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
