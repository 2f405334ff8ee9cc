//! `Live<T>`: a value the daemon may replace while it runs (a SIGHUP reload), read as a
//! cheap `Arc` snapshot so a request in flight keeps the value it started with. Knows
//! nothing of what it holds.

use std::sync::{Arc, RwLock};

/// A shared, replaceable value. Clones share it: `set` on one is seen by every `get`.
pub struct Live<T>(Arc<RwLock<Arc<T>>>);

impl<T> Clone for Live<T> {
    fn clone(&self) -> Self {
        Live(Arc::clone(&self.0))
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Live<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.get().fmt(f)
    }
}

impl<T> Live<T> {
    pub fn new(value: T) -> Self {
        Live(Arc::new(RwLock::new(Arc::new(value))))
    }

    /// The current value (a snapshot: a later `set` does not change it).
    pub fn get(&self) -> Arc<T> {
        // A writer cannot panic while holding the lock (it only swaps an Arc), so a
        // poisoned lock still holds a whole value.
        Arc::clone(&self.0.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Replaces the value for every later `get`.
    pub fn set(&self, value: T) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_and_snapshots_keep() {
        let live = Live::new(4);
        let other = live.clone();
        let before = live.get();
        other.set(6);
        assert_eq!((*before, *live.get()), (4, 6));
    }
}
