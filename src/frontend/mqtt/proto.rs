//! MQTT payloads, sans-IO: topic classification, request parsing (unlock, change, forgot;
//! unknown fields refused; a PIN never reaches an error), reply encoding, Zigbee2MQTT keypad actions and answers, and the replay guard.
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

/// What a request asks for.
#[derive(Debug)]
pub enum Action {
    /// `{"id":…,"pin":…}` with an optional `"user"` or `"card"` (and `"action":"unlock"`).
    Unlock(Credential),
    /// `{"id":…,"action":"change","user":…,"pin":<old>,"new_pin":<new>}`
    Change { user: String, old: Pin, new: Pin },
    /// `{"id":…,"action":"forgot","user":…}`
    Forgot { user: String },
}

/// A decodable request: its id (echoed as sent, string or number), when the controller
/// sent it if it says so (`"ts"`, Unix milliseconds, optional in every schema) and what it
/// asks.
#[derive(Debug)]
pub struct Request {
    pub id: Value,
    pub sent_at_ms: Option<i64>,
    pub action: Action,
}

impl Request {
    /// The id as a replay-guard key.
    pub fn id_key(&self) -> String {
        self.id.to_string()
    }
}

/// Why a request payload was refused. The text never echoes the payload (nor a field name:
/// a mistyped payload may carry a PIN anywhere).
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
    #[error("missing \"new_pin\" (a string of digits or letters)")]
    NoNewPin,
    #[error("missing \"user\" (change and forgot requests name the user)")]
    NoUser,
    #[error("a field is longer than {MAX_FIELD} characters or not a string")]
    BadField,
    #[error("\"action\" is not \"unlock\", \"change\" or \"forgot\"")]
    UnknownAction,
    #[error(
        "a field this request does not take (unlock: id, pin, user or card; change: id, \
         action, user, pin, new_pin; forgot: id, action, user; any: ts)"
    )]
    UnknownField,
    #[error("\"ts\" is not a whole number of Unix milliseconds")]
    BadTime,
    #[error("\"ts\" is further from now than mqtt.replay_window: a stale or early request")]
    Stale,
}

/// A refused payload: why, and its id when one could be read (so the reply can say why).
#[derive(Debug, PartialEq, Eq)]
pub struct Malformed {
    pub id: Option<Value>,
    pub error: RequestError,
}

type Fields = serde_json::Map<String, Value>;

/// Reads a request payload (see `Action` for the three schemas). Every schema refuses fields
/// it does not name: a field it ignored could be a request it does not perform (`new_pin`
/// on an unlock). Every string left unread is wiped.
pub fn parse_request(payload: &[u8]) -> Result<Request, Malformed> {
    let refuse = |error| Malformed { id: None, error };
    if payload.len() > MAX_PAYLOAD {
        return Err(refuse(RequestError::TooLarge));
    }
    let Ok(Value::Object(mut map)) = serde_json::from_slice::<Value>(payload) else {
        return Err(refuse(RequestError::NotJson));
    };
    let id = match map.remove("id") {
        Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_FIELD => Some(Value::String(s)),
        Some(Value::Number(n)) => Some(Value::Number(n)),
        _ => None,
    };
    let sent_at_ms = match map.remove("ts") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_i64().map(Some).ok_or(RequestError::BadTime),
        Some(_) => Err(RequestError::BadTime),
    };
    let action = parse_action(&mut map);
    wipe(map);
    match (id, sent_at_ms, action) {
        (Some(id), Ok(sent_at_ms), Ok(action)) => Ok(Request {
            id,
            sent_at_ms,
            action,
        }),
        (None, _, _) => Err(refuse(RequestError::NoId)),
        (id, Err(error), _) | (id, _, Err(error)) => Err(Malformed { id, error }),
    }
}

/// Whether a request sent at `sent_at_ms` (when it says) may still be acted on at `now_ms`:
/// within `window` either way. A persistent session delivers requests queued by the
/// broker while pinwarden was away; a door must not open for somebody long gone.
pub fn timely(sent_at_ms: Option<i64>, now_ms: i64, window: Duration) -> bool {
    sent_at_ms.is_none_or(|t| now_ms.abs_diff(t) <= window.as_millis() as u64)
}

