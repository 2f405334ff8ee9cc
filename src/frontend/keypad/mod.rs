//! Serial keypads: one supervised worker per `[[keypad]]` that opens the port, feeds bytes
//! to the sans-IO `framing` decoder and key `sequence`s, asks the core (entries, self-change,
//! forgotten PINs) and writes the feedback bytes; a card
//! read waits for its PIN in the shared `CardHold`. A port that vanishes (a read of 0 bytes
//! or an error) is a disconnect: a failure the supervisor logs once and retries with
//! back-off, never spun on. A keypad absent at start does not stop the daemon.

pub mod framing;
pub mod sequence;
pub mod settings;

use crate::core::selfservice::{ChangeOutcome, ChangeRequest, ForgotOutcome, ForgotRequest};
use crate::core::{Core, Outcome};
use crate::domain::{AuditKind, AuthRequest, Credential, KeypadAction, Origin, Pin, Timestamp};
use crate::frontend::card_hold::CardHold;
use crate::worker::{Context, Next, Settings, Worker};
use framing::FramingConfig;
use sequence::{Input, Sequencer};
use settings::KeypadConfig;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;
use zeroize::Zeroize;

/// How a keypad retries: a port that held 10 s starts the back-off afresh.
pub const RETRY: Settings = Settings::new(Duration::from_millis(500), Duration::from_secs(30))
    .healthy_after(Duration::from_secs(10));

/// One `[[keypad]]` as a supervised worker: a unit of work is one open port, served until
/// it disconnects (a failure: the supervisor backs off and reopens) or shutdown.
pub struct Keypad {
    config: Arc<KeypadConfig>,
    core: Arc<Core>,
    holds: CardHold,
    absent_reported: bool,
}

impl Keypad {
    pub fn new(config: Arc<KeypadConfig>, core: Arc<Core>) -> Self {
        Keypad {
            config,
            core,
            holds: CardHold::new(),
            absent_reported: false,
        }
    }

    pub fn name(&self) -> String {
        format!(
            "keypad {} ({})",
            self.config.device,
            self.config.port.display()
        )
    }

    fn audit(&self, action: KeypadAction, detail: String) {
        self.core.record(AuditKind::Keypad {
            device: self.config.device.clone(),
            port: self.config.port.display().to_string(),
            action,
            detail,
        });
    }
}

impl Worker for Keypad {
    async fn work(&mut self, cx: &Context) -> Result<Next, String> {
        let port_name = self.config.port.display().to_string();
        let port = match crate::serial::open(&self.config.port, self.config.baud) {
            Ok(port) => port,
            Err(e) => {
                // Audited once per outage; the supervisor logs it once too.
                if !std::mem::replace(&mut self.absent_reported, true) {
                    self.audit(KeypadAction::Unavailable, e.to_string());
                }
                return Err(format!("keypad port {port_name} unavailable: {e}"));
            }
        };
        self.absent_reported = false;
        cx.healthy();
        tracing::info!(port = %port_name, device = %self.config.device, "keypad connected");
        self.audit(KeypadAction::Connected, String::new());
        let reason = session(port, &self.config, &self.core, &self.holds, cx.shutdown()).await;
        if cx.shutdown().is_cancelled() {
            return Ok(Next::Done);
        }
        self.audit(KeypadAction::Disconnected, reason.clone());
        Err(format!("keypad {port_name} disconnected: {reason}"))
    }
}

/// Serves one open port until it disconnects; returns why.
async fn session(
    mut port: crate::serial::Port,
    config: &KeypadConfig,
    core: &Core,
    holds: &CardHold,
    shutdown: &CancellationToken,
) -> String {
    let mut keys = Sequencer::new(FramingConfig {
        framing: config.framing,
        max_length: config.max_length,
        inter_key_timeout: config.inter_key_timeout,
    });
    let mut buf = [0u8; 64];
    loop {
        let deadline = keys.deadline().map(tokio::time::Instant::from_std);
        let read = tokio::select! {
            _ = shutdown.cancelled() => return "shutdown".into(),
            _ = async { tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)).await }, if deadline.is_some() => {
                for input in keys.poll(tokio::time::Instant::now().into_std()) {
                    tracing::debug!(?input, "keypad entry or sequence timed out");
                }
                continue;
            }
            read = port.read(&mut buf) => read,
        };
        let n = match read {
            Ok(0) => return "the port returned end of file (unplugged?)".into(),
            Ok(n) => n,
            Err(e) => return e.to_string(),
        };
        let inputs = keys.push(&buf[..n], tokio::time::Instant::now().into_std());
        buf[..n].zeroize();
        for input in inputs {
            if let Err(e) = answer(input, &mut port, config, core, holds).await {
                return format!("feedback write failed: {e}");
            }
        }
    }
}

