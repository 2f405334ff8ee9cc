//! Serial keypads: one task per `[[keypad]]` that opens the port, feeds bytes to the
//! sans-IO `framing` decoder, asks the core and writes the feedback bytes. A port that
//! vanishes (a read of 0 bytes or an error) is a disconnect: logged once, reopened with
//! back-off, never spun on. A keypad absent at start does not stop the daemon.

pub mod framing;

use crate::backoff::Backoff;
use crate::config::KeypadConfig;
use crate::core::{Core, Outcome};
use crate::domain::{AuditKind, AuthRequest, Credential, Origin, Timestamp};
use framing::{FramingConfig, KeypadDecoder, KeypadEvent};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;
use zeroize::Zeroize;

pub async fn serve(config: Arc<KeypadConfig>, core: Arc<Core>, shutdown: CancellationToken) {
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
    let mut absent_reported = false;
    let port_name = config.port.display().to_string();
    let event = |action: &str, detail: String| AuditKind::Keypad {
        device: config.device.clone(),
        port: port_name.clone(),
        action: action.into(),
        detail,
    };
    while !shutdown.is_cancelled() {
        match crate::serial::open(&config.port, config.baud) {
            Ok(port) => {
                absent_reported = false;
                tracing::info!(port = %port_name, device = %config.device, "keypad connected");
                core.record(event("connected", String::new()));
                let started = tokio::time::Instant::now();
                let reason = session(port, &config, &core, &shutdown).await;
                if shutdown.is_cancelled() {
                    return;
                }
                tracing::warn!(port = %port_name, reason, "keypad disconnected; reopening");
                core.record(event("disconnected", reason));
                if started.elapsed() > Duration::from_secs(10) {
                    backoff.reset();
                }
            }
            Err(e) if !absent_reported => {
                absent_reported = true;
                tracing::warn!(port = %port_name, error = %e, "keypad port unavailable; retrying with back-off");
                core.record(event("unavailable", e.to_string()));
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
            if let Err(e) = answer(event, &mut port, config, core).await {
                return format!("feedback write failed: {e}");
            }
        }
    }
}

async fn answer(
    event: KeypadEvent,
    port: &mut crate::serial::Port,
    config: &KeypadConfig,
    core: &Core,
) -> std::io::Result<()> {
    let KeypadEvent::Submit(pin) = event else {
        tracing::debug!(?event, device = %config.device, "keypad entry discarded");
        return Ok(());
    };
    let request = AuthRequest {
        device: config.device.clone(),
        credential: Credential::Pin(pin),
        origin: Origin::Keypad {
            port: config.port.display().to_string(),
        },
        received_at: Timestamp::now(),
    };
    let feedback = &config.feedback;
    let bytes = match core.handle(request).await {
        Outcome::Granted { .. } => &feedback.granted,
        Outcome::Denied => &feedback.denied,
        Outcome::LockedOut => &feedback.locked_out,
        Outcome::Busy => &feedback.busy,
    };
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
