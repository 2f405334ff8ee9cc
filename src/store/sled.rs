//! The sled 0.34 implementation of `Store`. With its children — `sled_open.rs` (open guard,
//! meta checks), `sled_log.rs` (audit log, outbox), `sled_sync.rs` (sync batches),
//! `sled_journal.rs` (large batches), `sled_check.rs` (`store check` / `store repair`) and `sled_mail.rs` (mail outbox, reminders, sweeper,
//! retired tags) — the only files that name sled. This file: the trees, users and their
//! indexes written in transactions, lockout counters. Values are JSON.

use super::{
    ImportOutcome, LockoutUpdate, OutboxBatch, PinUse, Result, Store, StoreError, SyncApplied,
    SyncState, SyncWrite,
};
use crate::domain::{AuditEvent, Lane, LaneDepth, LockoutState, QueuedMail, Tag, Timestamp, User};
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use sled::{Db, Transactional, Tree};
use std::sync::atomic::{AtomicU64, Ordering};

pub use self::check::{CheckReport, RepairReport, TreeReport};
pub(crate) use self::journal::Rolled;
/// Users in a chunk of the sync journal (at most), for callers that step through one.
pub(crate) use self::sync::CHUNK as JOURNAL_CHUNK;

impl SledStore {
    /// `pinwarden store check`: reads every record of the stopped store at `dir`.
    pub fn check(dir: &std::path::Path) -> std::result::Result<CheckReport, super::OpenError> {
        check::check(dir)
    }

    /// `pinwarden store repair`: backs the stopped store at `dir` up beside it, then
    /// rebuilds it from every record that can still be read.
    pub fn repair(dir: &std::path::Path) -> std::result::Result<RepairReport, super::OpenError> {
        check::repair(dir)
    }
}

pub struct SledStore {
    db: Db,
    users: Tree,
    tags: Tree,
    cards: Tree,
    lockouts: Tree,
    audit: Tree,
    meta: Tree,
    /// PIN tag → ids of the users sharing it (upstream collisions; none of them is in `tags`).
    shared: Tree,
    /// `source NUL key` → user id: the users each directory source owns.
    upstream: Tree,
    /// source → `SyncState`.
    sync: Tree,
    /// Large sync batches on their way in (see `sled_journal.rs`).
    journal: Tree,
    audit_len: AtomicU64,
    /// Audit events waiting to be published (MQTT), keyed by sequence number.
    outbox: Tree,
    outbox_len: AtomicU64,
    /// 0: the outbox is off.
    outbox_max: AtomicU64,
    /// `lane seq` → `QueuedMail`: email waiting to be sent (see `sled_mail.rs`).
    mail: Tree,
    /// `user NUL set_at threshold` → empty: expiry reminders already queued.
    reminders: Tree,
    /// PIN tag → unix ms when it left the index.
    retired: Tree,
    /// seq (big-endian) → `ForgotRow`: forgotten-PIN requests (see `sled_forgot.rs`).
    forgot: Tree,
    /// recovery cap key → JSON list of times.
    recovery: Tree,
    /// Keyed hash of a self-service link's token → JSON `WebLink` (see `sled_links.rs`).
    links: Tree,
    /// user id → the key of that user's one live link.
    link_users: Tree,
}

#[path = "sled_check.rs"]
mod check;
#[path = "sled_forgot.rs"]
mod forgot;
#[path = "sled_journal.rs"]
mod journal;
#[path = "sled_links.rs"]
mod links;
#[path = "sled_log.rs"]
mod log;
#[path = "sled_mail.rs"]
mod mail;
#[path = "sled_open.rs"]
mod open;
#[path = "sled_sync.rs"]
mod sync;

const USER_COUNT: &[u8] = b"user_count";
const OUTBOX_DROPPED: &[u8] = b"outbox_dropped";
/// meta: the store health worker's write-flush-read probe (unix ms).
const PROBE: &[u8] = b"probe";

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn decode<T: serde::de::DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| unavailable(format!("corrupt {what} record: {e}")))
}

fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("store records always serialise")
}

type TxResult<T> = std::result::Result<T, ConflictableTransactionError<StoreError>>;

fn abort<T>(e: StoreError) -> TxResult<T> {
    Err(ConflictableTransactionError::Abort(e))
}

fn tx_error(e: TransactionError<StoreError>) -> StoreError {
    match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => unavailable(e),
    }
}

fn bump_count(meta: &TransactionalTree, delta: i64) -> TxResult<()> {
    let current = meta
        .get(USER_COUNT)?
        .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
        .map(u64::from_be_bytes)
        .unwrap_or(0);
    let next = current.saturating_add_signed(delta);
    meta.insert(USER_COUNT, &next.to_be_bytes())?;
    Ok(())
}

/// Moves `id`'s entries in an index (PIN tags, card ids) from `old` keys to `new` keys,
/// refusing a key another user holds.
fn reindex(
    index: &TransactionalTree,
    id: &str,
    old: &[Vec<u8>],
    new: &[Vec<u8>],
    taken: impl Fn(&[u8]) -> StoreError,
) -> TxResult<()> {
    for key in new {
        if let Some(owner) = index.get(key)? {
            if owner.as_ref() != id.as_bytes() {
                return abort(taken(key));
            }
        }
        index.insert(key.as_slice(), id.as_bytes())?;
    }
    for key in old.iter().filter(|k| !new.contains(k)) {
        if index.get(key)?.as_deref() == Some(id.as_bytes()) {
            index.remove(key.as_slice())?;
        }
    }
    Ok(())
}

/// The user id an index (PIN tags, card ids) maps `key` to.
fn owner(index: &Tree, key: &[u8]) -> Result<Option<String>> {
    Ok(index
        .get(key)
        .map_err(unavailable)?
        .map(|v| String::from_utf8_lossy(&v).into_owned()))
}

fn tag_keys(user: &User) -> Vec<Vec<u8>> {
    user.tags().iter().map(|t| t.as_bytes().to_vec()).collect()
}

fn card_keys(user: &User) -> Vec<Vec<u8>> {
    user.cards.iter().map(|c| c.as_bytes().to_vec()).collect()
}

/// The trees a write of users changes, and the time it retires the tags it drops at.
struct TxTrees<'a> {
    users: &'a TransactionalTree,
    tags: &'a TransactionalTree,
    cards: &'a TransactionalTree,
    meta: &'a TransactionalTree,
    shared: &'a TransactionalTree,
    retired: &'a TransactionalTree,
    at: Timestamp,
}

/// A write of users with the other trees it may touch.
struct UserTx<'a> {
    t: TxTrees<'a>,
    mail: &'a TransactionalTree,
    upstream: &'a TransactionalTree,
}

/// Writes `user` into the transaction, moving its index entries; `insert_only` refuses an
/// existing id. Returns whether the user is new.
fn put_user_tx(t: &TxTrees<'_>, user: &User, insert_only: bool) -> TxResult<bool> {
    let old = match t.users.get(user.id.as_bytes())? {
        Some(bytes) => match decode::<User>("user", &bytes) {
            Ok(u) => Some(u),
            Err(e) => return abort(e),
        },
        None => None,
    };
    if insert_only && old.is_some() {
        return abort(StoreError::UserExists(user.id.clone()));
    }
    let (old_tags, old_cards) = old
        .as_ref()
        .map(|u| (tag_keys(u), card_keys(u)))
        .unwrap_or_default();
    sync::retag(t, &user.id, &old_tags, &tag_keys(user), false)?;
    reindex(t.cards, &user.id, &old_cards, &card_keys(user), |k| {
        StoreError::CardTaken(String::from_utf8_lossy(k).into_owned())
    })?;
    t.users.insert(user.id.as_bytes(), encode(user))?;
    if old.is_none() {
        bump_count(t.meta, 1)?;
    }
    Ok(old.is_none())
}

