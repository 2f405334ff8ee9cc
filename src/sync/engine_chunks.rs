//! The chunked part of a run (a child of `engine.rs`): a listing is planned, screened for
//! weak PINs, hashed and staged a chunk of users at a time, so a run holds one chunk of
//! entries, records and PINs whatever the directory's size, plus the listing's keys. The
//! deletions and the mass-deletion guard are decided from the keys before the first chunk.
//! A listing of one chunk applies as one batch (`Store::apply_sync`); a larger one is
//! staged in the store and committed at the end (`Store::commit_sync`): nothing is visible
//! before the commit, and a stop or a crash before it drops what was staged.

use super::{Engine, Progress, SyncError};
use crate::domain::{Timestamp, User};
use crate::store::{SyncApplied, SyncState, SyncWrite};
use crate::sync::listing::{Chunks, Listing};
use crate::sync::plan::{self, Plan, Planner};
use crate::sync::weak::{self, Weak};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Users planned, hashed and staged at a time.
pub const CHUNK_USERS: usize = 1_000;

/// What an applied listing did.
pub(super) struct Applied {
    pub(super) applied: SyncApplied,
    pub(super) rehashed: usize,
    pub(super) skipped: Vec<String>,
    /// Users the source owns now.
    pub(super) users: u64,
    pub(super) complete: bool,
    pub(super) weak: Vec<Weak>,
    /// Users on the weak list whose PIN this run checked again.
    pub(super) rechecked: Vec<String>,
    pub(super) removals: Vec<String>,
}

/// Where the run is between chunks.
struct Pass {
    /// Both away (`None`) while a chunk is planned on a blocking thread.
    planner: Option<Planner>,
    chunks: Option<Box<dyn Chunks>>,
    /// The last chunk planned and hashed, not yet staged: a listing of one chunk is
    /// applied without staging.
    pending: Option<Vec<User>>,
    staging: bool,
    out: Applied,
}

impl Engine {
    /// Plans, hashes and applies `listing` with `state`, durable on return.
    pub(super) async fn apply_listing(
        &self,
        listing: Listing,
        force: bool,
        mut state: SyncState,
        now: Timestamp,
        progress: Progress,
        shutdown: &CancellationToken,
    ) -> Result<Applied, SyncError> {
        let Listing {
            keys,
            deletions,
            skipped,
            pins,
            chunks,
            ..
        } = listing;
        let planner = self.planner(keys, deletions, force).await?;
        let mut pass = Pass {
            out: Applied {
                applied: SyncApplied::default(),
                rehashed: 0,
                skipped,
                users: 0,
                complete: false,
                weak: Vec::new(),
                rechecked: Vec::new(),
                removals: Vec::new(),
            },
            planner: Some(planner),
            chunks: Some(chunks),
            pending: None,
            staging: false,
        };
        let done = self.each_chunk(&mut pass, pins, &progress, shutdown).await;
        let done = match done {
            Ok(()) if shutdown.is_cancelled() => Err(SyncError::Cancelled),
            other => other,
        };
        if let Err(e) = done {
            if pass.staging {
                self.discard().await;
            }
            return Err(e);
        }
        if pass.out.rehashed != pins {
            if let Some(p) = &progress {
                let _ = p.send((pass.out.rehashed, pass.out.rehashed));
            }
        }
        let Pass {
            planner,
            pending,
            staging,
            mut out,
            ..
        } = pass;
        let planner = planner.ok_or(SyncError::Panicked)?;
        out.complete = planner.complete();
        let (removals, users) = planner.finish();
        if out.complete {
            state.last_full = Some(now);
        }
        state.users = users;
        out.users = users;
        let upserts = pending.unwrap_or_default();
        match self.commit(upserts, removals, state, staging).await {
            Ok((applied, removals)) => {
                out.applied = applied;
                out.removals = removals;
                Ok(out)
            }
            Err(e) => {
                if staging {
                    self.discard().await;
                }
                Err(e)
            }
        }
    }

