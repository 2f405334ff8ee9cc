//! `MemoryStore`: the `Store` in plain std collections, for tests and in-process daemons.
//! It keeps the sled store's semantics (the shared suite in `suite.rs` runs against both):
//! a write of several records runs on a copy of the tables that replaces them only when it
//! succeeds, so it applies whole or not at all. Tests can make its reads fail and have it
//! log the calls it receives, in order. The mail outbox, reminder records and retired tags
//! are tables too, so they change with the user write that queues them or not at all.
//! Must not name sled or touch files.

use super::{
    sweep_due, ImportOutcome, LockoutUpdate, OutboxBatch, PinUse, Result, Store, StoreError,
    SyncApplied, SyncState, SyncWrite,
};
use crate::core::lockout::user_key;
use crate::domain::{AuditEvent, Lane, LaneDepth, LockoutState, QueuedMail, Tag, Timestamp, User};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

#[path = "memory_forgot.rs"]
mod forgot;
#[path = "memory_index.rs"]
mod index;
#[path = "memory_mail.rs"]
mod mail;

/// Everything a transaction may change.
#[derive(Clone, Default)]
struct Tables {
    users: BTreeMap<String, User>,
    /// PIN tag → the one user holding it (PIN-only login).
    tags: BTreeMap<[u8; 32], String>,
    /// PIN tag → the users sharing it (upstream collisions; none of them is in `tags`).
    shared: BTreeMap<[u8; 32], Vec<String>>,
    cards: BTreeMap<String, String>,
    /// (source, key at the source) → user id.
    upstream: BTreeMap<(String, String), String>,
    sync: BTreeMap<String, SyncState>,
    lockouts: BTreeMap<String, LockoutState>,
    /// PIN tag → when it left the index.
    retired: BTreeMap<[u8; 32], Timestamp>,
    /// (user, PIN set_at, threshold) of the expiry reminders already queued.
    reminders: BTreeSet<(String, Timestamp, u64)>,
    /// (lane, seq) → queued email, with the last seq handed out.
    mail: BTreeMap<(Lane, u64), QueuedMail>,
    mail_seq: u64,
    /// seq → forgotten-PIN request, with the last seq handed out (see `memory_forgot.rs`).
    forgot: BTreeMap<u64, super::ForgotRow>,
    forgot_seq: u64,
    /// Recovery cap key → the times counted under it.
    recovery: BTreeMap<String, Vec<Timestamp>>,
    /// Self-service links by the hash of their token, and each user's live one.
    links: BTreeMap<[u8; 32], crate::domain::WebLink>,
    link_users: BTreeMap<String, [u8; 32]>,
}

/// The audit log and the outbox. Both are keyed by one sequence, as in sled.
#[derive(Default)]
struct Log {
    seq: u64,
    /// (unix ms, sequence) → event: time order, then arrival order.
    audit: BTreeMap<(u64, u64), AuditEvent>,
    outbox: BTreeMap<u64, AuditEvent>,
    /// 0: the outbox is off.
    outbox_max: u64,
    dropped: u64,
}

