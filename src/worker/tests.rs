//! The supervisor on paused time: back-off, reset, log-once state, shutdown points.

use super::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::Notify;

const SECOND: Duration = Duration::from_secs(1);

/// Fails `fail_first` times, then works and idles until poked.
struct Flaky {
    fail_first: usize,
    attempts: Arc<Mutex<Vec<Instant>>>,
    poke: Arc<Notify>,
    stopped: Arc<AtomicUsize>,
}

impl Worker for Flaky {
    async fn work(&mut self, _cx: &Context) -> Result<Next, String> {
        let mut attempts = self.attempts.lock().unwrap();
        attempts.push(Instant::now());
        if attempts.len() <= self.fail_first {
            return Err("port missing".into());
        }
        Ok(Next::Idle)
    }

    async fn wait_for_work(&mut self) {
        self.poke.notified().await
    }

    async fn stop(&mut self) {
        self.stopped.fetch_add(1, Ordering::SeqCst);
    }
}

fn flaky(fail_first: usize) -> (Flaky, Arc<Mutex<Vec<Instant>>>, Arc<Notify>) {
    let attempts = Arc::new(Mutex::new(Vec::new()));
    let poke = Arc::new(Notify::new());
    let w = Flaky {
        fail_first,
        attempts: Arc::clone(&attempts),
        poke: Arc::clone(&poke),
        stopped: Arc::default(),
    };
    (w, attempts, poke)
}

fn supervisor() -> (Supervisor, CancellationToken, TaskTracker) {
    let (token, tracker) = (CancellationToken::new(), TaskTracker::new());
    (
        Supervisor::new(token.clone(), tracker.clone()),
        token,
        tracker,
    )
}

async fn until(s: &Supervisor, what: impl Fn(&WorkerStatus) -> bool) -> WorkerStatus {
    tokio::time::timeout(Duration::from_secs(3600), async {
        loop {
            if let Some(w) = s.status().into_iter().find(&what) {
                return w;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("condition not reached")
}

#[tokio::test(start_paused = true)]
async fn backs_off_exponentially_then_recovers_keeping_the_last_error() {
    let (s, _token, _tracker) = supervisor();
    let (w, attempts, _poke) = flaky(4);
    s.spawn("keypad door", Settings::new(SECOND, 60 * SECOND), w);
    let failing = until(&s, |w| w.failures == 3).await;
    assert_eq!(failing.state, State::BackingOff);
    assert_eq!(failing.last_error.as_deref(), Some("port missing"));
    assert!(failing.retry_at.is_some());
    let recovered = until(&s, |w| w.state == State::Idle).await;
    assert_eq!(recovered.failures, 0);
    assert_eq!(recovered.last_error.as_deref(), Some("port missing"));
    assert!(recovered.last_error_at.is_some() && recovered.retry_at.is_none());
    let times = attempts.lock().unwrap().clone();
    let gaps: Vec<f64> = times
        .windows(2)
        .map(|w| (w[1] - w[0]).as_secs_f64())
        .collect();
    for (gap, base) in gaps.iter().zip([1.0, 2.0, 4.0, 8.0]) {
        assert!((base * 0.8..=base * 1.2).contains(gap), "{gaps:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn idle_and_back_off_end_at_shutdown_and_stop_runs_once() {
    let (s, token, tracker) = supervisor();
    let (mut idle, _, _) = flaky(0);
    let stopped = Arc::clone(&idle.stopped);
    idle.stopped = Arc::clone(&stopped);
    s.spawn("idle", Settings::new(SECOND, SECOND), idle);
    let (mut failing, _, _) = flaky(usize::MAX);
    failing.stopped = Arc::clone(&stopped);
    s.spawn(
        "failing",
        Settings::new(3600 * SECOND, 3600 * SECOND),
        failing,
    );
    until(&s, |w| w.name == "idle" && w.state == State::Idle).await;
    until(&s, |w| w.name == "failing" && w.state == State::BackingOff).await;
    let before = Instant::now();
    token.cancel();
    tracker.close();
    tracker.wait().await;
    assert_eq!(
        before.elapsed(),
        Duration::ZERO,
        "waits must not outlive shutdown"
    );
    assert_eq!(stopped.load(Ordering::SeqCst), 2);
    assert!(s.status().iter().all(|w| w.state == State::Stopped));
}

/// A unit that takes a while: shutdown lets it finish.
struct Slow(Arc<AtomicUsize>);

impl Worker for Slow {
    async fn work(&mut self, _cx: &Context) -> Result<Next, String> {
        tokio::time::sleep(10 * SECOND).await;
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(Next::Again)
    }
}

#[tokio::test(start_paused = true)]
async fn shutdown_does_not_interrupt_a_unit_of_work() {
    let (s, token, tracker) = supervisor();
    let done = Arc::new(AtomicUsize::new(0));
    s.spawn(
        "slow",
        Settings::new(SECOND, SECOND),
        Slow(Arc::clone(&done)),
    );
    tokio::time::sleep(SECOND).await;
    token.cancel();
    tracker.close();
    tracker.wait().await;
    assert_eq!(done.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_wake_up_cuts_the_back_off_short() {
    let (s, _token, _tracker) = supervisor();
    let (w, attempts, poke) = flaky(1);
    s.spawn("sync", Settings::new(3600 * SECOND, 3600 * SECOND), w);
    until(&s, |w| w.state == State::BackingOff).await;
    poke.notify_one();
    until(&s, |w| w.state == State::Idle).await;
    let times = attempts.lock().unwrap().clone();
    assert!(times[1] - times[0] < SECOND, "{times:?}");
}

/// Connects, holds for `hold`, then drops.
struct Connection {
    hold: Duration,
    attempts: Arc<Mutex<Vec<Instant>>>,
}

impl Worker for Connection {
    async fn work(&mut self, cx: &Context) -> Result<Next, String> {
        self.attempts.lock().unwrap().push(Instant::now());
        cx.healthy();
        tokio::time::sleep(self.hold).await;
        Err("disconnected".into())
    }
}

#[tokio::test(start_paused = true)]
async fn the_back_off_restarts_only_after_a_healthy_run() {
    for (hold, grows) in [(Duration::from_millis(10), true), (20 * SECOND, false)] {
        let (s, _token, _tracker) = supervisor();
        let attempts = Arc::new(Mutex::new(Vec::new()));
        let w = Connection {
            hold,
            attempts: Arc::clone(&attempts),
        };
        let settings = Settings::new(SECOND, 60 * SECOND).healthy_after(10 * SECOND);
        s.spawn("reader", settings, w);
        until(&s, |_| attempts.lock().unwrap().len() >= 5).await;
        let times = attempts.lock().unwrap().clone();
        let last_gap = (times[4] - times[3]).saturating_sub(hold);
        assert_eq!(last_gap > 4 * SECOND, grows, "{hold:?}: {last_gap:?}");
    }
}

struct Panics;

impl Worker for Panics {
    async fn work(&mut self, _cx: &Context) -> Result<Next, String> {
        panic!("decoder bug")
    }
}

#[tokio::test(start_paused = true)]
async fn a_panic_is_a_stopped_worker_with_its_error() {
    let (s, _token, tracker) = supervisor();
    s.spawn("panics", Settings::new(SECOND, SECOND), Panics);
    tracker.close();
    tracker.wait().await;
    let w = &s.status()[0];
    assert_eq!(w.state, State::Stopped);
    assert_eq!(w.last_error.as_deref(), Some("the worker panicked"));
}
