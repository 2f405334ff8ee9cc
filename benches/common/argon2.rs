//! The raw keyed-argon2 rate on this machine: one thread per worker, each reusing its work
//! memory exactly as the daemon's hash workers do. The reference the end-to-end rates are
//! divided by.

use pinwarden::crypto::{HashParams, Hasher, Pepper};
use pinwarden::domain::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A hasher with a random pepper and salt (the cost of argon2 does not depend on them).
pub fn random_hasher(params: HashParams) -> Arc<Hasher> {
    let pepper = Pepper::from_bytes(rand::random());
    Arc::new(Hasher::new(pepper, rand::random(), params).expect("argon2 parameters"))
}

/// Hashes per second over `secs` with `workers` threads hashing flat out.
pub fn raw_rate(hasher: &Arc<Hasher>, workers: usize, secs: u64) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let threads: Vec<_> = (0..workers)
        .map(|w| {
            let (hasher, stop, count) = (Arc::clone(hasher), Arc::clone(&stop), Arc::clone(&count));
            std::thread::spawn(move || {
                let mut i = 0u64;
                let mut workspace = hasher.workspace();
                while !stop.load(Ordering::Relaxed) {
                    let pin = Pin::new(format!("{w}{i:07}"));
                    std::hint::black_box(hasher.tag_in(&pin, &mut workspace));
                    count.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::Relaxed);
    threads.into_iter().for_each(|t| t.join().unwrap());
    count.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}
