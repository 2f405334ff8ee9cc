//! Pure attribute mapping: one directory entry's attributes → `UpstreamUser`, group indexes
//! built from group entries, UUID/GUID keys, LDAP time formats and the enabled rules. No I/O;
//! no message here ever contains an attribute value of the PIN.

use super::settings::{EnabledRule, LdapMapping};
use crate::domain::{Pin, Timestamp};
use crate::sync::source::UpstreamUser;
use blake2::{Blake2s256, Digest};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use zeroize::Zeroize;

/// Why one entry could not become a user. The entry is skipped (and kept, if it was known);
/// the rest of the batch goes on.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MapError {
    #[error("attribute `{0}` is missing")]
    Missing(String),
    #[error("attribute `{0}` has more than one value")]
    Ambiguous(String),
    #[error("attribute `{0}` is not text")]
    NotText(String),
    #[error("attribute `{0}` contains whitespace or control characters")]
    BadPin(String),
    #[error("attribute `{0}` is not a time (GeneralizedTime, RFC 3339, a date or FILETIME)")]
    BadTime(String),
    #[error("attribute `{0}` is not a boolean (TRUE or FALSE)")]
    BadBoolean(String),
    #[error("attribute `{0}` is not an integer")]
    BadInteger(String),
}

/// An entry as the server sent it: its DN and attributes (names lower-cased, options such as
/// `;binary` dropped), values as bytes. Values are wiped on drop: one of them may be a PIN.
#[derive(Clone, Debug, Default)]
pub struct Entry {
    pub dn: String,
    attrs: HashMap<String, Vec<Vec<u8>>>,
}

impl Drop for Entry {
    fn drop(&mut self) {
        for values in self.attrs.values_mut() {
            values.iter_mut().for_each(Zeroize::zeroize);
        }
    }
}

impl Entry {
    pub fn new(dn: impl Into<String>) -> Self {
        Entry {
            dn: dn.into(),
            attrs: HashMap::new(),
        }
    }

    /// Adds values under `name` (case and options ignored).
    pub fn add(&mut self, name: &str, values: impl IntoIterator<Item = Vec<u8>>) {
        let base = name.split(';').next().unwrap_or(name).to_ascii_lowercase();
        self.attrs.entry(base).or_default().extend(values);
    }

    pub fn values(&self, name: &str) -> &[Vec<u8>] {
        self.attrs
            .get(&name.to_ascii_lowercase())
            .map_or(&[], Vec::as_slice)
    }

    pub fn has(&self, name: &str) -> bool {
        !self.values(name).is_empty()
    }

    /// Every value as text.
    pub fn texts(&self, name: &str) -> Result<Vec<&str>, MapError> {
        self.values(name)
            .iter()
            .map(|v| std::str::from_utf8(v).map_err(|_| MapError::NotText(name.to_owned())))
            .collect()
    }

    /// The single value as text; `None` when absent.
    pub fn single(&self, name: &str) -> Result<Option<&str>, MapError> {
        match self.texts(name)?.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(one)),
            _ => Err(MapError::Ambiguous(name.to_owned())),
        }
    }
}

/// Maps an entry to a user; `key` and `groups` come from the caller (they depend on the mode
/// and the group source).
pub fn map_entry(
    m: &LdapMapping,
    key: String,
    entry: &Entry,
    groups: Vec<String>,
) -> Result<UpstreamUser, MapError> {
    let id = entry
        .single(&m.id)?
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .ok_or_else(|| MapError::Missing(m.id.clone()))?
        .to_owned();
    let name = entry
        .texts(&m.name)?
        .first()
        .map_or_else(|| id.clone(), |n| n.trim().to_owned());
    let email = match &m.email {
        Some(attr) => entry.texts(attr)?.first().map(|e| e.trim().to_owned()),
        None => None,
    }
    .filter(|e| !e.is_empty());
    let cards = match &m.card {
        Some(attr) => entry
            .texts(attr)?
            .into_iter()
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect(),
        None => Vec::new(),
    };
    Ok(UpstreamUser {
        key,
        id,
        name,
        email,
        groups,
        pin: m
            .pin
            .as_deref()
            .map(|a| pin(entry, a))
            .transpose()?
            .flatten(),
        cards,
        enabled: enabled(&m.enabled, entry)?,
        valid_from: time_attr(entry, m.valid_from.as_deref())?,
        valid_until: time_attr(entry, m.valid_until.as_deref())?,
        version: match &m.version {
            Some(attr) => entry.texts(attr)?.first().map(|v| v.trim().to_owned()),
            None => None,
        },
    })
}