#[derive(Default)]
pub struct MemoryStore {
    tables: Mutex<Tables>,
    /// Sync batches being staged, per source (`stage_sync`).
    staged: Mutex<HashMap<String, Vec<User>>>,
    log: Mutex<Log>,
    fail_user_reads: AtomicBool,
    fail_lockout_reads: AtomicBool,
    calls: Option<Mutex<Vec<String>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn failing(what: &str) -> StoreError {
    StoreError::Unavailable(format!("{what} reads are switched to fail (memory store)"))
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// A store that logs every call it receives (see `calls`).
    pub fn recording() -> Self {
        MemoryStore {
            calls: Some(Mutex::default()),
            ..Self::default()
        }
    }

    /// The calls so far, oldest first: the method name, then the key or the kind of event
    /// (`update_lockout device:lobby`, `flush`, `append_audit Decision`).
    pub fn calls(&self) -> Vec<String> {
        self.calls
            .as_ref()
            .map(|c| lock(c).clone())
            .unwrap_or_default()
    }

    /// Makes reads of users and of the PIN and card indexes fail (`Unavailable`), or work again.
    pub fn fail_user_reads(&self, fail: bool) {
        self.fail_user_reads.store(fail, Ordering::Relaxed);
    }

    /// Makes reads of lockout counters fail (`Unavailable`), or work again.
    pub fn fail_lockout_reads(&self, fail: bool) {
        self.fail_lockout_reads.store(fail, Ordering::Relaxed);
    }

    fn call(&self, what: impl FnOnce() -> String) {
        if let Some(calls) = &self.calls {
            lock(calls).push(what());
        }
    }

    fn user_read(&self, what: &str) -> Result<MutexGuard<'_, Tables>> {
        self.call(|| what.to_owned());
        if self.fail_user_reads.load(Ordering::Relaxed) {
            return Err(failing("user"));
        }
        Ok(lock(&self.tables))
    }

    fn lockout_read(&self, what: String) -> Result<MutexGuard<'_, Tables>> {
        self.call(|| what);
        if self.fail_lockout_reads.load(Ordering::Relaxed) {
            return Err(failing("lockout"));
        }
        Ok(lock(&self.tables))
    }

    /// Runs `f` on a copy of the tables, which replaces them only if `f` succeeds.
    fn write<T>(&self, what: &str, f: impl FnOnce(&mut Tables) -> Result<T>) -> Result<T> {
        self.call(|| what.to_owned());
        let mut tables = lock(&self.tables);
        let mut next = tables.clone();
        let out = f(&mut next)?;
        *tables = next;
        Ok(out)
    }
}

impl Store for MemoryStore {
    fn user(&self, id: &str) -> Result<Option<User>> {
        Ok(self.user_read("user")?.users.get(id).cloned())
    }

    fn tag_owner(&self, tag: &Tag) -> Result<Option<String>> {
        Ok(self
            .user_read("tag_owner")?
            .tags
            .get(tag.as_bytes())
            .cloned())
    }

    fn card_owner(&self, card: &str) -> Result<Option<String>> {
        Ok(self.user_read("card_owner")?.cards.get(card).cloned())
    }

    fn insert_user_mailing(&self, user: &User, mail: &[QueuedMail]) -> Result<()> {
        self.write("insert_user", |t| {
            index::put_user(t, user, true, Timestamp::now())?;
            t.queue(mail);
            Ok(())
        })
    }

    fn update_user_mailing(&self, user: &User, mail: &[QueuedMail]) -> Result<()> {
        self.write("update_user", |t| {
            if !t.users.contains_key(&user.id) {
                return Err(StoreError::NoSuchUser(user.id.clone()));
            }
            index::put_user(t, user, false, Timestamp::now())?;
            t.queue(mail);
            Ok(())
        })
    }

    fn remove_user(&self, id: &str) -> Result<Option<User>> {
        self.write("remove_user", |t| {
            let removed = index::remove_user(t, id, Timestamp::now());
            t.lockouts.remove(&user_key(id));
            Ok(removed)
        })
    }

    fn upsert_users_mailing(&self, users: &[User], mail: &[QueuedMail]) -> Result<ImportOutcome> {
        self.write("upsert_users", |t| {
            let mut outcome = ImportOutcome::default();
            let at = Timestamp::now();
            for user in users {
                if index::put_user(t, user, false, at)? {
                    outcome.added += 1;
                } else {
                    outcome.updated += 1;
                }
            }
            t.queue(mail);
            Ok(outcome)
        })
    }

    fn users(&self) -> Result<Vec<User>> {
        Ok(self.user_read("users")?.users.values().cloned().collect())
    }

