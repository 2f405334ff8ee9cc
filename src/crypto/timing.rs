//! How long an attempt's tag takes, from asking the pool to having it (queueing included):
//! the last few dozen, and their median. A reply that skips argon2 (a locked device) waits
//! about that long, so an attacker cannot tell a lock from an evaluation by its speed.

use std::sync::Mutex;
use std::time::Duration;

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
