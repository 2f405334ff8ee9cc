//! Directory sync: the only writer of upstream users. Sources fetch; the engine applies each
//! batch atomically (`Store::apply_sync`). `SyncService` runs one supervised worker per
//! source (interval, operator triggers; back-off with jitter from the supervisor), publishes
//! staleness as it changes and answers status; it never blocks a decision.

pub mod csv;
pub mod engine;
mod error;
pub mod ldap;
pub mod listing;
mod local_pins;
pub mod plan;
mod report;
pub mod scim;
pub mod source;
pub mod weak;

use crate::domain::Timestamp;
use crate::worker::{Context, Next, Settings, Supervisor, Worker};
use engine::{Engine, Progress, RunOptions, Summary};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// An operator's `pinwarden sync`: run now with these options and answer.
struct Trigger {
    opts: RunOptions,
    progress: Progress,
    reply: oneshot::Sender<Result<Summary, String>>,
}

pub struct SyncService {
    engines: Vec<(Arc<Engine>, mpsc::Sender<Trigger>)>,
}

/// Where the engines publish which sources are past `max_staleness` (the daemon hands the
/// set to the core): called with the whole set each time it changes.
pub type PublishStale = Arc<dyn Fn(Vec<String>) + Send + Sync>;

/// The stale sources, kept by the engines' workers: each publishes its own change at once.
struct StaleSet {
    names: Mutex<BTreeSet<String>>,
    publish: PublishStale,
}

impl StaleSet {
    fn update(&self, source: &str, stale: bool) {
        let mut names = self.names.lock().unwrap_or_else(|e| e.into_inner());
        let changed = if stale {
            names.insert(source.to_string())
        } else {
            names.remove(source)
        };
        if changed {
            let now_stale: Vec<String> = names.iter().cloned().collect();
            tracing::warn!(sources = ?now_stale, "directories past max_staleness changed");
            (self.publish)(now_stale);
        }
    }
}

impl SyncService {
    /// Starts one supervised worker per engine; each runs at once, then every interval.
    pub fn spawn(engines: Vec<Engine>, supervisor: &Supervisor, publish: PublishStale) -> Self {
        let stale = Arc::new(StaleSet {
            names: Mutex::default(),
            publish,
        });
        let engines = engines
            .into_iter()
            .map(|engine| {
                let engine = Arc::new(engine);
                let (tx, rx) = mpsc::channel(16);
                let s = &engine.settings;
                let retry = Settings::new(s.backoff_initial, s.backoff_max);
                let worker = SourceWorker {
                    engine: Arc::clone(&engine),
                    triggers: rx,
                    trigger: None,
                    next: Some(Instant::now()),
                    stale: Arc::clone(&stale),
                    closed: false,
                };
                supervisor.spawn(format!("directory {}", engine.name), retry, worker);
                (engine, tx)
            })
            .collect();
        SyncService { engines }
    }

    /// Runs `source` (or every source) now and waits for the results, in source order.
    pub async fn trigger(
        &self,
        source: Option<&str>,
        opts: RunOptions,
        progress: Progress,
    ) -> Result<Vec<(String, Result<Summary, String>)>, String> {
        let chosen: Vec<_> = self
            .engines
            .iter()
            .filter(|(e, _)| source.is_none_or(|s| s == e.name))
            .collect();
        if chosen.is_empty() {
            return Err(match source {
                Some(s) => format!("no [[directory]] named `{s}` in the configuration"),
                None => "no [[directory]] is configured: there is nothing to sync".into(),
            });
        }
        let mut waiting = Vec::new();
        for (engine, tx) in chosen {
            let (reply, answer) = oneshot::channel();
            let trigger = Trigger {
                opts,
                progress: progress.clone(),
                reply,
            };
            if tx.send(trigger).await.is_err() {
                return Err("the daemon is shutting down".into());
            }
            waiting.push((engine.name.clone(), answer));
        }
        let mut out = Vec::new();
        for (name, answer) in waiting {
            let result = answer
                .await
                .unwrap_or_else(|_| Err("stopped by shutdown before anything was applied".into()));
            out.push((name, result));
        }
        Ok(out)
    }

    /// Each source's last success and last result (`/metrics`): one store read a source.
    pub fn health(&self) -> Vec<engine::SourceHealth> {
        self.engines.iter().map(|(e, _)| e.health()).collect()
    }

    pub fn status(&self) -> Vec<serde_json::Value> {
        let now = Timestamp::now();
        self.engines.iter().map(|(e, _)| e.status(now)).collect()
    }
}

/// One source's worker: a unit of work is one run (an operator's trigger or the interval);
/// idle waits end at the interval, at a trigger or at shutdown, and publish the source's
/// staleness the moment it passes `max_staleness`. After a failure the supervisor's
/// back-off decides the retry, cut short by a trigger.
struct SourceWorker {
    engine: Arc<Engine>,
    triggers: mpsc::Receiver<Trigger>,
    trigger: Option<Trigger>,
    /// The next scheduled run; `None` after a failure.
    next: Option<Instant>,
    stale: Arc<StaleSet>,
    closed: bool,
}

impl SourceWorker {
    fn publish_staleness(&self) {
        let stale = self.engine.stale(Timestamp::now());
        self.stale.update(&self.engine.name, stale);
    }
}

impl Worker for SourceWorker {
    async fn work(&mut self, cx: &Context) -> Result<Next, String> {
        if self.closed {
            return Ok(Next::Done);
        }
        // A run may take a while (a directory that does not answer): staleness first.
        self.publish_staleness();
        let trigger = self.trigger.take();
        let (opts, progress) = trigger
            .as_ref()
            .map(|t| (t.opts, t.progress.clone()))
            .unwrap_or_default();
        let engine = &self.engine;
        let result = engine
            .run(opts, progress, trigger.is_some(), cx.shutdown())
            .await;
        self.publish_staleness();
        self.next = result
            .is_ok()
            .then(|| Instant::now() + engine.settings.interval);
        let next = result
            .as_ref()
            .map(|_| Next::Idle)
            .map_err(ToString::to_string);
        if let Some(t) = trigger {
            let _ = t.reply.send(result.map_err(|e| e.to_string()));
        }
        next
    }

    async fn wait_for_work(&mut self) {
        loop {
            let now = Timestamp::now();
            let stale_at = self.engine.stale_at();
            let stale_in =
                (stale_at >= now).then(|| now.until(stale_at) + Duration::from_millis(1));
            tokio::select! {
                t = self.triggers.recv() => {
                    match t {
                        Some(t) => self.trigger = Some(t),
                        None => self.closed = true,
                    }
                    return;
                }
                _ = async { tokio::time::sleep_until(self.next.unwrap_or_else(Instant::now)).await }, if self.next.is_some() => return,
                _ = async { tokio::time::sleep(stale_in.unwrap_or_default()).await }, if stale_in.is_some() => {
                    self.publish_staleness();
                }
            }
        }
    }
}