impl SledStore {
    /// Runs `f` in one transaction over the user trees, the mail outbox and the per-source
    /// key index; tags it drops retire at `at`.
    fn user_tx<T>(&self, at: Timestamp, f: impl Fn(&UserTx<'_>) -> TxResult<T>) -> Result<T> {
        let trees = (
            &self.users,
            &self.tags,
            &self.cards,
            &self.meta,
            &self.shared,
            &self.retired,
            &self.mail,
            &self.upstream,
        );
        trees
            .transaction(
                |(users, tags, cards, meta, shared, retired, mail, upstream)| {
                    f(&UserTx {
                        t: TxTrees {
                            users,
                            tags,
                            cards,
                            meta,
                            shared,
                            retired,
                            at,
                        },
                        mail,
                        upstream,
                    })
                },
            )
            .map_err(tx_error)
    }
}

impl Store for SledStore {
    fn user(&self, id: &str) -> Result<Option<User>> {
        match self.users.get(id.as_bytes()).map_err(unavailable)? {
            Some(bytes) => decode("user", &bytes).map(Some),
            None => Ok(None),
        }
    }

    fn tag_owner(&self, tag: &Tag) -> Result<Option<String>> {
        owner(&self.tags, tag.as_bytes())
    }

    fn card_owner(&self, card: &str) -> Result<Option<String>> {
        owner(&self.cards, card.as_bytes())
    }

    fn insert_user_mailing(&self, user: &User, mail: &[QueuedMail]) -> Result<()> {
        self.user_tx(Timestamp::now(), |tx| {
            put_user_tx(&tx.t, user, true)?;
            mail::queue_tx(tx.mail, mail)
        })
    }

    fn update_user_mailing(&self, user: &User, mail: &[QueuedMail]) -> Result<()> {
        self.user_tx(Timestamp::now(), |tx| {
            if tx.t.users.get(user.id.as_bytes())?.is_none() {
                return abort(StoreError::NoSuchUser(user.id.clone()));
            }
            put_user_tx(&tx.t, user, false)?;
            mail::queue_tx(tx.mail, mail)
        })
    }

    fn remove_user(&self, id: &str) -> Result<Option<User>> {
        let removed = self.user_tx(Timestamp::now(), |tx| {
            let t = &tx.t;
            let Some(bytes) = t.users.remove(id.as_bytes())? else {
                return Ok(None);
            };
            let user: User = match decode("user", &bytes) {
                Ok(user) => user,
                Err(e) => return abort(e),
            };
            sync::retag(t, id, &tag_keys(&user), &[], false)?;
            reindex(t.cards, id, &card_keys(&user), &[], |_| {
                StoreError::TagTaken
            })?;
            if let Some(up) = &user.upstream {
                tx.upstream
                    .remove(sync::upstream_key(&up.source, &up.key))?;
            }
            bump_count(t.meta, -1)?;
            Ok(Some(user))
        })?;
        self.lockouts
            .remove(crate::core::lockout::user_key(id))
            .map_err(unavailable)?;
        Ok(removed)
    }

    fn upsert_users_mailing(&self, users: &[User], mail: &[QueuedMail]) -> Result<ImportOutcome> {
        self.user_tx(Timestamp::now(), |tx| {
            let mut outcome = ImportOutcome::default();
            for user in users {
                if put_user_tx(&tx.t, user, false)? {
                    outcome.added += 1;
                } else {
                    outcome.updated += 1;
                }
            }
            mail::queue_tx(tx.mail, mail)?;
            Ok(outcome)
        })
    }

    fn users(&self) -> Result<Vec<User>> {
        self.users
            .iter()
            .map(|kv| {
                kv.map_err(unavailable)
                    .and_then(|(_, v)| decode("user", &v))
            })
            .collect()
    }

