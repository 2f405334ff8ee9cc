//! The clock lockouts run on: the wall clock read once, then advanced by monotonic time, so
//! a wall-clock jump while the daemon runs neither lifts a lock early (a jump forward) nor
//! stretches one (a jump back); locks and back-offs last their configured time as measured
//! by the machine's monotonic clock. At start the daemon sets it no earlier than the latest
//! lockout time on record (`not_before`), so a clock set back while it was stopped cannot
//! stretch a lock either (time while stopped does not count). Lockout times on record and in
//! `status` are on this clock; decisions about validity and expiry keep the wall clock.

use crate::domain::Timestamp;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

/// A lockout clock: a wall reading, the monotonic instant it was taken, and an offset that
/// only grows.
pub struct LockClock {
    wall_ms: i64,
    at: Instant,
    offset_ms: AtomicI64,
}

impl LockClock {
    pub fn new(wall: Timestamp, at: Instant) -> Self {
        LockClock {
            wall_ms: wall.millis(),
            at,
            offset_ms: AtomicI64::new(0),
        }
    }

    fn raw_ms(&self, now: Instant) -> i64 {
        let elapsed = now.saturating_duration_since(self.at).as_millis() as i64;
        self.wall_ms.saturating_add(elapsed)
    }

    /// The time at monotonic instant `now`.
    pub fn at(&self, now: Instant) -> Timestamp {
        let offset = self.offset_ms.load(Ordering::Acquire);
        Timestamp::from_millis(self.raw_ms(now).saturating_add(offset))
    }

    /// Moves the clock forward so that it reads no earlier than `t` at `now`; never back.
    pub fn not_before_at(&self, t: Timestamp, now: Instant) {
        let behind = t.millis().saturating_sub(self.raw_ms(now));
        self.offset_ms.fetch_max(behind, Ordering::AcqRel);
    }
}

/// The daemon's lockout clock, started at its first reading.
fn global() -> &'static LockClock {
    static CLOCK: OnceLock<LockClock> = OnceLock::new();
    CLOCK.get_or_init(|| LockClock::new(Timestamp::now(), Instant::now()))
}

/// Now, on the lockout clock.
pub fn now() -> Timestamp {
    global().at(Instant::now())
}

/// At start: the lockout clock reads no earlier than `t` (the latest lockout on record).
pub fn not_before(t: Timestamp) {
    global().not_before_at(t, Instant::now())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn monotonic_time_moves_it_and_a_record_ahead_sets_it_forward_never_back() {
        let t0 = Instant::now();
        let wall = Timestamp::from_millis(1_000_000);
        let c = LockClock::new(wall, t0);
        assert_eq!(c.at(t0), wall);
        let later = t0 + Duration::from_secs(20);
        assert_eq!(c.at(later).millis(), 1_020_000, "runs on monotonic time");
        // Started after the wall clock was set back a day: a lock on record sets it forward.
        c.not_before_at(Timestamp::from_millis(5_000_000), later);
        assert_eq!(c.at(later).millis(), 5_000_000);
        assert_eq!(c.at(later + Duration::from_secs(1)).millis(), 5_001_000);
        c.not_before_at(Timestamp::from_millis(0), later);
        assert_eq!(c.at(later).millis(), 5_000_000, "never set back");
    }
}
