//! Serial keypads: one task per `[[keypad]]` that opens the port, feeds bytes to the
//! sans-IO `framing` decoder, asks the core and writes the feedback bytes. A port that
//! vanishes (a read of 0 bytes or an error) is a disconnect: logged once, reopened with
//! back-off, never spun on. A keypad absent at start does not stop the daemon.

pub mod framing;
pub mod settings;

use crate::backoff::Backoff;
use crate::core::{Core, Outcome};
use crate::domain::{AuditKind, AuthRequest, Credential, Origin, Timestamp};
use framing::{FramingConfig, KeypadDecoder, KeypadEvent};
use settings::KeypadConfig;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;
use zeroize::Zeroize;

pub async fn serve(config: Arc<KeypadConfig>, core: Arc<Core>, shutdown: CancellationToken) {
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
    let mut absent_reported = false;
    let port_name = config.port.display().to_string();
    let event = |action, detail: String| AuditKind::Keypad {
        device: config.device.clone(),
        port: port_name.clone(),
        action,
        detail,
    };
    while !shutdown.is_cancelled() {
        match crate::serial::open(&config.port, config.baud) {
            Ok(port) => {
                absent_reported = false;
                tracing::info!(port = %port_name, device = %config.device, "keypad connected");
                core.record(event(crate::domain::KeypadAction::Connected, String::new()));
                let started = tokio::time::Instant::now();
                let reason = session(port, &config, &core, &shutdown).await;
                if shutdown.is_cancelled() {
                    return;
                }
                tracing::warn!(port = %port_name, reason, "keypad disconnected; reopening");
                core.record(event(crate::domain::KeypadAction::Disconnected, reason));
                if started.elapsed() > Duration::from_secs(10) {
                    backoff.reset();
                }
            }
            Err(e) if !absent_reported => {
                absent_reported = true;
                tracing::warn!(port = %port_name, error = %e, "keypad port unavailable; retrying with back-off");
                core.record(event(
                    crate::domain::KeypadAction::Unavailable,
                    e.to_string(),
                ));
            }
            Err(_) => {}
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(backoff.next_delay()) => {}
        }
    }
}

/// Serves one open port until it disconnects; returns why.
async fn session(
    mut port: crate::serial::Port,
    config: &KeypadConfig,
    core: &Core,
    shutdown: &CancellationToken,
) -> String {
    let mut decoder = KeypadDecoder::new(FramingConfig {
        framing: config.framing,
        max_length: config.max_length,
        inter_key_timeout: config.inter_key_timeout,
    });
    let mut buf = [0u8; 64];
    let mut pending = PendingCard::default();
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
            if let Err(e) = answer(event, &mut port, config, core, &mut pending).await {
                return format!("feedback write failed: {e}");
            }
        }
    }
}

/// A card read waiting for its PIN.
#[derive(Default)]
struct PendingCard(Option<(String, std::time::Instant)>);

impl PendingCard {
    /// The card, if one was read within the window; consumed either way.
    fn take(&mut self, now: std::time::Instant) -> Option<String> {
        self.0
            .take()
            .filter(|(_, until)| now < *until)
            .map(|(card, _)| card)
    }
}

/// Turns a submitted entry into a credential: a card read (kept for the PIN that follows),
/// a PIN after a card, or a PIN alone.
fn credential(
    pin: crate::domain::Pin,
    config: &KeypadConfig,
    pending: &mut PendingCard,
) -> Result<Credential, Option<String>> {
    let now = tokio::time::Instant::now().into_std();
    let Some(card_cfg) = &config.card else {
        return Ok(Credential::Pin(pin));
    };
    if let Some(raw) = pin.expose().strip_prefix(card_cfg.prefix.as_str()) {
        let card = crate::domain::normalise_card(raw);
        pending.0 = card.clone().map(|c| (c, now + card_cfg.window));
        return Err(card);
    }
    match pending.take(now) {
        Some(card) => Ok(Credential::CardPin { card, pin }),
        // A PIN without a card where one is required: checked against no card, so it is
        // denied like any other wrong credential, at the same cost.
        None if card_cfg.required => Ok(Credential::CardPin {
            card: String::new(),
            pin,
        }),
        None => Ok(Credential::Pin(pin)),
    }
}

async fn answer(
    event: KeypadEvent,
    port: &mut crate::serial::Port,
    config: &KeypadConfig,
    core: &Core,
    pending: &mut PendingCard,
) -> std::io::Result<()> {
    let KeypadEvent::Submit(pin) = event else {
        tracing::debug!(?event, device = %config.device, "keypad entry discarded");
        return Ok(());
    };
    let feedback = &config.feedback;
    let credential = match credential(pin, config, pending) {
        Ok(credential) => credential,
        Err(card) => {
            tracing::debug!(device = %config.device, read = card.is_some(), "card read; waiting for the PIN");
            core.record(AuditKind::Keypad {
                device: config.device.clone(),
                port: config.port.display().to_string(),
                action: crate::domain::KeypadAction::CardRead,
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
