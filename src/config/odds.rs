//! Each device's attack odds from the configuration: the credential modes its frontends
//! take (narrowed by `[[device]] credentials`), the policy's PIN space and the lockout, for
//! `check-config` (with `assumed_users`) and `status` (with the real user counts), and the
//! lockout derived from the ceiling that the daemon enforces per device. The arithmetic
//! is `core::odds` and `core::budget`; this file only gathers the numbers the config holds.

use super::Config;
use crate::core::budget::{self, Derived};
use crate::core::odds::{self, Levers, Mode, ModeOdds};
use crate::domain::DeviceId;
use crate::duration::format_duration;
use crate::frontend::tcp::settings::TcpMode;
use crate::lifecycle::policy::MAX_LENGTH_CEILING;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// One device's odds, per mode it takes.
#[derive(Clone, Debug, Serialize)]
pub struct DeviceOdds {
    pub device: DeviceId,
    pub users: u64,
    /// The odds per mode under the device's effective lockout (what the daemon enforces).
    pub modes: Vec<ModeOdds>,
    /// The effective lockout: `[lockout]`, slowed where needed to meet the ceiling.
    pub budget: Derived,
    /// The modes above `max_daily_odds` even under the effective lockout (its slowest
    /// refill cannot help: the burst alone is above), each with the changes that fix it.
    pub above: Vec<(Mode, Vec<String>)>,
}

/// The modes each device's frontends can present (before `[[device]] credentials`).
pub fn frontend_modes(config: &Config) -> BTreeMap<DeviceId, BTreeSet<Mode>> {
    let mut out: BTreeMap<DeviceId, BTreeSet<Mode>> = BTreeMap::new();
    let mut add = |device: &DeviceId, modes: &[Mode]| {
        out.entry(device.clone())
            .or_default()
            .extend(modes.iter().copied());
    };
    for tcp in &config.tcp {
        let card = match tcp.card.as_ref().and_then(|c| c.card_then_pin) {
            Some(_) => Mode::CardPin,
            None => Mode::Card,
        };
        let modes: &[Mode] = match tcp.mode {
            TcpMode::Terminal => &[Mode::Pin, Mode::IdPin, card],
            TcpMode::Card | TcpMode::Dial => &[card],
        };
        for device in tcp.terminals.values().chain(tcp.dial.values()) {
            add(device, modes);
        }
    }
    for keypad in &config.keypads {
        let modes: &[Mode] = match &keypad.card {
            Some(card) if card.required => &[Mode::CardPin],
            Some(_) => &[Mode::Pin, Mode::CardPin],
            None => &[Mode::Pin],
        };
        add(&keypad.device, modes);
    }
    if let Some(mqtt) = &config.mqtt {
        for device in &mqtt.devices {
            add(device, &[Mode::Pin, Mode::IdPin, Mode::CardPin]);
        }
        for device in mqtt.zigbee_keypads.values() {
            add(device, &[Mode::Pin]);
        }
    }
    out
}

/// The modes each device takes: what its frontends present and its `credentials` allow.
pub fn admitted_modes(config: &Config) -> BTreeMap<DeviceId, Vec<Mode>> {
    let frontends = frontend_modes(config);
    config
        .devices
        .iter()
        .map(|(id, d)| {
            let presented = frontends.get(id).cloned().unwrap_or_default();
            let modes = d
                .credentials
                .iter()
                .copied()
                .filter(|m| presented.contains(m))
                .collect();
            (id.clone(), modes)
        })
        .collect()
}

/// Every device's odds and effective lockout, `users_of` giving the users with a PIN
/// each device admits.
pub fn assess(config: &Config, users_of: &dyn Fn(&DeviceId) -> u64) -> Vec<DeviceOdds> {
    let policy = config.policy.pin_policy();
    let space_of_length = |len: usize| {
        let mut p = policy.clone();
        p.max_length = p.max_length.max(len);
        p.valid_pins(len)
    };
    let space = space_of_length(policy.min_length);
    let levers = Levers {
        space_of_length: &space_of_length,
        min_length: policy.min_length,
        max_length_limit: MAX_LENGTH_CEILING,
    };
    let ceiling = config.odds.max_daily_odds;
    let configured = &config.lockout;
    admitted_modes(config)
        .into_iter()
        .map(|(device, modes)| {
            let users = users_of(&device);
            let budget = budget::for_device(configured, &modes, users, space, ceiling);
            let modes: Vec<ModeOdds> = modes
                .into_iter()
                .map(|m| odds::assess(m, users, space, &budget.policy).under(ceiling))
                .collect();
            let above = modes
                .iter()
                .filter(|m| m.odds.is_some_and(|o| o > ceiling))
                .map(|m| (m.mode, odds::fixes(m, ceiling, configured, &levers)))
                .collect();
            DeviceOdds {
                device,
                users,
                modes,
                budget,
                above,
            }
        })
        .collect()
}

/// The device's lockout budget in words: `106 guesses/day as configured` or
/// `106 guesses/day configured, 99 enforced (forgive_every = "16m10s", …)`.
pub fn budget_text(d: &DeviceOdds) -> String {
    let b = &d.budget;
    if !b.slowed {
        return format!("{} guesses/day as configured", b.guesses);
    }
    let why = if b.feasible {
        "derived from the ceiling"
    } else {
        "the slowest refill; the burst alone is above the ceiling"
    };
    format!(
        "{} guesses/day configured, {} enforced (forgive_every = \"{}\", max_backoff = \"{}\": \
         {why})",
        b.configured_guesses,
        b.guesses,
        format_duration(b.policy.forgive_every),
        format_duration(b.policy.max_backoff),
    )
}

/// One line per device: `lobby-printer (1000 users): 106 guesses/day as configured; PIN
/// only 10.1 % (106 guesses/day, …), …`.
pub fn summary(d: &DeviceOdds) -> String {
    let modes: Vec<String> = d
        .modes
        .iter()
        .map(|m| match m.odds {
            Some(o) => format!(
                "{} {} ({} guesses/day, the ceiling allows {})",
                m.mode.label(),
                odds::percent(o),
                m.guesses,
                m.allowed.unwrap_or(0)
            ),
            None => format!("{} (no PIN to guess)", m.mode.label()),
        })
        .collect();
    let modes = if modes.is_empty() {
        "no frontend presents a credential here".to_string()
    } else {
        modes.join(", ")
    };
    format!(
        "{} ({} users): {}; {modes}",
        d.device,
        d.users,
        budget_text(d)
    )
}

/// The error for each mode above the ceiling, naming the device, its odds and the fixes.
pub fn problems(config: &Config, devices: &[DeviceOdds]) -> Vec<String> {
    let ceiling = odds::percent(config.odds.max_daily_odds);
    let mut out = Vec::new();
    for d in devices {
        for (mode, fixes) in &d.above {
            let Some(m) = d.modes.iter().find(|m| m.mode == *mode) else {
                continue;
            };
            let as_configured = odds::assess(*mode, m.users, m.space, &config.lockout);
            out.push(format!(
                "device \"{}\": {} gives an attacker {} a day with {} users ({} guesses a \
                 day as configured), above lockout.max_daily_odds ({ceiling}), and still {} \
                 at the slowest budget the daemon derives ({} guesses a day: a fresh day's \
                 burst alone is above); fix one of: {}",
                d.device,
                mode.label(),
                odds::percent(as_configured.odds.unwrap_or(1.0)),
                d.users,
                as_configured.guesses,
                odds::percent(m.odds.unwrap_or(1.0)),
                m.guesses,
                fixes.join("; ")
            ));
        }
    }
    out
}
