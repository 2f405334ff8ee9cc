//! Many tags at once on the pool's administrative queue, with progress: the one loop behind
//! directory sync and user import. Knows nothing of users or stores.

use super::{HashPool, PoolBusy};
use crate::domain::{Pin, Tag};
use std::sync::Arc;

/// PINs waiting on the pool at once for one batch; the pool serves logins first anyway.
const IN_FLIGHT: usize = 64;
/// Progress is reported every this many tags, and after the last.
const PROGRESS_EVERY: usize = 64;

impl HashPool {
    /// Tags every PIN behind all login attempts, at most `IN_FLIGHT` at a time, handing each
    /// tag with its key to `each` as it completes (in completion order) and calling
    /// `progress(done, total)` every 64 tags and after the last. Returns how many were tagged;
    /// a failed or panicked computation is `PoolBusy`. Dropping the future stops the batch.
    pub async fn tag_all<K: Send + 'static>(
        self: &Arc<Self>,
        pins: Vec<(K, Pin)>,
        progress: &(dyn Fn(usize, usize) + Sync),
        mut each: impl FnMut(K, Tag),
    ) -> Result<usize, PoolBusy> {
        let total = pins.len();
        let mut queue = pins.into_iter();
        let mut tasks = tokio::task::JoinSet::new();
        let mut done = 0;
        loop {
            while tasks.len() < IN_FLIGHT {
                let Some((key, pin)) = queue.next() else {
                    break;
                };
                let pool = Arc::clone(self);
                tasks.spawn(async move { (key, pool.tag_waiting(pin).await) });
            }
            let Some(joined) = tasks.join_next().await else {
                break;
            };
            let (key, tag) = joined.map_err(|_| PoolBusy)?;
            each(key, tag?);
            done += 1;
            if done % PROGRESS_EVERY == 0 || done == total {
                progress(done, total);
            }
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{HashParams, Hasher, Pepper};
    use std::sync::Mutex;

    #[tokio::test]
    async fn every_pin_is_tagged_once_with_its_key_and_progress_ends_at_the_total() {
        let hasher = Hasher::new(Pepper::from_bytes([3; 32]), [1; 16], HashParams::TEST).unwrap();
        let pool = Arc::new(HashPool::new(Arc::new(hasher), 2, 4));
        let pins: Vec<(usize, Pin)> = (0..150).map(|i| (i, Pin::new(format!("{i:06}")))).collect();
        let seen = Mutex::new(Vec::new());
        let mut tags = Vec::new();
        let n = pool
            .tag_all(
                pins,
                &|done, total| seen.lock().unwrap().push((done, total)),
                |key, tag| tags.push((key, tag)),
            )
            .await
            .unwrap();
        assert_eq!(n, 150);
        tags.sort_by_key(|(k, _)| *k);
        assert_eq!(tags.len(), 150);
        let again = pool.tag_waiting(Pin::new("000007")).await.unwrap();
        assert_eq!(tags[7], (7, again), "each tag travels with its own key");
        assert_eq!(*seen.lock().unwrap(), [(64, 150), (128, 150), (150, 150)]);
        let none = pool.tag_all(Vec::<(u8, Pin)>::new(), &|_, _| panic!(), |_, _| {});
        assert_eq!(none.await, Ok(0), "nothing to tag reports no progress");
    }
}
