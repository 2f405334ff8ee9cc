//! How long an attempt's tag takes, from asking the pool to having it (queueing included):
//! the last few dozen, and their median. A reply that skips argon2 (a locked device) waits
//! about that long, so an attacker cannot tell a lock from an evaluation by its speed.
//! Also the argon2 computations' own times as a histogram (`Histogram`, for `/metrics`):
//! fixed buckets of atomics, so a worker thread records one without a lock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the histogram's buckets, in seconds (argon2id at the OWASP parameters
/// takes some 20–60 ms on an edge box; slower means the box is overloaded or misconfigured).
pub const BUCKETS: [f64; 10] = [0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0];

/// Durations by bucket (the last cell counts those above every bound), their count and sum.
#[derive(Default)]
pub struct Histogram {
    cells: [AtomicU64; BUCKETS.len() + 1],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

/// A histogram read at one moment: per-bucket counts (not cumulative), count, sum.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HistogramSnapshot {
    /// (upper bound in seconds, observations in this bucket); the last is `+Inf`.
    pub buckets: Vec<(f64, u64)>,
    pub count: u64,
    pub sum_seconds: f64,
}

impl Histogram {
    pub fn record(&self, took: Duration) {
        let secs = took.as_secs_f64();
        let i = BUCKETS
            .iter()
            .position(|bound| secs <= *bound)
            .unwrap_or(BUCKETS.len());
        self.cells[i].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        let bounds = BUCKETS.iter().copied().chain([f64::INFINITY]);
        let buckets: Vec<(f64, u64)> = bounds
            .zip(&self.cells)
            .map(|(bound, n)| (bound, n.load(Ordering::Relaxed)))
            .collect();
        HistogramSnapshot {
            // The count is the buckets' sum, so a reader never sees them disagree.
            count: buckets.iter().map(|(_, n)| n).sum(),
            buckets,
            sum_seconds: self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9,
        }
    }
}

/// Tag times kept: enough for a stable median, small enough to follow a change of load.
const KEPT: usize = 64;

#[derive(Default)]
pub struct TagTimes(Mutex<Ring>);

#[derive(Default)]
struct Ring {
    times: Vec<Duration>,
    next: usize,
}

impl TagTimes {
    pub fn record(&self, took: Duration) {
        let mut ring = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if ring.times.len() < KEPT {
            ring.times.push(took);
        } else {
            let i = ring.next;
            ring.times[i] = took;
        }
        ring.next = (ring.next + 1) % KEPT;
    }

    /// The median of the times kept; None before the first tag.
    pub fn median(&self) -> Option<Duration> {
        let mut times = self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .times
            .clone();
        if times.is_empty() {
            return None;
        }
        times.sort_unstable();
        Some(times[times.len() / 2])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_fall_in_the_first_bucket_that_holds_them() {
        let h = Histogram::default();
        for ms in [1, 5, 6, 40, 40, 2_000] {
            h.record(Duration::from_millis(ms));
        }
        let s = h.snapshot();
        assert_eq!(s.count, 6);
        assert_eq!(s.buckets.len(), BUCKETS.len() + 1);
        assert_eq!(s.buckets[0], (0.005, 2), "≤ 5 ms, the bound included");
        assert_eq!(s.buckets[1], (0.01, 1));
        assert_eq!(s.buckets[4], (0.05, 2));
        assert_eq!(s.buckets[BUCKETS.len()], (f64::INFINITY, 1));
        assert!((s.sum_seconds - 2.092).abs() < 1e-9);
    }

    #[test]
    fn the_median_follows_the_last_times_kept() {
        let t = TagTimes::default();
        assert_eq!(t.median(), None);
        for ms in [30, 10, 20] {
            t.record(Duration::from_millis(ms));
        }
        assert_eq!(t.median(), Some(Duration::from_millis(20)));
        // A change of load: once KEPT new times are in, the old ones no longer count.
        for _ in 0..KEPT {
            t.record(Duration::from_millis(5));
        }
        assert_eq!(t.median(), Some(Duration::from_millis(5)));
        // One slow outlier does not move a median.
        t.record(Duration::from_secs(10));
        assert_eq!(t.median(), Some(Duration::from_millis(5)));
    }
}