    fn users_after(&self, after: Option<&str>, limit: usize) -> Result<Vec<User>> {
        use std::ops::Bound::{Excluded, Unbounded};
        let tables = self.user_read("users")?;
        let from = after.map_or(Unbounded, |a| Excluded(a.to_string()));
        Ok(tables
            .users
            .range((from, Unbounded))
            .take(limit)
            .map(|(_, u)| u.clone())
            .collect())
    }

    fn user_count(&self) -> Result<u64> {
        Ok(lock(&self.tables).users.len() as u64)
    }

    fn lockout(&self, key: &str) -> Result<Option<LockoutState>> {
        let tables = self.lockout_read(format!("lockout {key}"))?;
        Ok(tables.lockouts.get(key).copied())
    }

    fn update_lockout(&self, key: &str, f: LockoutUpdate<'_>) -> Result<Option<LockoutState>> {
        self.call(|| format!("update_lockout {key}"));
        let mut tables = lock(&self.tables);
        let next = f(tables.lockouts.get(key).copied());
        match next {
            Some(state) => tables.lockouts.insert(key.to_owned(), state),
            None => tables.lockouts.remove(key),
        };
        Ok(next)
    }

    fn lockouts(&self) -> Result<Vec<(String, LockoutState)>> {
        let tables = self.lockout_read("lockouts".into())?;
        Ok(tables
            .lockouts
            .iter()
            .map(|(k, s)| (k.clone(), *s))
            .collect())
    }

    fn append_audit(&self, event: &AuditEvent) -> Result<()> {
        self.call(|| {
            let kind = format!("{:?}", event.kind);
            let name = kind.split([' ', '(']).next().unwrap_or_default();
            format!("append_audit {name}")
        });
        let mut log = lock(&self.log);
        log.seq += 1;
        let seq = log.seq;
        let at = event.at.millis().max(0) as u64;
        log.audit.insert((at, seq), event.clone());
        if log.outbox_max > 0 {
            log.outbox.insert(seq, event.clone());
            while log.outbox.len() as u64 > log.outbox_max {
                log.outbox.pop_first();
                log.dropped += 1;
            }
        }
        Ok(())
    }

    fn audit_tail(&self, n: usize) -> Result<Vec<AuditEvent>> {
        let log = lock(&self.log);
        let mut events: Vec<_> = log.audit.values().rev().take(n).cloned().collect();
        events.reverse();
        Ok(events)
    }

    fn audit_query(&self, query: &crate::domain::AuditQuery) -> Result<Vec<AuditEvent>> {
        let log = lock(&self.log);
        let mut events: Vec<_> = log
            .audit
            .values()
            .rev()
            .filter(|e| query.in_time(e.at))
            .take(crate::domain::AUDIT_SCAN_LIMIT)
            .filter(|e| query.matches(e))
            .take(query.cap())
            .cloned()
            .collect();
        events.reverse();
        Ok(events)
    }

    fn prune_audit(&self, before: Timestamp, max_entries: u64) -> Result<u64> {
        let cutoff = before.millis().max(0) as u64;
        let mut log = lock(&self.log);
        let mut removed = 0;
        while let Some(((at, _), _)) = log.audit.first_key_value() {
            if *at >= cutoff && log.audit.len() as u64 <= max_entries {
                break;
            }
            log.audit.pop_first();
            removed += 1;
        }
        Ok(removed)
    }

    fn set_outbox_limit(&self, max: u64) {
        lock(&self.log).outbox_max = max;
    }

    fn outbox_peek(&self, limit: usize) -> Result<OutboxBatch> {
        let log = lock(&self.log);
        Ok(OutboxBatch {
            events: log
                .outbox
                .iter()
                .take(limit)
                .map(|(seq, e)| (*seq, e.clone()))
                .collect(),
            dropped: log.dropped,
            pending: log.outbox.len() as u64,
        })
    }

    fn outbox_ack(&self, upto: u64, dropped: u64) -> Result<()> {
        let mut log = lock(&self.log);
        log.outbox = log.outbox.split_off(&upto.saturating_add(1));
        log.dropped = log.dropped.saturating_sub(dropped);
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        self.call(|| "flush".into());
        Ok(())
    }

