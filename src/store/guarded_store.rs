//! The `Store` methods of `GuardedStore` (a child of `guarded.rs`): reads go straight to the
//! store; writes through `write` (refused while not writable); lockout counters, flushes,
//! audit events and the probe get their own handling there.

use super::GuardedStore;
use crate::domain::{
    AuditEvent, AuditKind, Lane, LaneDepth, LockoutState, QueuedMail, Tag, Timestamp, User,
};
use crate::store::sled::{Rolled, JOURNAL_CHUNK};
use crate::store::StoreError;
use crate::store::{
    ForgotRow, ForgotSettle, ImportOutcome, LockoutUpdate, OutboxBatch, PinUse, Result, Settled,
    Store, SyncApplied, SyncState, SyncWrite, WriteHealth,
};
use std::sync::atomic::Ordering::SeqCst;

/// What a user written through the indexes (an import's upsert, a sync's roll-forward:
/// the user, its PIN tag, cards, upstream key and retired tags, in one transaction) counts
/// for in `did_bulk`, against 1 for a user staged in the journal or read: heaptrack found
/// about 8 KiB of sled's memory a user for the former, so the store reopens every 2 000 of
/// them instead of every 10 000.
const INDEXED_WRITE: usize = 5;

/// What a user read by a sync commit's check counts for in `did_bulk`: the read, and its
/// id (and cards) written to the journal.
const CHECKED: usize = 2;

impl GuardedStore {
    /// Journal chunks a commit reads, or applies, between two calls of `did_bulk`: half
    /// of what makes the store reopen (2 to check, 1 to apply by default).
    fn batch_step(&self, weight: usize) -> usize {
        (self.bulk_every.load(SeqCst) as usize / weight / JOURNAL_CHUNK / 2).max(1)
    }

    /// Removes what a completed batch's check left in the journal (an id a user), a few
    /// thousand keys at a time with `did_bulk` between. The batch is applied and durable
    /// already: a failure only leaves them for the next batch or open to remove.
    fn clear_sync_scratch(&self, source: &str) {
        let step = self.batch_step(1) * JOURNAL_CHUNK;
        loop {
            match self.write(true, |s| s.clear_sync_scratch(source, step)) {
                Ok(true) => return,
                Ok(false) => self.did_bulk(step),
                Err(e) => {
                    tracing::warn!(source, error = %e,
                        "could not remove a finished sync's journal keys; the next sync does");
                    return;
                }
            }
        }
    }
}

impl Store for GuardedStore {
    fn user(&self, id: &str) -> Result<Option<User>> {
        self.read(|s| s.user(id))
    }
    fn tag_owner(&self, tag: &Tag) -> Result<Option<String>> {
        self.read(|s| s.tag_owner(tag))
    }
    fn card_owner(&self, card: &str) -> Result<Option<String>> {
        self.read(|s| s.card_owner(card))
    }
    fn insert_user_mailing(&self, user: &User, mail: &[QueuedMail]) -> Result<()> {
        self.write(true, |s| s.insert_user_mailing(user, mail))
    }
    fn update_user_mailing(&self, user: &User, mail: &[QueuedMail]) -> Result<()> {
        self.write(true, |s| s.update_user_mailing(user, mail))
    }
    fn upsert_users_mailing(&self, users: &[User], mail: &[QueuedMail]) -> Result<ImportOutcome> {
        let outcome = self.write(true, |s| s.upsert_users_mailing(users, mail))?;
        self.did_bulk(users.len() * INDEXED_WRITE);
        Ok(outcome)
    }
    fn remove_user(&self, id: &str) -> Result<Option<User>> {
        self.write(true, |s| s.remove_user(id))
    }
    fn users(&self) -> Result<Vec<User>> {
        self.read(|s| s.users())
    }
    fn users_after(&self, after: Option<&str>, limit: usize) -> Result<Vec<User>> {
        let page = self.read(|s| s.users_after(after, limit))?;
        self.did_read(page.len());
        Ok(page)
    }
    fn user_count(&self) -> Result<u64> {
        self.read(|s| s.user_count())
    }

