//! MQTT payloads, sans-IO: topic classification, request parsing (a PIN never reaches an
//! error), reply encoding, Zigbee2MQTT keypad actions and answers, and the replay guard.
//! Unit-tested and fuzzed; no broker here.

use crate::domain::{Credential, Pin};
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};
use zeroize::Zeroize;

/// Larger request payloads are refused unread (a PIN request is well under 200 bytes).
pub const MAX_PAYLOAD: usize = 1024;
const MAX_FIELD: usize = 64;

/// What a received topic is to us.
#[derive(Debug, PartialEq, Eq)]
pub enum Topic<'a> {
    /// `<prefix>/request/<device>`
    Request(&'a str),
    /// `<zigbee base>/<name>` (a keypad's state message)
    Zigbee(&'a str),
    Other,
}

pub fn classify<'a>(topic: &'a str, prefix: &str, zigbee_base: &str) -> Topic<'a> {
    if let Some(device) = topic
        .strip_prefix(prefix)
        .and_then(|t| t.strip_prefix("/request/"))
    {
        if !device.is_empty() && !device.contains('/') {
            return Topic::Request(device);
        }
    }
    if let Some(name) = topic
        .strip_prefix(zigbee_base)
        .and_then(|t| t.strip_prefix('/'))
    {
        if !name.is_empty() && !name.ends_with("/set") {
            return Topic::Zigbee(name);
        }
    }
    Topic::Other
}

/// A decodable request: its id (echoed as sent, string or number) and the credential.
#[derive(Debug)]
pub struct Request {
    pub id: Value,
    pub credential: Credential,
}

impl Request {
    /// The id as a replay-guard key.
    pub fn id_key(&self) -> String {
        self.id.to_string()
    }
}

/// Why a request payload was refused. The text never echoes the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("payload larger than {MAX_PAYLOAD} bytes")]
    TooLarge,
    #[error("payload is not a JSON object")]
    NotJson,
    #[error("missing or empty \"id\" (a string or a number)")]
    NoId,
    #[error("missing \"pin\" (a string of digits or letters)")]
    NoPin,
    #[error("a field is longer than {MAX_FIELD} characters or not a string")]
    BadField,
}

/// Reads `payload` as `{"id":…,"pin":…}`, `{"id":…,"user":…,"pin":…}` or
/// `{"id":…,"card":…,"pin":…}`. Unknown fields are ignored (firmware adds its own).
pub fn parse_request(payload: &[u8]) -> Result<Request, RequestError> {
    if payload.len() > MAX_PAYLOAD {
        return Err(RequestError::TooLarge);
    }
    let Ok(Value::Object(mut map)) = serde_json::from_slice::<Value>(payload) else {
        return Err(RequestError::NotJson);
    };
    let pin = take_pin(map.remove("pin"));
    let id = match map.remove("id") {
        Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_FIELD => Value::String(s),
        Some(Value::Number(n)) => Value::Number(n),
        _ => return Err(RequestError::NoId),
    };
    let pin = pin?;
    let text = |v: Option<Value>| -> Result<Option<String>, RequestError> {
        match v {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_FIELD => Ok(Some(s)),
            Some(_) => Err(RequestError::BadField),
        }
    };
    let credential = match (text(map.remove("user"))?, text(map.remove("card"))?) {
        (Some(id), _) => Credential::IdPin { id, pin },
        (None, Some(card)) => match crate::domain::normalise_card(&card) {
            Some(card) => Credential::CardPin { card, pin },
            None => return Err(RequestError::BadField),
        },
        (None, None) => Credential::Pin(pin),
    };
    Ok(Request { id, credential })
}

