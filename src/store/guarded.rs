//! `GuardedStore`, the daemon's store: a `SledStore` behind a handle that knows whether
//! writes reach the disk. sled's I/O errors stick until the database is reopened, so on a
//! failed write or flush this handle marks the store not writable, gives back the space
//! reserve (`reserve.rs`) when the disk is full, reopens the store and writes the lockout
//! counters again; the store health worker's `probe` brings it back once the disk has room.
//! While not writable it still answers reads and lockout counters, refuses every other
//! write (nothing half-done is acknowledged) and drops audit events (counted). The `Store`
//! methods themselves are in `guarded_store.rs`. It never names sled.

use super::reserve::{free_bytes, Reserve};
use super::{OpenError, OpenParams, Result, SledStore, Store, StoreError, WriteHealth};
use crate::domain::{LockoutState, Timestamp};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

#[path = "guarded_store.rs"]
mod delegate;

/// The file in the state directory that holds the space reserve.
pub const RESERVE_FILE: &str = "space.reserve";
/// Free space below which a writable store is reported full before a write fails.
const LOW_WATER: u64 = 256 * 1024;
/// How long a reopen waits for the old handle's users and sled's flusher to let go.
pub(super) const REOPEN_WAIT: Duration = Duration::from_secs(10);
/// How long a reopen in the middle of bulk work waits for the store's other users (the
/// slot is write-locked meanwhile, so every other call waits too); else it is skipped.
const BULK_REOPEN_WAIT: Duration = Duration::from_millis(250);
/// Users written in bulk (imports, sync staging and roll-forward) after which the store is
/// closed and opened again: sled 0.34 keeps what it wrote in memory until then, whatever
/// its cache capacity, so this bounds the memory of a batch of any size.
const BULK_RELEASE_EVERY: u64 = 10_000;

/// What the handle needs to reopen the store and keep its reserve.
#[derive(Clone, Debug)]
pub struct GuardSettings {
    pub store_dir: PathBuf,
    /// Holds the reserve file and is where free space is measured.
    pub state_dir: PathBuf,
    /// 0: no reserve.
    pub reserve_mib: u64,
    pub pepper_fingerprint: String,
    pub hash_params: String,
    pub cache_capacity_mib: u64,
}

struct Health {
    writable: bool,
    reason: Option<String>,
    since: Timestamp,
    /// A reopen dropped writes that no flush had covered: flushes fail until the store is
    /// writable again, so nothing written before the failure is acknowledged.
    lost: bool,
}

pub struct GuardedStore {
    slot: RwLock<Option<Arc<SledStore>>>,
    /// Bumped by every reopen (under the slot's write lock).
    generation: AtomicU64,
    settings: GuardSettings,
    reserve: Reserve,
    health: Mutex<Health>,
    /// Lockout states written since the last good flush: written again after a reopen.
    pending: Mutex<BTreeMap<String, Option<LockoutState>>>,
    /// Acknowledged writes started / finished, and finished before the last good flush.
    started: AtomicU64,
    done: AtomicU64,
    flushed: AtomicU64,
    reopening: Mutex<()>,
    outbox_max: AtomicU64,
    audit_dropped: AtomicU64,
    /// Users written in bulk since the store was last opened, and how many make it reopen
    /// (`BULK_RELEASE_EVERY`; fewer in tests).
    bulk: AtomicU64,
    bulk_every: AtomicU64,
}

