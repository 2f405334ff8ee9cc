//! Validation of `[[directory]]` blocks (the upstream directories sync follows) and of
//! `[sync]` (what each device class does when a directory's cache is too old).

use super::raw::{RawDirectory, RawSync};
use super::{absolute, duration_key};
use crate::sync::csv::CsvSettings;
use crate::sync::scim::{ScimAttributes, ScimSettings};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StaleAction {
    /// Keep deciding from the cache (the default: offline-safe).
    Cache,
    /// Deny the users of a stale directory (local users still decide normally).
    Deny,
}

#[derive(Clone, Debug, Serialize)]
pub struct SyncConfig {
    pub on_stale_printer: StaleAction,
    pub on_stale_door: StaleAction,
}

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DirectorySource {
    Csv(CsvSettings),
    Scim(Box<ScimSettings>),
    Ldap(Box<super::ldap::LdapDirectory>),
}

#[derive(Clone, Debug, Serialize)]
pub struct DirectoryConfig {
    pub name: String,
    pub source: DirectorySource,
    #[serde(serialize_with = "crate::duration::serialize")]
    pub interval: Duration,
    pub max_delete_share: f64,
    #[serde(serialize_with = "crate::duration::serialize")]
    pub max_staleness: Duration,
}

fn stale_action(key: &str, value: Option<&str>) -> Result<StaleAction, String> {
    match value {
        None | Some("cache") => Ok(StaleAction::Cache),
        Some("deny") => Ok(StaleAction::Deny),
        Some(other) => Err(format!("{key} = \"{other}\": use \"cache\" or \"deny\"")),
    }
}

pub fn validate_sync(raw: &RawSync) -> Result<SyncConfig, String> {
    let on = raw.on_stale.as_ref();
    Ok(SyncConfig {
        on_stale_printer: stale_action(
            "sync.on_stale.printer",
            on.and_then(|o| o.printer.as_deref()),
        )?,
        on_stale_door: stale_action("sync.on_stale.door", on.and_then(|o| o.door.as_deref()))?,
    })
}

pub fn validate_directories(raw: &[RawDirectory]) -> Result<Vec<DirectoryConfig>, String> {
    let mut out: Vec<DirectoryConfig> = Vec::new();
    for (i, d) in raw.iter().enumerate() {
        let key = format!("directory[{i}]");
        let valid_name = !d.name.is_empty()
            && d.name.len() <= 64
            && d.name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid_name {
            return Err(format!(
                "{key}.name = {:?}: use 1 to 64 letters, digits, `-`, `_` or `.`",
                d.name
            ));
        }
        if out.iter().any(|o| o.name == d.name) {
            return Err(format!("{key}.name = \"{}\" is declared twice", d.name));
        }
        let source = directory_source(&key, d)?;
        let interval = duration_key(
            &format!("{key}.interval"),
            d.interval.as_deref(),
            Duration::from_secs(30),
        )?;
        if interval < Duration::from_millis(100) {
            return Err(format!(
                "{key}.interval must be at least 100ms (default 30s)"
            ));
        }
        let max_delete_share = d.max_delete_share.unwrap_or(0.10);
        if !(0.0..=1.0).contains(&max_delete_share) {
            return Err(format!(
                "{key}.max_delete_share = {max_delete_share}: use a share from 0.0 to 1.0 (default 0.1 = 10 %)"
            ));
        }
        let max_staleness = duration_key(
            &format!("{key}.max_staleness"),
            d.max_staleness.as_deref(),
            Duration::from_secs(72 * 3600),
        )?;
        out.push(DirectoryConfig {
            name: d.name.clone(),
            source,
            interval,
            max_delete_share,
            max_staleness,
        });
    }
    Ok(out)
}

/// `kind`: the source a directory follows, with the keys that apply to it.
fn directory_source(key: &str, d: &RawDirectory) -> Result<DirectorySource, String> {
    Ok(match d.kind.as_str() {
        "csv" => DirectorySource::Csv(csv(key, d)?),
        "scim" => DirectorySource::Scim(Box::new(scim(key, d)?)),
        "ldap" => {
            misplaced(
                key,
                "ldap",
                &[
                    ("path", d.path.is_some()),
                    ("delimiter", d.delimiter.is_some()),
                    ("url", d.url.is_some()),
                    ("token_file", d.token_file.is_some()),
                    ("page_size", d.page_size.is_some()),
                    ("timeout", d.timeout.is_some()),
                ],
            )?;
            DirectorySource::Ldap(Box::new(super::ldap::validate(key, d)?))
        }
        other => {
            return Err(format!(
                "{key}.kind = \"{other}\": use \"ldap\", \"scim\" or \"csv\""
            ))
        }
    })
}

