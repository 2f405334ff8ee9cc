//! The clock lockouts run on: the wall clock read once, then advanced by monotonic time, so
//! a wall-clock jump while the daemon runs neither lifts a lock early (a jump forward) nor
//! stretches one (a jump back); locks and back-offs last their configured time as measured
//! by the machine's monotonic clock. At start the daemon sets it no earlier than the latest
//! lockout time on record (`not_before`), so a clock set back while it was stopped cannot
//! stretch a lock either. Lockout times on record and in `status` are on this clock; decisions
//! about validity and expiry keep the wall clock.

use crate::domain::Timestamp;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

/// (wall clock in ms, monotonic instant) at the first reading.
static START: OnceLock<(i64, Instant)> = OnceLock::new();
/// Added to the reading: raised by `not_before`, never lowered.
static OFFSET_MS: AtomicI64 = AtomicI64::new(0);

fn raw_ms() -> i64 {
    let (wall, at) = START.get_or_init(|| (Timestamp::now().millis(), Instant::now()));
    wall.saturating_add(at.elapsed().as_millis() as i64)
}

/// Now, on the lockout clock.
pub fn now() -> Timestamp {
    Timestamp::from_millis(raw_ms().saturating_add(OFFSET_MS.load(Ordering::Acquire)))
}

/// Moves the clock forward so that it reads no earlier than `t` (the latest lockout time on
/// record at start): never backward.
pub fn not_before(t: Timestamp) {
    let behind = t.millis().saturating_sub(raw_ms());
    OFFSET_MS.fetch_max(behind, Ordering::AcqRel);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lockout_clock_moves_forward_only_and_can_be_set_ahead() {
        let a = now();
        let b = now();
        assert!(b >= a);
        let wall = Timestamp::now().millis();
        assert!(
            (now().millis() - wall).abs() < 60_000,
            "starts at the wall clock"
        );
        not_before(Timestamp::from_millis(wall + 3_600_000));
        assert!(
            now().millis() >= wall + 3_600_000,
            "a lock on record is never in the past"
        );
        not_before(Timestamp::from_millis(wall));
        assert!(now().millis() >= wall + 3_600_000, "never set back");
    }
}
