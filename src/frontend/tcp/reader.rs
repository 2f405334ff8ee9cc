//! Card reads on TCP: the handling of one card read (a card login, or held in the shared
//! `CardHold` for the PIN that follows), and `dial` mode, one supervised worker per reader
//! that is a TCP server.
//! Unreadable lines (probes, banners) are ignored, never fatal.

use super::card::CardReader;
use super::proto::{Event, LineSplitter};
use super::settings::TcpConfig;
use crate::core::{Core, Outcome};
use crate::domain::{AuditKind, AuthRequest, CardAction, Credential, DeviceId, Origin, Timestamp};
use crate::frontend::card_hold::CardHold;
use crate::worker::{Context, Next, Settings, Worker};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

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
    holds: &CardHold,
    config: &TcpConfig,
    device: &DeviceId,
    peer: IpAddr,
    card: String,
) -> CardAnswer {
    if let Some(window) = config.card.as_ref().and_then(|c| c.card_then_pin) {
        core.record(AuditKind::Card {
            device: device.clone(),
            peer: peer.to_string(),
            action: CardAction::WaitingForPin,
            card: Some(card.clone()),
        });
        holds.hold(device, card, window);
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
    holds: &CardHold,
    config: &TcpConfig,
    reader: &CardReader,
    device: &DeviceId,
    peer: IpAddr,
    line: &[u8],
) {
    match reader.read(line) {
        Some(card) => {
            if let CardAnswer::Decided(outcome) =
                card_read(core, holds, config, device, peer, card).await
            {
                tracing::debug!(%device, ?outcome, "card read decided");
            }
        }
        None => tracing::debug!(%device, len = line.len(), "reader line is not a card: ignored"),
    }
}

/// Dial mode: one worker per reader that is a TCP server, connecting out; a connection is
/// one unit of work, ended by the reader (a failure: the supervisor backs off and
/// reconnects) or between reads by shutdown.
pub struct DialReader {
    addr: SocketAddr,
    device: DeviceId,
    config: Arc<TcpConfig>,
    core: Arc<Core>,
    holds: Arc<CardHold>,
    reader: CardReader,
    down_reported: bool,
}

/// How a dial reader retries: a connection that held 10 s starts the back-off afresh.
pub const DIAL_RETRY: Settings = Settings::new(Duration::from_millis(500), Duration::from_secs(30))
    .healthy_after(Duration::from_secs(10));

impl DialReader {
    /// One worker per `dial` address of a `[[tcp]]` without `listen`.
    pub fn all(config: &Arc<TcpConfig>, core: &Arc<Core>, holds: &Arc<CardHold>) -> Vec<Self> {
        // Validated with the config; `None` only when the listener has no [tcp.card].
        let Some(reader) = config
            .card
            .as_ref()
            .and_then(|c| CardReader::new(&c.format).ok())
        else {
            return Vec::new();
        };
        config
            .dial
            .iter()
            .map(|(addr, device)| DialReader {
                addr: *addr,
                device: device.clone(),
                config: Arc::clone(config),
                core: Arc::clone(core),
                holds: Arc::clone(holds),
                reader: reader.clone(),
                down_reported: false,
            })
            .collect()
    }

    pub fn name(&self) -> String {
        format!("card reader {} ({})", self.device, self.addr)
    }

    fn audit(&self, action: CardAction) {
        self.core.record(AuditKind::Card {
            device: self.device.clone(),
            peer: self.addr.to_string(),
            action,
            card: None,
        });
    }

    /// Reads lines until the reader goes away (`Err`) or shutdown (`Ok`).
    async fn session(
        &self,
        mut stream: TcpStream,
        shutdown: &CancellationToken,
    ) -> Result<Next, String> {
        let (addr, device) = (self.addr, &self.device);
        let mut splitter = LineSplitter::new();
        let mut buf = [0u8; 256];
        loop {
            let n = tokio::select! {
                _ = shutdown.cancelled() => return Ok(Next::Done),
                n = stream.read(&mut buf) => n,
            };
            let Ok(n @ 1..) = n else { break };
            for event in splitter.push(&buf[..n]) {
                if let Event::Line(line) = event {
                    let (core, holds, config) = (&self.core, &self.holds, &self.config);
                    reader_line(core, holds, config, &self.reader, device, addr.ip(), &line).await;
                }
            }
        }
        self.audit(CardAction::ReaderDisconnected);
        Err(format!("card reader {addr} disconnected; reconnecting"))
    }
}

impl Worker for DialReader {
    async fn work(&mut self, cx: &Context) -> Result<Next, String> {
        let connect = tokio::time::timeout(
            Duration::from_secs(5),
            tokio::net::TcpStream::connect(self.addr),
        );
        let connected = tokio::select! {
            _ = cx.shutdown().cancelled() => return Ok(Next::Done),
            c = connect => c,
        };
        let stream = match connected {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => return Err(self.unreachable(e.to_string())),
            Err(_) => return Err(self.unreachable("no answer within 5 s".into())),
        };
        self.down_reported = false;
        cx.healthy();
        tracing::info!(addr = %self.addr, device = %self.device, "card reader connected");
        self.audit(CardAction::ReaderConnected);
        self.session(stream, cx.shutdown()).await
    }
}

impl DialReader {
    /// Audited once per outage; the supervisor logs it once too.
    fn unreachable(&mut self, why: String) -> String {
        if !std::mem::replace(&mut self.down_reported, true) {
            self.audit(CardAction::ReaderUnreachable);
        }
        format!("card reader {} unreachable: {why}", self.addr)
    }
}
