//! The one contract for background work (after garage's `util/background/worker.rs`): a
//! `Worker` does one unit of `work` that shutdown never interrupts, and `wait_for_work`s
//! that it does; the supervisor owns the loop, backs off exponentially with jitter after a
//! failure, resets after a healthy run, logs a failure once per streak and keeps the state
//! and last error for `status`. Knows nothing of what the workers do.

use crate::backoff::Backoff;
use crate::domain::Timestamp;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What a worker is doing, as `status` shows it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    #[default]
    Idle,
    Working,
    BackingOff,
    Stopped,
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            State::Idle => "idle",
            State::Working => "working",
            State::BackingOff => "backing off",
            State::Stopped => "stopped",
        })
    }
}

/// One worker's line in `status`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerStatus {
    pub name: String,
    pub state: State,
    /// When `state` last changed.
    pub since: Option<Timestamp>,
    /// Failures since the last healthy run (0 when healthy).
    pub failures: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error_at: Option<Timestamp>,
    /// While backing off: when the next attempt is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<Timestamp>,
}

/// What a unit of work leaves behind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// More to do at once.
    Again,
    /// Nothing to do until `wait_for_work` returns.
    Idle,
    /// Finished for good.
    Done,
}

/// A background task under the supervisor.
pub trait Worker: Send + 'static {
    /// One unit of work. Shutdown does not interrupt it: a long unit (a connection) checks
    /// `cx.shutdown()` between its own steps and returns `Ok(Next::Done)` once it is set.
    fn work(&mut self, cx: &Context) -> impl Future<Output = Result<Next, String>> + Send;

    /// Waits until there is work again; dropped at shutdown. It is also raced against the
    /// back-off after a failure, so a worker's own wake-up (an operator's trigger) cuts the
    /// back-off short. By default there is none.
    fn wait_for_work(&mut self) -> impl Future<Output = ()> + Send {
        std::future::pending()
    }

    /// Runs once after the loop has ended (say goodbye, relock, drain own tasks).
    fn stop(&mut self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// How a worker retries.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// A unit that failed at least this long after it reported itself healthy starts the
    /// back-off afresh (a connection that held for a while, then dropped).
    pub healthy_after: Duration,
}

impl Settings {
    pub const fn new(backoff_initial: Duration, backoff_max: Duration) -> Self {
        Settings {
            backoff_initial,
            backoff_max,
            healthy_after: Duration::ZERO,
        }
    }

    pub const fn healthy_after(mut self, after: Duration) -> Self {
        self.healthy_after = after;
        self
    }
}

/// One worker's status cell: the supervisor writes it, `status` reads it. Things that are
/// not loops (print release's breaker) hold one too, so they show up in the same list.
#[derive(Clone)]
pub struct Reporter(Arc<Mutex<WorkerStatus>>);

impl Reporter {
    fn new(name: String) -> Self {
        Reporter(Arc::new(Mutex::new(WorkerStatus {
            name,
            since: Some(Timestamp::now()),
            ..WorkerStatus::default()
        })))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, WorkerStatus> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn status(&self) -> WorkerStatus {
        self.lock().clone()
    }

    pub fn set_state(&self, state: State) {
        let mut s = self.lock();
        if s.state != state {
            s.state = state;
            s.since = Some(Timestamp::now());
        }
        if state != State::BackingOff {
            s.retry_at = None;
        }
    }

    /// Records a failure: logged when a streak starts or its error changes, not on every
    /// retry.
    pub fn failure(&self, error: &str) {
        let mut s = self.lock();
        let repeated = s.failures > 0 && s.last_error.as_deref() == Some(error);
        s.failures = s.failures.saturating_add(1);
        s.last_error = Some(error.to_string());
        s.last_error_at = Some(Timestamp::now());
        if repeated {
            tracing::debug!(worker = %s.name, error, failures = s.failures, "failed again");
        } else {
            tracing::warn!(worker = %s.name, error, "failed; retrying with back-off");
        }
    }

    /// The worker works again: ends a failure streak (the last error stays, with its time).
    pub fn healthy(&self) {
        let mut s = self.lock();
        if s.failures > 0 {
            tracing::info!(worker = %s.name, failures = s.failures, "recovered");
            s.failures = 0;
        }
    }

    /// Backing off until `delay` from now.
    pub fn backing_off(&self, delay: Duration) {
        self.set_state(State::BackingOff);
        self.lock().retry_at = Some(Timestamp::now().plus(delay));
    }
}

/// What a unit of work may use: the shutdown token and its status cell.
pub struct Context {
    shutdown: CancellationToken,
    reporter: Reporter,
    healthy_at: Mutex<Option<Instant>>,
    failed_in_unit: std::sync::atomic::AtomicBool,
}

impl Context {
    pub fn shutdown(&self) -> &CancellationToken {
        &self.shutdown
    }

