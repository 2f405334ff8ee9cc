//! Validation of the access-control part of the configuration: time zone, named schedules,
//! group schedules, serial keypads (into the keypad frontend's own `KeypadConfig`) and door
//! actuators (into the door action's own `DoorConfig`).

use super::devices::{Device, DeviceKind};
use super::raw::{RawConfig, RawDoor, RawKeypad};
use super::{absolute, duration_key};
use crate::action::door::{Actuator, DoorConfig};
use crate::core::schedule::{Schedule, TimeZone};
use crate::domain::DeviceId;
use crate::frontend::keypad::framing::Framing;
use crate::frontend::keypad::settings::{CardThenPin, Feedback, KeypadConfig};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Clone, Debug, Serialize)]
pub struct NamedSchedule {
    pub windows: Vec<String>,
    pub holidays: Vec<String>,
    #[serde(skip)]
    pub parsed: Schedule,
}

#[derive(Clone, Debug, Serialize)]
pub struct Access {
    pub time_zone: String,
    #[serde(skip)]
    pub tz: TimeZone,
    pub schedules: BTreeMap<String, NamedSchedule>,
    /// group → schedule name: members of the group are admitted only inside it.
    pub group_schedules: BTreeMap<String, String>,
}

pub fn validate_access(raw: &RawConfig) -> Result<Access, String> {
    let (time_zone, tz) = match &raw.time_zone {
        Some(name) => (
            name.clone(),
            TimeZone::named(name).map_err(|e| format!("time_zone: {e}"))?,
        ),
        None => ("system".to_string(), TimeZone::system()),
    };
    let mut schedules = BTreeMap::new();
    for (i, s) in raw.schedule.iter().enumerate() {
        let parsed = Schedule::parse(&s.windows, &s.holidays)
            .map_err(|e| format!("schedule[{i}] (\"{}\"): {e}", s.name))?;
        let named = NamedSchedule {
            windows: s.windows.clone(),
            holidays: s.holidays.clone(),
            parsed,
        };
        if schedules.insert(s.name.clone(), named).is_some() {
            return Err(format!(
                "schedule[{i}].name = \"{}\" is declared twice",
                s.name
            ));
        }
    }
    let mut group_schedules = BTreeMap::new();
    for (i, g) in raw.group.iter().enumerate() {
        if let Some(name) = &g.schedule {
            check_schedule(&schedules, name, &format!("group[{i}].schedule"))?;
            if group_schedules
                .insert(g.name.clone(), name.clone())
                .is_some()
            {
                return Err(format!(
                    "group[{i}].name = \"{}\" is declared twice",
                    g.name
                ));
            }
        }
    }
    Ok(Access {
        time_zone,
        tz,
        schedules,
        group_schedules,
    })
}

pub fn check_schedule(
    schedules: &BTreeMap<String, NamedSchedule>,
    name: &str,
    key: &str,
) -> Result<(), String> {
    if schedules.contains_key(name) {
        return Ok(());
    }
    Err(format!(
        "{key} = \"{name}\" is not a declared [[schedule]]: add one, for example \
         name = \"{name}\", windows = [\"Mon-Fri 07:00-19:00\"]"
    ))
}

fn door_device(
    devices: &BTreeMap<DeviceId, Device>,
    key: &str,
    id: &str,
) -> Result<DeviceId, String> {
    let device = DeviceId(id.to_string());
    match devices.get(&device) {
        Some(d) if d.kind == DeviceKind::Door => Ok(device),
        Some(_) => Err(format!(
            "{key} = \"{id}\" is a printer: keypads and doors need a device with kind = \"door\""
        )),
        None => Err(format!(
            "{key} = \"{id}\" is not a declared [[device]]: add one or fix the name"
        )),
    }
}

pub fn validate_keypad(
    i: usize,
    raw: &RawKeypad,
    devices: &BTreeMap<DeviceId, Device>,
) -> Result<KeypadConfig, String> {
    let key = format!("keypad[{i}]");
    let device = door_device(devices, &format!("{key}.device"), &raw.device)?;
    let framing = framing(&key, raw.framing.as_deref())?;
    // Card lines (prefix + number) are longer than PINs.
    let max_length = raw
        .max_length
        .unwrap_or(if raw.card_prefix.is_some() { 32 } else { 12 });
    if !(4..=64).contains(&max_length) {
        return Err(format!("{key}.max_length = {max_length}: use 4 to 64"));
    }
    let inter_key_timeout = duration_key(
        &format!("{key}.inter_key_timeout"),
        raw.inter_key_timeout.as_deref(),
        Duration::from_secs(5),
    )?;
    if inter_key_timeout < Duration::from_millis(100) {
        return Err(format!("{key}.inter_key_timeout must be at least 100ms"));
    }
    let card = card_then_pin(&key, raw, framing)?;
    let f = &raw.feedback;
    Ok(KeypadConfig {
        port: absolute(&raw.port),
        baud: raw.baud.unwrap_or(9600),
        device,
        framing,
        max_length,
        inter_key_timeout,
        card,
        feedback: Feedback {
            granted: f.granted.clone().unwrap_or_default(),
            denied: f.denied.clone().unwrap_or_default(),
            busy: f.busy.clone().unwrap_or_default(),
            locked_out: f.locked_out.clone().unwrap_or_default(),
            card: f.card.clone().unwrap_or_default(),
            // Keypads that only know granted/denied LEDs work unchanged.
            changed: f.changed.clone().or(f.granted.clone()).unwrap_or_default(),
            refused: f.refused.clone().or(f.denied.clone()).unwrap_or_default(),
            accepted: f.accepted.clone().or(f.granted.clone()).unwrap_or_default(),
        },
    })
}