/// The PIN exactly as stored; an empty value is no PIN.
fn pin(entry: &Entry, attr: &str) -> Result<Option<Pin>, MapError> {
    let Some(raw) = entry.single(attr)? else {
        return Ok(None);
    };
    if raw.is_empty() {
        return Ok(None);
    }
    if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(MapError::BadPin(attr.to_owned()));
    }
    Ok(Some(Pin::new(raw)))
}

/// Applies an enabled rule to an entry.
pub fn enabled(rule: &EnabledRule, entry: &Entry) -> Result<bool, MapError> {
    match rule {
        EnabledRule::Always => Ok(true),
        EnabledRule::DisabledWhenPresent { attribute } => Ok(!entry.has(attribute)),
        EnabledRule::Boolean { attribute, absent } => match entry.single(attribute)? {
            None => Ok(*absent),
            Some(v) => match v.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => Ok(true),
                "false" | "0" | "no" => Ok(false),
                _ => Err(MapError::BadBoolean(attribute.clone())),
            },
        },
        EnabledRule::AccountControl { attribute } => match entry.single(attribute)? {
            None => Ok(true),
            Some(v) => {
                let flags: i64 = v
                    .trim()
                    .parse()
                    .map_err(|_| MapError::BadInteger(attribute.clone()))?;
                Ok(flags & 2 == 0)
            }
        },
    }
}

fn time_attr(entry: &Entry, attr: Option<&str>) -> Result<Option<Timestamp>, MapError> {
    let Some(attr) = attr else {
        return Ok(None);
    };
    match entry.single(attr)? {
        None => Ok(None),
        Some(v) => parse_time(v.trim()).ok_or_else(|| MapError::BadTime(attr.to_owned())),
    }
}

/// Parses an LDAP time: AD FILETIME (17+ digits; 0 and i64::MAX mean never → `Some(None)`),
/// GeneralizedTime (`20260131080000Z`, `20260131080000.5+0100`), or what `Timestamp::parse`
/// takes (RFC 3339, a plain date). `None`: not a time.
pub fn parse_time(v: &str) -> Option<Option<Timestamp>> {
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        let ticks: i64 = v.parse().ok()?;
        if ticks == 0 || ticks == i64::MAX {
            return Some(None);
        }
        // FILETIMEs after 1632 have 17+ digits; shorter numbers (a GeneralizedTime that
        // lost its `Z`) are not times.
        if v.len() < 17 {
            return None;
        }
        const UNIX_EPOCH_IN_FILETIME_MS: i64 = 11_644_473_600_000;
        return Some(Some(Timestamp::from_millis(
            ticks / 10_000 - UNIX_EPOCH_IN_FILETIME_MS,
        )));
    }
    generalized_time(v)
        .or_else(|| Timestamp::parse(v))
        .map(Some)
}

fn generalized_time(v: &str) -> Option<Timestamp> {
    let digits = v.get(..14)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let num = |r: std::ops::Range<usize>| digits[r].parse::<u16>().ok();
    let month = ::time::Month::try_from(u8::try_from(num(4..6)?).ok()?).ok()?;
    let date =
        ::time::Date::from_calendar_date(i32::from(num(0..4)?), month, num(6..8)? as u8).ok()?;
    let clock =
        ::time::Time::from_hms(num(8..10)? as u8, num(10..12)? as u8, num(12..14)? as u8).ok()?;
    let mut rest = &v[14..];
    let mut millis = 0i64;
    if let Some(frac) = rest.strip_prefix(['.', ',']) {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        let padded = format!("{:0<3}", &frac[..n.min(3)]);
        millis = padded.parse().ok()?;
        rest = &frac[n..];
    }
    let offset_secs = match rest {
        "Z" => 0,
        // Checked as bytes: slicing text by byte offsets panics inside a multi-byte character.
        _ if rest.len() == 5
            && matches!(rest.as_bytes()[0], b'+' | b'-')
            && rest.bytes().skip(1).all(|b| b.is_ascii_digit()) =>
        {
            let h: i64 = rest[1..3].parse().ok()?;
            let m: i64 = rest[3..5].parse().ok()?;
            let s = h * 3600 + m * 60;
            if rest.starts_with('-') {
                -s
            } else {
                s
            }
        }
        _ => return None,
    };
    let utc = ::time::PrimitiveDateTime::new(date, clock).assume_utc();
    Some(Timestamp::from_millis(
        (utc.unix_timestamp() - offset_secs) * 1000 + millis,
    ))
}

