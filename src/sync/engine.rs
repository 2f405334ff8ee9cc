//! One engine per `[[directory]]`: fetch a listing (a panic becomes an error), then a chunk
//! of users at a time plan, hash the PINs that changed on the pool's background queue and
//! stage them (`engine_chunks.rs`), then apply everything with the cursor as one atomic
//! batch (the previous state or the new one, even across a crash). A run in progress is
//! never interrupted by a timer; shutdown stops it before the commit, and a stop during a
//! large commit is completed by the store at the next start.

pub use super::error::SyncError;
use super::listing::Listing;
use super::local_pins;
use super::plan::{self, Plan, PlanError};
use super::report::{audit, weak_audit};
pub use super::report::{RunOptions, Summary};
use super::source::{Source, SourceError};
use super::weak::{self, PinCheck, WeakList};
use crate::crypto::HashPool;
use crate::domain::{SyncOutcome, Timestamp};
use crate::lifecycle::settings::WeakPins;
use crate::store::{Store, SyncState};
pub use chunks::CHUNK_USERS;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Debug)]
pub struct EngineSettings {
    pub interval: Duration,
    pub max_delete_share: f64,
    pub max_staleness: Duration,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
}

/// A source's sync health, for `/metrics`.
#[derive(Clone, Debug)]
pub struct SourceHealth {
    pub name: String,
    pub last_success: Option<Timestamp>,
    /// The last run's outcome (`applied`, `unchanged`, `completed`), the error kind when
    /// it failed (`unavailable`, `rejected`, `refused`, `store`, …), `none` before the first.
    pub last_result: &'static str,
}

/// Live state for `status`.
#[derive(Default)]
struct Live {
    running: bool,
    last_run: Option<Summary>,
    last_error_kind: Option<&'static str>,
    weak: WeakList,
}

pub struct Engine {
    pub name: String,
    pub kind: &'static str,
    source: Arc<dyn Source>,
    store: Arc<dyn Store>,
    pool: Arc<HashPool>,
    pub settings: EngineSettings,
    pins: PinCheck,
    started: Timestamp,
    live: Mutex<Live>,
    /// Users planned, hashed and staged at a time.
    chunk: usize,
}

pub type Progress = Option<UnboundedSender<(usize, usize)>>;

impl Engine {
    pub fn new(
        name: String,
        kind: &'static str,
        source: Arc<dyn Source>,
        store: Arc<dyn Store>,
        pool: Arc<HashPool>,
        settings: EngineSettings,
        pins: PinCheck,
    ) -> Self {
        Engine {
            name,
            kind,
            source,
            store,
            pool,
            settings,
            pins,
            started: Timestamp::now(),
            live: Mutex::new(Live::default()),
            chunk: CHUNK_USERS,
        }
    }

    /// Plans, hashes and stages `users` at a time instead of [`CHUNK_USERS`] (tests).
    pub fn with_chunk_size(mut self, users: usize) -> Self {
        self.chunk = users.max(1);
        self
    }

    fn live(&self) -> std::sync::MutexGuard<'_, Live> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One run, recorded for status and (when it did something, failed, or was asked for
    /// by an operator) in the audit log.
    pub async fn run(
        &self,
        opts: RunOptions,
        progress: Progress,
        manual: bool,
        shutdown: &CancellationToken,
    ) -> Result<Summary, SyncError> {
        self.live().running = true;
        let result = self.run_once(opts, progress, shutdown).await;
        // The run's batch, plan and transaction are gone now; after a large one the store
        // gives back what it kept in memory for it too.
        let large = result
            .as_ref()
            .is_ok_and(|s| s.added + s.changed + s.removed >= crate::store::RELEASE_AFTER);
        let store = Arc::clone(&self.store);
        let released = tokio::task::spawn_blocking(move || {
            let released = if large {
                store.release_memory()
            } else {
                Ok(())
            };
            crate::heap::release();
            released
        })
        .await;
        if let Ok(Err(e)) = released {
            tracing::warn!(error = %e, "could not release the store's memory after a sync");
        }
        self.record(&result, manual);
        self.live().running = false;
        result
    }