/// `framing`: how the keypad's bytes become keys and lines.
fn framing(key: &str, framing: Option<&str>) -> Result<Framing, String> {
    Ok(match framing.unwrap_or("keys") {
        "keys" => Framing::Keys,
        "line" => Framing::Line,
        "wiegand4" => Framing::Wiegand4,
        "wiegand8" => Framing::Wiegand8,
        other => {
            return Err(format!(
                "{key}.framing = \"{other}\": use \"keys\", \"line\", \"wiegand4\" or \"wiegand8\""
            ))
        }
    })
}

/// `card_prefix`, `card_then_pin` and `require_card`: card reads on a `line` keypad.
fn card_then_pin(
    key: &str,
    raw: &RawKeypad,
    framing: Framing,
) -> Result<Option<CardThenPin>, String> {
    Ok(match &raw.card_prefix {
        None if raw.card_then_pin.is_some() || raw.require_card => {
            return Err(format!(
                "{key}.card_then_pin and {key}.require_card need {key}.card_prefix: the text \
                 that starts a card read, for example card_prefix = \"C\""
            ))
        }
        None => None,
        Some(prefix) => {
            if framing != Framing::Line
                || prefix.is_empty()
                || !prefix.chars().all(|c| c.is_ascii_alphabetic())
            {
                return Err(format!(
                    "{key}.card_prefix = \"{prefix}\": needs framing = \"line\" and one or \
                     more letters (the reader sends card reads as lines such as C00482115)"
                ));
            }
            let window = duration_key(
                &format!("{key}.card_then_pin"),
                raw.card_then_pin.as_deref(),
                Duration::from_secs(10),
            )?;
            Some(CardThenPin {
                prefix: prefix.clone(),
                window,
                required: raw.require_card,
            })
        }
    })
}

pub fn validate_door(
    i: usize,
    raw: &RawDoor,
    devices: &BTreeMap<DeviceId, Device>,
) -> Result<DoorConfig, String> {
    let key = format!("door[{i}]");
    let device = door_device(devices, &format!("{key}.device"), &raw.device)?;
    let pulse = duration_key(
        &format!("{key}.pulse"),
        raw.pulse.as_deref(),
        Duration::from_secs(3),
    )?;
    if !(Duration::from_millis(100)..=Duration::from_secs(600)).contains(&pulse) {
        return Err(format!("{key}.pulse must lie between 100ms and 10m"));
    }
    let actuator = match raw.actuator.as_str() {
        "serial" => {
            let port = raw.port.as_deref().ok_or_else(|| {
                format!("{key}.port is required for actuator = \"serial\" (e.g. \"/dev/serial/by-id/usb-…-if00-port0\")")
            })?;
            let on = raw.on.clone().filter(|b| !b.is_empty()).ok_or_else(|| {
                format!("{key}.on is required for actuator = \"serial\": the relay's bytes, e.g. on = [0xA0, 0x01, 0x01, 0xA2]")
            })?;
            Actuator::Serial {
                port: absolute(port),
                baud: raw.baud.unwrap_or(9600),
                on,
                off: raw.off.clone().unwrap_or_default(),
            }
        }
        "command" => {
            let argv = raw.command.clone().filter(|c| !c.is_empty()).ok_or_else(|| {
                format!("{key}.command is required for actuator = \"command\", e.g. [\"/usr/local/bin/open-door\", \"--pulse\", \"3\"]")
            })?;
            let timeout = duration_key(
                &format!("{key}.command_timeout"),
                raw.command_timeout.as_deref(),
                Duration::from_secs(10),
            )?;
            Actuator::Command { argv, timeout }
        }
        "mqtt" => {
            let (topic, payload) = super::mqtt::door_command(&key, raw, pulse)?;
            Actuator::Mqtt { topic, payload }
        }
        "none" => Actuator::None,
        other => {
            return Err(format!(
                "{key}.actuator = \"{other}\": use \"serial\", \"command\", \"mqtt\" or \"none\""
            ))
        }
    };
    Ok(DoorConfig {
        device,
        actuator,
        pulse,
    })
}
