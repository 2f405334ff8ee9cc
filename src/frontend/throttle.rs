//! Audit throttling for refusals, shared by the frontends that refuse traffic from outside
//! (TCP connections, MQTT messages): at most one audit event a minute per key, with a count
//! of those left out, so a flood cannot push real decisions out of the bounded audit log.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::Duration;
use tokio::time::Instant;

const MINUTE: Duration = Duration::from_secs(60);

pub struct Throttle<K> {
    last: HashMap<K, Instant>,
    suppressed: u64,
    /// Keys remembered before the old ones are swept.
    capacity: usize,
}

impl<K: Hash + Eq> Throttle<K> {
    pub fn new(capacity: usize) -> Self {
        Throttle {
            last: HashMap::new(),
            suppressed: 0,
            capacity,
        }
    }

    /// The reason to audit for a refusal under `key`, or `None` when one was audited under
    /// it within the last minute. The first audited after a quiet spell counts those left out.
    pub fn admit(&mut self, key: K, reason: &str) -> Option<String> {
        let now = Instant::now();
        if self.last.len() > self.capacity {
            self.last.retain(|_, at| now.duration_since(*at) < MINUTE);
        }
        if self
            .last
            .get(&key)
            .is_some_and(|at| now.duration_since(*at) < MINUTE)
        {
            self.suppressed += 1;
            return None;
        }
        self.last.insert(key, now);
        Some(match std::mem::take(&mut self.suppressed) {
            0 => reason.to_string(),
            n => format!("{reason} ({n} more refusals not audited in the last minute)"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn one_audit_a_minute_per_key_counting_the_rest() {
        let mut t = Throttle::new(2);
        assert_eq!(t.admit("a", "r").as_deref(), Some("r"));
        assert_eq!(t.admit("a", "r"), None);
        assert_eq!(t.admit("a", "r"), None);
        assert_eq!(
            t.admit("b", "r").as_deref(),
            Some("r (2 more refusals not audited in the last minute)")
        );
        tokio::time::advance(MINUTE).await;
        assert_eq!(t.admit("a", "r").as_deref(), Some("r"));
        t.admit("c", "r");
        t.admit("d", "r");
        assert!(t.last.len() <= 3, "old keys are swept past the capacity");
    }
}