    fn upstream_keys_after(
        &self,
        source: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, String)>> {
        use std::ops::Bound::{Excluded, Included, Unbounded};
        let tables = lock(&self.tables);
        let from = match after {
            Some(key) => Excluded((source.to_owned(), key.to_owned())),
            None => Included((source.to_owned(), String::new())),
        };
        Ok(tables
            .upstream
            .range((from, Unbounded))
            .take_while(|((s, _), _)| s == source)
            .take(limit)
            .map(|((_, key), id)| (key.clone(), id.clone()))
            .collect())
    }

    fn sync_state(&self, source: &str) -> Result<Option<SyncState>> {
        Ok(lock(&self.tables).sync.get(source).cloned())
    }

    fn put_sync_state(&self, source: &str, state: &SyncState) -> Result<()> {
        self.write("put_sync_state", |t| {
            t.sync.insert(source.to_owned(), state.clone());
            Ok(())
        })
    }

    fn apply_sync(&self, write: &SyncWrite<'_>) -> Result<SyncApplied> {
        self.write("apply_sync", |t| {
            let mut out = index::apply_batch(t, write, Timestamp::now())?;
            let shared: BTreeSet<&String> = t.shared.values().flatten().collect();
            out.collisions = write
                .upserts
                .iter()
                .map(|u| &u.id)
                .filter(|id| shared.contains(id))
                .cloned()
                .collect();
            out.collisions.sort();
            out.collisions.dedup();
            t.sync.insert(write.source.to_owned(), write.state.clone());
            Ok(out)
        })
    }

    fn stage_sync(&self, source: &str, upserts: &[User]) -> Result<()> {
        self.call(|| "stage_sync".to_owned());
        let mut staged = lock(&self.staged);
        staged
            .entry(source.to_owned())
            .or_default()
            .extend_from_slice(upserts);
        Ok(())
    }

    fn commit_sync(&self, write: &SyncWrite<'_>) -> Result<SyncApplied> {
        let mut upserts = lock(&self.staged).remove(write.source).unwrap_or_default();
        upserts.extend_from_slice(write.upserts);
        self.apply_sync(&SyncWrite {
            upserts: &upserts,
            ..*write
        })
    }

    fn discard_sync(&self, source: &str) -> Result<()> {
        self.call(|| "discard_sync".to_owned());
        lock(&self.staged).remove(source);
        Ok(())
    }

    fn pin_collisions(&self) -> Result<Vec<Vec<String>>> {
        Ok(lock(&self.tables).shared.values().cloned().collect())
    }

    fn mail_peek(&self, lane: Lane, limit: usize) -> Result<Vec<QueuedMail>> {
        Ok(lock(&self.tables).mail_peek(lane, 0, limit))
    }

    fn mail_peek_after(&self, lane: Lane, after: u64, limit: usize) -> Result<Vec<QueuedMail>> {
        Ok(lock(&self.tables).mail_peek(lane, after, limit))
    }

    fn mail_all(&self) -> Result<Vec<QueuedMail>> {
        Ok(lock(&self.tables).mail.values().cloned().collect())
    }

    fn mail_depth(&self) -> Result<Vec<(Lane, LaneDepth)>> {
        Ok(lock(&self.tables).mail_depth())
    }

    fn mail_update(&self, mail: &QueuedMail) -> Result<bool> {
        self.write("mail_update", |t| Ok(t.mail_update(mail)))
    }

    fn mail_remove(&self, lane: Lane, seq: u64) -> Result<bool> {
        self.write("mail_remove", |t| Ok(t.mail.remove(&(lane, seq)).is_some()))
    }

