//! The request side of the MQTT frontend: dispatching received messages (requests and
//! Zigbee2MQTT keypad codes) to the core and publishing the replies; refusals are audited.
//! Knows nothing of connections (`mod.rs`) or the event stream.

use super::proto::{self, Action, Reply, Request, RequestError, Topic};
use super::{lock, Frontend};
use crate::core::selfservice::{ChangeOutcome, ChangeRequest, ForgotOutcome, ForgotRequest};
use crate::core::Outcome;
use crate::domain::{AuditKind, AuthRequest, Credential, DeviceId, Origin, Timestamp};
use rumqttc::{AsyncClient, Publish, QoS};
use std::sync::Arc;
use std::time::Instant;
use tokio_util::task::TaskTracker;

impl Frontend {
    pub(super) fn dispatch(
        self: Arc<Self>,
        p: Publish,
        client: &AsyncClient,
        tracker: &TaskTracker,
    ) {
        let topic = p.topic.clone();
        match proto::classify(&topic, &self.cfg.prefix, &self.cfg.zigbee_base_topic) {
            Topic::Request(device) => {
                let device = DeviceId(device.to_string());
                self.on_request(device, &p, topic.clone(), client, tracker)
            }
            Topic::Zigbee(name) => {
                let Some(device) = self.cfg.zigbee_keypads.get(name).cloned() else {
                    return;
                };
                if p.retain {
                    // A retained keypad state is history, not somebody at the door now.
                    return;
                }
                let attempt = match proto::parse_zigbee(&p.payload) {
                    Ok(Some(a)) => a,
                    Ok(None) => return,
                    Err(e) => {
                        return self.refuse(&topic, &format!("malformed keypad message: {e}"))
                    }
                };
                let scope = format!("zigbee:{name}");
                if !lock(&self.replay).fresh(
                    &scope,
                    &attempt.transaction.to_string(),
                    Instant::now(),
                ) {
                    return;
                }
                let set_topic = format!("{}/{}/set", self.cfg.zigbee_base_topic, name);
                let client = client.clone();
                tracker.spawn(async move {
                    let outcome = self
                        .decide(device, Credential::Pin(attempt.code), topic)
                        .await;
                    let granted = matches!(outcome, Outcome::Granted { .. });
                    let payload = proto::encode_zigbee(&attempt.transaction, granted);
                    if let Err(e) = client.try_publish(set_topic, QoS::AtLeastOnce, false, payload)
                    {
                        tracing::warn!(error = %e, "could not queue a keypad answer");
                    }
                });
            }
            Topic::Other => {}
        }
    }

    /// A request on `<prefix>/request/<device>`: refused (audited; a malformed one with a
    /// readable id is answered `error`) or decided in its own task.
    fn on_request(
        self: Arc<Self>,
        device: DeviceId,
        p: &Publish,
        topic: String,
        client: &AsyncClient,
        tracker: &TaskTracker,
    ) {
        if !self.cfg.devices.contains(&device) {
            return self.refuse(&topic, "request for a device not in mqtt.devices");
        }
        if p.retain {
            return self.refuse(&topic, "retained request (a stale or replayed message)");
        }
        let reply_topic = format!("{}/reply/{}", self.cfg.prefix, device.0);
        let request = match proto::parse_request(&p.payload) {
            Ok(r) => r,
            Err(malformed) => {
                self.refuse(&topic, &format!("malformed request: {}", malformed.error));
                if let Some(id) = malformed.id {
                    let payload = proto::encode_reply(&id, &Reply::Error(malformed.error));
                    publish_reply(client, reply_topic, payload);
                }
                return;
            }
        };
        let now_ms = Timestamp::now().millis();
        if !proto::timely(request.sent_at_ms, now_ms, self.cfg.replay_window) {
            self.refuse(
                &topic,
                &format!("malformed request: {}", RequestError::Stale),
            );
            let payload = proto::encode_reply(&request.id, &Reply::Error(RequestError::Stale));
            return publish_reply(client, reply_topic, payload);
        }
        if !lock(&self.replay).fresh(&device.0, &request.id_key(), Instant::now()) {
            return self.refuse(&topic, "duplicate request id within the replay window");
        }
        let client = client.clone();
        tracker.spawn(async move {
            let payload = self.answer(device, request, topic).await;
            publish_reply(&client, reply_topic, payload);
        });
    }

