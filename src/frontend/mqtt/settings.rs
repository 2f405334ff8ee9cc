//! The `[mqtt]` settings: the MQTT frontend's own type, which `config` parses into. Plain
//! data; secrets are paths, read when the daemon starts.

use crate::domain::DeviceId;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone, Debug, Serialize)]
pub struct MqttConfig {
    pub host: String,
    pub port: u16,
    pub client_id: String,
    /// Topic prefix: requests on `<prefix>/request/<device>`, events on `<prefix>/events`.
    pub prefix: String,
    pub username: Option<String>,
    /// Read at start; never printed.
    pub password_file: Option<PathBuf>,
    pub tls: bool,
    pub ca_file: Option<PathBuf>,
    #[serde(serialize_with = "crate::duration::serialize")]
    pub keep_alive: Duration,
    /// Devices that accept requests on `<prefix>/request/<device>`.
    pub devices: BTreeSet<DeviceId>,
    /// A request id seen again within this window is a replay and is refused.
    #[serde(serialize_with = "crate::duration::serialize")]
    pub replay_window: Duration,
    /// Events kept while the broker is away; the oldest are dropped (and counted) beyond it.
    pub outbox_max: u64,
    pub zigbee_base_topic: String,
    /// Zigbee2MQTT keypad friendly name → the device it opens.
    pub zigbee_keypads: BTreeMap<String, DeviceId>,
}
