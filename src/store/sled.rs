//! The sled 0.34 implementation of `Store`: the only file that names sled. Values are JSON;
//! the audit log is keyed by (unix ms, sequence) so it iterates in time order.

use super::{
    ImportOutcome, LockoutUpdate, OpenError, OpenParams, Opened, OutboxBatch, Result, Store,
    StoreError, SyncApplied, SyncState, SyncWrite, SCHEMA_VERSION,
};
use crate::domain::{AuditEvent, LockoutState, Tag, Timestamp, User};
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use sled::{Db, Transactional, Tree};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

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
}

#[path = "sled_journal.rs"]
mod journal;
#[path = "sled_sync.rs"]
mod sync;

const USER_COUNT: &[u8] = b"user_count";
const OUTBOX_DROPPED: &[u8] = b"outbox_dropped";

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

struct TxTrees<'a> {
    users: &'a TransactionalTree,
    tags: &'a TransactionalTree,
    cards: &'a TransactionalTree,
    meta: &'a TransactionalTree,
    shared: &'a TransactionalTree,
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
    /// Opens (or creates) the store at `dir`. A store that panics or reports corruption on
    /// open is moved aside, loudly, and a fresh one created; one held by another process,
    /// or created with another pepper or argon2 parameters, refuses to open.
    pub fn open(
        dir: &Path,
        params: OpenParams<'_>,
    ) -> std::result::Result<Opened<Self>, OpenError> {
        let path = dir.display().to_string();
        let mut moved_aside = None;
        let db = match try_open(dir, params.cache_capacity_mib) {
            Ok(db) => db,
            Err(Failure::InUse) => return Err(OpenError::InUse(path)),
            Err(Failure::Corrupt(message)) => {
                let aside = format!("{path}.corrupt-{}", Timestamp::now().millis());
                std::fs::rename(dir, &aside).map_err(|e| OpenError::Io {
                    path: path.clone(),
                    message: format!("{message}; moving it aside failed: {e}"),
                })?;
                tracing::error!(store = %path, moved_to = %aside, reason = %message,
                    "the store was corrupt: moved aside and starting with an empty one; \
                     local users must be restored (import) and upstream users re-synced");
                moved_aside = Some(aside);
                try_open(dir, params.cache_capacity_mib).map_err(|f| OpenError::Io {
                    path: path.clone(),
                    message: f.to_string(),
                })?
            }
            Err(Failure::Other(message)) => return Err(OpenError::Io { path, message }),
        };
        let io = |e: sled::Error| OpenError::Io {
            path: path.clone(),
            message: e.to_string(),
        };
        let tree = |name: &str| db.open_tree(name).map_err(io);
        let store = SledStore {
            users: tree("users")?,
            tags: tree("pin_tags")?,
            cards: tree("card_ids")?,
            lockouts: tree("lockouts")?,
            audit: tree("audit")?,
            meta: tree("meta")?,
            shared: tree("pin_tags_shared")?,
            upstream: tree("upstream_keys")?,
            sync: tree("sync_state")?,
            journal: tree("sync_journal")?,
            audit_len: AtomicU64::new(0),
            outbox: tree("outbox")?,
            outbox_len: AtomicU64::new(0),
            outbox_max: AtomicU64::new(0),
            db: db.clone(),
        };
        store
            .audit_len
            .store(store.audit.len() as u64, Ordering::Relaxed);
        store
            .outbox_len
            .store(store.outbox.len() as u64, Ordering::Relaxed);
        let (salt, created) = store.check_meta(&path, &params)?;
        journal::recover(&store).map_err(|e| OpenError::Io {
            path: path.clone(),
            message: format!("completing an interrupted directory sync: {e}"),
        })?;
        Ok(Opened {
            store,
            salt,
            created,
            moved_aside,
        })
    }

    fn meta_u64(&self, key: &[u8]) -> Result<u64> {
        Ok(self
            .meta
            .get(key)
            .map_err(unavailable)?
            .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
            .map(u64::from_be_bytes)
            .unwrap_or(0))
    }

    fn bump_meta(&self, key: &[u8], delta: i64) -> Result<()> {
        self.meta
            .fetch_and_update(key, |old| {
                let old = old
                    .and_then(|v| <[u8; 8]>::try_from(v).ok())
                    .map(u64::from_be_bytes)
                    .unwrap_or(0);
                Some(old.saturating_add_signed(delta).to_be_bytes().to_vec())
            })
            .map_err(unavailable)?;
        Ok(())
    }

    fn trees(&self) -> (&Tree, &Tree, &Tree, &Tree, &Tree) {
        (
            &self.users,
            &self.tags,
            &self.cards,
            &self.meta,
            &self.shared,
        )
    }

    fn check_meta(
        &self,
        path: &str,
        params: &OpenParams<'_>,
    ) -> std::result::Result<([u8; 16], bool), OpenError> {
        let io = |e: sled::Error| OpenError::Io {
            path: path.into(),
            message: e.to_string(),
        };
        let get = |k: &str| self.meta.get(k).map_err(io);
        let Some(version) = get("schema_version")? else {
            let salt: [u8; 16] = rand::random();
            self.meta.insert("salt", &salt).map_err(io)?;
            self.meta
                .insert("pepper_fingerprint", params.pepper_fingerprint)
                .map_err(io)?;
            self.meta
                .insert("hash_params", params.hash_params)
                .map_err(io)?;
            self.meta
                .insert("schema_version", &SCHEMA_VERSION.to_be_bytes())
                .map_err(io)?;
            self.db.flush().map_err(io)?;
            return Ok((salt, true));
        };
        let found = <[u8; 4]>::try_from(version.as_ref())
            .map(u32::from_be_bytes)
            .unwrap_or(u32::MAX);
        if found > SCHEMA_VERSION {
            return Err(OpenError::SchemaTooNew {
                path: path.into(),
                found,
                supported: SCHEMA_VERSION,
            });
        }
        if get("pepper_fingerprint")?.as_deref() != Some(params.pepper_fingerprint.as_bytes()) {
            return Err(OpenError::PepperMismatch { path: path.into() });
        }
        let stored = get("hash_params")?
            .map(|v| String::from_utf8_lossy(&v).into_owned())
            .unwrap_or_default();
        if stored != params.hash_params {
            return Err(OpenError::ParamsMismatch {
                path: path.into(),
                stored,
                configured: params.hash_params.into(),
            });
        }
        let salt = get("salt")?
            .and_then(|v| <[u8; 16]>::try_from(v.as_ref()).ok())
            .ok_or_else(|| OpenError::Io {
                path: path.into(),
                message: "meta.salt is missing or damaged".into(),
            })?;
        Ok((salt, false))
    }
}

