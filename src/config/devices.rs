//! Validation of `[[device]]` blocks: the printers and doors every frontend and action refers
//! to by id, each with the groups it admits, an optional schedule and (doors) a fail mode.

use super::access::{check_schedule, Access};
use super::raw::RawDevice;
use crate::core::odds::Mode;
use crate::domain::DeviceId;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceKind {
    Printer,
    Door,
}

#[derive(Clone, Debug, Serialize)]
pub struct Device {
    pub id: DeviceId,
    pub kind: DeviceKind,
    pub allow_groups: Vec<String>,
    /// A named `[[schedule]]`: the device admits nobody outside it.
    pub schedule: Option<String>,
    /// Doors only: unlock on any attempt when the store is unreadable. Default: stay locked.
    pub fail_open: bool,
    /// The credential modes the device takes (default: all its frontends present).
    pub credentials: Vec<Mode>,
}

pub fn validate_devices(
    raw: &[RawDevice],
    access: &Access,
) -> Result<BTreeMap<DeviceId, Device>, String> {
    let mut devices = BTreeMap::new();
    for (i, d) in raw.iter().enumerate() {
        let key = format!("device[{i}]");
        let device = validate_device(&key, d, access)?;
        if devices.insert(device.id.clone(), device).is_some() {
            return Err(format!(
                "{key}.id = \"{}\" is declared twice: device ids must be unique",
                d.id
            ));
        }
    }
    Ok(devices)
}

fn validate_device(key: &str, d: &RawDevice, access: &Access) -> Result<Device, String> {
    if d.id.is_empty() || d.id.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "{key}.id = {:?}: use a non-empty name without spaces",
            d.id
        ));
    }
    let kind = match d.kind.as_str() {
        "printer" => DeviceKind::Printer,
        "door" => DeviceKind::Door,
        other => {
            return Err(format!(
                "{key}.kind = \"{other}\": use \"printer\" or \"door\""
            ))
        }
    };
    if d.allow_groups.is_empty() {
        return Err(format!(
            "{key}.allow_groups is empty, so device \"{}\" would deny everyone: list the \
             groups allowed, for example allow_groups = [\"staff\"]",
            d.id
        ));
    }
    if let Some(name) = &d.schedule {
        check_schedule(&access.schedules, name, &format!("{key}.schedule"))?;
    }
    let fail_open = match (d.fail_mode.as_deref(), kind) {
        (None | Some("locked"), _) => false,
        (Some("open"), DeviceKind::Door) => true,
        (Some("open"), DeviceKind::Printer) => {
            return Err(format!("{key}.fail_mode = \"open\" applies to doors only"))
        }
        (Some(other), _) => {
            return Err(format!(
                "{key}.fail_mode = \"{other}\": use \"locked\" (default) or \"open\""
            ))
        }
    };
    Ok(Device {
        id: DeviceId(d.id.clone()),
        kind,
        allow_groups: d.allow_groups.clone(),
        schedule: d.schedule.clone(),
        fail_open,
        credentials: validate_credentials(key, d.credentials.as_deref())?,
    })
}

/// `credentials = ["id_pin", "card_pin"]`: the modes a device takes (default all).
fn validate_credentials(key: &str, raw: Option<&[String]>) -> Result<Vec<Mode>, String> {
    let Some(raw) = raw else {
        return Ok(Mode::ALL.to_vec());
    };
    let mut modes = Vec::new();
    for name in raw {
        let mode = Mode::parse(name).ok_or_else(|| {
            format!(
                "{key}.credentials: \"{name}\" is not a credential mode: use \"pin\", \
                 \"id_pin\", \"card\" or \"card_pin\""
            )
        })?;
        if !modes.contains(&mode) {
            modes.push(mode);
        }
    }
    if modes.is_empty() {
        return Err(format!(
            "{key}.credentials is empty, so the device would take nothing: list the modes, \
             for example credentials = [\"id_pin\"], or leave the key out for all"
        ));
    }
    Ok(modes)
}
