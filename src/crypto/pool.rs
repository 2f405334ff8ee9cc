//! The bounded pool that computes tags on a fixed set of worker threads, each owning one
//! reused argon2 workspace, so memory stays at `workers × memory_kib` however busy it gets.
//! Authentication attempts are served before administrative work (imports), and past the
//! queue limit attempts get `PoolBusy` instead of waiting.

use super::timing::HistogramSnapshot;
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
    /// The median time an attempt's tag took lately (queueing included), in ms.
    pub median_ms: Option<f64>,
}

struct Job {
    pin: Pin,
    reply: oneshot::Sender<Tag>,
    /// An attempt's place in the bounded queue, held until a worker has dealt with the
    /// job, so a caller that gave up cannot free its place while its work is still queued.
    slot: Option<Slot>,
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
    /// argon2 computation times (the work alone, no queueing): attempts and admin work.
    attempt_times: super::timing::Histogram,
    admin_times: super::timing::Histogram,
}

pub struct HashPool {
    shared: Arc<Shared>,
    workers: usize,
    queue: usize,
    in_flight: Arc<AtomicUsize>,
    busy: AtomicU64,
    times: super::timing::TagTimes,
}

/// One unit of the in-flight count, released when dropped.
struct Slot(Arc<AtomicUsize>);
impl Drop for Slot {
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
        let Job { pin, reply, slot } = job;
        if reply.is_closed() {
            // The caller gave up (timeout, disconnect): no one wants this tag.
            continue;
        }
        let times = match slot {
            Some(_) => &shared.attempt_times,
            None => &shared.admin_times,
        };
        let started = std::time::Instant::now();
        // A worker must outlive any one computation: a panic drops only that job's reply.
        let computed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            hasher.tag_in(&pin, &mut workspace)
        }));
        if computed.is_ok() {
            times.record(started.elapsed());
        }
        drop(pin);
        // The place in the queue is given back before the caller is woken, so a caller
        // that reads the count (or asks again) after its answer finds it released.
        drop(slot);
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
        let pool = Self::unstarted(workers, queue);
        pool.start_workers(&hasher);
        pool
    }

    /// The queues and counters without the threads that empty them.
    fn unstarted(workers: usize, queue: usize) -> Self {
        HashPool {
            shared: Arc::new(Shared {
                queues: Mutex::new(Queues::default()),
                ready: Condvar::new(),
                computed: AtomicU64::new(0),
                attempt_times: Default::default(),
                admin_times: Default::default(),
            }),
            workers: workers.max(1),
            queue,
            in_flight: Arc::new(AtomicUsize::new(0)),
            busy: AtomicU64::new(0),
            times: Default::default(),
        }
    }

    fn start_workers(&self, hasher: &Arc<Hasher>) {
        for i in 0..self.workers {
            let (shared, hasher) = (Arc::clone(&self.shared), Arc::clone(hasher));
            std::thread::Builder::new()
                .name(format!("pinwarden-hash-{i}"))
                .spawn(move || work(&shared, &hasher))
                .expect("cannot start a hash worker thread");
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
        let started = std::time::Instant::now();
        let tag = self
            .submit(pin, Some(Slot(Arc::clone(&self.in_flight))))
            .await;
        if tag.is_ok() {
            self.times.record(started.elapsed());
        }
        tag
    }

    /// How long an attempt's tag takes lately (the median; queueing included), for replies
    /// that must not come back faster than an evaluated one. None before the first.
    pub fn typical_tag_time(&self) -> Option<std::time::Duration> {
        self.times.median()
    }

    /// Tag for administrative work (enrolment, import): waits behind every attempt.
    pub async fn tag_waiting(&self, pin: Pin) -> Result<Tag, PoolBusy> {
        self.submit(pin, None).await
    }

    /// Queues one job; a lost reply (the computation panicked) is reported as busy.
    async fn submit(&self, pin: Pin, slot: Option<Slot>) -> Result<Tag, PoolBusy> {
        let (reply, answer) = oneshot::channel();
        {
            let mut q = self.shared.queues.lock().unwrap_or_else(|e| e.into_inner());
            let auth = slot.is_some();
            let job = Job { pin, reply, slot };
            if auth {
                q.auth.push_back(job);
            } else {
                q.admin.push_back(job);
            }
        }
        self.shared.ready.notify_one();
        answer.await.map_err(|_| PoolBusy)
    }

    /// argon2 computation times of attempts and of admin work (enrolment, import, sync).
    pub fn argon2_times(&self) -> [(&'static str, HistogramSnapshot); 2] {
        [
            ("attempt", self.shared.attempt_times.snapshot()),
            ("admin", self.shared.admin_times.snapshot()),
        ]
    }

    pub fn stats(&self) -> PoolStats {
        PoolStats {
            workers: self.workers,
            queue: self.queue,
            in_flight: self.in_flight.load(Ordering::Relaxed),
            computed: self.shared.computed.load(Ordering::Relaxed),
            busy: self.busy.load(Ordering::Relaxed),
            median_ms: self
                .times
                .median()
                .map(|d| (d.as_secs_f64() * 1e4).round() / 10.0),
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

    fn hasher() -> Arc<Hasher> {
        Arc::new(Hasher::new(Pepper::from_bytes([3; 32]), [1; 16], HashParams::default()).unwrap())
    }

    /// Polls `fut` once: attempts take their place in the queue on their first poll.
    async fn poll_once<F: std::future::Future + Unpin>(fut: &mut F) -> std::task::Poll<F::Output> {
        std::future::poll_fn(|cx| std::task::Poll::Ready(std::pin::Pin::new(&mut *fut).poll(cx)))
            .await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn busy_when_queue_is_full_and_places_are_free_once_answered() {
        // No worker runs yet, so the queue fills whatever a hash costs on this machine.
        let pool = HashPool::unstarted(1, 1);
        let mut first = Box::pin(pool.tag(Pin::new("482913")));
        let mut second = Box::pin(pool.tag(Pin::new("730194")));
        assert!(poll_once(&mut first).await.is_pending());
        assert!(poll_once(&mut second).await.is_pending());
        assert_eq!(pool.stats().in_flight, 2, "a worker's place and one queued");
        for _ in 0..3 {
            assert_eq!(pool.tag(Pin::new("111111")).await, Err(PoolBusy));
        }
        assert_eq!(pool.stats().busy, 3);

        pool.start_workers(&hasher());
        first.await.unwrap();
        assert!(
            pool.stats().in_flight <= 1,
            "an answered attempt has given its place back"
        );
        second.await.unwrap();
        assert_eq!(pool.stats().in_flight, 0);
        assert!(pool.tag(Pin::new("482913")).await.is_ok(), "free again");
        assert_eq!(pool.stats().in_flight, 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn attempts_overtake_queued_admin_work_and_tags_match() {
        let pool = HashPool::unstarted(1, 4);
        let direct = hasher().tag(&Pin::new("730194"));
        let mut admin: Vec<_> = (0..20)
            .map(|i| Box::pin(pool.tag_waiting(Pin::new(format!("{i:06}")))))
            .collect();
        for job in &mut admin {
            assert!(poll_once(job).await.is_pending());
        }
        let mut attempt = Box::pin(pool.tag(Pin::new("730194")));
        assert!(poll_once(&mut attempt).await.is_pending());

        pool.start_workers(&hasher());
        assert_eq!(
            attempt.await.unwrap(),
            direct,
            "the pooled tag equals the direct one"
        );
        let done_before = pool.stats().computed;
        assert!(
            done_before < 10,
            "the attempt did not wait for 20 queued admin hashes ({done_before})"
        );
        for job in admin {
            job.await.unwrap();
        }
        assert_eq!(pool.stats().computed, 21);
        let [(_, attempts), (_, admin)] = pool.argon2_times();
        assert_eq!((attempts.count, admin.count), (1, 20), "timed by kind");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn abandoned_attempts_keep_their_place_and_are_skipped() {
        let pool = HashPool::unstarted(1, 2);
        let mut busy = 0;
        for _ in 0..50 {
            let mut attempt = Box::pin(pool.tag(Pin::new("482913")));
            if let std::task::Poll::Ready(Err(PoolBusy)) = poll_once(&mut attempt).await {
                busy += 1;
            }
            // Dropped here: the caller gave up, as on a timeout or a disconnect.
        }
        assert_eq!(busy, 47, "abandoned attempts still count against the queue");
        assert_eq!(pool.stats().in_flight, 3);

        pool.start_workers(&hasher());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while pool.stats().in_flight > 0 {
            assert!(std::time::Instant::now() < deadline, "{:?}", pool.stats());
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert_eq!(
            pool.stats().computed,
            0,
            "abandoned jobs are skipped, not hashed"
        );
    }
}