    fn lockout(&self, key: &str) -> Result<Option<LockoutState>> {
        self.read(|s| s.lockout(key))
    }
    fn update_lockout(&self, key: &str, f: LockoutUpdate<'_>) -> Result<Option<LockoutState>> {
        self.lockout_write(key, f)
    }
    fn lockouts(&self) -> Result<Vec<(String, LockoutState)>> {
        self.read(|s| s.lockouts())
    }

    fn append_audit(&self, event: &AuditEvent) -> Result<()> {
        self.write(false, |s| s.append_audit(event))
    }
    /// While the store cannot write, events are counted and dropped without a log line
    /// each (a flood of refused attempts must not flood the log too).
    fn record(&self, kind: AuditKind) {
        if !self.is_writable() {
            self.audit_dropped.fetch_add(1, SeqCst);
            return;
        }
        let event = AuditEvent {
            at: Timestamp::now(),
            kind,
        };
        if let Err(e) = self.append_audit(&event) {
            self.audit_dropped.fetch_add(1, SeqCst);
            tracing::error!(error = %e, "could not write an audit event");
        }
    }
    fn audit_tail(&self, n: usize) -> Result<Vec<AuditEvent>> {
        self.read(|s| s.audit_tail(n))
    }
    fn audit_query(&self, query: &crate::domain::AuditQuery) -> Result<Vec<AuditEvent>> {
        self.read(|s| s.audit_query(query))
    }
    fn prune_audit(&self, before: Timestamp, max_entries: u64) -> Result<u64> {
        self.write(false, |s| s.prune_audit(before, max_entries))
    }

    fn set_outbox_limit(&self, max: u64) {
        self.outbox_max.store(max, SeqCst);
        if let Ok((s, _)) = self.current() {
            s.set_outbox_limit(max);
        }
    }
    fn outbox_peek(&self, limit: usize) -> Result<OutboxBatch> {
        self.read(|s| s.outbox_peek(limit))
    }
    fn outbox_ack(&self, upto: u64, dropped: u64) -> Result<()> {
        self.write(false, |s| s.outbox_ack(upto, dropped))
    }

    fn flush(&self) -> Result<()> {
        self.flush_all()
    }
    fn probe(&self) -> Result<()> {
        self.probe_now()
    }
    fn write_health(&self) -> WriteHealth {
        self.health_now()
    }
    fn bulk_progress(&self, users: usize) {
        self.did_bulk(users)
    }
    fn release_memory(&self) -> Result<()> {
        self.release_now(super::REOPEN_WAIT)
    }

    fn upstream_keys_after(
        &self,
        source: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, String)>> {
        let page = self.read(|s| s.upstream_keys_after(source, after, limit))?;
        self.did_read(page.len());
        Ok(page)
    }
    fn sync_state(&self, source: &str) -> Result<Option<SyncState>> {
        self.read(|s| s.sync_state(source))
    }
    fn put_sync_state(&self, source: &str, state: &SyncState) -> Result<()> {
        self.write(true, |s| s.put_sync_state(source, state))
    }
    fn apply_sync(&self, write: &SyncWrite<'_>) -> Result<SyncApplied> {
        self.write(true, |s| s.apply_sync(write))
    }
    fn stage_sync(&self, source: &str, upserts: &[User]) -> Result<()> {
        self.write(true, |s| s.stage_sync(source, upserts))?;
        self.did_bulk(upserts.len());
        Ok(())
    }
    /// Checks and commits, then rolls the batch forward, a few chunks at a time, giving
    /// the store's memory back between steps (`did_bulk`: sled keeps what it reads too).
    /// A reopen after a failure completes the batch itself (`recover`, audited); this call
    /// then says so instead of counts.
    fn commit_sync(&self, write: &SyncWrite<'_>) -> Result<SyncApplied> {
        let step = self.batch_step(CHECKED);
        let mut check = self.write(true, |s| s.commit_sync_begin(write))?;
        while !self.write(true, |s| {
            s.commit_sync_check(write.source, &mut check, step)
        })? {
            self.did_bulk(step * JOURNAL_CHUNK * CHECKED);
        }
        self.write(true, |s| s.commit_sync_head(write, check))?;
        // The check's reads are given back before the roll-forward writes.
        self.release_in_batch();
        let step = self.batch_step(INDEXED_WRITE);
        loop {
            match self.write(true, |s| s.roll_forward_sync(write.source, step))? {
                Rolled::More(users) => self.did_bulk(users * INDEXED_WRITE),
                Rolled::Done(done) => {
                    self.clear_sync_scratch(write.source);
                    return Ok(done);
                }
                Rolled::Gone => {
                    return Err(StoreError::Again(
                        "the store was reopened after a failed write and completed this sync's \
                         batch itself (see the audit)"
                            .into(),
                    ))
                }
            }
        }
    }
    fn discard_sync(&self, source: &str) -> Result<()> {
        self.write(true, |s| s.discard_sync(source))
    }
    fn pin_collisions(&self) -> Result<Vec<Vec<String>>> {
        self.read(|s| s.pin_collisions())
    }

