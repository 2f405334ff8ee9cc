//! The bounded pool that computes tags on a fixed set of worker threads, each owning one
//! reused argon2 workspace, so memory stays at `workers × memory_kib` however busy it gets.
//! Authentication attempts are served before administrative work (imports), and past the
//! queue limit attempts get `PoolBusy` instead of waiting.

use super::{Hasher, Workspace};
use crate::domain::{Pin, Tag};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use tokio::sync::oneshot;

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

struct Job {
    pin: Pin,
    reply: oneshot::Sender<Tag>,
}

#[derive(Default)]
struct Queues {
    auth: VecDeque<Job>,
    admin: VecDeque<Job>,
    closed: bool,
}

struct Shared {
    queues: Mutex<Queues>,
    ready: Condvar,
    computed: AtomicU64,
}

pub struct HashPool {
    shared: Arc<Shared>,
    workers: usize,
    queue: usize,
    in_flight: AtomicUsize,
    busy: AtomicU64,
}

/// Decrements the in-flight count even if the waiting future is dropped.
struct Slot<'a>(&'a AtomicUsize);
impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn work(shared: &Shared, hasher: &Hasher) {
    let mut workspace: Workspace = hasher.workspace();
    loop {
        let job = {
            let mut q = shared.queues.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if let Some(job) = q.auth.pop_front().or_else(|| q.admin.pop_front()) {
                    break job;
                }
                if q.closed {
                    return;
                }
                q = shared.ready.wait(q).unwrap_or_else(|e| e.into_inner());
            }
        };
        let Job { pin, reply } = job;
        // A worker must outlive any one computation: a panic drops only that job's reply.
        let computed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            hasher.tag_in(&pin, &mut workspace)
        }));
        drop(pin);
        match computed {
            Ok(tag) => {
                shared.computed.fetch_add(1, Ordering::Relaxed);
                let _ = reply.send(tag);
            }
            Err(_) => {
                tracing::error!("a PIN hash computation panicked");
                workspace = hasher.workspace();
            }
        }
    }
}

impl HashPool {
    /// `workers` threads, plus up to `queue` attempts waiting for one.
    pub fn new(hasher: Arc<Hasher>, workers: usize, queue: usize) -> Self {
        let workers = workers.max(1);
        let shared = Arc::new(Shared {
            queues: Mutex::new(Queues::default()),
            ready: Condvar::new(),
            computed: AtomicU64::new(0),
        });
        for i in 0..workers {
            let (shared, hasher) = (Arc::clone(&shared), Arc::clone(&hasher));
            std::thread::Builder::new()
                .name(format!("pinwarden-hash-{i}"))
                .spawn(move || work(&shared, &hasher))
                .expect("cannot start a hash worker thread");
        }
        HashPool {
            shared,
            workers,
            queue,
            in_flight: AtomicUsize::new(0),
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
        self.submit(pin, true).await
    }

    /// Tag for administrative work (enrolment, import): waits behind every attempt.
    pub async fn tag_waiting(&self, pin: Pin) -> Result<Tag, PoolBusy> {
        self.submit(pin, false).await
    }

    /// Queues one job; a lost reply (the computation panicked) is reported as busy.
    async fn submit(&self, pin: Pin, auth: bool) -> Result<Tag, PoolBusy> {
        let (reply, answer) = oneshot::channel();
        {
            let mut q = self.shared.queues.lock().unwrap_or_else(|e| e.into_inner());
            let job = Job { pin, reply };
            if auth {
                q.auth.push_back(job);
            } else {
                q.admin.push_back(job);
            }
        }
        self.shared.ready.notify_one();
        answer.await.map_err(|_| PoolBusy)
    }

    pub fn stats(&self) -> PoolStats {
        PoolStats {
            workers: self.workers,
            queue: self.queue,
            in_flight: self.in_flight.load(Ordering::Relaxed),
            computed: self.shared.computed.load(Ordering::Relaxed),
            busy: self.busy.load(Ordering::Relaxed),
        }
    }
}

impl Drop for HashPool {
    fn drop(&mut self) {
        let mut q = self.shared.queues.lock().unwrap_or_else(|e| e.into_inner());
        q.closed = true;
        drop(q);
        self.shared.ready.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{HashParams, Pepper};

    fn pool(workers: usize, queue: usize) -> Arc<HashPool> {
        let hasher =
            Hasher::new(Pepper::from_bytes([3; 32]), [1; 16], HashParams::default()).unwrap();
        Arc::new(HashPool::new(Arc::new(hasher), workers, queue))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn busy_when_queue_is_full() {
        let pool = pool(1, 1);
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn attempts_overtake_queued_admin_work_and_tags_match() {
        let pool = pool(1, 4);
        let direct = Hasher::new(Pepper::from_bytes([3; 32]), [1; 16], HashParams::default())
            .unwrap()
            .tag(&Pin::new("730194"));
        let admin: Vec<_> = (0..20)
            .map(|i| {
                let pool = Arc::clone(&pool);
                tokio::spawn(
                    async move { pool.tag_waiting(Pin::new(format!("{i:06}"))).await.unwrap() },
                )
            })
            .collect();
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        let tag = pool.tag(Pin::new("730194")).await.unwrap();
        assert_eq!(tag, direct, "the pooled tag equals the direct one");
        let done_before = pool.stats().computed;
        assert!(
            done_before < 10,
            "the attempt did not wait for 20 admin hashes ({done_before})"
        );
        for h in admin {
            h.await.unwrap();
        }
        assert_eq!(pool.stats().computed, 21);
    }
}
