//! What one terminal connection and one source address may cost: a byte rate per
//! connection (past it, reads wait and TCP slows the sender), a budget of malformed lines in
//! a row (then the connection is closed), and the connections a source address may hold.
//! Pure arithmetic on instants passed in, and a shared counter; no sockets.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// Bytes a connection may send at once: a few dozen full lines.
const BURST_BYTES: f64 = 8192.0;
/// Bytes a second a connection may send past its burst: eight full lines a second, far
/// above a person at a terminal or a card reader, and a cap on what garbage costs us.
const BYTES_PER_SECOND: f64 = 2048.0;
/// Malformed lines in a row before the connection is closed. A valid request resets it.
pub const MAX_MALFORMED: u32 = 8;

/// What became of one line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// A request, answered.
    Request,
    /// A malformed line, answered with its `ERR`.
    Malformed,
    /// The connection ends (QUIT, or the reply could not be written).
    Close,
}

/// One connection's byte bucket and malformed-line count.
pub struct Pace {
    tokens: f64,
    at: Instant,
    malformed: u32,
}

impl Pace {
    pub fn new(now: Instant) -> Self {
        Pace {
            tokens: BURST_BYTES,
            at: now,
            malformed: 0,
        }
    }

    /// `n` bytes were read at `now`: the instant the next read must wait for, if any.
    pub fn read(&mut self, n: usize, now: Instant) -> Option<Instant> {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = now;
        self.tokens = (self.tokens + elapsed * BYTES_PER_SECOND).min(BURST_BYTES) - n as f64;
        (self.tokens < 0.0).then(|| now + Duration::from_secs_f64(-self.tokens / BYTES_PER_SECOND))
    }

    /// Counts a line's outcome; false once the malformed lines in a row reach the budget.
    pub fn after(&mut self, flow: Flow) -> bool {
        match flow {
            Flow::Request => self.malformed = 0,
            Flow::Malformed => self.malformed += 1,
            Flow::Close => {}
        }
        self.malformed < MAX_MALFORMED
    }
}

/// Open connections per source address, at most `max` each.
pub struct SourceSlots {
    max: usize,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One source's connection, counted until dropped.
pub struct SourceSlot {
    ip: IpAddr,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl SourceSlots {
    pub fn new(max: usize) -> Self {
        SourceSlots {
            max,
            open: Arc::default(),
        }
    }

    /// A slot for one more connection from `ip`, or None when it holds `max` already.
    pub fn take(&self, ip: IpAddr) -> Option<SourceSlot> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(ip).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(SourceSlot {
            ip,
            open: Arc::clone(&self.open),
        })
    }
}

impl Drop for SourceSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_reads_wait_for_the_rate() {
        let t0 = Instant::now();
        let mut pace = Pace::new(t0);
        assert_eq!(pace.read(8192, t0), None, "the burst is free");
        let wait = pace.read(2048, t0).expect("past the burst a read waits");
        assert_eq!(wait - t0, Duration::from_secs(1), "2 KiB at 2 KiB/s");
        // After that wait the bucket is level again: a small read passes a second later.
        let t2 = t0 + Duration::from_secs(2);
        assert_eq!(pace.read(100, t2), None);
        // Idle time refills only up to the burst.
        let later = t0 + Duration::from_secs(3600);
        assert_eq!(pace.read(8192, later), None);
        assert!(pace.read(1, later).is_some());
    }

    #[test]
    fn the_byte_rate_bounds_what_a_flood_gets_through() {
        // Reading as fast as allowed for a minute passes burst + rate × 60 bytes.
        let t0 = Instant::now();
        let mut pace = Pace::new(t0);
        let (mut now, mut passed) = (t0, 0usize);
        while now < t0 + Duration::from_secs(60) {
            passed += 512;
            if let Some(until) = pace.read(512, now) {
                now = until;
            }
        }
        let bound = (BURST_BYTES + BYTES_PER_SECOND * 60.0) as usize + 512;
        assert!(passed <= bound, "{passed} > {bound}");
        assert!(
            passed >= bound - 1024,
            "the rate is not stricter than said: {passed}"
        );
    }

    #[test]
    fn malformed_lines_in_a_row_close_and_a_request_resets_them() {
        let mut pace = Pace::new(Instant::now());
        for _ in 0..MAX_MALFORMED - 1 {
            assert!(pace.after(Flow::Malformed));
        }
        assert!(
            pace.after(Flow::Request),
            "a valid request resets the count"
        );
        for _ in 0..MAX_MALFORMED - 1 {
            assert!(pace.after(Flow::Malformed));
        }
        assert!(!pace.after(Flow::Malformed), "the budget is spent");
    }

    #[test]
    fn a_source_holds_at_most_its_slots_and_gets_them_back() {
        let slots = SourceSlots::new(2);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let one = slots.take(a).unwrap();
        let _two = slots.take(a).unwrap();
        assert!(slots.take(a).is_none(), "a third from the same source");
        assert!(slots.take(b).is_some(), "another source is not affected");
        drop(one);
        assert!(
            slots.take(a).is_some(),
            "a closed connection frees its slot"
        );
    }
}