    fn users_after(&self, after: Option<&str>, limit: usize) -> Result<Vec<User>> {
        use std::ops::Bound::{Excluded, Unbounded};
        let from = after.map_or(Unbounded, |a| Excluded(a.as_bytes().to_vec()));
        self.users
            .range::<Vec<u8>, _>((from, Unbounded))
            .take(limit)
            .map(|kv| {
                kv.map_err(unavailable)
                    .and_then(|(_, v)| decode("user", &v))
            })
            .collect()
    }

    fn user_count(&self) -> Result<u64> {
        Ok(self
            .meta
            .get(USER_COUNT)
            .map_err(unavailable)?
            .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
            .map(u64::from_be_bytes)
            .unwrap_or(0))
    }

    fn lockout(&self, key: &str) -> Result<Option<LockoutState>> {
        match self.lockouts.get(key).map_err(unavailable)? {
            Some(bytes) => decode("lockout", &bytes).map(Some),
            None => Ok(None),
        }
    }

    fn update_lockout(&self, key: &str, f: LockoutUpdate<'_>) -> Result<Option<LockoutState>> {
        let next = self
            .lockouts
            .update_and_fetch(key, |old| {
                let old = old.and_then(|b| serde_json::from_slice(b).ok());
                f(old).map(|s| encode(&s))
            })
            .map_err(unavailable)?;
        match next {
            Some(bytes) => decode("lockout", &bytes).map(Some),
            None => Ok(None),
        }
    }

    fn lockouts(&self) -> Result<Vec<(String, LockoutState)>> {
        self.lockouts
            .iter()
            .map(|kv| {
                let (k, v) = kv.map_err(unavailable)?;
                Ok((
                    String::from_utf8_lossy(&k).into_owned(),
                    decode("lockout", &v)?,
                ))
            })
            .collect()
    }

    fn append_audit(&self, event: &AuditEvent) -> Result<()> {
        log::append(self, event)
    }

    fn set_outbox_limit(&self, max: u64) {
        self.outbox_max.store(max, Ordering::Relaxed);
    }

    fn outbox_peek(&self, limit: usize) -> Result<OutboxBatch> {
        log::outbox_peek(self, limit)
    }

    fn outbox_ack(&self, upto: u64, dropped: u64) -> Result<()> {
        log::outbox_ack(self, upto, dropped)
    }

    fn audit_tail(&self, n: usize) -> Result<Vec<AuditEvent>> {
        log::tail(self, n)
    }

    fn audit_query(&self, query: &crate::domain::AuditQuery) -> Result<Vec<AuditEvent>> {
        log::query(self, query)
    }

    fn prune_audit(&self, before: Timestamp, max_entries: u64) -> Result<u64> {
        log::prune(self, before, max_entries)
    }

    fn flush(&self) -> Result<()> {
        self.db.flush().map(|_| ()).map_err(unavailable)
    }

    fn probe(&self) -> Result<()> {
        let stamp = Timestamp::now().millis().to_be_bytes();
        self.meta.insert(PROBE, &stamp).map_err(unavailable)?;
        self.db.flush().map_err(unavailable)?;
        match self.meta.get(PROBE).map_err(unavailable)? {
            Some(read) if read.as_ref() == stamp => Ok(()),
            _ => Err(unavailable("the probe record did not read back as written")),
        }
    }

    fn upstream_keys_after(
        &self,
        source: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, String)>> {
        sync::upstream_keys_after(&self.upstream, source, after, limit)
    }

    fn sync_state(&self, source: &str) -> Result<Option<SyncState>> {
        match self.sync.get(source).map_err(unavailable)? {
            Some(bytes) => decode("sync state", &bytes).map(Some),
            None => Ok(None),
        }
    }

    fn put_sync_state(&self, source: &str, state: &SyncState) -> Result<()> {
        // A pending batch carries a newer state: complete it rather than overwrite it.
        journal::settle(self, source)?;
        self.sync
            .insert(source, encode(state))
            .map(|_| ())
            .map_err(unavailable)
    }

