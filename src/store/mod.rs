//! The narrow storage interface every other module uses, and its two implementations:
//! `sled.rs` (the daemon's, the only file that names sled) and `memory.rs` (plain std
//! collections, for tests); `suite.rs` holds the behaviour tests both must pass. The daemon
//! holds its sled store through `guarded.rs` (`GuardedStore`: write health, reopen after
//! an I/O error, the space reserve). Nothing here knows about frontends, policy or argon2.

// First: its `store_suite!` macro is used by the stores' tests.
#[cfg(test)]
#[macro_use]
mod suite;

mod guarded;
mod memory;
mod reserve;
mod sled;

pub use self::guarded::{GuardSettings, GuardedStore};
pub use self::memory::MemoryStore;
pub use self::sled::{CheckReport, RepairReport, SledStore, TreeReport};

use crate::domain::{
    AuditEvent, AuditKind, DeviceId, Lane, LaneDepth, LockoutState, PinRecord, QueuedMail, Tag,
    Timestamp, User, WebLink,
};
use serde::{Deserialize, Serialize};

pub const SCHEMA_VERSION: u32 = 1;

/// Errors of a running store. `Unavailable` means "fail closed": the caller denies.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("user `{0}` already exists")]
    UserExists(String),
    #[error("no user `{0}`")]
    NoSuchUser(String),
    /// Another user already owns this PIN tag. Deliberately does not say who.
    #[error("this PIN is not available; choose another")]
    TagTaken,
    #[error("card {0} is already assigned to another user")]
    CardTaken(String),
    /// A sync tried to change a user it does not own (a local user, another source's).
    #[error("user `{0}` is not owned by this directory source")]
    NotOwned(String),
    /// A sync batch refused because the store moved under it (a reopen cleared what it had
    /// staged, another run's batch completed first): nothing was applied and the store is
    /// fine; the sync runs again.
    #[error("{0}")]
    Again(String),
}

/// Errors opening a store; each says how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("the store {0} is in use by another process: is another pinwarden running? (sled allows one process per store)")]
    InUse(String),
    #[error("the store {path} was created with a different pepper; restore the original pepper file, or move the store aside to start afresh (every PIN must then be re-enrolled)")]
    PepperMismatch { path: String },
    #[error("the store {path} was created with argon2 parameters {stored}, but the configuration asks for {configured}; set security.argon2_* back to {stored} (changing them needs every PIN re-enrolled)")]
    ParamsMismatch {
        path: String,
        stored: String,
        configured: String,
    },
    #[error("the store {path} has schema version {found}, newer than this pinwarden ({supported}); upgrade pinwarden")]
    SchemaTooNew {
        path: String,
        found: u32,
        supported: u32,
    },
    #[error("cannot open the store {path}: the disk refused with {errno} ({message}); nothing was changed: free space on its file system, or check the disk (dmesg, smartctl) and that the state directory is writable by pinwarden, then start again")]
    Disk {
        path: String,
        errno: &'static str,
        message: String,
    },
    #[error("the store {path} is damaged ({message}); nothing was changed: stop here, run `pinwarden store check` to see what is readable, then `pinwarden store repair` (it backs the store up first) and start again")]
    Corrupt { path: String, message: String },
    #[error("cannot open the store {path}: {message}")]
    Io { path: String, message: String },
}

/// What a newly opened store must agree with, and what it hands back.
pub struct OpenParams<'a> {
    pub pepper_fingerprint: &'a str,
    pub hash_params: &'a str,
    pub cache_capacity_mib: u64,
}

pub struct Opened<S> {
    pub store: S,
    pub salt: [u8; 16],
    pub created: bool,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ImportOutcome {
    pub added: usize,
    pub updated: usize,
}

/// Events waiting for publication, and how many were dropped because the outbox was full.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct OutboxBatch {
    pub events: Vec<(u64, AuditEvent)>,
    pub dropped: u64,
    /// Events queued in all (not only the ones returned).
    pub pending: u64,
}