/// Turns a submitted entry into a credential: a card read (kept for the PIN that follows),
/// a PIN after a card, or a PIN alone.
fn credential(
    pin: Pin,
    config: &KeypadConfig,
    holds: &CardHold,
) -> Result<Credential, Option<String>> {
    let Some(card_cfg) = &config.card else {
        return Ok(Credential::Pin(pin));
    };
    if let Some(raw) = pin.expose().strip_prefix(card_cfg.prefix.as_str()) {
        let card = crate::domain::normalise_card(raw);
        match &card {
            Some(c) => holds.hold(&config.device, c.clone(), card_cfg.window),
            None => holds.clear(&config.device),
        }
        return Err(card);
    }
    Ok(holds.with_pin(&config.device, pin, card_cfg.required))
}

/// Answers one input with its feedback bytes.
async fn answer(
    input: Input,
    port: &mut crate::serial::Port,
    config: &KeypadConfig,
    core: &Core,
    holds: &CardHold,
) -> std::io::Result<()> {
    let feedback = &config.feedback;
    let bytes = match input {
        Input::Entry(pin) => entry(pin, config, core, holds).await,
        Input::Change { id, old, new } => {
            let request = ChangeRequest {
                device: config.device.clone(),
                origin: origin(config),
                id,
                old,
                new,
                received_at: Timestamp::now(),
            };
            match core.change_pin(request).await {
                ChangeOutcome::Changed => &feedback.changed,
                ChangeOutcome::Refused(_) => &feedback.refused,
                ChangeOutcome::Denied | ChangeOutcome::NotAllowed => &feedback.denied,
                ChangeOutcome::LockedOut => &feedback.locked_out,
                ChangeOutcome::Busy => &feedback.busy,
            }
        }
        Input::Forgot { id } => {
            let request = ForgotRequest {
                device: config.device.clone(),
                origin: origin(config),
                id,
                received_at: Timestamp::now(),
            };
            match core.forgot_pin(request).await {
                ForgotOutcome::Accepted => &feedback.accepted,
                ForgotOutcome::Busy => &feedback.busy,
                ForgotOutcome::NotAllowed => &feedback.denied,
            }
        }
        Input::Mismatch => {
            tracing::debug!(device = %config.device, "keypad change: the new PIN was not repeated the same");
            &feedback.refused
        }
        Input::Abandoned | Input::Discarded(_) => {
            tracing::debug!(?input, device = %config.device, "keypad entry or sequence discarded");
            return Ok(());
        }
    };
    write_feedback(port, bytes).await
}

fn origin(config: &KeypadConfig) -> Origin {
    Origin::Keypad {
        port: config.port.display().to_string(),
    }
}

/// A plain entry: a card read (answered `card`, or `denied` when unreadable) or a PIN.
async fn entry<'a>(pin: Pin, config: &'a KeypadConfig, core: &Core, holds: &CardHold) -> &'a [u8] {
    let feedback = &config.feedback;
    let credential = match credential(pin, config, holds) {
        Ok(credential) => credential,
        Err(card) => {
            tracing::debug!(device = %config.device, read = card.is_some(), "card read; waiting for the PIN");
            core.record(AuditKind::Keypad {
                device: config.device.clone(),
                port: config.port.display().to_string(),
                action: KeypadAction::CardRead,
                detail: card.clone().unwrap_or_else(|| "unreadable".into()),
            });
            return if card.is_some() {
                &feedback.card
            } else {
                &feedback.denied
            };
        }
    };
    let request = AuthRequest {
        device: config.device.clone(),
        credential,
        origin: origin(config),
        received_at: Timestamp::now(),
    };
    match core.handle(request).await {
        // Granted but the door did not open: tell the person to try again.
        Outcome::Granted {
            action_failed: true,
            ..
        } => &feedback.busy,
        Outcome::Granted { .. } => &feedback.granted,
        Outcome::Denied => &feedback.denied,
        Outcome::LockedOut => &feedback.locked_out,
        Outcome::Busy => &feedback.busy,
    }
}

async fn write_feedback(port: &mut crate::serial::Port, bytes: &[u8]) -> std::io::Result<()> {
    if bytes.is_empty() {
        return Ok(());
    }
    tokio::time::timeout(Duration::from_secs(2), async {
        port.write_all(bytes).await?;
        port.flush().await
    })
    .await
    .unwrap_or_else(|_| {
        Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "write timed out",
        ))
    })
}