/// RFC 4122 text form of a 16-byte UUID as syncrepl controls carry it.
pub fn uuid_text(bytes: &[u8]) -> Option<String> {
    let b: &[u8; 16] = bytes.try_into().ok()?;
    let hex = hex::encode(b);
    Some(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

/// The key of an entry in poll mode: a 16-byte binary value (AD objectGUID) in Microsoft's
/// GUID text form (first three fields little-endian); printable text as is.
pub fn key_from_values(attr: &str, values: &[Vec<u8>]) -> Result<String, MapError> {
    let value = match values {
        [] => return Err(MapError::Missing(attr.to_owned())),
        [one] => one,
        _ => return Err(MapError::Ambiguous(attr.to_owned())),
    };
    let printable = value.iter().all(|b| (0x20..0x7f).contains(b));
    if value.len() == 16 && !printable {
        let mut b = [0u8; 16];
        b.copy_from_slice(value);
        b[0..4].reverse();
        b[4..6].reverse();
        b[6..8].reverse();
        return Ok(uuid_text(&b).unwrap_or_default());
    }
    match std::str::from_utf8(value) {
        Ok(text) if !text.trim().is_empty() => Ok(text.trim().to_owned()),
        _ => Err(MapError::NotText(attr.to_owned())),
    }
}

/// The value of a DN's first RDN: `cn=Print Staff,ou=groups,dc=x` → `Print Staff`.
pub fn first_rdn_value(dn: &str) -> Option<String> {
    let (_, rest) = dn.split_once('=')?;
    let mut out = Vec::new();
    let mut bytes = rest.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b',' | b'+' => break,
            b'\\' => {
                let next = bytes.next()?;
                let hex_pair = [next, bytes.clone().next().unwrap_or(b' ')];
                match std::str::from_utf8(&hex_pair)
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(decoded) => {
                        bytes.next();
                        out.push(decoded);
                    }
                    None => out.push(next),
                }
            }
            _ => out.push(b),
        }
    }
    let text = String::from_utf8(out).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// A DN in a form two spellings of the same DN share (case and spaces after commas).
pub fn normalise_dn(dn: &str) -> String {
    dn.split(',')
        .map(|rdn| rdn.trim().to_lowercase())
        .collect::<Vec<_>>()
        .join(",")
}

/// Group names from a `memberOf`-style attribute of the user's own entry.
pub fn groups_from_attribute(entry: &Entry, attr: &str) -> Result<Vec<String>, MapError> {
    let mut groups: Vec<String> = entry
        .texts(attr)?
        .into_iter()
        .filter_map(first_rdn_value)
        .collect();
    groups.sort();
    groups.dedup();
    Ok(groups)
}

/// Group membership read from group entries: member values (DNs or user ids) → group names.
#[derive(Clone, Debug, Default)]
pub struct GroupIndex {
    groups: BTreeMap<String, BTreeSet<String>>,
}

impl GroupIndex {
    /// Records a group and its member values (groupOfNames DNs, posixGroup ids).
    pub fn add(&mut self, name: &str, members: &[&str]) {
        let set = self.groups.entry(name.to_owned()).or_default();
        for m in members {
            let value = if m.contains('=') {
                normalise_dn(m)
            } else {
                m.trim().to_lowercase()
            };
            set.insert(value);
        }
    }

    /// The sorted names of the groups listing this user by DN or by id.
    pub fn groups_of(&self, dn: &str, id: &str) -> Vec<String> {
        let (dn, id) = (normalise_dn(dn), id.trim().to_lowercase());
        self.groups
            .iter()
            .filter(|(_, members)| members.contains(&dn) || members.contains(&id))
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// A digest of the whole membership: a change means users' groups may have changed.
    pub fn digest(&self) -> Vec<u8> {
        let mut h = Blake2s256::new();
        for (name, members) in &self.groups {
            h.update((name.len() as u64).to_le_bytes());
            h.update(name.as_bytes());
            h.update((members.len() as u64).to_le_bytes());
            for m in members {
                h.update((m.len() as u64).to_le_bytes());
                h.update(m.as_bytes());
            }
        }
        h.finalize().to_vec()
    }
}

#[cfg(test)]
#[path = "mapping_tests.rs"]
mod tests;