enum Failure {
    InUse,
    Corrupt(String),
    Other(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::InUse => f.write_str("in use by another process"),
            Failure::Corrupt(m) | Failure::Other(m) => f.write_str(m),
        }
    }
}

fn try_open(dir: &Path, cache_mib: u64) -> std::result::Result<Db, Failure> {
    let config = sled::Config::new()
        .path(dir)
        .cache_capacity(cache_mib * 1024 * 1024);
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || config.open())) {
        Ok(Ok(db)) => Ok(db),
        Ok(Err(sled::Error::Io(e)))
            if e.kind() == std::io::ErrorKind::WouldBlock || e.to_string().contains("lock") =>
        {
            Err(Failure::InUse)
        }
        Ok(Err(sled::Error::Io(e))) => Err(Failure::Other(e.to_string())),
        Ok(Err(e @ sled::Error::Corruption { .. })) => Err(Failure::Corrupt(e.to_string())),
        Ok(Err(e)) => Err(Failure::Corrupt(e.to_string())),
        Err(_) => Err(Failure::Corrupt(
            "sled panicked while opening the store".into(),
        )),
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

    fn insert_user(&self, user: &User) -> Result<()> {
        self.trees()
            .transaction(|(users, tags, cards, meta, shared)| {
                put_user_tx(
                    &TxTrees {
                        users,
                        tags,
                        cards,
                        meta,
                        shared,
                    },
                    user,
                    true,
                )
            })
            .map(|_| ())
            .map_err(tx_error)
    }

    fn update_user(&self, user: &User) -> Result<()> {
        self.trees()
            .transaction(|(users, tags, cards, meta, shared)| {
                if users.get(user.id.as_bytes())?.is_none() {
                    return abort(StoreError::NoSuchUser(user.id.clone()));
                }
                put_user_tx(
                    &TxTrees {
                        users,
                        tags,
                        cards,
                        meta,
                        shared,
                    },
                    user,
                    false,
                )
            })
            .map(|_| ())
            .map_err(tx_error)
    }

    fn remove_user(&self, id: &str) -> Result<Option<User>> {
        let removed = (
            &self.users,
            &self.tags,
            &self.cards,
            &self.meta,
            &self.shared,
            &self.upstream,
        )
            .transaction(|(users, tags, cards, meta, shared, upstream)| {
                let Some(bytes) = users.remove(id.as_bytes())? else {
                    return Ok(None);
                };
                let user: User = match decode("user", &bytes) {
                    Ok(user) => user,
                    Err(e) => return abort(e),
                };
                let t = TxTrees {
                    users,
                    tags,
                    cards,
                    meta,
                    shared,
                };
                sync::retag(&t, id, &tag_keys(&user), &[], false)?;
                reindex(cards, id, &card_keys(&user), &[], |_| StoreError::TagTaken)?;
                if let Some(up) = &user.upstream {
                    upstream.remove(sync::upstream_key(&up.source, &up.key))?;
                }
                bump_count(meta, -1)?;
                Ok(Some(user))
            })
            .map_err(tx_error)?;
        self.lockouts
            .remove(crate::core::lockout::user_key(id))
            .map_err(unavailable)?;
        Ok(removed)
    }

    fn upsert_users(&self, users: &[User]) -> Result<ImportOutcome> {
        self.trees()
            .transaction(|(users_tx, tags, cards, meta, shared)| {
                let trees = TxTrees {
                    users: users_tx,
                    tags,
                    cards,
                    meta,
                    shared,
                };
                let mut outcome = ImportOutcome::default();
                for user in users {
                    if put_user_tx(&trees, user, false)? {
                        outcome.added += 1;
                    } else {
                        outcome.updated += 1;
                    }
                }
                Ok(outcome)
            })
            .map_err(tx_error)
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
        let seq = self.db.generate_id().map_err(unavailable)?;
        let mut key = [0u8; 16];
        key[..8].copy_from_slice(&(event.at.millis().max(0) as u64).to_be_bytes());
        key[8..].copy_from_slice(&seq.to_be_bytes());
        let value = encode(event);
        self.audit
            .insert(key, value.as_slice())
            .map_err(unavailable)?;
        self.audit_len.fetch_add(1, Ordering::Relaxed);
        let max = self.outbox_max.load(Ordering::Relaxed);
        if max > 0 {
            self.outbox
                .insert(seq.to_be_bytes(), value)
                .map_err(unavailable)?;
            self.outbox_len.fetch_add(1, Ordering::Relaxed);
            while self.outbox_len.load(Ordering::Relaxed) > max {
                match self.outbox.pop_min().map_err(unavailable)? {
                    Some(_) => {
                        self.outbox_len.fetch_sub(1, Ordering::Relaxed);
                        self.bump_meta(OUTBOX_DROPPED, 1)?;
                    }
                    None => break,
                }
            }
        }
        Ok(())
    }

    fn set_outbox_limit(&self, max: u64) {
        self.outbox_max.store(max, Ordering::Relaxed);
    }

    fn outbox_peek(&self, limit: usize) -> Result<OutboxBatch> {
        let events = self
            .outbox
            .iter()
            .take(limit)
            .map(|kv| {
                let (k, v) = kv.map_err(unavailable)?;
                let seq = <[u8; 8]>::try_from(k.as_ref())
                    .map(u64::from_be_bytes)
                    .map_err(|_| unavailable("corrupt outbox key"))?;
                Ok((seq, decode("outbox", &v)?))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(OutboxBatch {
            events,
            dropped: self.meta_u64(OUTBOX_DROPPED)?,
            pending: self.outbox_len.load(Ordering::Relaxed),
        })
    }

    fn outbox_ack(&self, upto: u64, dropped: u64) -> Result<()> {
        while let Some((key, _)) = self.outbox.first().map_err(unavailable)? {
            if key.as_ref() > upto.to_be_bytes().as_slice() {
                break;
            }
            if self.outbox.remove(&key).map_err(unavailable)?.is_some() {
                self.outbox_len.fetch_sub(1, Ordering::Relaxed);
            }
        }
        if dropped > 0 {
            self.bump_meta(OUTBOX_DROPPED, -(dropped as i64))?;
        }
        Ok(())
    }

    fn audit_tail(&self, n: usize) -> Result<Vec<AuditEvent>> {
        let mut events = self
            .audit
            .iter()
            .rev()
            .take(n)
            .map(|kv| {
                kv.map_err(unavailable)
                    .and_then(|(_, v)| decode("audit", &v))
            })
            .collect::<Result<Vec<AuditEvent>>>()?;
        events.reverse();
        Ok(events)
    }

    fn prune_audit(&self, before: Timestamp, max_entries: u64) -> Result<u64> {
        let cutoff = (before.millis().max(0) as u64).to_be_bytes();
        let mut removed = 0;
        while let Some((key, _)) = self.audit.first().map_err(unavailable)? {
            let too_many = self.audit_len.load(Ordering::Relaxed) > max_entries;
            if key.as_ref()[..8] >= cutoff[..] && !too_many {
                break;
            }
            if self.audit.remove(&key).map_err(unavailable)?.is_some() {
                self.audit_len.fetch_sub(1, Ordering::Relaxed);
                removed += 1;
            }
        }
        Ok(removed)
    }

    fn flush(&self) -> Result<()> {
        self.db.flush().map(|_| ()).map_err(unavailable)
    }

    fn upstream_keys(&self, source: &str) -> Result<Vec<(String, String)>> {
        sync::upstream_keys(&self.upstream, source)
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

    fn pin_collisions(&self) -> Result<Vec<Vec<String>>> {
        self.shared
            .iter()
            .map(|kv| {
                kv.map_err(unavailable)
                    .and_then(|(_, v)| decode("shared tag", &v))
            })
            .collect()
    }
}

#[cfg(test)]
#[path = "sled_tests.rs"]
mod tests;
