//! The TCP listener for print-release terminals and network card readers: allow-list by
//! source address, a connection limit and one per source, idle and half-line timeouts, a
//! byte rate and a malformed-line budget per connection. A thin loop around the sans-IO
//! `proto` (terminal lines) and `card` (reader lines); `reader` holds card reads and dials
//! readers that are servers; `pace.rs` the per-connection limits.

pub mod card;
pub(crate) mod pace;
pub mod proto;
pub mod reader;
mod selfservice;
pub mod settings;

pub use reader::{DialReader, DIAL_RETRY};

use crate::core::{Core, Outcome};
use crate::domain::{AuditKind, AuthRequest, Credential, DeviceId, Origin, Timestamp};
use crate::frontend::card_hold::CardHold;
use crate::frontend::throttle::Throttle;
use crate::worker::{Context, Next, Settings, Worker};
use pace::{Flow, Pace, SourceSlots};
use proto::{Event, LineSplitter, ProtoError, Reply, Request};
use settings::{TcpConfig, TcpMode};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use zeroize::Zeroize;

const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// How a listener retries a failed accept (out of file descriptors and the like).
pub const ACCEPT_RETRY: Settings =
    Settings::new(Duration::from_millis(100), Duration::from_secs(5));

/// One `[[tcp]] listen` as a supervised worker: waiting for a connection is its idle wait
/// (ended by shutdown), admitting one its unit of work; at shutdown it waits for open
/// connections to finish their current request.
pub struct Listener {
    listener: TcpListener,
    config: Arc<TcpConfig>,
    core: Arc<Core>,
    holds: Arc<CardHold>,
    reader: Arc<Option<card::CardReader>>,
    slots: Arc<Semaphore>,
    sources: SourceSlots,
    connections: TaskTracker,
    refusals: Refusals,
    accepted: Option<std::io::Result<(TcpStream, SocketAddr)>>,
}

impl Listener {
    pub fn new(
        listener: TcpListener,
        config: Arc<TcpConfig>,
        core: Arc<Core>,
        holds: Arc<CardHold>,
    ) -> Self {
        // Validated with the config; `None` only when the listener has no [tcp.card].
        let reader = config
            .card
            .as_ref()
            .and_then(|c| card::CardReader::new(&c.format).ok());
        Listener {
            listener,
            slots: Arc::new(Semaphore::new(config.max_connections)),
            sources: SourceSlots::new(config.max_per_source),
            reader: Arc::new(reader),
            config,
            core,
            holds,
            connections: TaskTracker::new(),
            refusals: Refusals(Throttle::new(4096)),
            accepted: None,
        }
    }

    pub fn name(&self) -> String {
        match self.listener.local_addr() {
            Ok(addr) => format!("tcp listener {addr}"),
            Err(_) => "tcp listener".into(),
        }
    }

    /// Admits one connection: allow-list → device, connection limit, then its session.
    fn admit(&mut self, stream: TcpStream, peer: SocketAddr, shutdown: &CancellationToken) {
        let (core, refusals) = (&self.core, &mut self.refusals);
        let ip = peer.ip().to_canonical();
        let Some(device) = self.config.terminals.get(&ip).cloned() else {
            let reason = "source address not in the allow-list";
            return refusals.refuse(core, &stream, peer, reason, None);
        };
        let Some(source_slot) = self.sources.take(ip) else {
            let reason = "per-source connection limit reached (tcp max_per_source)";
            return refusals.refuse(core, &stream, peer, reason, Some(b"BUSY\r\n"));
        };
        let Ok(slot) = Arc::clone(&self.slots).try_acquire_owned() else {
            let reason = "connection limit reached";
            return refusals.refuse(core, &stream, peer, reason, Some(b"BUSY\r\n"));
        };
        let session = Session {
            device,
            peer,
            config: Arc::clone(&self.config),
            core: Arc::clone(core),
            holds: Arc::clone(&self.holds),
            reader: Arc::clone(&self.reader),
        };
        let shutdown = shutdown.clone();
        self.connections.spawn(async move {
            session.run(stream, shutdown).await;
            drop((slot, source_slot));
        });
    }
}

impl Worker for Listener {
    async fn work(&mut self, cx: &Context) -> Result<Next, String> {
        match self.accepted.take() {
            Some(Ok((stream, peer))) => self.admit(stream, peer, cx.shutdown()),
            Some(Err(e)) => return Err(format!("accept failed: {e}")),
            None => {}
        }
        Ok(Next::Idle)
    }

    async fn wait_for_work(&mut self) {
        self.accepted = Some(self.listener.accept().await);
    }

    async fn stop(&mut self) {
        self.connections.close();
        self.connections.wait().await;
    }
}

/// Refusals are audited at most once a minute per address (the shared `Throttle`).
struct Refusals(Throttle<std::net::IpAddr>);

impl Refusals {
    fn refuse(
        &mut self,
        core: &Core,
        stream: &TcpStream,
        peer: SocketAddr,
        reason: &str,
        reply: Option<&[u8]>,
    ) {
        if let Some(bytes) = reply {
            let _ = stream.try_write(bytes);
        }
        let Some(reason) = self.0.admit(peer.ip(), reason) else {
            return;
        };
        tracing::info!(%peer, reason, "refused a terminal connection");
        core.record(AuditKind::Refused {
            frontend: "tcp".into(),
            peer: peer.to_string(),
            reason,
        });
    }
}

struct Session {
    device: DeviceId,
    peer: SocketAddr,
    config: Arc<TcpConfig>,
    core: Arc<Core>,
    holds: Arc<CardHold>,
    reader: Arc<Option<card::CardReader>>,
}

