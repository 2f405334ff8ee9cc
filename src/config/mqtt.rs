//! The `[mqtt]` block (broker, credentials, topics, request devices, Zigbee2MQTT keypads),
//! parsed into the MQTT frontend's own `MqttConfig`, and the MQTT door actuator presets
//! (Tasmota, Shelly Gen2) that turn a `[[door]]` into a topic and payload. Reads no files: secrets are paths, read when the daemon starts.

use super::devices::Device;
use super::raw::{RawDoor, RawMqtt};
use super::{absolute, duration_key};
use crate::domain::DeviceId;
use crate::frontend::mqtt::settings::MqttConfig;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// The host's name (from the kernel, not /proc: the unit's `ProcSubset=pid` hides
/// /proc/sys), or `site`.
fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `buf.len()` bytes into `buf`.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Some(String::from_utf8_lossy(&buf[..len]).trim().to_string())
        .filter(|h| rc == 0 && !h.is_empty())
        .unwrap_or_else(|| "site".into())
}

/// A topic level or prefix we publish or subscribe to must not contain wildcards.
fn plain_topic(key: &str, topic: &str) -> Result<(), String> {
    if topic.is_empty() || topic.contains(['+', '#', '\0']) || topic.starts_with('/') {
        return Err(format!(
            "{key} = \"{topic}\" is not a usable topic: no wildcards (+ #), no leading /, not empty"
        ));
    }
    Ok(())
}

pub fn validate_mqtt(
    raw: &RawMqtt,
    devices: &BTreeMap<DeviceId, Device>,
) -> Result<MqttConfig, String> {
    if raw.host.trim().is_empty() {
        return Err("mqtt.host is empty: set the broker's address, e.g. \"127.0.0.1\"".into());
    }
    let tls = raw.tls.unwrap_or(false) || raw.ca_file.is_some();
    let prefix = raw
        .prefix
        .clone()
        .unwrap_or_else(|| format!("pinwarden/{}", hostname()));
    plain_topic("mqtt.prefix", &prefix)?;
    let prefix = prefix.trim_end_matches('/').to_string();
    let client_id = raw
        .client_id
        .clone()
        .unwrap_or_else(|| format!("pinwarden-{}", hostname()));
    if client_id.is_empty() || client_id.len() > 64 {
        return Err("mqtt.client_id must be 1 to 64 characters".into());
    }
    if raw.password_file.is_some() && raw.username.is_none() {
        return Err("mqtt.password_file is set without mqtt.username: set both".into());
    }
    let keep_alive = duration_key(
        "mqtt.keep_alive",
        raw.keep_alive.as_deref(),
        Duration::from_secs(30),
    )?;
    if !(Duration::from_secs(5)..=Duration::from_secs(3600)).contains(&keep_alive) {
        return Err("mqtt.keep_alive must lie between 5s and 1h".into());
    }
    let replay_window = duration_key(
        "mqtt.replay_window",
        raw.replay_window.as_deref(),
        Duration::from_secs(600),
    )?;
    let request_devices = request_devices(raw, devices)?;
    let zigbee_keypads = zigbee_keypads(raw, devices)?;
    let zigbee_base_topic = raw
        .zigbee_base_topic
        .clone()
        .unwrap_or_else(|| "zigbee2mqtt".into());
    plain_topic("mqtt.zigbee_base_topic", &zigbee_base_topic)?;
    let outbox_max = raw.outbox_max.unwrap_or(10_000);
    if !(100..=1_000_000).contains(&outbox_max) {
        return Err("mqtt.outbox_max must lie between 100 and 1000000".into());
    }
    Ok(MqttConfig {
        host: raw.host.clone(),
        port: raw.port.unwrap_or(if tls { 8883 } else { 1883 }),
        client_id,
        prefix,
        username: raw.username.clone(),
        password_file: raw.password_file.as_deref().map(absolute),
        tls,
        ca_file: raw.ca_file.as_deref().map(absolute),
        keep_alive,
        devices: request_devices,
        replay_window,
        outbox_max,
        zigbee_base_topic: zigbee_base_topic.trim_end_matches('/').to_string(),
        zigbee_keypads,
    })
}

/// A device named under `[mqtt]` must be a declared `[[device]]`.
fn known(devices: &BTreeMap<DeviceId, Device>, key: String, id: &str) -> Result<DeviceId, String> {
    let id = DeviceId(id.to_string());
    if devices.contains_key(&id) {
        Ok(id)
    } else {
        Err(format!(
            "{key} = \"{id}\" is not a [[device]]: declare it first"
        ))
    }
}

/// `mqtt.devices`: the devices that take requests on `<prefix>/request/<device>`.
fn request_devices(
    raw: &RawMqtt,
    devices: &BTreeMap<DeviceId, Device>,
) -> Result<BTreeSet<DeviceId>, String> {
    let mut request_devices = BTreeSet::new();
    for (i, d) in raw.devices.iter().enumerate() {
        plain_topic(&format!("mqtt.devices[{i}]"), d)?;
        if d.contains('/') {
            return Err(format!(
                "mqtt.devices[{i}] = \"{d}\": a device id used in a topic cannot contain '/'"
            ));
        }
        request_devices.insert(known(devices, format!("mqtt.devices[{i}]"), d)?);
    }
    Ok(request_devices)
}

