//! Door actuators. Each door has one supervised worker that owns its actuator, so only one
//! unlock runs at a time; a grant during a pulse extends it. Relay-side timed pulses are preferred (a crash
//! can never leave the door open); when pinwarden times the pulse itself, the off command is
//! sent at the end, on shutdown, and after any failure.

use crate::domain::{DeviceId, DoorAction};
use crate::worker::{Context, Next, Settings, Supervisor, Worker};
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

#[derive(Clone, Debug, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Actuator {
    /// USB/serial relay board: `on` bytes, and `off` bytes after `pulse` unless the relay
    /// times the pulse itself (`off` empty).
    Serial {
        port: PathBuf,
        baud: u32,
        on: Vec<u8>,
        off: Vec<u8>,
    },
    /// A program run with PINWARDEN_DOOR and PINWARDEN_USER in its environment.
    Command {
        argv: Vec<String>,
        timeout: Duration,
    },
    /// An MQTT relay (Tasmota, Shelly, custom): one publish per grant, never retained; the
    /// relay times the pulse itself.
    Mqtt { topic: String, payload: String },
    /// Log only (a door whose relay is driven elsewhere).
    None,
}

/// Publishes an actuator command on the broker (the MQTT frontend implements it). It must
/// fail rather than queue while the broker is away: a late unlock is worse than none.
pub trait CommandSink: Send + Sync {
    fn publish_command(&self, topic: &str, payload: &[u8]) -> Result<(), String>;
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct DoorConfig {
    pub device: DeviceId,
    pub actuator: Actuator,
    #[serde(serialize_with = "crate::duration::serialize")]
    pub pulse: Duration,
}

/// What happened to one unlock request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnlockResult {
    Unlocked,
    /// Already open: the pulse was extended.
    Extended,
    Failed(String),
}

struct Request {
    user: String,
    reply: oneshot::Sender<UnlockResult>,
}

/// A handle to one door's task.
#[derive(Clone)]
pub struct Door {
    tx: mpsc::Sender<Request>,
}

/// Reports what a door did or failed to do (action, detail) to the audit log.
pub type DoorAudit = std::sync::Arc<dyn Fn(DoorAction, Option<String>) + Send + Sync>;

/// How long shutdown keeps retrying a relock that fails.
const RELOCK_AT_SHUTDOWN: Duration = Duration::from_secs(3);

/// How a door's worker is supervised (it retries its relock itself and never fails).
const RETRY: Settings = Settings::new(Duration::from_millis(500), Duration::from_secs(10));

impl Door {
    /// Starts the door's worker: it relocks first (a crash may have left the relay on), runs
    /// until shutdown, then relocks again.
    pub fn spawn(
        config: DoorConfig,
        sink: Option<std::sync::Arc<dyn CommandSink>>,
        audit: DoorAudit,
        supervisor: &Supervisor,
    ) -> Door {
        let (tx, rx) = mpsc::channel(16);
        let name = format!("door {}", config.device);
        let relay = Relay {
            config,
            port: None,
            sink,
        };
        supervisor.spawn(name, RETRY, DoorWorker::new(relay, audit, rx));
        Door { tx }
    }

    pub async fn unlock(&self, user: &str) -> UnlockResult {
        let (reply, answer) = oneshot::channel();
        if self
            .tx
            .send(Request {
                user: user.into(),
                reply,
            })
            .await
            .is_err()
        {
            return UnlockResult::Failed("the door task has stopped".into());
        }
        answer
            .await
            .unwrap_or_else(|_| UnlockResult::Failed("the door task has stopped".into()))
    }
}

struct Relay {
    config: DoorConfig,
    port: Option<crate::serial::Port>,
    sink: Option<std::sync::Arc<dyn CommandSink>>,
}

impl Relay {
    async fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        let Actuator::Serial { port, baud, .. } = &self.config.actuator else {
            return Ok(());
        };
        if bytes.is_empty() {
            return Ok(());
        }
        if self.port.is_none() {
            let opened = crate::serial::open(port, *baud)
                .map_err(|e| format!("cannot open relay {}: {e}", port.display()))?;
            self.port = Some(opened);
        }
        let p = self.port.as_mut().expect("opened above");
        let written = tokio::time::timeout(Duration::from_secs(2), async {
            p.write_all(bytes).await?;
            p.flush().await
        })
        .await;
        match written {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                self.port = None;
                Err(format!("relay write failed: {e}"))
            }
            Err(_) => {
                self.port = None;
                Err("relay write timed out".into())
            }
        }
    }

    /// Whether pinwarden must send `off` itself.
    fn times_pulse(&self) -> bool {
        matches!(&self.config.actuator, Actuator::Serial { off, .. } if !off.is_empty())
    }

    async fn on(&mut self, user: &str) -> Result<(), String> {
        match &self.config.actuator {
            Actuator::Serial { on, .. } => {
                let on = on.clone();
                self.write(&on).await
            }
            Actuator::Command { argv, timeout } => {
                run_command(argv, *timeout, &self.config.device, user).await
            }
            Actuator::Mqtt { topic, payload } => match &self.sink {
                Some(sink) => sink.publish_command(topic, payload.as_bytes()),
                None => Err("no MQTT connection is configured".into()),
            },
            Actuator::None => Ok(()),
        }
    }

    async fn off(&mut self) -> Result<(), String> {
        match &self.config.actuator {
            Actuator::Serial { off, .. } => {
                let off = off.clone();
                self.write(&off).await
            }
            _ => Ok(()),
        }
    }
}