impl Session {
    async fn run(self, stream: TcpStream, shutdown: CancellationToken) {
        let _ = stream.set_nodelay(true);
        let (mut reader, mut writer) = stream.into_split();
        let mut splitter = LineSplitter::new();
        let mut buf = [0u8; 512];
        let mut line_started: Option<Instant> = None;
        let mut pace = Pace::new(Instant::now());
        loop {
            // A half-sent line must complete within line_timeout of its first byte.
            let deadline = match line_started {
                Some(start) => start + self.config.line_timeout,
                None => Instant::now() + self.config.idle_timeout,
            };
            let read = tokio::select! {
                _ = shutdown.cancelled() => break,
                read = tokio::time::timeout_at(deadline, reader.read(&mut buf)) => read,
            };
            let n = match read {
                Err(_) => {
                    if line_started.is_some() {
                        let _ = send(&mut writer, ProtoError::Timeout.reply()).await;
                    }
                    break;
                }
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(n)) => n,
            };
            // Past the byte rate, the next read waits (the sender is slowed by TCP itself):
            // a flood costs this connection time, not the daemon CPU.
            if let Some(until) = pace.read(n, Instant::now()) {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep_until(until) => {}
                }
            }
            let events = splitter.push(&buf[..n]);
            buf[..n].zeroize();
            // A line completed in this read means any partial now pending is a new line.
            line_started = match (splitter.has_partial(), line_started) {
                (false, _) => None,
                (true, Some(start)) if events.is_empty() => Some(start),
                (true, _) => Some(Instant::now()),
            };
            for event in events {
                let flow = self.answer(event, &mut writer).await;
                if !pace.after(flow) {
                    let _ = send(&mut writer, ProtoError::TooManyErrors.reply()).await;
                    return;
                }
                if flow == Flow::Close {
                    return;
                }
            }
        }
    }

    /// Handles one line: a request, a malformed line (answered `ERR`), or the end.
    async fn answer(&self, event: Event, writer: &mut OwnedWriteHalf) -> Flow {
        let peer = self.peer.ip().to_canonical();
        if self.config.mode != TcpMode::Terminal {
            // A reader: bare card numbers, no replies; anything else is ignored.
            if let (Event::Line(line), Some(reader)) = (&event, self.reader.as_ref()) {
                let (core, holds) = (&self.core, &self.holds);
                reader::reader_line(core, holds, &self.config, reader, &self.device, peer, line)
                    .await;
            }
            return Flow::Request;
        }
        let request = match event {
            Event::Overlong => return refuse(writer, ProtoError::LineTooLong).await,
            Event::Line(line) => proto::parse(&line),
        };
        let credential = match request {
            Err(e) => return refuse(writer, e).await,
            Ok(Request::Ping) => return answered(writer, &proto::encode(&Reply::Pong)).await,
            Ok(Request::Quit) => {
                let _ = send(writer, &proto::encode(&Reply::Bye)).await;
                return Flow::Close;
            }
            Ok(Request::Card(raw)) => {
                let card = match self.reader.as_ref() {
                    Some(reader) => reader.read(raw.as_bytes()),
                    None => crate::domain::normalise_card(&raw),
                };
                let Some(card) = card else {
                    return refuse(writer, ProtoError::Syntax).await;
                };
                let answer = reader::card_read(
                    &self.core,
                    &self.holds,
                    &self.config,
                    &self.device,
                    peer,
                    card,
                )
                .await;
                let reply = match answer {
                    reader::CardAnswer::NeedPin => proto::encode(&Reply::NeedPin),
                    reader::CardAnswer::Decided(outcome) => reply_for(outcome),
                };
                return answered(writer, &reply).await;
            }
            Ok(Request::Change { id, old, new }) => {
                let origin = Origin::Tcp { peer };
                let reply =
                    selfservice::change(&self.core, &self.device, origin, (id, old, new)).await;
                return answered(writer, &reply).await;
            }
            Ok(Request::Forgot { id }) => {
                let origin = Origin::Tcp { peer };
                let reply = selfservice::forgot(&self.core, &self.device, origin, id).await;
                return answered(writer, &reply).await;
            }
            Ok(Request::Pin(pin)) => self.holds.with_pin(&self.device, pin, false),
            Ok(Request::IdPin { id, pin }) => Credential::IdPin { id, pin },
        };
        let request = AuthRequest {
            device: self.device.clone(),
            credential,
            origin: Origin::Tcp { peer },
            received_at: Timestamp::now(),
        };
        answered(writer, &reply_for(self.core.handle(request).await)).await
    }
}

/// A request answered: the connection goes on unless the reply could not be written.
async fn answered(writer: &mut OwnedWriteHalf, reply: &[u8]) -> Flow {
    if send(writer, reply).await {
        Flow::Request
    } else {
        Flow::Close
    }
}

/// A malformed line answered with its `ERR`.
async fn refuse(writer: &mut OwnedWriteHalf, e: ProtoError) -> Flow {
    if send(writer, e.reply()).await {
        Flow::Malformed
    } else {
        Flow::Close
    }
}

/// One reply line per decision. A grant whose release failed still says `OK`, with the
/// reason as a third token.
fn reply_for(outcome: Outcome) -> Vec<u8> {
    match outcome {
        Outcome::Granted {
            user,
            released,
            notice,
            ..
        } => proto::encode(&Reply::Ok {
            user: &user,
            released,
            notice,
        }),
        // The wire is uniform: a lockout is a DENY like any other.
        Outcome::Denied | Outcome::LockedOut => proto::encode(&Reply::Deny),
        Outcome::Busy => proto::encode(&Reply::Busy),
    }
}

async fn send(writer: &mut OwnedWriteHalf, bytes: &[u8]) -> bool {
    matches!(
        tokio::time::timeout(WRITE_TIMEOUT, writer.write_all(bytes)).await,
        Ok(Ok(()))
    )
}
