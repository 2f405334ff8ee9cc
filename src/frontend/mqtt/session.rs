//! The broker session of the request connection when a packet above
//! `MAX_INCOMING_PACKET` arrives: told apart from other failures, and discarded before the
//! next persistent connection so the broker cannot send that packet again.

use super::settings::MqttConfig;
use super::{describe, options, spawn_poller};
use rumqttc::{AsyncClient, ConnectionError, Event, Packet, StateError};
use std::time::Duration;
use tokio_util::task::TaskTracker;

/// The size of a packet that ended the connection for being above `MAX_INCOMING_PACKET`.
/// The broker sends such a QoS 1 message again on every reconnect of a persistent session,
/// which would keep pinwarden offline for good, so the next connection starts by
/// discarding the session (`discard`).
pub fn oversize(e: &ConnectionError) -> Option<usize> {
    match e {
        ConnectionError::MqttState(StateError::Deserialization(
            rumqttc::mqttbytes::Error::PayloadSizeLimitExceeded(size),
        )) => Some(*size),
        _ => None,
    }
}

/// Connects once with a clean session under our client id, which makes the broker discard
/// the persistent one (its queued messages with it), and disconnects: the next persistent
/// connection starts empty and subscribes again.
pub async fn discard(
    cfg: &MqttConfig,
    password: Option<&str>,
    tracker: &TaskTracker,
) -> Result<(), String> {
    let opts = options(cfg, cfg.client_id.clone(), password, false)?;
    let (client, eventloop) = AsyncClient::new(opts, 8);
    let mut events = spawn_poller(eventloop, tracker);
    let acked = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match events.recv().await {
                Some(Ok(Event::Incoming(Packet::ConnAck(_)))) => return Ok(()),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(describe(cfg, &e)),
                None => return Err("the MQTT event loop ended".to_string()),
            }
        }
    })
    .await
    .unwrap_or_else(|_| Err("the broker did not answer a clean connect in time".into()));
    let _ = client.try_disconnect();
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(Ok(_)) = events.recv().await {}
    })
    .await;
    acked
}