    fn queue_reminder(
        &self,
        user: &str,
        pin_set_at: Timestamp,
        threshold_secs: u64,
        now: Timestamp,
        mail: &QueuedMail,
    ) -> Result<bool> {
        self.write("queue_reminder", |t| {
            Ok(t.queue_reminder(user, (pin_set_at, threshold_secs), now, mail))
        })
    }

    /// One write per user with something expired, as sled has one transaction per user.
    fn sweep_expired(&self, now: Timestamp) -> Result<Vec<User>> {
        let due: Vec<String> = lock(&self.tables)
            .users
            .values()
            .filter(|u| sweep_due(u, now))
            .map(|u| u.id.clone())
            .collect();
        let mut swept = Vec::new();
        for id in due {
            swept.extend(self.write("sweep_expired", |t| t.sweep_one(&id, now))?);
        }
        Ok(swept)
    }

    fn tag_retired_at(&self, tag: &Tag) -> Result<Option<Timestamp>> {
        Ok(lock(&self.tables).retired.get(tag.as_bytes()).copied())
    }

    fn prune_lifecycle(&self, before: Timestamp) -> Result<u64> {
        self.write("prune_lifecycle", |t| Ok(t.prune_lifecycle(before)))
    }

    fn forget_reminders(&self, user: &str) -> Result<u64> {
        self.write("forget_reminders", |t| {
            let before = t.reminders.len();
            t.reminders.retain(|(id, _, _)| id != user);
            Ok((before - t.reminders.len()) as u64)
        })
    }

    fn use_pin(&self, user: &str, tag: &Tag, now: Timestamp) -> Result<PinUse> {
        self.write("use_pin", |t| t.use_pin(user, tag, now))
    }

    fn link_put(&self, link: &crate::domain::WebLink, mail: &[QueuedMail]) -> Result<()> {
        self.write("link_put", |t| {
            if let Some(old) = t.link_users.insert(link.owner_key(), link.key) {
                t.links.remove(&old);
            }
            t.links.insert(link.key, link.clone());
            t.queue(mail);
            Ok(())
        })
    }

    fn link_get(&self, key: &[u8; 32]) -> Result<Option<crate::domain::WebLink>> {
        Ok(self.user_read("link_get")?.links.get(key).cloned())
    }

    fn link_swap(
        &self,
        old: &crate::domain::WebLink,
        new: &crate::domain::WebLink,
    ) -> Result<bool> {
        self.write("link_swap", |t| match t.links.get_mut(&old.key) {
            Some(current) if current == old && new.key == old.key => {
                *current = new.clone();
                Ok(true)
            }
            _ => Ok(false),
        })
    }

    fn link_prune(&self, now: Timestamp) -> Result<u64> {
        self.write("link_prune", |t| {
            let dead: Vec<[u8; 32]> = t
                .links
                .iter()
                .filter(|(_, l)| l.prunable(now))
                .map(|(k, _)| *k)
                .collect();
            for key in &dead {
                if let Some(link) = t.links.remove(key) {
                    if t.link_users.get(&link.owner_key()) == Some(key) {
                        t.link_users.remove(&link.owner_key());
                    }
                }
            }
            Ok(dead.len() as u64)
        })
    }

    fn forgot_push(&self, row: &super::ForgotRow) -> Result<u64> {
        self.write("forgot_push", |t| Ok(t.forgot_push(row)))
    }

    fn forgot_peek(&self, limit: usize) -> Result<Vec<super::ForgotRow>> {
        Ok(lock(&self.tables)
            .forgot
            .values()
            .take(limit)
            .cloned()
            .collect())
    }

    fn forgot_settle(&self, settle: &super::ForgotSettle<'_>) -> Result<super::Settled> {
        self.write("forgot_settle", |t| t.forgot_settle(settle))
    }

    fn recovery_times(&self, key: &str) -> Result<Vec<Timestamp>> {
        Ok(lock(&self.tables)
            .recovery
            .get(key)
            .cloned()
            .unwrap_or_default())
    }
}

#[cfg(test)]
#[path = "memory_tests.rs"]
mod tests;