fn parse_action(map: &mut Fields) -> Result<Action, RequestError> {
    let action = match map.remove("action") {
        None => None,
        Some(Value::String(s)) => Some(s),
        Some(mut other) => {
            wipe_value(&mut other);
            return Err(RequestError::UnknownAction);
        }
    };
    match action.as_deref() {
        None | Some("unlock") => parse_unlock(map),
        Some("change") => {
            let old = take_pin(map.remove("pin"));
            let new = take_pin(map.remove("new_pin"));
            let user = text(map.remove("user"));
            only_known(map)?;
            let user = user?.ok_or(RequestError::NoUser)?;
            let (old, new) = (
                old?,
                new.map_err(|e| match e {
                    RequestError::NoPin => RequestError::NoNewPin,
                    e => e,
                })?,
            );
            Ok(Action::Change { user, old, new })
        }
        Some("forgot") => {
            let user = text(map.remove("user"));
            only_known(map)?;
            let user = user?.ok_or(RequestError::NoUser)?;
            Ok(Action::Forgot { user })
        }
        Some(_) => Err(RequestError::UnknownAction),
    }
}

fn parse_unlock(map: &mut Fields) -> Result<Action, RequestError> {
    let pin = take_pin(map.remove("pin"));
    let (user, card) = (text(map.remove("user")), text(map.remove("card")));
    only_known(map)?;
    let pin = pin?;
    let credential = match (user?, card?) {
        (Some(id), _) => Credential::IdPin { id, pin },
        (None, Some(card)) => match crate::domain::normalise_card(&card) {
            Some(card) => Credential::CardPin { card, pin },
            None => return Err(RequestError::BadField),
        },
        (None, None) => Credential::Pin(pin),
    };
    Ok(Action::Unlock(credential))
}

/// A short optional string field (a user id or a card).
fn text(v: Option<Value>) -> Result<Option<String>, RequestError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_FIELD => Ok(Some(s)),
        Some(mut other) => {
            wipe_value(&mut other);
            Err(RequestError::BadField)
        }
    }
}

/// Err when fields are left once the schema's own were taken.
fn only_known(map: &Fields) -> Result<(), RequestError> {
    match map.is_empty() {
        true => Ok(()),
        false => Err(RequestError::UnknownField),
    }
}

/// Wipes every string left in a payload (names and values): any of them may be a PIN.
fn wipe(map: Fields) {
    for (mut name, mut value) in map {
        name.zeroize();
        wipe_value(&mut value);
    }
}

fn wipe_value(value: &mut Value) {
    match value {
        Value::String(s) => s.zeroize(),
        Value::Array(items) => items.iter_mut().for_each(wipe_value),
        Value::Object(map) => wipe(std::mem::take(map)),
        _ => {}
    }
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
    /// A change request set the new PIN.
    Changed,
    /// A change request's new PIN breaks the policy (the reason says which rule).
    Refused(&'a str),
    /// Self-service is off (`[policy] user_can_change`) or not for this device.
    NotAllowed,
    /// A forgot request was taken (the same for any user).
    Accepted,
    /// A malformed request whose id could be read.
    Error(RequestError),
}

pub fn encode_reply(id: &Value, reply: &Reply<'_>) -> Vec<u8> {
    let result = |result: &str| serde_json::json!({"id": id, "result": result});
    let body = match reply {
        Reply::Granted {
            user,
            action_failed: false,
        } => serde_json::json!({"id": id, "result": "granted", "user": user}),
        Reply::Granted { user, .. } => {
            serde_json::json!({"id": id, "result": "granted", "user": user, "action_failed": true})
        }
        Reply::Denied => result("denied"),
        Reply::Busy => result("busy"),
        Reply::Changed => result("changed"),
        Reply::Refused(reason) => {
            serde_json::json!({"id": id, "result": "refused", "reason": reason})
        }
        Reply::NotAllowed => result("not_allowed"),
        Reply::Accepted => result("accepted"),
        Reply::Error(e) => serde_json::json!({"id": id, "result": "error", "error": e.to_string()}),
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
/// with no code to check. Unlike requests, other fields are expected: the message is the
/// device's whole state as Zigbee2MQTT publishes it (battery, linkquality, tamper…), not a
/// schema of ours; only the two fields read here must have their types.
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