    async fn run_once(
        &self,
        opts: RunOptions,
        progress: Progress,
        shutdown: &CancellationToken,
    ) -> Result<Summary, SyncError> {
        let started = Instant::now();
        let mut state = self.store.sync_state(&self.name)?.unwrap_or_default();
        let full = opts.full || (state.cursor.is_some() && self.local_pin_set(&state).await?);
        let cursor = if full { None } else { state.cursor.clone() };
        let listing = match self.fetch(cursor.clone(), shutdown).await {
            Err(SyncError::Source(SourceError::CursorExpired(why))) if cursor.is_some() => {
                tracing::info!(source = %self.name, reason = %why, "cursor expired: fetching everything");
                self.fetch(None, shutdown).await?
            }
            other => other?,
        };
        let now = Timestamp::now();
        state.last_success = Some(now);
        state.last_error = None;
        state.last_error_at = None;
        if let Some(c) = listing.cursor.clone() {
            state.cursor = Some(c);
            state.cursor_at = Some(now);
        }
        if listing.is_empty() {
            self.save_state(state.clone()).await?;
            return Ok(Summary {
                source: self.name.clone(),
                outcome: SyncOutcome::Unchanged,
                users: state.users,
                millis: started.elapsed().as_millis() as u64,
                ..Summary::default()
            });
        }
        let run = self
            .apply_listing(listing, opts.force, state, now, progress, shutdown)
            .await?;
        self.weak_applied(&run.rechecked, &run.weak, &run.removals);
        Ok(Summary {
            source: self.name.clone(),
            outcome: SyncOutcome::Applied,
            added: run.applied.added,
            changed: run.applied.changed,
            removed: run.applied.removed,
            rehashed: run.rehashed,
            collisions: run.applied.collisions,
            skipped: run.skipped,
            users: run.users,
            complete: run.complete,
            weak_pins: run.weak.len(),
            weak_pin_users: weak::capped_ids(&run.weak),
            millis: started.elapsed().as_millis() as u64,
        })
    }

    /// Whether a PIN set here on one of this source's users since its last complete listing
    /// makes this run a complete one (see `local_pins`).
    async fn local_pin_set(&self, state: &SyncState) -> Result<bool, SyncError> {
        let store = Arc::clone(&self.store);
        let name = self.name.clone();
        let last_full = state.last_full;
        let set = tokio::task::spawn_blocking(move || {
            local_pins::set_since_full(store.as_ref(), &name, last_full)
        })
        .await
        .map_err(|_| SyncError::Panicked)??;
        if set {
            tracing::info!(source = %self.name, "a PIN was set here on a user of this directory: fetching everything so the directory's PIN replaces it");
        }
        Ok(set)
    }

    /// Saves the state of a run with nothing to apply (its cursor and success time), durable
    /// before the run is reported, like an applied batch.
    async fn save_state(&self, state: SyncState) -> Result<(), SyncError> {
        let store = Arc::clone(&self.store);
        let name = self.name.clone();
        tokio::task::spawn_blocking(move || {
            store.put_sync_state(&name, &state)?;
            store.flush()
        })
        .await
        .map_err(|_| SyncError::Panicked)??;
        Ok(())
    }

    /// Keeps the weak PINs of an applied run for `status`, audits them and logs the count.
    fn weak_applied(&self, checked: &[String], found: &[weak::Weak], removed: &[String]) {
        self.live().weak.update(checked, found, removed);
        if found.is_empty() {
            return;
        }
        let refused = self.pins.weak == WeakPins::Refuse;
        tracing::warn!(source = %self.name, weak = found.len(), refused,
            "directory PINs break the PIN policy; `pinwarden status` lists the users");
        for event in weak_audit(&self.name, found, refused) {
            self.store.record(event);
        }
    }

    /// The source's listing in its own task: a panic in it is an error, not a dead daemon.
    async fn fetch(
        &self,
        cursor: Option<Vec<u8>>,
        shutdown: &CancellationToken,
    ) -> Result<Listing, SyncError> {
        let source = Arc::clone(&self.source);
        let task = tokio::spawn(async move { source.list(cursor.as_deref()).await });
        let abort = task.abort_handle();
        tokio::select! {
            joined = task => match joined {
                Ok(batch) => Ok(batch?),
                Err(e) if e.is_panic() => {
                    tracing::error!(source = %self.name, "the directory source panicked");
                    Err(SyncError::Panicked)
                }
                Err(_) => Err(SyncError::Cancelled),
            },
            _ = shutdown.cancelled() => {
                abort.abort();
                Err(SyncError::Cancelled)
            }
        }
    }