    fn apply_sync(&self, write: &SyncWrite<'_>) -> Result<SyncApplied> {
        sync::apply(self, write)
    }
    fn stage_sync(&self, source: &str, upserts: &[User]) -> Result<()> {
        journal::stage(self, source, upserts)
    }
    fn commit_sync(&self, write: &SyncWrite<'_>) -> Result<SyncApplied> {
        journal::settle(self, write.source)?;
        journal::commit(self, write, true)?;
        journal::roll_forward(self, write.source)
    }
    fn discard_sync(&self, source: &str) -> Result<()> {
        journal::discard(self, source)
    }

    fn pin_collisions(&self) -> Result<Vec<Vec<String>>> {
        self.shared
            .iter()
            .map(|kv| {
                kv.map_err(unavailable)
                    .and_then(|(_, v)| decode("shared tag", &v))
            })
            .collect()
    }

    fn mail_peek(&self, lane: Lane, limit: usize) -> Result<Vec<QueuedMail>> {
        mail::peek(self, lane, 0, limit)
    }

    fn mail_peek_after(&self, lane: Lane, after: u64, limit: usize) -> Result<Vec<QueuedMail>> {
        mail::peek(self, lane, after, limit)
    }

    fn mail_all(&self) -> Result<Vec<QueuedMail>> {
        mail::all(self)
    }

    fn mail_depth(&self) -> Result<Vec<(Lane, LaneDepth)>> {
        mail::depth(self)
    }

    fn mail_update(&self, queued: &QueuedMail) -> Result<bool> {
        mail::update(self, queued)
    }

    fn mail_remove(&self, lane: Lane, seq: u64) -> Result<bool> {
        self.mail
            .remove(mail::key(lane, seq))
            .map(|old| old.is_some())
            .map_err(unavailable)
    }

    fn queue_reminder(
        &self,
        user: &str,
        pin_set_at: Timestamp,
        threshold_secs: u64,
        now: Timestamp,
        queued: &QueuedMail,
    ) -> Result<bool> {
        mail::queue_reminder(self, user, (pin_set_at, threshold_secs), now, queued)
    }

    fn sweep_expired(&self, now: Timestamp) -> Result<Vec<User>> {
        mail::sweep_expired(self, now)
    }

    fn tag_retired_at(&self, tag: &Tag) -> Result<Option<Timestamp>> {
        mail::retired_at(self, tag)
    }

    fn prune_lifecycle(&self, before: Timestamp) -> Result<u64> {
        mail::prune(self, before)
    }

    fn forget_reminders(&self, user: &str) -> Result<u64> {
        mail::forget_reminders(self, user)
    }

    fn use_pin(&self, user: &str, tag: &Tag, now: Timestamp) -> Result<PinUse> {
        mail::use_pin(self, user, tag, now)
    }

    fn link_put(&self, link: &crate::domain::WebLink, mail_: &[QueuedMail]) -> Result<()> {
        links::put(self, link, mail_)
    }
    fn link_get(&self, key: &[u8; 32]) -> Result<Option<crate::domain::WebLink>> {
        links::get(self, key)
    }
    fn link_swap(
        &self,
        old: &crate::domain::WebLink,
        new: &crate::domain::WebLink,
    ) -> Result<bool> {
        links::swap(self, old, new)
    }
    fn link_prune(&self, now: Timestamp) -> Result<u64> {
        links::prune(self, now)
    }

    fn forgot_push(&self, row: &super::ForgotRow) -> Result<u64> {
        forgot::push(self, row)
    }

    fn forgot_peek(&self, limit: usize) -> Result<Vec<super::ForgotRow>> {
        forgot::peek(self, limit)
    }

    fn forgot_settle(&self, settle: &super::ForgotSettle<'_>) -> Result<super::Settled> {
        forgot::settle(self, settle)
    }

    fn recovery_times(&self, key: &str) -> Result<Vec<Timestamp>> {
        forgot::times(self, key)
    }
}

#[cfg(test)]
#[path = "sled_tests.rs"]
mod tests;
