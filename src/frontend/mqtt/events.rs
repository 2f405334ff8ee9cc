//! The event stream: publishes the durable outbox on `<prefix>/events`, in order, over its
//! own connection, so every PUBACK on it acknowledges an event. A batch leaves the outbox
//! only when the broker has acknowledged all of it; after a broken connection it is sent
//! again (at least once; consumers deduplicate by `seq`). One connection is one unit of a
//! supervised worker.

use super::settings::MqttConfig;
use super::{describe, options, spawn_poller, Link};
use crate::domain::AuditEvent;
use crate::worker::{Context, Next, Worker};
use rumqttc::{AsyncClient, Event, Packet, QoS};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::task::TaskTracker;

const BATCH: usize = 64;
const IDLE_POLL: Duration = Duration::from_millis(100);

/// What the outbox holds: the oldest events (with their sequence numbers), how many were
/// dropped since the last acknowledgement, and how many are waiting in all.
pub struct Pending {
    pub events: Vec<(u64, AuditEvent)>,
    pub dropped: u64,
    pub waiting: u64,
}

/// The outbox as the frontend sees it (the daemon implements it over the store).
pub trait EventOutbox: Send + Sync {
    /// Up to `limit` events, oldest first.
    fn peek(&self, limit: usize) -> Result<Pending, String>;
    /// Everything up to `upto` was published, and `dropped` was reported.
    fn ack(&self, upto: u64, dropped: u64) -> Result<(), String>;
}

/// A batch on the wire, waiting for its acknowledgements.
struct InFlight {
    last_seq: u64,
    dropped: u64,
    awaiting: usize,
}

/// The event stream as a supervised worker: a unit of work is one connection.
pub struct Events {
    cfg: Arc<MqttConfig>,
    password: Option<String>,
    outbox: Arc<dyn EventOutbox>,
    link: Link,
    topic: String,
    tracker: TaskTracker,
}

impl Events {
    pub fn new(
        cfg: Arc<MqttConfig>,
        password: Option<String>,
        outbox: Arc<dyn EventOutbox>,
        link: Link,
    ) -> Self {
        Events {
            topic: format!("{}/events", cfg.prefix),
            cfg,
            password,
            outbox,
            link,
            tracker: TaskTracker::new(),
        }
    }

    pub fn name(&self) -> String {
        format!("mqtt events ({}:{})", self.cfg.host, self.cfg.port)
    }

    /// Publishes until the connection fails (`Err`) or shutdown (`Ok`).
    async fn connection(&self, cx: &Context) -> Result<Next, String> {
        let (outbox, link, topic) = (self.outbox.as_ref(), &self.link, self.topic.as_str());
        let client_id = format!("{}-events", self.cfg.client_id);
        let opts = options(&self.cfg, client_id, self.password.as_deref(), false)?;
        let (client, eventloop) = AsyncClient::new(opts, BATCH * 2);
        let mut events = spawn_poller(eventloop, &self.tracker);
        let mut connected = false;
        let mut in_flight: Option<InFlight> = None;
        loop {
            let ready = connected && in_flight.is_none();
            let event = tokio::select! {
                _ = cx.shutdown().cancelled() => {
                    let _ = client.try_disconnect();
                    return Ok(Next::Done);
                }
                event = events.recv() => event,
                _ = tokio::time::sleep(IDLE_POLL), if ready => {
                    in_flight = publish_batch(&client, topic, outbox, link);
                    continue;
                }
            };
            match event {
                Some(Ok(Event::Incoming(Packet::ConnAck(_)))) => {
                    connected = true;
                    cx.healthy();
                    link.update(|s| s.events_connected = true);
                    in_flight = publish_batch(&client, topic, outbox, link);
                }
                Some(Ok(Event::Incoming(Packet::PubAck(_)))) => {
                    let done = in_flight.as_mut().is_some_and(|f| {
                        f.awaiting = f.awaiting.saturating_sub(1);
                        f.awaiting == 0
                    });
                    if done {
                        let f = in_flight.take().expect("checked above");
                        if let Err(e) = outbox.ack(f.last_seq, f.dropped) {
                            tracing::error!(error = %e, "cannot acknowledge published events");
                        }
                        in_flight = publish_batch(&client, topic, outbox, link);
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(describe(&self.cfg, &e)),
                None => return Err("the MQTT event loop ended".into()),
            }
        }
    }
}

impl Worker for Events {
    async fn work(&mut self, cx: &Context) -> Result<Next, String> {
        let result = self.connection(cx).await;
        self.link.update(|s| s.events_connected = false);
        result
    }

    async fn stop(&mut self) {
        self.tracker.close();
        self.tracker.wait().await;
    }
}

/// Publishes the next batch (preceded by a notice of dropped events, if any).
fn publish_batch(
    client: &AsyncClient,
    topic: &str,
    outbox: &dyn EventOutbox,
    link: &Link,
) -> Option<InFlight> {
    let Pending {
        events: batch,
        dropped,
        waiting: pending,
    } = match outbox.peek(BATCH) {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "cannot read the event outbox");
            return None;
        }
    };
    link.update(|s| {
        s.outbox_pending = pending;
        s.outbox_dropped = dropped;
    });
    let last_seq = batch.last().map(|(seq, _)| *seq)?;
    let mut payloads = Vec::with_capacity(batch.len() + 1);
    if dropped > 0 {
        payloads.push(serde_json::json!({"event": "outbox_dropped", "count": dropped}).to_string());
    }
    for (seq, event) in &batch {
        let mut value = serde_json::to_value(event).unwrap_or_default();
        value["seq"] = (*seq).into();
        payloads.push(value.to_string());
    }
    let awaiting = payloads.len();
    for payload in payloads {
        if let Err(e) = client.try_publish(topic, QoS::AtLeastOnce, false, payload) {
            // The connection is failing; the batch will be sent again after reconnecting.
            tracing::debug!(error = %e, "could not queue an event");
            return Some(InFlight {
                last_seq,
                dropped,
                awaiting: usize::MAX,
            });
        }
    }
    Some(InFlight {
        last_seq,
        dropped,
        awaiting,
    })
}