/// `[[mqtt.zigbee_keypad]]`: Zigbee2MQTT keypad friendly name → the device it opens.
fn zigbee_keypads(
    raw: &RawMqtt,
    devices: &BTreeMap<DeviceId, Device>,
) -> Result<BTreeMap<String, DeviceId>, String> {
    let mut zigbee_keypads = BTreeMap::new();
    for (i, k) in raw.zigbee_keypad.iter().enumerate() {
        plain_topic(&format!("mqtt.zigbee_keypad[{i}].name"), &k.name)?;
        let device = known(
            devices,
            format!("mqtt.zigbee_keypad[{i}].device"),
            &k.device,
        )?;
        if zigbee_keypads.insert(k.name.clone(), device).is_some() {
            return Err(format!(
                "mqtt.zigbee_keypad[{i}].name = \"{}\" is listed twice",
                k.name
            ));
        }
    }
    Ok(zigbee_keypads)
}

/// The topic and payload that unlock a `[[door]] actuator = "mqtt"`. Presets ask the relay
/// to time the pulse itself, so a crash or a lost broker can never leave the door open.
pub fn door_command(key: &str, raw: &RawDoor, pulse: Duration) -> Result<(String, String), String> {
    let topic = raw.mqtt_topic.as_deref().ok_or_else(|| {
        format!("{key}.mqtt_topic is required for actuator = \"mqtt\" (Tasmota: the device topic, e.g. \"tasmota_1A2B3C\"; Shelly: the device id, e.g. \"shellyplus1-a8032ab12345\")")
    })?;
    plain_topic(&format!("{key}.mqtt_topic"), topic)?;
    match raw.mqtt_preset.as_deref().unwrap_or("custom") {
        "tasmota" => Ok(tasmota(topic, raw.mqtt_channel.unwrap_or(1), pulse)),
        "shelly" => Ok(shelly(topic, raw.mqtt_channel.unwrap_or(0), pulse)),
        "custom" => {
            let template = raw.mqtt_payload.as_deref().ok_or_else(|| {
                format!("{key}.mqtt_payload is required without a preset, e.g. \"ON\"; or set mqtt_preset = \"tasmota\" or \"shelly\"")
            })?;
            Ok((topic.to_string(), render(template, pulse)))
        }
        other => Err(format!(
            "{key}.mqtt_preset = \"{other}\": use \"tasmota\", \"shelly\" or \"custom\""
        )),
    }
}

/// Tasmota: `PulseTime` counts tenths of a second up to 11.1 s, then whole seconds + 100.
pub fn tasmota(topic: &str, relay: u32, pulse: Duration) -> (String, String) {
    let tenths = pulse.as_millis().div_ceil(100).max(1);
    let value = if tenths <= 111 {
        tenths
    } else {
        u128::from(pulse.as_secs()) + u128::from(pulse.subsec_nanos() > 0) + 100
    };
    (
        format!("cmnd/{topic}/Backlog"),
        format!("PulseTime{relay} {value};Power{relay} ON"),
    )
}

/// Shelly Gen2 RPC over MQTT: `Switch.Set` with `toggle_after` in seconds.
pub fn shelly(device: &str, switch: u32, pulse: Duration) -> (String, String) {
    let payload = serde_json::json!({
        "id": 1,
        "src": "pinwarden",
        "method": "Switch.Set",
        "params": {"id": switch, "on": true, "toggle_after": pulse.as_secs_f64()},
    });
    (format!("{device}/rpc"), payload.to_string())
}

/// `{pulse_ms}`, `{pulse_s}` and `{pulse_tenths}` in a custom payload.
fn render(template: &str, pulse: Duration) -> String {
    template
        .replace("{pulse_ms}", &pulse.as_millis().to_string())
        .replace("{pulse_s}", &pulse.as_secs_f64().to_string())
        .replace(
            "{pulse_tenths}",
            &pulse.as_millis().div_ceil(100).to_string(),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasmota_pulse_units() {
        let ms = Duration::from_millis;
        assert_eq!(
            tasmota("t1", 1, ms(3000)),
            ("cmnd/t1/Backlog".into(), "PulseTime1 30;Power1 ON".into())
        );
        assert_eq!(tasmota("t1", 2, ms(100)).1, "PulseTime2 1;Power2 ON");
        assert_eq!(tasmota("t1", 1, ms(11_100)).1, "PulseTime1 111;Power1 ON");
        assert_eq!(tasmota("t1", 1, ms(15_000)).1, "PulseTime1 115;Power1 ON");
        assert_eq!(tasmota("t1", 1, ms(15_500)).1, "PulseTime1 116;Power1 ON");
    }

    #[test]
    fn shelly_switch_set() {
        let (topic, payload) = shelly("shellyplus1-ab", 0, Duration::from_millis(2500));
        assert_eq!(topic, "shellyplus1-ab/rpc");
        let v: serde_json::Value = serde_json::from_str(&payload).unwrap();
        assert_eq!(v["method"], "Switch.Set");
        assert_eq!(v["params"]["toggle_after"], 2.5);
        assert_eq!(v["params"]["on"], true);
    }

    #[test]
    fn custom_payload_template() {
        assert_eq!(
            render("{\"on\":{pulse_ms}}", Duration::from_secs(2)),
            "{\"on\":2000}"
        );
        assert_eq!(render("P{pulse_tenths}", Duration::from_millis(250)), "P3");
    }

    #[test]
    fn wildcards_are_not_topics() {
        assert!(plain_topic("k", "a/+/b").is_err());
        assert!(plain_topic("k", "a/#").is_err());
        assert!(plain_topic("k", "/a").is_err());
        assert!(plain_topic("k", "").is_err());
        assert!(plain_topic("k", "pinwarden/hq").is_ok());
    }
}