    fn mail_peek(&self, lane: Lane, limit: usize) -> Result<Vec<QueuedMail>> {
        self.read(|s| s.mail_peek(lane, limit))
    }
    fn mail_peek_after(&self, lane: Lane, after: u64, limit: usize) -> Result<Vec<QueuedMail>> {
        self.read(|s| s.mail_peek_after(lane, after, limit))
    }
    fn mail_all(&self) -> Result<Vec<QueuedMail>> {
        self.read(|s| s.mail_all())
    }
    fn mail_depth(&self) -> Result<Vec<(Lane, LaneDepth)>> {
        self.read(|s| s.mail_depth())
    }
    fn mail_update(&self, mail: &QueuedMail) -> Result<bool> {
        self.write(false, |s| s.mail_update(mail))
    }
    fn mail_remove(&self, lane: Lane, seq: u64) -> Result<bool> {
        self.write(false, |s| s.mail_remove(lane, seq))
    }
    fn queue_reminder(
        &self,
        user: &str,
        pin_set_at: Timestamp,
        threshold_secs: u64,
        now: Timestamp,
        mail: &QueuedMail,
    ) -> Result<bool> {
        self.write(true, |s| {
            s.queue_reminder(user, pin_set_at, threshold_secs, now, mail)
        })
    }

    fn sweep_expired(&self, now: Timestamp) -> Result<Vec<User>> {
        let swept = self.write(true, |s| s.sweep_expired(now))?;
        // It read every user.
        self.did_read(self.read(|s| s.user_count()).unwrap_or(0) as usize);
        Ok(swept)
    }
    fn tag_retired_at(&self, tag: &Tag) -> Result<Option<Timestamp>> {
        self.read(|s| s.tag_retired_at(tag))
    }
    fn prune_lifecycle(&self, before: Timestamp) -> Result<u64> {
        self.write(false, |s| s.prune_lifecycle(before))
    }
    fn forget_reminders(&self, user: &str) -> Result<u64> {
        self.write(true, |s| s.forget_reminders(user))
    }

    fn link_put(&self, link: &crate::domain::WebLink, mail: &[QueuedMail]) -> Result<()> {
        self.write(true, |s| s.link_put(link, mail))
    }
    fn link_get(&self, key: &[u8; 32]) -> Result<Option<crate::domain::WebLink>> {
        self.read(|s| s.link_get(key))
    }
    fn link_swap(
        &self,
        old: &crate::domain::WebLink,
        new: &crate::domain::WebLink,
    ) -> Result<bool> {
        self.write(true, |s| s.link_swap(old, new))
    }
    fn link_prune(&self, now: Timestamp) -> Result<u64> {
        self.write(false, |s| s.link_prune(now))
    }

    fn forgot_push(&self, row: &ForgotRow) -> Result<u64> {
        self.write(true, |s| s.forgot_push(row))
    }
    fn forgot_peek(&self, limit: usize) -> Result<Vec<ForgotRow>> {
        self.read(|s| s.forgot_peek(limit))
    }
    fn forgot_settle(&self, settle: &ForgotSettle<'_>) -> Result<Settled> {
        self.write(true, |s| s.forgot_settle(settle))
    }
    fn recovery_times(&self, key: &str) -> Result<Vec<Timestamp>> {
        self.read(|s| s.recovery_times(key))
    }

    fn use_pin(&self, user: &str, tag: &Tag, now: Timestamp) -> Result<PinUse> {
        self.write(true, |s| s.use_pin(user, tag, now))
    }
}