/// Takes the PIN out of its JSON string and wipes the string.
fn take_pin(value: Option<Value>) -> Result<Pin, RequestError> {
    match value {
        Some(Value::String(mut s)) => {
            let ok =
                !s.is_empty() && s.len() <= MAX_FIELD && s.chars().all(|c| c.is_ascii_graphic());
            let pin = ok.then(|| Pin::new(&s));
            s.zeroize();
            pin.ok_or(RequestError::BadField)
        }
        // Firmware that sends the PIN as a number loses leading zeros: refuse it.
        Some(Value::Number(_)) => Err(RequestError::NoPin),
        _ => Err(RequestError::NoPin),
    }
}

/// The reply on `<prefix>/reply/<device>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply<'a> {
    /// `action_failed`: granted, but pinwarden's own actuator for the device failed.
    Granted {
        user: &'a str,
        action_failed: bool,
    },
    Denied,
    Busy,
}

pub fn encode_reply(id: &Value, reply: &Reply<'_>) -> Vec<u8> {
    let body = match reply {
        Reply::Granted {
            user,
            action_failed: false,
        } => serde_json::json!({"id": id, "result": "granted", "user": user}),
        Reply::Granted { user, .. } => {
            serde_json::json!({"id": id, "result": "granted", "user": user, "action_failed": true})
        }
        Reply::Denied => serde_json::json!({"id": id, "result": "denied"}),
        Reply::Busy => serde_json::json!({"id": id, "result": "busy"}),
    };
    body.to_string().into_bytes()
}

/// A code entered on a Zigbee2MQTT alarm keypad.
#[derive(Debug)]
pub struct ZigbeeAttempt {
    pub transaction: Value,
    pub code: Pin,
}

/// Reads a keypad's state message. `Ok(None)`: an ordinary state update (battery, tamper…)
/// with no code to check.
pub fn parse_zigbee(payload: &[u8]) -> Result<Option<ZigbeeAttempt>, RequestError> {
    if payload.len() > 4 * MAX_PAYLOAD {
        return Err(RequestError::TooLarge);
    }
    let Ok(Value::Object(mut map)) = serde_json::from_slice::<Value>(payload) else {
        return Err(RequestError::NotJson);
    };
    let code = map.remove("action_code");
    let transaction = match map.remove("action_transaction") {
        Some(t @ Value::Number(_)) => t,
        _ => return Ok(None),
    };
    match code {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(code) => {
            // Some keypads report the code as a number; digits are all we need then.
            let code = match code {
                Value::Number(n) => Value::String(n.to_string()),
                other => other,
            };
            Ok(Some(ZigbeeAttempt {
                transaction,
                code: take_pin(Some(code))?,
            }))
        }
    }
}

/// The answer on `<base>/<name>/set`: `disarm` for a granted code, `invalid_code` otherwise.
pub fn encode_zigbee(transaction: &Value, granted: bool) -> Vec<u8> {
    let mode = if granted { "disarm" } else { "invalid_code" };
    serde_json::json!({"arm_mode": {"transaction": transaction, "mode": mode}})
        .to_string()
        .into_bytes()
}

/// Remembers request ids per scope (device or keypad) for a window; a repeat is a replay.
pub struct ReplayGuard {
    window: Duration,
    capacity: usize,
    seen: HashMap<(String, String), Instant>,
    order: VecDeque<(Instant, (String, String))>,
}

impl ReplayGuard {
    pub fn new(window: Duration, capacity: usize) -> Self {
        ReplayGuard {
            window,
            capacity,
            seen: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// True the first time `(scope, id)` is seen within the window.
    pub fn fresh(&mut self, scope: &str, id: &str, now: Instant) -> bool {
        while let Some((at, key)) = self.order.front() {
            let expired = now.saturating_duration_since(*at) >= self.window;
            if !expired && self.order.len() < self.capacity {
                break;
            }
            if self.seen.get(key) == Some(at) {
                self.seen.remove(key);
            }
            self.order.pop_front();
        }
        let key = (scope.to_string(), id.to_string());
        if self.seen.contains_key(&key) {
            return false;
        }
        self.seen.insert(key.clone(), now);
        self.order.push_back((now, key));
        true
    }
}

#[cfg(test)]
#[path = "proto_tests.rs"]
mod tests;