/// Waits up to `wait` for the calls still holding `old` to finish (the slot is
/// write-locked, so no new one starts); whether it is now the only holder.
fn alone(old: &Arc<SledStore>, wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    while Arc::strong_count(old) > 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    Arc::strong_count(old) == 1
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A sled error that means the file system is full (ENOSPC, EDQUOT).
fn disk_full(message: &str) -> bool {
    message.contains("os error 28")
        || message.contains("os error 122")
        || message.contains("No space left")
}

impl GuardedStore {
    /// Wraps an opened store and makes the space reserve; a disk too full for it starts the
    /// store as not writable (the health worker makes it when there is room).
    pub fn new(store: SledStore, settings: GuardSettings) -> Self {
        let reserve = Reserve::new(settings.state_dir.join(RESERVE_FILE), settings.reserve_mib);
        let made = reserve.make();
        let guarded = GuardedStore {
            slot: RwLock::new(Some(Arc::new(store))),
            generation: AtomicU64::new(0),
            settings,
            reserve,
            health: Mutex::new(Health {
                writable: true,
                reason: None,
                since: Timestamp::now(),
                lost: false,
            }),
            pending: Mutex::new(BTreeMap::new()),
            started: AtomicU64::new(0),
            done: AtomicU64::new(0),
            flushed: AtomicU64::new(0),
            reopening: Mutex::new(()),
            outbox_max: AtomicU64::new(0),
            audit_dropped: AtomicU64::new(0),
            bulk: AtomicU64::new(0),
            bulk_every: AtomicU64::new(BULK_RELEASE_EVERY),
        };
        if let Err(e) = made {
            guarded.set_not_writable(&format!(
                "cannot make the {} MiB space reserve {}: {e}",
                guarded.settings.reserve_mib,
                guarded.reserve.path().display()
            ));
        }
        guarded
    }

    fn current(&self) -> Result<(Arc<SledStore>, u64)> {
        let slot = self.slot.read().unwrap_or_else(|e| e.into_inner());
        match slot.as_ref() {
            Some(s) => Ok((Arc::clone(s), self.generation.load(SeqCst))),
            None => Err(StoreError::Unavailable(format!(
                "the store is closed: reopening it failed ({}); retrying every 2 s",
                self.reason()
            ))),
        }
    }

    fn reason(&self) -> String {
        lock(&self.health).reason.clone().unwrap_or_default()
    }

    fn is_writable(&self) -> bool {
        lock(&self.health).writable
    }

    fn read<T>(&self, f: impl FnOnce(&SledStore) -> Result<T>) -> Result<T> {
        let (store, _) = self.current()?;
        f(&store)
    }

    /// A write: refused while the store cannot write; a failure makes it not writable.
    /// `acknowledged`: someone is told it happened once a flush follows.
    fn write<T>(&self, acknowledged: bool, f: impl FnOnce(&SledStore) -> Result<T>) -> Result<T> {
        if !self.is_writable() {
            return Err(StoreError::Unavailable(format!(
                "the store is not writable ({}); nothing was changed",
                self.reason()
            )));
        }
        let (store, generation) = self.current()?;
        if acknowledged {
            self.started.fetch_add(1, SeqCst);
        }
        let out = f(&store);
        if acknowledged {
            self.done.fetch_add(1, SeqCst);
        }
        drop(store);
        if let Err(StoreError::Unavailable(m)) = &out {
            if !m.starts_with("corrupt ") {
                self.failed(generation, m);
            }
        }
        out
    }

    /// Lockout counters are written whatever the health: that is what the reserve is for.
    fn lockout_write(
        &self,
        key: &str,
        f: super::LockoutUpdate<'_>,
    ) -> Result<Option<LockoutState>> {
        for retry in [false, true] {
            let (store, generation) = self.current()?;
            let mut pending = lock(&self.pending);
            match store.update_lockout(key, f) {
                Ok(state) => {
                    pending.insert(key.to_string(), state);
                    return Ok(state);
                }
                Err(e) if retry => return Err(e),
                Err(e) => {
                    drop((pending, store));
                    self.failed(generation, &e.to_string());
                }
            }
        }
        unreachable!("the loop returns on its second pass")
    }

    fn flush_all(&self) -> Result<()> {
        let covered = self.done.load(SeqCst);
        let written = lock(&self.pending).clone();
        for retry in [false, true] {
            let (store, generation) = self.current()?;
            match store.flush() {
                Ok(()) => {
                    self.flushed.fetch_max(covered, SeqCst);
                    lock(&self.pending).retain(|k, v| written.get(k) != Some(v));
                    if lock(&self.health).lost {
                        return Err(StoreError::Unavailable(format!(
                            "the store could not write ({}); writes made just before were \
                             lost and are not acknowledged",
                            self.reason()
                        )));
                    }
                    return Ok(());
                }
                Err(e) if retry => return Err(e),
                Err(e) => {
                    drop(store);
                    self.failed(generation, &e.to_string());
                }
            }
        }
        unreachable!("the loop returns on its second pass")
    }

    /// A write or flush failed: not writable; a full disk gets the reserve back and the
    /// store reopened (sled's error sticks), so lockout counters can be written again.
    fn failed(&self, generation: u64, reason: &str) {
        self.set_not_writable(&format!("a write failed: {reason}"));
        if disk_full(reason) && self.reserve.release() {
            tracing::warn!(reserve = %self.reserve.path().display(),
                "the disk is full: released the space reserve so lockout counters still persist");
            if let Err(e) = self.reopen(generation) {
                tracing::error!(error = %e, "reopening the store after a full disk failed");
            }
        }
    }

    fn set_not_writable(&self, reason: &str) {
        let mut health = lock(&self.health);
        if health.writable {
            tracing::error!(
                reason,
                "the store is not writable: decisions continue from what can be read, admin \
                 writes are refused and audit events dropped; free space on the state \
                 directory's file system or check the disk — it recovers without a restart"
            );
            health.writable = false;
            health.since = Timestamp::now();
        }
        health.reason = Some(reason.to_string());
    }

    fn set_writable(&self) {
        let mut health = lock(&self.health);
        if !health.writable {
            let dropped = self.audit_dropped.load(SeqCst);
            tracing::info!(audit_dropped = dropped, "the store is writable again");
        }
        *health = Health {
            writable: true,
            reason: None,
            since: Timestamp::now(),
            lost: false,
        };
    }

    /// Closes the store and opens it again (clearing sled's sticky error), then writes the
    /// lockout counters no flush has covered. Does nothing when another reopen came first.
    fn reopen(&self, seen: u64) -> Result<()> {
        let _one = lock(&self.reopening);
        let mut slot = self.slot.write().unwrap_or_else(|e| e.into_inner());
        if self.generation.load(SeqCst) != seen && slot.is_some() {
            return Ok(());
        }
        self.generation.fetch_add(1, SeqCst);
        if self.started.load(SeqCst) > self.flushed.load(SeqCst) {
            lock(&self.health).lost = true;
        }
        if let Some(old) = slot.take() {
            alone(&old, REOPEN_WAIT);
        }
        self.bulk.store(0, SeqCst);
        let store = self.open_again(true).map_err(|e| {
            let reason = format!("reopening the store failed: {e}");
            self.set_not_writable(&reason);
            StoreError::Unavailable(reason)
        })?;
        store.set_outbox_limit(self.outbox_max.load(SeqCst));
        for (key, state) in lock(&self.pending).iter() {
            store.update_lockout(key, &|_| *state)?;
        }
        *slot = Some(Arc::new(store));
        tracing::warn!("reopened the store");
        Ok(())
    }

    /// Opens the store, waiting while sled's flusher thread still holds the old handle's
    /// file lock. `recover`: complete or clear the sync journal (after a failure; not after
    /// a good flush in the middle of a batch, see `SledStore::open_mid_batch`).
    fn open_again(&self, recover: bool) -> std::result::Result<SledStore, OpenError> {
        let s = &self.settings;
        let deadline = Instant::now() + REOPEN_WAIT;
        loop {
            let params = OpenParams {
                pepper_fingerprint: &s.pepper_fingerprint,
                hash_params: &s.hash_params,
                cache_capacity_mib: s.cache_capacity_mib,
            };
            let opened = if recover {
                SledStore::open(&s.store_dir, params)
            } else {
                SledStore::open_mid_batch(&s.store_dir, params)
            };
            match opened {
                Err(OpenError::InUse(_)) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                other => return other.map(|opened| opened.store),
            }
        }
    }

    /// The health worker's unit: a write-flush-read probe while writable; while not, wait
    /// for room (reserve + headroom), make the reserve, reopen if the store still fails,
    /// and probe again.
    fn probe_now(&self) -> Result<()> {
        if self.is_writable() {
            let (store, generation) = self.current()?;
            let probed = store.probe();
            drop(store);
            if let Err(e) = &probed {
                self.failed(generation, &e.to_string());
                return probed;
            }
            // Small writes may still fit in pages sled already has: a file system this
            // full is reported before a write fails.
            let free = self.free()?;
            if free < LOW_WATER {
                let reason = format!(
                    "the disk is full: {} KiB free in {}",
                    free / 1024,
                    self.settings.state_dir.display()
                );
                self.set_not_writable(&reason);
                return Err(StoreError::Unavailable(reason));
            }
            if self.bulk.load(SeqCst) >= self.bulk_every.load(SeqCst) {
                self.release_in_batch();
            }
            return Ok(());
        }
        let dir = &self.settings.state_dir;
        let free = self.free()?;
        let needed = self.reserve.needed();
        if free < needed {
            return Err(StoreError::Unavailable(format!(
                "{}; {} KiB free in {}, waiting for {} KiB",
                self.reason(),
                free / 1024,
                dir.display(),
                needed / 1024
            )));
        }
        self.reserve.make().map_err(|e| {
            StoreError::Unavailable(format!(
                "cannot make the space reserve {}: {e}",
                self.reserve.path().display()
            ))
        })?;
        let healthy = match self.current() {
            Ok((store, generation)) => match store.probe() {
                Ok(()) => None,
                Err(_) => Some(generation),
            },
            Err(_) => Some(self.generation.load(SeqCst)),
        };
        if let Some(generation) = healthy {
            self.reopen(generation)?;
            self.current()?.0.probe()?;
        }
        self.set_writable();
        Ok(())
    }

    /// `release_memory`: flushes the store, closes it and opens it again, so the pages sled
    /// kept in memory for a large batch are given back. Only on a writable store with no
    /// other operation holding it after `wait` (else skipped: the next large batch tries
    /// again). The sync journal is left as it is (the flush made it durable), so a batch
    /// being staged or rolled forward goes on. While it runs, other store calls wait.
    fn release_now(&self, wait: Duration) -> Result<()> {
        if !self.is_writable() {
            return Ok(());
        }
        let _one = lock(&self.reopening);
        let mut slot = self.slot.write().unwrap_or_else(|e| e.into_inner());
        let Some(old) = slot.take() else {
            return Ok(());
        };
        if !alone(&old, wait) {
            *slot = Some(old);
            return Ok(());
        }
        let started = Instant::now();
        let covered = self.done.load(SeqCst);
        if let Err(e) = old.flush() {
            *slot = Some(old);
            return Err(e);
        }
        self.flushed.fetch_max(covered, SeqCst);
        lock(&self.pending).clear();
        self.generation.fetch_add(1, SeqCst);
        self.bulk.store(0, SeqCst);
        drop(old);
        let store = self.open_again(false).map_err(|e| {
            let reason = format!("reopening the store to release memory failed: {e}");
            self.set_not_writable(&reason);
            StoreError::Unavailable(reason)
        })?;
        store.set_outbox_limit(self.outbox_max.load(SeqCst));
        *slot = Some(Arc::new(store));
        drop(slot);
        crate::heap::release();
        tracing::info!(
            millis = started.elapsed().as_millis() as u64,
            "reopened the store to give back the memory of a large batch"
        );
        Ok(())
    }

    /// Counts `users` written (or read) in bulk; past `BULK_RELEASE_EVERY` since the store was
    /// opened, gives its memory back (`release_now`) so a batch of any size stays bounded.
    /// A failure is logged: the batch goes on, and the store's health says the rest.
    fn did_bulk(&self, users: usize) {
        let total = self.bulk.fetch_add(users as u64, SeqCst) + users as u64;
        if total >= self.bulk_every.load(SeqCst) {
            self.release_in_batch();
        }
    }

    /// Counts users read by a walk (a sweep, a count, a page of `each_user`), which sled
    /// keeps in memory too, without reopening here: the caller may be on an async thread.
    /// The health probe (on a blocking thread every 2 s) or the next bulk step gives the
    /// memory back once the count is due.
    fn did_read(&self, users: usize) {
        self.bulk.fetch_add(users as u64, SeqCst);
    }

    /// `release_now` in the middle of bulk work: a short wait for the store's other users.
    fn release_in_batch(&self) {
        if let Err(e) = self.release_now(BULK_REOPEN_WAIT) {
            tracing::warn!(error = %e, "could not give back the store's memory during a batch");
        }
    }

    fn free(&self) -> Result<u64> {
        let dir = &self.settings.state_dir;
        free_bytes(dir).map_err(|e| {
            StoreError::Unavailable(format!(
                "cannot measure free space in {}: {e}",
                dir.display()
            ))
        })
    }

    fn health_now(&self) -> WriteHealth {
        let health = lock(&self.health);
        WriteHealth {
            writable: health.writable,
            reason: health.reason.clone(),
            since: Some(health.since),
            reserve: self.reserve.enabled().then(|| self.reserve.present()),
            audit_dropped: self.audit_dropped.load(SeqCst),
        }
    }
}

#[cfg(test)]
#[path = "guarded_tests.rs"]
mod tests;
