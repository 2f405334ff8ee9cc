//! Validation of `[[tcp]]` blocks into the TCP frontend's own `TcpConfig`: the mode, the
//! listen address (none when dialling out), the `[tcp.card]` normaliser, limits and
//! deadlines, and the terminal allow-list. Errors name the key and the fix.

use super::devices::Device;
use super::duration_key;
use super::raw::{RawCard, RawTcp, RawTerminal};
use crate::domain::DeviceId;
use crate::frontend::tcp::card::{CardFormat, CardReader, Radix};
use crate::frontend::tcp::settings::{CardConfig, TcpConfig, TcpMode};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

pub fn validate_tcp(
    i: usize,
    raw: &RawTcp,
    devices: &BTreeMap<DeviceId, Device>,
) -> Result<TcpConfig, String> {
    let key = format!("tcp[{i}]");
    let mode = validate_mode(&key, raw.mode.as_deref())?;
    let listen = validate_listen(&key, raw.listen.as_deref(), mode)?;
    let card = validate_card(&key, raw.card.as_ref())?;
    if card.is_none() && mode != TcpMode::Terminal {
        return Err(format!(
            "{key} (mode card/dial) needs a [tcp.card] block saying how reads become card ids, \
             for example input = \"hex\", output = \"decimal\""
        ));
    }
    let max_connections = raw.max_connections.unwrap_or(64);
    if !(1..=10_000).contains(&max_connections) {
        return Err(format!(
            "{key}.max_connections = {max_connections}: use 1 to 10000"
        ));
    }
    // A terminal holds one connection; a few more cover a reboot whose old connection has
    // not timed out yet. One source can never take every slot.
    let max_per_source = raw.max_per_source.unwrap_or(8.min(max_connections));
    if !(1..=max_connections).contains(&max_per_source) {
        return Err(format!(
            "{key}.max_per_source = {max_per_source}: use 1 to max_connections \
             ({max_connections}), so one terminal address cannot take every slot"
        ));
    }
    let idle_timeout = duration_key(
        &format!("{key}.idle_timeout"),
        raw.idle_timeout.as_deref(),
        Duration::from_secs(300),
    )?;
    let line_timeout = duration_key(
        &format!("{key}.line_timeout"),
        raw.line_timeout.as_deref(),
        Duration::from_secs(10),
    )?;
    let (terminals, dial) = validate_terminals(&key, &raw.terminal, mode, devices)?;
    Ok(TcpConfig {
        mode,
        card,
        dial,
        listen,
        max_connections,
        max_per_source,
        idle_timeout,
        line_timeout,
        terminals,
    })
}

/// `[[tcp]] mode`.
fn validate_mode(key: &str, mode: Option<&str>) -> Result<TcpMode, String> {
    match mode.unwrap_or("terminal") {
        "terminal" => Ok(TcpMode::Terminal),
        "card" => Ok(TcpMode::Card),
        "dial" => Ok(TcpMode::Dial),
        other => Err(format!(
            "{key}.mode = \"{other}\": use \"terminal\", \"card\" (readers connect in) or \
             \"dial\" (pinwarden connects to readers)"
        )),
    }
}

/// `[[tcp]] listen`: required unless the block dials out, where it is refused.
fn validate_listen(
    key: &str,
    listen: Option<&str>,
    mode: TcpMode,
) -> Result<Option<SocketAddr>, String> {
    match (listen, mode) {
        (Some(l), TcpMode::Dial) => Err(format!(
            "{key}.listen = \"{l}\": a dial block connects out; list the readers as \
             [[tcp.terminal]] address = \"ADDRESS:PORT\" instead"
        )),
        (None, TcpMode::Dial) => Ok(None),
        (None, _) => Err(format!(
            "{key}.listen is missing: use ADDRESS:PORT such as \"127.0.0.1:7410\""
        )),
        (Some(l), _) => Ok(Some(l.parse::<SocketAddr>().map_err(|_| {
            format!("{key}.listen = \"{l}\": use ADDRESS:PORT such as \"127.0.0.1:7410\"")
        })?)),
    }
}

/// `[tcp.card]`; the regex is compiled here so a bad one stops the start.
fn validate_card(key: &str, raw: Option<&RawCard>) -> Result<Option<CardConfig>, String> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let radix = |name: &str, value: Option<&str>| match value.unwrap_or("decimal") {
        "decimal" => Ok(Radix::Decimal),
        "hex" => Ok(Radix::Hex),
        other => Err(format!(
            "{key}.card.{name} = \"{other}\": use \"decimal\" or \"hex\""
        )),
    };
    let reverse_bytes = match raw.byte_order.as_deref().unwrap_or("normal") {
        "normal" => false,
        "reverse" => true,
        other => {
            return Err(format!(
                "{key}.card.byte_order = \"{other}\": use \"normal\" or \"reverse\""
            ))
        }
    };
    let format = CardFormat {
        regex: raw.regex.clone(),
        input: radix("input", raw.input.as_deref())?,
        output: radix("output", raw.output.as_deref())?,
        reverse_bytes,
    };
    CardReader::new(&format).map_err(|e| format!("{key}.card.{e}: fix the pattern"))?;
    let card_then_pin = raw
        .card_then_pin
        .as_deref()
        .map(|v| {
            duration_key(
                &format!("{key}.card.card_then_pin"),
                Some(v),
                Duration::ZERO,
            )
        })
        .transpose()?;
    Ok(Some(CardConfig {
        format,
        card_then_pin,
    }))
}

/// Terminal source addresses and dialled reader addresses, each mapped to its device.
type Terminals = (BTreeMap<IpAddr, DeviceId>, BTreeMap<SocketAddr, DeviceId>);

/// `[[tcp.terminal]]`: the allow-list (source IP → device), or in dial mode the readers
/// (`ADDRESS:PORT` → device). At least one; every device declared; no address twice.
fn validate_terminals(
    key: &str,
    raw: &[RawTerminal],
    mode: TcpMode,
    devices: &BTreeMap<DeviceId, Device>,
) -> Result<Terminals, String> {
    if raw.is_empty() {
        return Err(format!(
            "{key} has no [[tcp.terminal]]: every terminal must be listed by source address, \
             for example address = \"127.0.0.1\", device = \"lobby-printer\""
        ));
    }
    let mut terminals = BTreeMap::new();
    let mut dial = BTreeMap::new();
    for (j, t) in raw.iter().enumerate() {
        let tkey = format!("{key}.terminal[{j}]");
        let device = DeviceId(t.device.clone());
        if !devices.contains_key(&device) {
            return Err(format!(
                "{tkey}.device = \"{}\" is not a declared [[device]]: add one or fix the name",
                t.device
            ));
        }
        let fresh = if mode == TcpMode::Dial {
            dial.insert(dial_address(&tkey, &t.address)?, device)
                .is_none()
        } else {
            terminals
                .insert(source_address(&tkey, &t.address)?, device)
                .is_none()
        };
        if !fresh {
            return Err(format!(
                "{tkey}.address = \"{}\" is listed twice in {key}",
                t.address
            ));
        }
    }
    Ok((terminals, dial))
}

fn dial_address(tkey: &str, address: &str) -> Result<SocketAddr, String> {
    address.parse().map_err(|_| {
        format!(
            "{tkey}.address = \"{address}\": a dial block needs the reader's ADDRESS:PORT, \
             such as \"10.0.0.31:4001\""
        )
    })
}

fn source_address(tkey: &str, address: &str) -> Result<IpAddr, String> {
    address.parse().map_err(|_| {
        format!("{tkey}.address = \"{address}\": use an IP address such as \"10.0.0.21\"")
    })
}
