//! Key sequences over the decoder's events, sans-IO: a plain entry, the self-change sequence
//! `**` id `#` old `#` new `#` new `#` and the forgotten-PIN sequence `*#` id `#`. Owns the
//! fields of a sequence in progress (PINs wiped on drop); no I/O, no clock, no core.

use super::framing::{FramingConfig, KeypadDecoder, KeypadEvent};
use crate::domain::Pin;
use std::time::{Duration, Instant};

/// What a person at the keypad asked for.
#[derive(Debug, PartialEq, Eq)]
pub enum Input {
    /// A PIN (or a card line) entered the usual way.
    Entry(Pin),
    /// `**` id `#` old `#` new `#` new `#`, the new PIN typed the same twice.
    Change { id: String, old: Pin, new: Pin },
    /// `*#` id `#`.
    Forgot { id: String },
    /// The new PIN and its repetition differ: nothing is asked, the keypad says `refused`.
    Mismatch,
    /// A sequence given up: `*`, a timeout, garbage or an overlong field. Nothing is asked.
    Abandoned,
    /// A decoder event with nothing to answer (an entry cleared, timed out, overlong…).
    Discarded(KeypadEvent),
}

/// Fields of the change sequence: id, old PIN, new PIN, new PIN again.
const CHANGE_FIELDS: usize = 4;

#[derive(Debug)]
enum State {
    Idle,
    /// `*` on an empty entry: a second `*` or a `#` starts a sequence; keys make it a clear.
    Star,
    Change(Vec<Pin>),
    Forgot,
}

pub struct Sequencer {
    decoder: KeypadDecoder,
    state: State,
    /// When the state last moved (not Idle): with no partial entry, it ends at `since +
    /// inter_key_timeout`.
    since: Option<Instant>,
    timeout: Duration,
}

impl Sequencer {
    pub fn new(config: FramingConfig) -> Self {
        Sequencer {
            decoder: KeypadDecoder::new(config),
            state: State::Idle,
            since: None,
            timeout: config.inter_key_timeout,
        }
    }

    /// Feeds bytes received at `now`; a sequence or entry whose time ran out ends first.
    pub fn push(&mut self, bytes: &[u8], now: Instant) -> Vec<Input> {
        let mut inputs = self.poll(now);
        for event in self.decoder.push(bytes, now) {
            inputs.extend(self.step(event, now));
        }
        inputs
    }

    /// When the entry being typed, or else the sequence waiting for its next field, times
    /// out (None: nothing pending, or a timeout too large to represent).
    pub fn deadline(&self) -> Option<Instant> {
        if self.decoder.has_partial() {
            return self.decoder.deadline();
        }
        self.since.and_then(|t| t.checked_add(self.timeout))
    }

    /// Called when the deadline has passed.
    pub fn poll(&mut self, now: Instant) -> Vec<Input> {
        let mut inputs = Vec::new();
        if let Some(event) = self.decoder.poll(now) {
            inputs.extend(self.step(event, now));
        }
        let expired = self.deadline().is_some_and(|deadline| now >= deadline);
        if expired && !self.decoder.has_partial() {
            inputs.extend(self.give_up());
        }
        inputs
    }

    /// Ends the state: a sequence in progress is Abandoned, a lone `*` was only a clear.
    fn give_up(&mut self) -> Option<Input> {
        self.since = None;
        match std::mem::replace(&mut self.state, State::Idle) {
            State::Idle | State::Star => None,
            State::Change(_) | State::Forgot => Some(Input::Abandoned),
        }
    }

    fn enter(&mut self, state: State, now: Instant) -> Option<Input> {
        self.state = state;
        self.since = Some(now);
        None
    }

    fn step(&mut self, event: KeypadEvent, now: Instant) -> Option<Input> {
        match (&mut self.state, event) {
            (State::Idle, KeypadEvent::Star) => self.enter(State::Star, now),
            (State::Idle, KeypadEvent::Submit(pin)) => Some(Input::Entry(pin)),
            (State::Idle, event) => Some(Input::Discarded(event)),
            (State::Star, KeypadEvent::Star) => self.enter(State::Change(Vec::new()), now),
            (State::Star, KeypadEvent::Hash) => self.enter(State::Forgot, now),
            (State::Star, event) => {
                self.give_up();
                self.step(event, now)
            }
            (State::Change(fields), KeypadEvent::Submit(pin)) => {
                fields.push(pin);
                if fields.len() < CHANGE_FIELDS {
                    self.since = Some(now);
                    return None;
                }
                let fields = std::mem::take(fields);
                self.give_up();
                Some(change(fields))
            }
            (State::Forgot, KeypadEvent::Submit(id)) => {
                self.give_up();
                Some(Input::Forgot {
                    id: id.expose().to_string(),
                })
            }
            // A stray `#` between fields is not a field.
            (State::Change(_) | State::Forgot, KeypadEvent::Hash) => {
                self.since = Some(now);
                None
            }
            (State::Change(_) | State::Forgot, _) => self.give_up(),
        }
    }
}

/// The four fields of a change sequence, read once all are in.
fn change(fields: Vec<Pin>) -> Input {
    let [id, old, new, again]: [Pin; CHANGE_FIELDS] = match fields.try_into() {
        Ok(fields) => fields,
        Err(_) => return Input::Abandoned,
    };
    if new != again {
        return Input::Mismatch;
    }
    Input::Change {
        id: id.expose().to_string(),
        old,
        new,
    }
}

#[cfg(test)]
#[path = "sequence_tests.rs"]
mod tests;
