//! The settings of one `[[tcp]]` block: the TCP frontend's own types, which `config` parses
//! into. Plain data; knows nothing of config files.

use super::card::CardFormat;
use crate::domain::DeviceId;
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// What a `[[tcp]]` block speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TcpMode {
    /// Print-release terminals: `PIN`, `ID … PIN`, `CARD`, `PING` lines with replies.
    Terminal,
    /// Network card readers connecting in: one bare card number per line, no replies.
    Card,
    /// Network card readers that are TCP servers: pinwarden connects to each terminal's
    /// `ADDRESS:PORT` and reconnects with back-off.
    Dial,
}

/// `[tcp.card]`: how card reads become card ids, and the optional card-then-PIN window.
#[derive(Clone, Debug, Serialize)]
pub struct CardConfig {
    pub format: CardFormat,
    /// A card read waits this long for its holder's PIN at a terminal of the same device
    /// instead of logging in alone.
    #[serde(serialize_with = "crate::duration::serialize_opt")]
    pub card_then_pin: Option<Duration>,
}

#[derive(Clone, Debug, Serialize)]
pub struct TcpConfig {
    pub mode: TcpMode,
    /// `None` in dial mode.
    pub listen: Option<SocketAddr>,
    pub max_connections: usize,
    /// Connections one source address may hold at once (within `max_connections`).
    pub max_per_source: usize,
    #[serde(serialize_with = "crate::duration::serialize")]
    pub idle_timeout: Duration,
    #[serde(serialize_with = "crate::duration::serialize")]
    pub line_timeout: Duration,
    /// Allow-list: source address → the device that terminal belongs to.
    pub terminals: BTreeMap<IpAddr, DeviceId>,
    /// Dial mode: reader address → its device.
    pub dial: BTreeMap<SocketAddr, DeviceId>,
    /// How card reads become card ids (card and dial modes, and `CARD` lines).
    pub card: Option<CardConfig>,
}
