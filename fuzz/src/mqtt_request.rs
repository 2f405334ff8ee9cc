//! MQTT requests: topic classification, the request decoder, the reply encoder and the
//! replay guard. Input: `topic \n payload`.
//! Invariants: a decoded request's id survives into a valid JSON reply; a refusal whose id
//! could be read still gets a valid JSON reply; the second sight of an id is a replay.

use pinwarden::frontend::mqtt::proto::{self, Action, ReplayGuard, Reply, Topic};
use serde_json::Value;
use std::time::{Duration, Instant};

fn reply_is_json(id: &Value, reply: &Reply<'_>) {
    let bytes = proto::encode_reply(id, reply);
    let back: Value = serde_json::from_slice(&bytes).expect("a reply is JSON");
    assert!(back.get("id").is_some(), "the reply has an id");
    // Compared as written: serde_json's default float parsing may land one ulp from the
    // shortest form it prints, so a float id read back need not be equal.
    let text = String::from_utf8(bytes).expect("a reply is UTF-8");
    assert!(
        text.contains(&format!("\"id\":{id}")),
        "the reply echoes the id"
    );
}

pub fn run(data: &[u8]) {
    let (topic, payload) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (String::from_utf8_lossy(&data[..at]), &data[at + 1..]),
        None => ("pinwarden/request/door-1".into(), data),
    };
    match proto::classify(&topic, "pinwarden", "zigbee2mqtt") {
        Topic::Request(device) => {
            assert!(!device.is_empty() && !device.contains('/'), "device name")
        }
        // Zigbee2MQTT friendly names may contain `/`; our own `<name>/set` is not a keypad.
        Topic::Zigbee(name) => assert!(!name.is_empty() && !name.ends_with("/set"), "name"),
        _ => {}
    }
    match proto::parse_request(payload) {
        Ok(request) => {
            let user = match &request.action {
                Action::Change { user, .. } | Action::Forgot { user } => user.as_str(),
                Action::Unlock(_) => "someone",
            };
            reply_is_json(
                &request.id,
                &Reply::Granted {
                    user,
                    action_failed: true,
                },
            );
            reply_is_json(&request.id, &Reply::Refused(user));
            let mut guard = ReplayGuard::new(Duration::from_secs(30), 4);
            let now = Instant::now();
            let key = request.id_key();
            assert!(guard.fresh(&topic, &key, now));
            assert!(!guard.fresh(&topic, &key, now), "a replay was fresh");
        }
        Err(refused) => {
            let text = refused.error.to_string();
            assert!(!text.is_empty());
            if let Some(id) = refused.id {
                reply_is_json(&id, &Reply::Error(refused.error));
            }
        }
    }
}