    /// Decides a request and encodes its reply.
    async fn answer(&self, device: DeviceId, request: Request, topic: String) -> Vec<u8> {
        let id = request.id;
        let origin = Origin::Mqtt {
            topic: topic.clone(),
        };
        let reply = |reply: Reply<'_>| proto::encode_reply(&id, &reply);
        match request.action {
            Action::Unlock(credential) => match self.decide(device, credential, topic).await {
                Outcome::Granted {
                    user,
                    action_failed,
                    ..
                } => reply(Reply::Granted {
                    user: &user,
                    action_failed,
                }),
                Outcome::Denied | Outcome::LockedOut => reply(Reply::Denied),
                Outcome::Busy => reply(Reply::Busy),
            },
            Action::Change { user, old, new } => {
                let Some(_slot) = self.slot(&topic) else {
                    return reply(Reply::Busy);
                };
                let request = ChangeRequest {
                    device,
                    origin,
                    id: user,
                    old,
                    new,
                    received_at: Timestamp::now(),
                };
                match self.core.change_pin(request).await {
                    ChangeOutcome::Changed => reply(Reply::Changed),
                    ChangeOutcome::Denied | ChangeOutcome::LockedOut => reply(Reply::Denied),
                    ChangeOutcome::Busy => reply(Reply::Busy),
                    ChangeOutcome::Refused(reason) => reply(Reply::Refused(&reason)),
                    ChangeOutcome::NotAllowed => reply(Reply::NotAllowed),
                }
            }
            Action::Forgot { user } => {
                let Some(_slot) = self.slot(&topic) else {
                    return reply(Reply::Busy);
                };
                let request = ForgotRequest {
                    device,
                    origin,
                    id: user,
                    received_at: Timestamp::now(),
                };
                match self.core.forgot_pin(request).await {
                    ForgotOutcome::Accepted => reply(Reply::Accepted),
                    ForgotOutcome::Busy => reply(Reply::Busy),
                    ForgotOutcome::NotAllowed => reply(Reply::NotAllowed),
                }
            }
        }
    }

    /// Counts a request and takes one of the in-flight slots; None: answer `busy` without a
    /// decision, audited like any refusal (rate-limited, a flood must not push real
    /// decisions out of the audit log).
    fn slot(&self, topic: &str) -> Option<tokio::sync::SemaphorePermit<'_>> {
        self.link.update(|s| s.requests += 1);
        let slot = self.slots.try_acquire().ok();
        if slot.is_none() {
            self.refuse(topic, "busy: too many requests in flight");
        }
        slot
    }

    async fn decide(&self, device: DeviceId, credential: Credential, topic: String) -> Outcome {
        let Some(_slot) = self.slot(&topic) else {
            return Outcome::Busy;
        };
        let request = AuthRequest {
            device,
            credential,
            origin: Origin::Mqtt { topic },
            received_at: Timestamp::now(),
        };
        self.core.handle(request).await
    }

    /// Audits a refused message (at most once a minute per reason and topic).
    pub(super) fn refuse(&self, topic: &str, reason: &str) {
        self.link.update(|s| s.refused += 1);
        tracing::info!(topic, reason, "refused an MQTT message");
        if let Some(reason) =
            lock(&self.refusals).admit((topic.to_string(), reason.to_string()), reason)
        {
            self.core.record(AuditKind::Refused {
                frontend: "mqtt".into(),
                peer: topic.into(),
                reason,
            });
        }
    }
}

/// Replies go out at QoS 1, never retained.
fn publish_reply(client: &AsyncClient, topic: String, payload: Vec<u8>) {
    if let Err(e) = client.try_publish(topic, QoS::AtLeastOnce, false, payload) {
        tracing::warn!(error = %e, "could not queue an MQTT reply");
    }
}
