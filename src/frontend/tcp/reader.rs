//! Card reads on TCP: the card-then-PIN windows shared by every listener (a card read at a
//! device waits there for its holder's PIN), the handling of one card read, and `dial`
//! mode, which connects out to readers that are TCP servers and reconnects with back-off.
//! Unreadable lines (probes, banners) are ignored, never fatal.

use super::card::CardReader;
use super::proto::{Event, LineSplitter};
use super::settings::TcpConfig;
use crate::backoff::Backoff;
use crate::core::{Core, Outcome};
use crate::domain::{AuditKind, AuthRequest, Credential, DeviceId, Origin, Pin, Timestamp};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Card reads waiting for a PIN, per device. One per device: a newer read replaces it.
#[derive(Default)]
pub struct CardWindows {
    pending: Mutex<HashMap<DeviceId, (String, Instant)>>,
}

impl CardWindows {
    pub fn new() -> Self {
        CardWindows::default()
    }

    fn hold(&self, device: &DeviceId, card: String, window: Duration) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.insert(device.clone(), (card, Instant::now() + window));
    }

    /// The card read at `device` within its window, if any; consumed either way.
    fn take(&self, device: &DeviceId) -> Option<String> {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending
            .remove(device)
            .filter(|(_, until)| Instant::now() < *until)
            .map(|(card, _)| card)
    }

    /// The credential for a PIN typed at `device`: card+PIN after a card read there.
    pub fn with_pin(&self, device: &DeviceId, pin: Pin) -> Credential {
        match self.take(device) {
            Some(card) => Credential::CardPin { card, pin },
            None => Credential::Pin(pin),
        }
    }
}

/// What a card read led to.
pub enum CardAnswer {
    Decided(Outcome),
    /// Held for the PIN that follows (card-then-PIN).
    NeedPin,
}

/// Handles one normalised card read at `device`: held for a PIN when the listener has a
/// card-then-PIN window, otherwise a card login.
pub async fn card_read(
    core: &Core,
    windows: &CardWindows,
    config: &TcpConfig,
    device: &DeviceId,
    peer: IpAddr,
    card: String,
) -> CardAnswer {
    if let Some(window) = config.card.as_ref().and_then(|c| c.card_then_pin) {
        core.record(AuditKind::Card {
            device: device.clone(),
            peer: peer.to_string(),
            action: crate::domain::CardAction::WaitingForPin,
            card: Some(card.clone()),
        });
        windows.hold(device, card, window);
        return CardAnswer::NeedPin;
    }
    let request = AuthRequest {
        device: device.clone(),
        credential: Credential::Card { card },
        origin: Origin::Tcp { peer },
        received_at: Timestamp::now(),
    };
    CardAnswer::Decided(core.handle(request).await)
}

/// A bare line from a reader: a card read, or ignored.
pub async fn reader_line(
    core: &Core,
    windows: &CardWindows,
    config: &TcpConfig,
    reader: &CardReader,
    device: &DeviceId,
    peer: IpAddr,
    line: &[u8],
) {
    match reader.read(line) {
        Some(card) => {
            if let CardAnswer::Decided(outcome) =
                card_read(core, windows, config, device, peer, card).await
            {
                tracing::debug!(%device, ?outcome, "card read decided");
            }
        }
        None => tracing::debug!(%device, len = line.len(), "reader line is not a card: ignored"),
    }
}

/// Dial mode: one task per reader, connecting out and reconnecting with back-off until
/// `shutdown`.
pub async fn dial(
    config: Arc<TcpConfig>,
    core: Arc<Core>,
    windows: Arc<CardWindows>,
    shutdown: CancellationToken,
) {
    let tasks = tokio_util::task::TaskTracker::new();
    for (addr, device) in config.dial.clone() {
        let (config, core, windows, shutdown) = (
            Arc::clone(&config),
            Arc::clone(&core),
            Arc::clone(&windows),
            shutdown.clone(),
        );
        tasks.spawn(
            async move { dial_one(addr, device, &config, &core, &windows, &shutdown).await },
        );
    }
    tasks.close();
    tasks.wait().await;
}

async fn dial_one(
    addr: SocketAddr,
    device: DeviceId,
    config: &TcpConfig,
    core: &Core,
    windows: &CardWindows,
    shutdown: &CancellationToken,
) {
    let Some(reader) = config
        .card
        .as_ref()
        .and_then(|c| CardReader::new(&c.format).ok())
    else {
        return;
    };
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
    let mut down_reported = false;
    let audit = |action| AuditKind::Card {
        device: device.clone(),
        peer: addr.to_string(),
        action,
        card: None,
    };
    while !shutdown.is_cancelled() {
        let connect =
            tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(addr));
        let stream = tokio::select! {
            _ = shutdown.cancelled() => return,
            c = connect => c,
        };
        match stream {
            Ok(Ok(mut stream)) => {
                down_reported = false;
                tracing::info!(%addr, %device, "card reader connected");
                core.record(audit(crate::domain::CardAction::ReaderConnected));
                let started = Instant::now();
                let mut splitter = LineSplitter::new();
                let mut buf = [0u8; 256];
                loop {
                    let n = tokio::select! {
                        _ = shutdown.cancelled() => return,
                        n = stream.read(&mut buf) => n,
                    };
                    let Ok(n @ 1..) = n else { break };
                    for event in splitter.push(&buf[..n]) {
                        if let Event::Line(line) = event {
                            reader_line(core, windows, config, &reader, &device, addr.ip(), &line)
                                .await;
                        }
                    }
                }
                tracing::warn!(%addr, %device, "card reader disconnected; reconnecting");
                core.record(audit(crate::domain::CardAction::ReaderDisconnected));
                if started.elapsed() > Duration::from_secs(10) {
                    backoff.reset();
                }
            }
            Ok(Err(_)) | Err(_) if !down_reported => {
                down_reported = true;
                tracing::warn!(%addr, %device, "card reader unreachable; retrying with back-off");
                core.record(audit(crate::domain::CardAction::ReaderUnreachable));
            }
            _ => {}
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(backoff.next_delay()) => {}
        }
    }
}