/// What the sync engine keeps per directory source. Written in the same transaction as
/// each applied batch, so the cursor never runs ahead of (or behind) the users it covers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncState {
    /// The source's cursor (syncrepl cookie, SCIM high-water mark, file digest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<Vec<u8>>,
    /// When the cursor was last saved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor_at: Option<Timestamp>,
    /// The last run that fetched and applied (or found nothing to apply).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success: Option<Timestamp>,
    /// The last complete listing applied (deletions reconciled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_full: Option<Timestamp>,
    /// Users this source owns after the last applied batch.
    #[serde(default)]
    pub users: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error_at: Option<Timestamp>,
}

/// One applied sync batch: every user in `upserts` belongs to `source` (its `upstream`
/// names it), `removals` are ids of users this source owns. All of it, the per-source key
/// index and `state` land atomically: the previous state or the new one, across a crash.
pub struct SyncWrite<'a> {
    pub source: &'a str,
    pub upserts: &'a [User],
    pub removals: &'a [String],
    pub state: &'a SyncState,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct SyncApplied {
    pub added: usize,
    pub changed: usize,
    pub removed: usize,
    /// Users of this batch whose PIN another user also holds: PIN-only login is off for
    /// them (ID+PIN and card+PIN still work) until the collision is gone.
    pub collisions: Vec<String>,
}

/// What `use_pin` did with a grant by a PIN, in the grant's own transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PinUse {
    /// An unlimited PIN, or the duress PIN: nothing counted, nothing written.
    Unlimited,
    /// A use of a limited PIN was counted; `left` remain.
    Used { left: u32 },
    /// A limited PIN with no use left (another terminal took the last one): deny.
    Exhausted,
    /// The pending PIN's first use: it is now the user's PIN and the old one is retired.
    /// `left`: its uses left after this one, if it is limited.
    Promoted { left: Option<u32> },
    /// The tag is none of the user's PINs any more (changed or removed meanwhile): deny.
    Gone,
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// A forgotten-PIN request waiting for the lifecycle (`FORGOT <id>`): the id as typed (it
/// may name nobody), the device it came from and when. Never a PIN.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForgotRow {
    /// Given by the store when queued (never 0).
    #[serde(default)]
    pub seq: u64,
    pub id: String,
    pub device: DeviceId,
    pub at: Timestamp,
}

/// What the lifecycle did with one forgot row, written in one transaction: the row leaves
/// the queue; each key of `counted` gets `at` added to its list of times (times before
/// `keep_after` are dropped from it); for a reset that still applies (see `ForgotReset`),
/// the pending PIN is set on the user as it is now and the mail queued.
pub struct ForgotSettle<'a> {
    pub seq: u64,
    pub counted: &'a [String],
    pub at: Timestamp,
    pub keep_after: Timestamp,
    pub reset: Option<ForgotReset<'a>>,
}

/// A reset built (slowly: argon2) from the user as read before: it applies only if the user
/// still exists, is enabled and has the very PIN record `seen` (no change, sweep or counted
/// use meanwhile); then only `pending_pin` is set on the current record and `person_key` is
/// counted too. Otherwise the row is settled as dropped.
pub struct ForgotReset<'a> {
    pub id: &'a str,
    pub seen: Option<&'a PinRecord>,
    pub pending: &'a PinRecord,
    pub mail: &'a QueuedMail,
    pub person_key: &'a str,
}

/// What `forgot_settle` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settled {
    /// The row was no longer queued: nothing written.
    Gone,
    /// The row left the queue without a reset (none asked, or the user changed meanwhile).
    Dropped,
    /// The row left the queue and the reset was written with its mail.
    Reset,
}

/// The user to write for `reset`, if it still applies to `current` (see `ForgotReset`).
fn forgot_reset_user(current: Option<User>, reset: &ForgotReset<'_>) -> Option<User> {
    let user = current.filter(|u| u.enabled && u.pin.as_ref() == reset.seen)?;
    Some(User {
        pending_pin: Some(reset.pending.clone()),
        ..user
    })
}

/// Whether writes reach the disk, as the store last saw it (`status`, readiness, watchdog).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteHealth {
    pub writable: bool,
    /// Why not, naming the error and what to do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Since when it is as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Timestamp>,
    /// Whether the space reserve is in place (None: no reserve configured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserve: Option<bool>,
    /// Audit events dropped because the store could not write.
    #[serde(default)]
    pub audit_dropped: u64,
}

impl WriteHealth {
    pub fn writable() -> Self {
        WriteHealth {
            writable: true,
            ..WriteHealth::default()
        }
    }
}

