//! Exponential back-off with jitter, shared by every reconnecting worker.

use std::time::Duration;

#[derive(Clone, Debug)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max,
            next: initial,
        }
    }

    /// The next wait: the current step ±20 % jitter; the step then doubles up to `max`.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        let jitter = rand::random::<f64>() * 0.4 + 0.8;
        base.mul_f64(jitter)
    }

    pub fn reset(&mut self) {
        self.next = self.initial;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_with_jitter_up_to_the_cap() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(8));
        let steps: Vec<f64> = (0..6).map(|_| b.next_delay().as_secs_f64()).collect();
        for (got, base) in steps.iter().zip([1.0, 2.0, 4.0, 8.0, 8.0, 8.0]) {
            assert!((base * 0.8..=base * 1.2).contains(got), "{got} vs {base}");
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(1200));
    }
}