fn misplaced(key: &str, kind: &str, fields: &[(&str, bool)]) -> Result<(), String> {
    match fields.iter().find(|(_, set)| *set) {
        Some((name, _)) => Err(format!("{key}.{name} does not apply to kind = \"{kind}\"")),
        None => Ok(()),
    }
}

fn csv(key: &str, d: &RawDirectory) -> Result<CsvSettings, String> {
    misplaced(
        key,
        "csv",
        &[
            ("url", d.url.is_some()),
            ("token_file", d.token_file.is_some()),
            ("page_size", d.page_size.is_some()),
            ("timeout", d.timeout.is_some()),
            ("full_every", d.full_every.is_some()),
            ("attributes", d.attributes.is_some()),
            ("ldap", d.ldap.is_some()),
        ],
    )?;
    let path = d
        .path
        .as_deref()
        .ok_or_else(|| format!("{key}.path is missing: the CSV or TSV file to follow"))?;
    let path = absolute(path);
    let tsv = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("tsv"));
    let delimiter = match d.delimiter.as_deref() {
        None if tsv => '\t',
        None | Some(",") => ',',
        Some("\t") | Some("tab") => '\t',
        Some(other) => return Err(format!("{key}.delimiter = {other:?}: use \",\" or \"tab\"")),
    };
    Ok(CsvSettings { path, delimiter })
}

fn scim(key: &str, d: &RawDirectory) -> Result<ScimSettings, String> {
    misplaced(
        key,
        "scim",
        &[
            ("path", d.path.is_some()),
            ("delimiter", d.delimiter.is_some()),
            ("ldap", d.ldap.is_some()),
        ],
    )?;
    let url = d.url.clone().ok_or_else(|| {
        format!(
            "{key}.url is missing: the SCIM base URL, such as \"https://idp.example.org/scim/v2\""
        )
    })?;
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(format!(
            "{key}.url = \"{url}\": use an http:// or https:// URL"
        ));
    }
    let page_size = d.page_size.unwrap_or(200);
    if !(1..=1000).contains(&page_size) {
        return Err(format!("{key}.page_size = {page_size}: use 1 to 1000"));
    }
    let attributes = scim_attributes(key, d.attributes.as_ref())?;
    Ok(ScimSettings {
        url: url.trim_end_matches('/').to_string(),
        token_file: d.token_file.as_deref().map(absolute),
        page_size,
        timeout: duration_key(
            &format!("{key}.timeout"),
            d.timeout.as_deref(),
            Duration::from_secs(30),
        )?,
        full_every: duration_key(
            &format!("{key}.full_every"),
            d.full_every.as_deref(),
            Duration::from_secs(24 * 3600),
        )?,
        attributes,
    })
}

/// `[directory.attributes]` of a SCIM directory: which SCIM attribute fills each user field.
fn scim_attributes(
    key: &str,
    a: Option<&BTreeMap<String, String>>,
) -> Result<ScimAttributes, String> {
    let attr = |name: &str, default: &str| -> String {
        a.and_then(|a| a.get(name).cloned())
            .unwrap_or_else(|| default.to_string())
    };
    let opt = |name: &str| a.and_then(|a| a.get(name).cloned());
    if let Some(a) = a {
        let known = [
            "id",
            "name",
            "email",
            "groups",
            "pin",
            "card",
            "enabled",
            "valid_from",
            "valid_until",
        ];
        if let Some(k) = a.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(format!(
                "{key}.attributes.{k} is not an attribute: use {}",
                known.join(", ")
            ));
        }
    }
    Ok(ScimAttributes {
        id: attr("id", "userName"),
        name: attr("name", "displayName"),
        email: attr("email", "emails[primary].value"),
        groups: attr("groups", "groups[].display"),
        pin: opt("pin"),
        card: opt("card"),
        enabled: attr("enabled", "active"),
        valid_from: opt("valid_from"),
        valid_until: opt("valid_until"),
    })
}
