//! Keypad bytes to PIN entries, sans-IO: owns the wiped partial-entry buffer; no I/O, no clock.

use crate::domain::Pin;
use std::time::{Duration, Instant};
use zeroize::Zeroize;

/// How a keypad (or the serial bridge in front of it) encodes key presses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Framing {
    /// One ASCII key per byte: `0-9`, `A-D`; `#` submits, `*` clears.
    Keys,
    /// A PIN of `0-9A-Za-z` then CR or LF (`#` and `*` are also understood; CR and LF on an
    /// empty line are line ends, not `#`).
    Line,
    /// One Wiegand 4-bit burst per byte, in the low nibble: 10 = `*`, 11 = `#`.
    Wiegand4,
    /// One Wiegand 8-bit burst per byte: the high nibble is the inverse of the low one.
    Wiegand8,
}

#[derive(Clone, Copy, Debug)]
pub struct FramingConfig {
    pub framing: Framing,
    /// Keys per entry; a `max_length` of 0 is treated as 1.
    pub max_length: usize,
    pub inter_key_timeout: Duration,
}

#[derive(Debug, PartialEq, Eq)]
pub enum KeypadEvent {
    /// A complete entry (`#` in keys/wiegand framings, CR or LF in line framing).
    Submit(Pin),
    /// `*` pressed: the entry so far was discarded. Not emitted when nothing had been typed.
    Cleared,
    /// `*` pressed with nothing typed (the start of a key sequence, or a habitual clear).
    Star,
    /// `#` pressed with nothing typed (CR or LF in line framing are not: they end lines).
    Hash,
    /// The inter-key timeout passed with a partial entry: discarded.
    TimedOut,
    /// More than max_length keys: discarded (the rest up to the next submit/clear is ignored).
    Overlong,
    /// A byte that is not a key in this framing: the partial entry is discarded. A run of
    /// consecutive such bytes (no other byte between, no inter-key timeout gap) gives one event.
    Garbage,
}

/// What one byte means in the configured framing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Key {
    /// A key that is part of the PIN, as the ASCII character to store.
    Char(u8),
    /// CR or LF in line framing: submits, and nothing on an empty line.
    Submit,
    /// `#`: submits, or reports `Hash` on an empty entry.
    Hash,
    Clear,
    /// Filler some keypads send between keys.
    Ignore,
    Garbage,
}

/// The first entry buffer allocation; larger `max_length`s grow it by copy-and-wipe.
const INITIAL_CAPACITY: usize = 32;

pub struct KeypadDecoder {
    config: FramingConfig,
    /// Keys of the current entry. Only `push_char` grows it, never `Vec` itself.
    buf: Vec<u8>,
    /// After Overlong: keys are ignored until the next submit or clear.
    discarding: bool,
    /// When the last key of the partial entry arrived; `Some` exactly while `has_partial()`.
    last_key: Option<Instant>,
    /// When the last byte of a run of garbage bytes arrived.
    last_garbage: Option<Instant>,
}

impl Drop for KeypadDecoder {
    fn drop(&mut self) {
        self.buf.zeroize();
    }
}

impl KeypadDecoder {
    pub fn new(config: FramingConfig) -> Self {
        let config = FramingConfig {
            max_length: config.max_length.max(1),
            ..config
        };
        KeypadDecoder {
            buf: Vec::with_capacity(config.max_length.min(INITIAL_CAPACITY)),
            config,
            discarding: false,
            last_key: None,
            last_garbage: None,
        }
    }

    /// Feeds bytes received at `now`. If the inter-key timeout has passed since the last key of a
    /// partial entry, that entry is discarded first (TimedOut) before these bytes are decoded.
    pub fn push(&mut self, bytes: &[u8], now: Instant) -> Vec<KeypadEvent> {
        let mut events = Vec::new();
        events.extend(self.poll(now));
        for &byte in bytes {
            let key = classify(self.config.framing, byte);
            if key != Key::Garbage {
                self.last_garbage = None;
            }
            match key {
                Key::Char(c) => events.extend(self.key(c, now)),
                Key::Submit => events.extend(self.submit()),
                Key::Hash => events.extend(self.hash()),
                Key::Clear => events.extend(self.clear()),
                Key::Ignore => {}
                Key::Garbage => events.extend(self.garbage(now)),
            }
        }
        events
    }

    /// When a partial entry's inter-key timeout expires (None when no partial entry, or when
    /// the timeout is too large to be represented). The port loop sleeps until then.
    pub fn deadline(&self) -> Option<Instant> {
        self.last_key.and_then(|t| self.expiry(t))
    }

