//! Directory sync: the only writer of upstream users. Sources fetch; the engine applies each
//! batch atomically (`Store::apply_sync`). `SyncService` runs one task per source (interval, back-off
//! with jitter, operator triggers) and answers status; it never blocks a decision.

pub mod csv;
pub mod engine;
pub mod ldap;
pub mod plan;
pub mod scim;
pub mod source;

use crate::backoff::Backoff;
use crate::domain::Timestamp;
use engine::{Engine, Progress, RunOptions, Summary};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// An operator's `pinwarden sync`: run now with these options and answer.
struct Trigger {
    opts: RunOptions,
    progress: Progress,
    reply: oneshot::Sender<Result<Summary, String>>,
}

pub struct SyncService {
    engines: Vec<(Arc<Engine>, mpsc::Sender<Trigger>)>,
}

impl SyncService {
    /// Starts one task per engine; each runs at once, then every interval.
    pub fn spawn(engines: Vec<Engine>, tasks: &TaskTracker, shutdown: &CancellationToken) -> Self {
        let engines = engines
            .into_iter()
            .map(|engine| {
                let engine = Arc::new(engine);
                let (tx, rx) = mpsc::channel(16);
                tasks.spawn(run_source(Arc::clone(&engine), rx, shutdown.clone()));
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

    pub fn status(&self) -> Vec<serde_json::Value> {
        let now = Timestamp::now();
        self.engines.iter().map(|(e, _)| e.status(now)).collect()
    }

    /// Names of the sources whose cache is past `max_staleness`.
    pub fn stale_sources(&self) -> Vec<String> {
        let now = Timestamp::now();
        self.engines
            .iter()
            .filter(|(e, _)| e.stale(now))
            .map(|(e, _)| e.name.clone())
            .collect()
    }
}

/// One source's worker: idle waits end at the interval (or back-off), at an operator
/// trigger or at shutdown; a run in progress is not interrupted by either of the first two.
async fn run_source(
    engine: Arc<Engine>,
    mut triggers: mpsc::Receiver<Trigger>,
    shutdown: CancellationToken,
) {
    let s = &engine.settings;
    let mut backoff = Backoff::new(s.backoff_initial, s.backoff_max);
    let mut next = Instant::now();
    loop {
        let trigger = tokio::select! {
            _ = shutdown.cancelled() => return,
            t = triggers.recv() => match t {
                Some(t) => Some(t),
                None => return,
            },
            _ = tokio::time::sleep_until(next) => None,
        };
        let (opts, progress) = trigger
            .as_ref()
            .map(|t| (t.opts, t.progress.clone()))
            .unwrap_or_default();
        let result = engine
            .run(opts, progress, trigger.is_some(), &shutdown)
            .await;
        next = Instant::now()
            + match &result {
                Ok(_) => {
                    backoff.reset();
                    s.interval
                }
                Err(_) => backoff.next_delay(),
            };
        if let Some(t) = trigger {
            let _ = t.reply.send(result.map_err(|e| e.to_string()));
        }
    }
}
