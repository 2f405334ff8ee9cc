//! The event stream: publishes the durable outbox on `<prefix>/events`, in order, over its
//! own connection, so every PUBACK on it acknowledges an event. A batch leaves the outbox
//! only when the broker has acknowledged all of it; after a broken connection it is sent
//! again (at least once; consumers deduplicate by `seq`).

use super::settings::MqttConfig;
use super::{describe, options, spawn_poller, Link};
use crate::domain::AuditEvent;
use rumqttc::{AsyncClient, Event, Packet, QoS};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
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

pub async fn serve_events(
    cfg: Arc<MqttConfig>,
    password: Option<String>,
    outbox: Arc<dyn EventOutbox>,
    link: Link,
    shutdown: CancellationToken,
) {
    let tracker = TaskTracker::new();
    let topic = format!("{}/events", cfg.prefix);
    let mut backoff = crate::backoff::Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
    'connect: loop {
        let Ok(opts) = options(
            &cfg,
            format!("{}-events", cfg.client_id),
            password.as_deref(),
        ) else {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(backoff.next_delay()) => continue,
            }
        };
        let (client, eventloop) = AsyncClient::new(opts, BATCH * 2);
        let mut events = spawn_poller(eventloop, &tracker);
        let mut connected = false;
        let mut in_flight: Option<InFlight> = None;
        loop {
            let ready = connected && in_flight.is_none();
            let event = tokio::select! {
                _ = shutdown.cancelled() => {
                    let _ = client.try_disconnect();
                    break 'connect;
                }
                event = events.recv() => event,
                _ = tokio::time::sleep(IDLE_POLL), if ready => {
                    in_flight = publish_batch(&client, &topic, outbox.as_ref(), &link);
                    continue;
                }
            };
            match event {
                Some(Ok(Event::Incoming(Packet::ConnAck(_)))) => {
                    connected = true;
                    backoff.reset();
                    link.update(|s| s.events_connected = true);
                    in_flight = publish_batch(&client, &topic, outbox.as_ref(), &link);
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
                        in_flight = publish_batch(&client, &topic, outbox.as_ref(), &link);
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    tracing::debug!(error = %describe(&cfg, &e), "MQTT event connection lost");
                    break;
                }
                None => break,
            }
        }
        link.update(|s| s.events_connected = false);
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(backoff.next_delay()) => {}
        }
    }
    tracker.close();
    tracker.wait().await;
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