/// A closure that maps the old lockout state to the new one (None deletes). It may be run
/// more than once under contention, so it must be pure.
pub type LockoutUpdate<'a> = &'a dyn Fn(Option<LockoutState>) -> Option<LockoutState>;

pub trait Store: Send + Sync + 'static {
    fn user(&self, id: &str) -> Result<Option<User>>;
    /// The id of the user owning `tag`, if any.
    fn tag_owner(&self, tag: &Tag) -> Result<Option<String>>;
    /// The id of the user holding the (normalised) card, if any.
    fn card_owner(&self, card: &str) -> Result<Option<String>>;
    /// Inserts a new user; fails with `UserExists`, `TagTaken` or `CardTaken`.
    fn insert_user(&self, user: &User) -> Result<()> {
        self.insert_user_mailing(user, &[])
    }
    /// Replaces an existing user, keeping the tag index in step; `NoSuchUser`, `TagTaken`.
    fn update_user(&self, user: &User) -> Result<()> {
        self.update_user_mailing(user, &[])
    }
    /// Inserts or replaces all users in one transaction: all or nothing.
    fn upsert_users(&self, users: &[User]) -> Result<ImportOutcome> {
        self.upsert_users_mailing(users, &[])
    }
    /// `insert_user`, queueing `mail` in the same transaction (each gets a new `seq`).
    fn insert_user_mailing(&self, user: &User, mail: &[QueuedMail]) -> Result<()>;
    /// `update_user`, queueing `mail` in the same transaction.
    fn update_user_mailing(&self, user: &User, mail: &[QueuedMail]) -> Result<()>;
    /// `upsert_users`, queueing `mail` in the same transaction.
    fn upsert_users_mailing(&self, users: &[User], mail: &[QueuedMail]) -> Result<ImportOutcome>;
    fn remove_user(&self, id: &str) -> Result<Option<User>>;
    /// Every user, in memory at once: for answers that list them all. Work that only has
    /// to visit each user pages through them with [`each_user`] instead.
    fn users(&self) -> Result<Vec<User>>;
    /// Up to `limit` users with ids after `after` (from the first when None), by id.
    fn users_after(&self, after: Option<&str>, limit: usize) -> Result<Vec<User>>;
    fn user_count(&self) -> Result<u64>;

    fn lockout(&self, key: &str) -> Result<Option<LockoutState>>;
    fn update_lockout(&self, key: &str, f: LockoutUpdate<'_>) -> Result<Option<LockoutState>>;
    fn lockouts(&self) -> Result<Vec<(String, LockoutState)>>;

    fn append_audit(&self, event: &AuditEvent) -> Result<()>;

    /// Appends an event stamped now. An audit write that fails is logged, never fatal:
    /// the decision it describes has already been made.
    fn record(&self, kind: AuditKind) {
        if let Err(e) = self.append_audit(&AuditEvent {
            at: Timestamp::now(),
            kind,
        }) {
            tracing::error!(error = %e, "could not write an audit event");
        }
    }
    /// The newest `n` events, oldest first.
    fn audit_tail(&self, n: usize) -> Result<Vec<AuditEvent>>;
    /// The newest events matching `query` (at most `query.cap()`), oldest first, found
    /// among at most `AUDIT_SCAN_LIMIT` events of its time range, newest first.
    fn audit_query(&self, query: &crate::domain::AuditQuery) -> Result<Vec<AuditEvent>>;
    /// Drops events older than `before` and beyond `max_entries`; returns how many.
    fn prune_audit(&self, before: Timestamp, max_entries: u64) -> Result<u64>;

    /// Turns the event outbox on (`max` > 0): from now on every audit event is also queued
    /// for publication, keeping at most `max`; the oldest are dropped and counted.
    fn set_outbox_limit(&self, max: u64);
    /// Up to `limit` queued events, oldest first, with their sequence numbers.
    fn outbox_peek(&self, limit: usize) -> Result<OutboxBatch>;
    /// Removes queued events up to and including `upto`, and `dropped` from the drop count
    /// (once a consumer has reported them).
    fn outbox_ack(&self, upto: u64, dropped: u64) -> Result<()>;

    /// Makes every write so far durable (lockout counters before a DENY goes out).
    fn flush(&self) -> Result<()>;

    /// Writes, flushes and reads back a probe record (the store health worker, every 2 s):
    /// Err when the store cannot write. A store that can recover (`GuardedStore`) does it
    /// here.
    fn probe(&self) -> Result<()> {
        Ok(())
    }
    /// Whether writes reach the disk, as last seen.
    fn write_health(&self) -> WriteHealth {
        WriteHealth::writable()
    }
    /// Bulk work (an import's check pass) has read `users` users' worth of the store: a
    /// store that keeps what it reads in memory (`GuardedStore` over sled) gives it back
    /// every few thousand, as it does for bulk writes. Blocks for that while.
    fn bulk_progress(&self, users: usize) {
        let _ = users;
    }
    /// After a batch of at least [`RELEASE_AFTER`] users: gives back the memory the store
    /// keeps for what it wrote (sled holds written pages and their page-table entries until
    /// it is closed; `GuardedStore` flushes, closes and opens it again). Nothing is lost;
    /// reads wait for the reopen.
    fn release_memory(&self) -> Result<()> {
        Ok(())
    }

    /// Up to `limit` of the users `source` owns, by key after `after`: (key at the source,
    /// user id). [`each_upstream_key`] walks them all a page at a time.
    fn upstream_keys_after(
        &self,
        source: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, String)>>;
    /// Every user `source` owns (tests; a run walks them with [`each_upstream_key`]).
    fn upstream_keys(&self, source: &str) -> Result<Vec<(String, String)>> {
        let mut all = Vec::new();
        each_upstream_key(self, source, |key, id| {
            all.push((key, id));
            Ok::<(), StoreError>(())
        })?;
        Ok(all)
    }
    fn sync_state(&self, source: &str) -> Result<Option<SyncState>>;
    /// Records state outside a batch (a failed run's error).
    fn put_sync_state(&self, source: &str, state: &SyncState) -> Result<()>;
    /// Applies one sync batch atomically: the previous state or the new one, across a crash
    /// too (sled: one transaction, or for more than 1 000 users a journal that the next
    /// open completes; readers may see such a batch arrive a chunk at a time).
    /// Upstream PINs that collide are kept on the users but left out of the PIN-only index.
    fn apply_sync(&self, write: &SyncWrite<'_>) -> Result<SyncApplied>;
    /// Sets aside a part of a batch too large to hold at once (the engine stages it a chunk
    /// at a time): no read sees it, and a crash or `discard_sync` drops it, until
    /// `commit_sync` applies it. Call `discard_sync` before the first part.
    fn stage_sync(&self, source: &str, upserts: &[User]) -> Result<()>;
    /// Applies what is staged for `write.source` and `write` as one batch, atomically like
    /// `apply_sync` (sled: through the journal). A refused batch is dropped; so is one that
    /// may have lost a part (sled: the store was reopened while it was staged).
    fn commit_sync(&self, write: &SyncWrite<'_>) -> Result<SyncApplied>;
    /// Drops what is staged for `source` and begins a new staging. A committed batch of
    /// `source` still to complete is completed first and the call refused, like `apply_sync`.
    fn discard_sync(&self, source: &str) -> Result<()>;
    /// Groups of user ids that share one PIN (PIN-only login disabled for them).
    fn pin_collisions(&self) -> Result<Vec<Vec<String>>>;

    // --- Mail outbox (PIN lifecycle) ---

    /// Up to `limit` messages of `lane`, oldest (lowest seq) first.
    fn mail_peek(&self, lane: Lane, limit: usize) -> Result<Vec<QueuedMail>>;
    /// Up to `limit` messages of `lane` with a seq above `after`, oldest first (paging
    /// past messages waiting to retry).
    fn mail_peek_after(&self, lane: Lane, after: u64, limit: usize) -> Result<Vec<QueuedMail>>;
    /// Every queued message, by lane then seq (for `mail list`).
    fn mail_all(&self) -> Result<Vec<QueuedMail>>;
    /// Depth and oldest `created_at` per lane, in `Lane::ALL` order.
    fn mail_depth(&self) -> Result<Vec<(Lane, LaneDepth)>>;
    /// Rewrites a queued message's retry state (attempts, not_before, last_error) found by
    /// (lane, seq); false when it is no longer queued.
    fn mail_update(&self, mail: &QueuedMail) -> Result<bool>;
    /// Removes a message (sent, refused, expired, superseded); false when it was not queued.
    fn mail_remove(&self, lane: Lane, seq: u64) -> Result<bool>;
    /// Queues an expiry reminder exactly once per (user, PIN version, threshold): in one
    /// transaction, checks that `user`'s PIN is still the one set at `pin_set_at` and not
    /// expired at `now`, that this reminder was not recorded before, then records it and
    /// queues `mail`. Ok(false) when nothing was queued.
    fn queue_reminder(
        &self,
        user: &str,
        pin_set_at: Timestamp,
        threshold_secs: u64,
        now: Timestamp,
        mail: &QueuedMail,
    ) -> Result<bool>;

    // --- PIN lifecycle ---

    /// Deletes every PIN (and the duress PIN with it) and every pending PIN whose
    /// `expires_at` is at or before `now`, in one transaction per user, removing the tags
    /// from the index (they become retired); returns the users whose PIN went, as they
    /// were before, for the audit.
    fn sweep_expired(&self, now: Timestamp) -> Result<Vec<User>>;
    /// When `tag` left the index (a PIN replaced, swept or removed with its user): the
    /// generator does not re-issue it within the cooling-off period. Every store write that
    /// drops a tag from the index (update, remove, sweep, import, sync) records it.
    fn tag_retired_at(&self, tag: &Tag) -> Result<Option<Timestamp>>;
    /// Forgets retired tags older than `before`, and reminder records of PIN versions that
    /// are no longer a user's current PIN; returns how many entries went.
    fn prune_lifecycle(&self, before: Timestamp) -> Result<u64>;
    /// Forgets the reminders recorded for `user`'s PIN, so that the thresholds of a moved
    /// validity are sent again for the new expiry; returns how many records went.
    fn forget_reminders(&self, user: &str) -> Result<u64>;

    // --- Forgotten PINs (memory_forgot.rs, sled_forgot.rs) ---

    /// Queues a forgotten-PIN request and returns its seq; the caller flushes.
    fn forgot_push(&self, row: &ForgotRow) -> Result<u64>;
    /// Up to `limit` queued requests, oldest first.
    fn forgot_peek(&self, limit: usize) -> Result<Vec<ForgotRow>>;
    /// Settles one request (see `ForgotSettle`).
    fn forgot_settle(&self, settle: &ForgotSettle<'_>) -> Result<Settled>;
    /// The times recorded under a recovery cap key, oldest first (kept across restarts).
    fn recovery_times(&self, key: &str) -> Result<Vec<Timestamp>>;

    /// Counts a grant by the PIN with `tag` against `user`, in one transaction: re-reads the
    /// user, checks the tag is still its PIN, duress PIN or pending PIN, refuses a limited
    /// PIN with no use left and else takes one; a pending PIN replaces the PIN (whose tag
    /// retires at `now`). Writes only for a limited or a pending PIN (see `pin_use`).
    fn use_pin(&self, user: &str, tag: &Tag, now: Timestamp) -> Result<PinUse>;

    // --- Self-service links (`web_links`; see `lifecycle::links`) ---

    /// Makes `link` its user's one live link of its purpose (the previous one is gone) and queues
    /// `mail`, in one transaction.
    fn link_put(&self, link: &WebLink, mail: &[QueuedMail]) -> Result<()>;
    /// The live link whose token hashes to `key`.
    fn link_get(&self, key: &[u8; 32]) -> Result<Option<WebLink>>;
    /// Writes `new` over `old` (same key) only if the stored link still equals `old`: two
    /// requests cannot both spend one link. False when it changed or went meanwhile.
    fn link_swap(&self, old: &WebLink, new: &WebLink) -> Result<bool>;
    /// Forgets the links `WebLink::prunable` at `now` (and their owner entries when they
    /// still point to them); returns how many went.
    fn link_prune(&self, now: Timestamp) -> Result<u64>;
}

/// `use_pin`'s rule, one for both stores: the answer, and the user to write (None: nothing
/// changes).
fn pin_use(user: &User, tag: &Tag) -> (PinUse, Option<User>) {
    let is = |p: &Option<crate::domain::PinRecord>| p.as_ref().is_some_and(|p| p.tag == *tag);
    let take = |left: Option<u32>| match left {
        Some(0) => Err(PinUse::Exhausted),
        other => Ok(other.map(|n| n - 1)),
    };
    if is(&user.pin) {
        let left = user.pin.as_ref().and_then(|p| p.uses_left);
        return match take(left) {
            Err(refused) => (refused, None),
            Ok(None) => (PinUse::Unlimited, None),
            Ok(Some(left)) => {
                let mut next = user.clone();
                if let Some(p) = next.pin.as_mut() {
                    p.uses_left = Some(left);
                }
                (PinUse::Used { left }, Some(next))
            }
        };
    }
    if is(&user.duress) {
        return (PinUse::Unlimited, None);
    }
    let Some(pending) = user.pending_pin.as_ref().filter(|p| p.tag == *tag) else {
        return (PinUse::Gone, None);
    };
    match take(pending.uses_left) {
        Err(refused) => (refused, None),
        Ok(left) => {
            let mut next = user.clone();
            next.pin = Some(crate::domain::PinRecord {
                uses_left: left,
                ..pending.clone()
            });
            next.pending_pin = None;
            (PinUse::Promoted { left }, Some(next))
        }
    }
}

fn expired(pin: &Option<PinRecord>, now: Timestamp) -> bool {
    pin.as_ref()
        .and_then(|p| p.expires_at)
        .is_some_and(|at| at <= now)
}

/// Whether the sweeper has anything to clear in `user` at `now`: an expired PIN or an
/// expired pending PIN.
fn sweep_due(user: &User, now: Timestamp) -> bool {
    expired(&user.pin, now) || expired(&user.pending_pin, now)
}

/// The sweeper's rule, one for both stores: `user` with an expired PIN (and its duress PIN)
/// and an expired pending PIN cleared, and whether the PIN itself went (what the sweep
/// returns for the audit). None: nothing to clear.
fn sweep_user(user: &User, now: Timestamp) -> Option<(User, bool)> {
    if !sweep_due(user, now) {
        return None;
    }
    let mut cleared = user.clone();
    if expired(&user.pending_pin, now) {
        cleared.pending_pin = None;
    }
    let pin_went = expired(&user.pin, now);
    if pin_went {
        cleared.pin = None;
        cleared.duress = None;
        cleared.pin_issued = true;
    }
    Some((cleared, pin_went))
}

/// Whether `user`'s PIN is still the one set at `set_at` and not expired at `now`.
fn pin_is_current(user: &User, set_at: Timestamp, now: Timestamp) -> bool {
    user.pin
        .as_ref()
        .is_some_and(|p| p.set_at == set_at && p.expires_at.is_none_or(|at| at > now))
}

/// Users written by one batch (an import, a sync run) past which the store is asked to
/// [`Store::release_memory`].
pub const RELEASE_AFTER: usize = 10_000;

/// Users visited per page by [`each_user`]: a sweep over a million users holds a thousand
/// at a time, not the whole directory.
pub const USER_PAGE: usize = 1_000;

/// Calls `visit` with the (key, id) of every user `source` owns, by key, reading
/// [`USER_PAGE`] at a time; stops at the first error of the store or of `visit`.
pub fn each_upstream_key<S: Store + ?Sized, E: From<StoreError>>(
    store: &S,
    source: &str,
    mut visit: impl FnMut(String, String) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    let mut after: Option<String> = None;
    loop {
        let page = store.upstream_keys_after(source, after.as_deref(), USER_PAGE)?;
        let full = page.len() == USER_PAGE;
        after = page.last().map(|(key, _)| key.clone());
        for (key, id) in page {
            visit(key, id)?;
        }
        if !full {
            return Ok(());
        }
    }
}

/// Calls `visit` with every user, in id order, reading [`USER_PAGE`] at a time; stops at the
/// first error of the store or of `visit`. Users added or removed meanwhile may or may not
/// be visited; none is visited twice.
pub fn each_user<E: From<StoreError>>(
    store: &dyn Store,
    mut visit: impl FnMut(User) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    let mut after: Option<String> = None;
    loop {
        let page = store.users_after(after.as_deref(), USER_PAGE)?;
        let full = page.len() == USER_PAGE;
        after = page.last().map(|u| u.id.clone());
        for user in page {
            visit(user)?;
        }
        if !full {
            return Ok(());
        }
    }
}
