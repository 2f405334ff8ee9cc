//! The settings of one `[[keypad]]`: the keypad frontend's own types, which `config` parses
//! into. Plain data; knows nothing of config files or ports.

use super::framing::Framing;
use crate::domain::DeviceId;
use serde::Serialize;
use std::path::PathBuf;
use std::time::Duration;

/// Bytes written back to a keypad for each outcome (LEDs, buzzer).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Feedback {
    pub granted: Vec<u8>,
    pub denied: Vec<u8>,
    pub busy: Vec<u8>,
    pub locked_out: Vec<u8>,
    /// Sent when a card was read and the reader waits for its PIN.
    pub card: Vec<u8>,
    /// The change sequence set the new PIN. Default: the `granted` bytes.
    pub changed: Vec<u8>,
    /// The new PIN breaks the policy, is taken, or was not typed the same twice; nothing
    /// changed. Default: the `denied` bytes.
    pub refused: Vec<u8>,
    /// A forgotten-PIN request was taken (the same for any id). Default: the `granted` bytes.
    pub accepted: Vec<u8>,
}

/// Card-then-PIN on a `line` keypad whose reader sends card reads as prefixed lines.
#[derive(Clone, Debug, Serialize)]
pub struct CardThenPin {
    pub prefix: String,
    #[serde(serialize_with = "crate::duration::serialize")]
    pub window: Duration,
    /// Refuse a PIN that does not follow a card.
    pub required: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct KeypadConfig {
    pub port: PathBuf,
    pub baud: u32,
    pub device: DeviceId,
    pub framing: Framing,
    pub max_length: usize,
    #[serde(serialize_with = "crate::duration::serialize")]
    pub inter_key_timeout: Duration,
    pub card: Option<CardThenPin>,
    pub feedback: Feedback,
}
