//! The bounded pool that runs argon2 on tokio's blocking threads. One permit costs about
//! `memory_kib` of RAM; past the queue limit callers get `PoolBusy` instead of waiting.

use super::Hasher;
use crate::domain::{Pin, Tag};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::Semaphore;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("all PIN workers are busy")]
pub struct PoolBusy;

#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct PoolStats {
    pub workers: usize,
    pub queue: usize,
    pub in_flight: usize,
    pub computed: u64,
    pub busy: u64,
}

pub struct HashPool {
    hasher: Arc<Hasher>,
    permits: Semaphore,
    workers: usize,
    queue: usize,
    in_flight: AtomicUsize,
    computed: AtomicU64,
    busy: AtomicU64,
}

/// Decrements the in-flight count even if the waiting future is dropped.
struct Slot<'a>(&'a AtomicUsize);
impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl HashPool {
    /// `workers` concurrent computations, plus up to `queue` requests waiting for one.
    pub fn new(hasher: Arc<Hasher>, workers: usize, queue: usize) -> Self {
        let workers = workers.max(1);
        HashPool {
            hasher,
            permits: Semaphore::new(workers),
            workers,
            queue,
            in_flight: AtomicUsize::new(0),
            computed: AtomicU64::new(0),
            busy: AtomicU64::new(0),
        }
    }

    /// Tag for an authentication attempt: refuses with `PoolBusy` when the queue is full.
    pub async fn tag(&self, pin: Pin) -> Result<Tag, PoolBusy> {
        let limit = self.workers + self.queue;
        let taken = self
            .in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            });
        if taken.is_err() {
            self.busy.fetch_add(1, Ordering::Relaxed);
            return Err(PoolBusy);
        }
        let _slot = Slot(&self.in_flight);
        Ok(self.compute(pin).await)
    }

    /// Tag for administrative work (enrolment, import): waits for a worker, never refuses.
    pub async fn tag_waiting(&self, pin: Pin) -> Tag {
        self.compute(pin).await
    }

    async fn compute(&self, pin: Pin) -> Tag {
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let hasher = Arc::clone(&self.hasher);
        let tag = tokio::task::spawn_blocking(move || hasher.tag(&pin))
            .await
            .expect("argon2 does not panic on validated parameters");
        self.computed.fetch_add(1, Ordering::Relaxed);
        tag
    }

    pub fn stats(&self) -> PoolStats {
        PoolStats {
            workers: self.workers,
            queue: self.queue,
            in_flight: self.in_flight.load(Ordering::Relaxed),
            computed: self.computed.load(Ordering::Relaxed),
            busy: self.busy.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{HashParams, Pepper};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn busy_when_queue_is_full() {
        let hasher = Arc::new(
            Hasher::new(Pepper::from_bytes([3; 32]), [1; 16], HashParams::default()).unwrap(),
        );
        let pool = Arc::new(HashPool::new(hasher, 1, 1));
        let mut handles = Vec::new();
        for _ in 0..6 {
            let pool = Arc::clone(&pool);
            handles.push(tokio::spawn(
                async move { pool.tag(Pin::new("482913")).await },
            ));
        }
        let mut ok = 0;
        let mut busy = 0;
        for h in handles {
            match h.await.unwrap() {
                Ok(_) => ok += 1,
                Err(PoolBusy) => busy += 1,
            }
        }
        assert!(ok >= 2, "the worker and the queued request are served");
        assert!(busy >= 1, "requests past the queue are refused");
        assert_eq!(pool.stats().in_flight, 0);
        assert_eq!(pool.stats().busy, busy);
    }
}
