//! Serial keypads: one supervised worker per `[[keypad]]` that opens the port, feeds bytes
//! to the sans-IO `framing` decoder, asks the core and writes the feedback bytes; a card
//! read waits for its PIN in the shared `CardHold`. A port that vanishes (a read of 0 bytes
//! or an error) is a disconnect: a failure the supervisor logs once and retries with
//! back-off, never spun on. A keypad absent at start does not stop the daemon.

pub mod framing;
pub mod settings;

use crate::core::{Core, Outcome};
use crate::domain::{AuditKind, AuthRequest, Credential, KeypadAction, Origin, Timestamp};
use crate::frontend::card_hold::CardHold;
use crate::worker::{Context, Next, Settings, Worker};
use framing::{FramingConfig, KeypadDecoder, KeypadEvent};
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
    let mut decoder = KeypadDecoder::new(FramingConfig {
        framing: config.framing,
        max_length: config.max_length,
        inter_key_timeout: config.inter_key_timeout,
    });
    let mut buf = [0u8; 64];
    loop {
        let deadline = decoder.deadline().map(tokio::time::Instant::from_std);
        let read = tokio::select! {
            _ = shutdown.cancelled() => return "shutdown".into(),
            _ = async { tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)).await }, if deadline.is_some() => {
                if let Some(event) = decoder.poll(tokio::time::Instant::now().into_std()) {
                    tracing::debug!(?event, "keypad entry timed out");
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
        let events = decoder.push(&buf[..n], tokio::time::Instant::now().into_std());
        buf[..n].zeroize();
        for event in events {
            if let Err(e) = answer(event, &mut port, config, core, holds).await {
                return format!("feedback write failed: {e}");
            }
        }
    }
}

/// Turns a submitted entry into a credential: a card read (kept for the PIN that follows),
/// a PIN after a card, or a PIN alone.
fn credential(
    pin: crate::domain::Pin,
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

async fn answer(
    event: KeypadEvent,
    port: &mut crate::serial::Port,
    config: &KeypadConfig,
    core: &Core,
    holds: &CardHold,
) -> std::io::Result<()> {
    let KeypadEvent::Submit(pin) = event else {
        tracing::debug!(?event, device = %config.device, "keypad entry discarded");
        return Ok(());
    };
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
            return write_feedback(
                port,
                if card.is_some() {
                    &feedback.card
                } else {
                    &feedback.denied
                },
            )
            .await;
        }
    };
    let request = AuthRequest {
        device: config.device.clone(),
        credential,
        origin: Origin::Keypad {
            port: config.port.display().to_string(),
        },
        received_at: Timestamp::now(),
    };
    let bytes = match core.handle(request).await {
        // Granted but the door did not open: tell the person to try again.
        Outcome::Granted {
            action_failed: true,
            ..
        } => &feedback.busy,
        Outcome::Granted { .. } => &feedback.granted,
        Outcome::Denied => &feedback.denied,
        Outcome::LockedOut => &feedback.locked_out,
        Outcome::Busy => &feedback.busy,
    };
    write_feedback(port, bytes).await
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