    /// The unit is up (a port opened, a broker said ConnAck): the failure streak ends.
    pub fn healthy(&self) {
        *self.healthy_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        self.reporter.healthy();
    }

    /// A failure inside a unit that goes on (a relock to retry): shown and logged once.
    pub fn failure(&self, error: &str) {
        self.failed_in_unit.store(true, Relaxed);
        self.reporter.failure(error);
    }

    /// A unit starts: a healthy mark from an earlier unit no longer counts.
    fn begin_unit(&self) {
        *self.healthy_at.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.failed_in_unit.store(false, Relaxed);
    }

    fn healthy_for(&self) -> Option<Duration> {
        self.healthy_at
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .map(|at| at.elapsed())
    }
}

/// Runs workers under one shutdown token and task tracker and lists them for `status`.
#[derive(Clone)]
pub struct Supervisor {
    shutdown: CancellationToken,
    tracker: TaskTracker,
    workers: Arc<Mutex<Vec<Reporter>>>,
}

impl Supervisor {
    pub fn new(shutdown: CancellationToken, tracker: TaskTracker) -> Self {
        Supervisor {
            shutdown,
            tracker,
            workers: Arc::default(),
        }
    }

    pub fn shutdown(&self) -> &CancellationToken {
        &self.shutdown
    }

    /// The tracker the workers run on, for servers that drain their own connections.
    pub fn tracker(&self) -> &TaskTracker {
        &self.tracker
    }

    /// A status cell listed with the workers, for something that is not a loop.
    pub fn register(&self, name: impl Into<String>) -> Reporter {
        let reporter = Reporter::new(name.into());
        self.workers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(reporter.clone());
        reporter
    }

    pub fn spawn<W: Worker>(&self, name: impl Into<String>, settings: Settings, worker: W) {
        let reporter = self.register(name);
        let cx = Context {
            shutdown: self.shutdown.clone(),
            reporter,
            healthy_at: Mutex::new(None),
            failed_in_unit: false.into(),
        };
        self.tracker.spawn(supervise(worker, settings, cx));
    }

    /// Every worker, in the order they were started.
    pub fn status(&self) -> Vec<WorkerStatus> {
        let workers = self.workers.lock().unwrap_or_else(|e| e.into_inner());
        workers.iter().map(Reporter::status).collect()
    }
}

/// Marks the worker stopped however its task ends; a panic is its last error.
struct StopGuard(Reporter);

impl Drop for StopGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.failure("the worker panicked");
        }
        self.0.set_state(State::Stopped);
    }
}

async fn supervise<W: Worker>(mut worker: W, settings: Settings, cx: Context) {
    let _guard = StopGuard(cx.reporter.clone());
    let mut backoff = Backoff::new(settings.backoff_initial, settings.backoff_max);
    while !cx.shutdown.is_cancelled() {
        cx.reporter.set_state(State::Working);
        cx.begin_unit();
        match worker.work(&cx).await {
            Ok(next) => {
                backoff.reset();
                if !cx.failed_in_unit.load(Relaxed) {
                    cx.reporter.healthy();
                }
                match next {
                    Next::Again => continue,
                    Next::Done => break,
                    Next::Idle => cx.reporter.set_state(State::Idle),
                }
                tokio::select! {
                    _ = cx.shutdown.cancelled() => break,
                    _ = worker.wait_for_work() => {}
                }
            }
            Err(_) if cx.shutdown.is_cancelled() => break,
            Err(e) => {
                if cx
                    .healthy_for()
                    .is_some_and(|held| held >= settings.healthy_after)
                {
                    backoff.reset();
                }
                cx.reporter.failure(&e);
                let delay = backoff.next_delay();
                cx.reporter.backing_off(delay);
                tokio::select! {
                    _ = cx.shutdown.cancelled() => break,
                    _ = tokio::time::sleep(delay) => {}
                    _ = worker.wait_for_work() => {}
                }
            }
        }
    }
    cx.reporter.set_state(State::Working);
    worker.stop().await;
}

#[cfg(test)]
mod tests;