    /// Every chunk of the listing: planned, screened, hashed, and the one before staged.
    async fn each_chunk(
        &self,
        pass: &mut Pass,
        pins: usize,
        progress: &Progress,
        shutdown: &CancellationToken,
    ) -> Result<(), SyncError> {
        loop {
            if shutdown.is_cancelled() {
                return Err(SyncError::Cancelled);
            }
            let Some(mut plan) = self.plan_chunk(pass).await? else {
                // The source's reader (a file's, with what it checked) is not needed for
                // the commit.
                pass.chunks = None;
                return Ok(());
            };
            pass.out.skipped.append(&mut plan.skipped);
            let (found, checked) = weak::screen(&mut plan, &self.pins);
            {
                let live = self.live();
                let rechecked = checked.into_iter().filter(|id| live.weak.contains(id));
                pass.out.rechecked.extend(rechecked);
            }
            pass.out.weak.extend(found);
            let base = pass.out.rehashed;
            pass.out.rehashed += self
                .hash(&mut plan, progress, (base, pins), shutdown)
                .await?;
            if let Some(previous) = pass.pending.replace(plan.users) {
                if !pass.staging {
                    self.store_call(|s, name| Ok(s.discard_sync(name)?)).await?;
                    pass.staging = true;
                }
                self.store_call(move |s, name| Ok(s.stage_sync(name, &previous)?))
                    .await?;
            }
        }
    }

    /// Reads the source's users (key → id) and decides the deletions and the guard.
    async fn planner(
        &self,
        keys: crate::sync::listing::KeySet,
        deletions: crate::sync::listing::Gone,
        force: bool,
    ) -> Result<Planner, SyncError> {
        let share = self.settings.max_delete_share;
        self.store_call(move |store, name| {
            let existing = |visit: &mut dyn FnMut(String, String)| {
                crate::store::each_upstream_key(store, name, |key, id| {
                    visit(key, id);
                    Ok::<(), crate::store::StoreError>(())
                })
            };
            let settings = plan::Settings {
                source: name,
                max_delete_share: share,
                force,
            };
            Ok(Planner::new(keys, &deletions, existing, &settings)?)
        })
        .await
    }

    /// The next chunk of entries, planned on a blocking thread (it reads every user the
    /// chunk names, and the source may read a file); `None` at the end of the listing.
    async fn plan_chunk(&self, pass: &mut Pass) -> Result<Option<Plan>, SyncError> {
        let max = self.chunk;
        // The planner and the chunks go to the blocking thread and come back.
        let (Some(mut planner), Some(mut chunks)) = (pass.planner.take(), pass.chunks.take())
        else {
            return Err(SyncError::Panicked);
        };
        let store = Arc::clone(&self.store);
        let (planner, chunks, plan) = tokio::task::spawn_blocking(move || {
            let plan = match chunks.next_chunk(max) {
                Ok(entries) if entries.is_empty() => Ok(None),
                Ok(entries) => planner
                    .chunk(entries, &plan::StoreReads(store.as_ref()))
                    .map(Some)
                    .map_err(SyncError::from),
                Err(e) => Err(SyncError::from(e)),
            };
            (planner, chunks, plan)
        })
        .await
        .map_err(|_| SyncError::Panicked)?;
        pass.planner = Some(planner);
        pass.chunks = Some(chunks);
        plan
    }

    /// The last chunk with the removals and `state`: one batch when nothing was staged,
    /// else the commit of the staged chunks. Durable before it is reported: sled writes
    /// otherwise reach the disk on a timer, and a crash right after "applied" would lose it.
    async fn commit(
        &self,
        upserts: Vec<User>,
        removals: Vec<String>,
        state: SyncState,
        staged: bool,
    ) -> Result<(SyncApplied, Vec<String>), SyncError> {
        self.store_call(move |store, source| {
            let write = SyncWrite {
                source,
                upserts: &upserts,
                removals: &removals,
                state: &state,
            };
            let applied = if staged {
                store.commit_sync(&write)?
            } else {
                store.apply_sync(&write)?
            };
            store.flush()?;
            Ok((applied, removals))
        })
        .await
    }

    /// Drops what a failed or stopped run staged (a crash would too, at the next start).
    async fn discard(&self) {
        if let Err(e) = self.store_call(|s, name| Ok(s.discard_sync(name)?)).await {
            tracing::warn!(source = %self.name, error = %e, "could not drop a stopped sync's staged users; the next run or start does");
        }
    }

    /// `f` with the store and this source's name, on a blocking thread.
    async fn store_call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn crate::store::Store, &str) -> Result<T, SyncError> + Send + 'static,
    ) -> Result<T, SyncError> {
        let store = Arc::clone(&self.store);
        let name = self.name.clone();
        tokio::task::spawn_blocking(move || f(store.as_ref(), &name))
            .await
            .map_err(|_| SyncError::Panicked)?
    }
}