/// The door's worker. `relock_due` is set whenever the relay must be switched off (pulse
/// end, start-up, a failed "on"); a failed "off" is retried with back-off until it
/// succeeds, and every failure is audited: a door must never stay open because one write
/// failed. Requests are served while a relock is being retried.
struct DoorWorker {
    relay: Relay,
    audit: DoorAudit,
    rx: mpsc::Receiver<Request>,
    open_until: Option<Instant>,
    relock_due: Option<Instant>,
    backoff: crate::backoff::Backoff,
    request: Option<Request>,
    closed: bool,
}

impl DoorWorker {
    fn new(relay: Relay, audit: DoorAudit, rx: mpsc::Receiver<Request>) -> Self {
        DoorWorker {
            relock_due: relay.times_pulse().then(Instant::now),
            relay,
            audit,
            rx,
            open_until: None,
            backoff: crate::backoff::Backoff::new(
                Duration::from_millis(500),
                Duration::from_secs(10),
            ),
            request: None,
            closed: false,
        }
    }

    fn wake(&self) -> Option<Instant> {
        match (self.open_until, self.relock_due) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    async fn unlock(&mut self, user: &str, cx: &Context) -> UnlockResult {
        if self.open_until.is_some() {
            self.open_until = Some(Instant::now() + self.relay.config.pulse);
            return UnlockResult::Extended;
        }
        match self.relay.on(user).await {
            Ok(()) => {
                if self.relay.times_pulse() {
                    self.open_until = Some(Instant::now() + self.relay.config.pulse);
                    self.relock_due = None;
                }
                UnlockResult::Unlocked
            }
            Err(e) => {
                cx.failure(&format!("unlock failed: {e}"));
                // The "on" may have half-worked: make sure the door relocks.
                if self.relay.times_pulse() {
                    self.relock_due = Some(Instant::now());
                }
                UnlockResult::Failed(e)
            }
        }
    }

    /// Ends a pulse that is over and runs a relock that is due.
    async fn timers(&mut self, cx: &Context) {
        if self.open_until.is_some_and(|t| t <= Instant::now()) {
            self.open_until = None;
            self.relock_due = Some(Instant::now());
        }
        if self.relock_due.is_none_or(|t| t > Instant::now()) {
            return;
        }
        self.relock_due = match self.relay.off().await {
            Ok(()) => {
                self.backoff.reset();
                None
            }
            Err(e) => {
                cx.failure(&format!("relock failed: {e}"));
                (self.audit)(DoorAction::RelockFailed, Some(e));
                Some(Instant::now() + self.backoff.next_delay())
            }
        };
    }
}

impl Worker for DoorWorker {
    async fn work(&mut self, cx: &Context) -> Result<Next, String> {
        if self.closed {
            return Ok(Next::Done);
        }
        if let Some(request) = self.request.take() {
            let result = self.unlock(&request.user, cx).await;
            let _ = request.reply.send(result);
        }
        self.timers(cx).await;
        Ok(Next::Idle)
    }

    async fn wait_for_work(&mut self) {
        let wake = self.wake();
        tokio::select! {
            _ = async { tokio::time::sleep_until(wake.unwrap_or_else(Instant::now)).await }, if wake.is_some() => {}
            request = self.rx.recv() => match request {
                Some(request) => self.request = Some(request),
                None => self.closed = true,
            },
        }
    }

    async fn stop(&mut self) {
        if self.open_until.is_some() || self.relock_due.is_some() {
            relock_at_shutdown(&mut self.relay, &self.audit).await;
        }
    }
}

async fn relock_at_shutdown(relay: &mut Relay, audit: &DoorAudit) {
    let deadline = Instant::now() + RELOCK_AT_SHUTDOWN;
    loop {
        match relay.off().await {
            Ok(()) => return,
            Err(e) if Instant::now() >= deadline => {
                tracing::error!(door = %relay.config.device, error = %e, "could not relock at shutdown");
                audit(DoorAction::RelockFailed, Some(format!("at shutdown: {e}")));
                return;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

async fn run_command(
    argv: &[String],
    timeout: Duration,
    door: &DeviceId,
    user: &str,
) -> Result<(), String> {
    let Some((program, args)) = argv.split_first() else {
        return Err("empty command".into());
    };
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .env("PINWARDEN_DOOR", &door.0)
        .env("PINWARDEN_USER", user)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) if status.success() => Ok(()),
        Ok(Ok(status)) => Err(format!("{program} exited with {status}")),
        Ok(Err(e)) => Err(format!("{program}: {e}")),
        Err(_) => {
            let _ = child.kill().await;
            Err(format!("{program} did not finish within {timeout:?}"))
        }
    }
}