    /// Hashes the plan's PINs behind every login attempt; returns how many. Progress is
    /// reported as `(base + done, total)` for the run as a whole.
    async fn hash(
        &self,
        plan: &mut Plan,
        progress: &Progress,
        (base, total): (usize, usize),
        shutdown: &CancellationToken,
    ) -> Result<usize, SyncError> {
        let pins = std::mem::take(&mut plan.pins);
        let now = Timestamp::now();
        let report = |done: usize, _| {
            if let Some(p) = progress {
                let _ = p.send((base + done, total.max(base + done)));
            }
        };
        let set = |index, tag| plan::set_upstream_pin(&mut plan.users[index], tag, now);
        tokio::select! {
            hashed = self.pool.tag_all(pins, &report, set) => hashed.map_err(|_| SyncError::Hashing),
            _ = shutdown.cancelled() => Err(SyncError::Cancelled),
        }
    }

    fn record(&self, result: &Result<Summary, SyncError>, manual: bool) {
        match result {
            Ok(summary) => {
                let did_something = summary.outcome != SyncOutcome::Unchanged
                    && (summary.added + summary.changed + summary.removed > 0
                        || !summary.collisions.is_empty()
                        || !summary.skipped.is_empty());
                if did_something || manual {
                    tracing::info!(source = %self.name, added = summary.added, changed = summary.changed,
                        removed = summary.removed, rehashed = summary.rehashed,
                        collisions = summary.collisions.len(), skipped = summary.skipped.len(), "sync applied");
                    self.store.record(audit(summary, None));
                }
                let mut live = self.live();
                live.last_run = Some(summary.clone());
                live.last_error_kind = None;
            }
            Err(SyncError::Cancelled) => {}
            Err(e) => {
                let message = e.to_string();
                let mut state = self
                    .store
                    .sync_state(&self.name)
                    .ok()
                    .flatten()
                    .unwrap_or_default();
                let repeated = state.last_error.as_deref() == Some(message.as_str());
                // Logged once per run of the same error (the supervisor does the same).
                if !repeated || manual {
                    tracing::warn!(source = %self.name, error = %message, "sync failed; decisions go on from the cache");
                    let failed = Summary {
                        source: self.name.clone(),
                        outcome: match e {
                            SyncError::Plan(PlanError::TooManyDeletions { .. }) => {
                                SyncOutcome::Refused
                            }
                            _ => SyncOutcome::Failed,
                        },
                        ..Summary::default()
                    };
                    self.store.record(audit(&failed, Some(message.clone())));
                }
                state.last_error = Some(message);
                state.last_error_at = Some(Timestamp::now());
                if let Err(e) = self.store.put_sync_state(&self.name, &state) {
                    tracing::error!(error = %e, "cannot record the sync error");
                }
                self.live().last_error_kind = Some(e.kind());
            }
        }
    }

    /// When the cache of this source passes `max_staleness` (measured from the daemon's
    /// start when it never synced).
    pub fn stale_at(&self) -> Timestamp {
        self.store
            .sync_state(&self.name)
            .ok()
            .flatten()
            .and_then(|s| s.last_success)
            .unwrap_or(self.started)
            .plus(self.settings.max_staleness)
    }

    /// Whether the cache of this source is older than `max_staleness`.
    pub fn stale(&self, now: Timestamp) -> bool {
        now > self.stale_at()
    }

    /// What `/metrics` shows of this source: one store read, no user ids.
    pub fn health(&self) -> SourceHealth {
        let state = self
            .store
            .sync_state(&self.name)
            .ok()
            .flatten()
            .unwrap_or_default();
        let live = self.live();
        let last_result = match (live.last_error_kind, &live.last_run) {
            (Some(kind), _) => kind,
            (None, Some(run)) => run.outcome.as_str(),
            (None, None) => "none",
        };
        SourceHealth {
            name: self.name.clone(),
            last_success: state.last_success,
            last_result,
        }
    }

    pub fn status(&self, now: Timestamp) -> serde_json::Value {
        let state = self
            .store
            .sync_state(&self.name)
            .ok()
            .flatten()
            .unwrap_or_default();
        let live = self.live();
        serde_json::json!({
            "name": self.name,
            "kind": self.kind,
            "users": state.users,
            "last_success": state.last_success,
            "last_full": state.last_full,
            "last_error": state.last_error,
            "last_error_at": state.last_error_at,
            "last_error_kind": live.last_error_kind,
            "cursor_age_secs": state.cursor_at.map(|t| t.until(now).as_secs()),
            "stale": self.stale(now),
            "max_staleness": crate::duration::format_duration(self.settings.max_staleness),
            "running": live.running,
            "last_run": live.last_run,
            "weak_pin_policy": self.pins.weak,
            "weak_pins": live.weak.len(),
            "weak_pin_users": live.weak.ids(),
        })
    }
}

#[path = "engine_chunks.rs"]
mod chunks;

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "engine_chunk_tests.rs"]
mod chunk_tests;