    /// Called when the deadline has passed: Some(TimedOut) if a partial entry was discarded.
    /// An overlong entry being ignored also ends here, silently (Overlong was already emitted).
    pub fn poll(&mut self, now: Instant) -> Option<KeypadEvent> {
        let expired = self.deadline().is_some_and(|deadline| now >= deadline);
        if !expired {
            return None;
        }
        let had_keys = !self.buf.is_empty();
        self.reset();
        had_keys.then_some(KeypadEvent::TimedOut)
    }

    pub fn has_partial(&self) -> bool {
        !self.buf.is_empty() || self.discarding
    }

    fn expiry(&self, since: Instant) -> Option<Instant> {
        since.checked_add(self.config.inter_key_timeout)
    }

    /// Discards the entry in progress (wiping its keys) and any overlong state.
    fn reset(&mut self) {
        self.buf.zeroize();
        self.discarding = false;
        self.last_key = None;
    }

    fn key(&mut self, c: u8, now: Instant) -> Option<KeypadEvent> {
        self.last_key = Some(now);
        if self.discarding {
            return None;
        }
        if self.buf.len() >= self.config.max_length {
            self.buf.zeroize();
            self.discarding = true;
            return Some(KeypadEvent::Overlong);
        }
        self.push_char(c);
        None
    }

    /// Appends without letting `Vec` reallocate in place, which would free an unwiped copy of
    /// the keys: when full, the keys move to a larger buffer and the old one is wiped.
    fn push_char(&mut self, c: u8) {
        if self.buf.len() == self.buf.capacity() {
            let wanted = self.buf.capacity().saturating_mul(2).max(INITIAL_CAPACITY);
            let mut grown = Vec::with_capacity(wanted.min(self.config.max_length));
            grown.extend_from_slice(&self.buf);
            self.buf.zeroize();
            self.buf = grown;
        }
        self.buf.push(c);
    }

    fn submit(&mut self) -> Option<KeypadEvent> {
        let event = if self.discarding || self.buf.is_empty() {
            None
        } else {
            let mut pin = String::with_capacity(self.buf.len());
            pin.extend(self.buf.iter().map(|&b| char::from(b)));
            Some(KeypadEvent::Submit(Pin::new(pin)))
        };
        self.reset();
        event
    }

    fn hash(&mut self) -> Option<KeypadEvent> {
        if self.discarding || !self.buf.is_empty() {
            return self.submit();
        }
        Some(KeypadEvent::Hash)
    }

    fn clear(&mut self) -> Option<KeypadEvent> {
        let event = match (self.discarding, self.buf.is_empty()) {
            (true, _) => None,
            (false, true) => Some(KeypadEvent::Star),
            (false, false) => Some(KeypadEvent::Cleared),
        };
        self.reset();
        event
    }

    fn garbage(&mut self, now: Instant) -> Option<KeypadEvent> {
        self.reset();
        let in_run = self
            .last_garbage
            .is_some_and(|t| self.expiry(t).is_none_or(|end| now < end));
        self.last_garbage = Some(now);
        (!in_run).then_some(KeypadEvent::Garbage)
    }
}

fn classify(framing: Framing, byte: u8) -> Key {
    match framing {
        Framing::Keys => match byte {
            b'0'..=b'9' | b'A'..=b'D' => Key::Char(byte),
            b'a'..=b'd' => Key::Char(byte.to_ascii_uppercase()),
            b'#' => Key::Hash,
            b'*' => Key::Clear,
            b'\r' | b'\n' | b' ' | 0 => Key::Ignore,
            _ => Key::Garbage,
        },
        Framing::Line => match byte {
            b'0'..=b'9' | b'A'..=b'Z' | b'a'..=b'z' => Key::Char(byte),
            b'\r' | b'\n' => Key::Submit,
            b'#' => Key::Hash,
            b'*' => Key::Clear,
            _ => Key::Garbage,
        },
        Framing::Wiegand4 if byte >> 4 == 0 => wiegand_key(byte),
        Framing::Wiegand8 if byte >> 4 == (!byte & 0x0f) => wiegand_key(byte & 0x0f),
        Framing::Wiegand4 | Framing::Wiegand8 => Key::Garbage,
    }
}

/// A Wiegand keypad's 4-bit key code: 0-9 digits, 10 = `*`, 11 = `#`.
fn wiegand_key(code: u8) -> Key {
    match code {
        0..=9 => Key::Char(b'0' + code),
        10 => Key::Clear,
        11 => Key::Hash,
        _ => Key::Garbage,
    }
}

#[cfg(test)]
#[path = "framing_tests.rs"]
mod tests;
