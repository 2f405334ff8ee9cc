//! `[[directory]] kind = "ldap"`: a preset (OpenLDAP syncrepl or Active Directory polling)
//! with every knob overridable. Reads no files: the bind password is a path, read when the
//! daemon starts.

use super::raw::{RawDirectory, RawLdap};
use super::{absolute, duration_key};
use crate::sync::ldap::{EnabledRule, GroupSource, LdapMapping, LdapSettings, Mode, Scope};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Clone, Debug, Serialize)]
pub struct LdapDirectory {
    /// Printed by `check-config` in its redacted `Debug` form.
    #[serde(serialize_with = "as_debug")]
    pub settings: LdapSettings,
    pub bind_password_file: Option<PathBuf>,
}

fn as_debug<S: serde::Serializer>(value: &LdapSettings, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{value:?}"))
}

pub fn validate(key: &str, d: &RawDirectory) -> Result<LdapDirectory, String> {
    let l = d.ldap.as_ref().ok_or_else(|| {
        format!("{key} needs an [directory.ldap] table with at least url and base_dn")
    })?;
    let mut s = preset(key, l)?;
    connection(key, l, &mut s)?;
    s.mode = mode(key, d, l, s.mode.clone())?;
    s.group_source = group_source(key, l, s.group_source)?;
    if let Some(a) = &d.attributes {
        mapping(key, a, &mut s.mapping)?;
    }
    if let Some(rule) = &l.enabled {
        s.mapping.enabled = enabled_rule(key, l, rule)?;
    }
    let bind_password_file = l.bind_password_file.as_deref().map(absolute);
    if s.bind_dn.is_some() != bind_password_file.is_some() {
        return Err(format!("{key}.ldap: set bind_dn and bind_password_file together (or neither, for an anonymous bind)"));
    }
    // The password is read at start; a stand-in lets the rest be checked now.
    s.bind_password = if s.bind_dn.is_some() {
        "set at start".into()
    } else {
        String::new()
    };
    s.validate().map_err(|e| format!("{key}.{e}"))?;
    s.bind_password = String::new();
    Ok(LdapDirectory {
        settings: s,
        bind_password_file,
    })
}

/// `preset`: the OpenLDAP (default) or Active Directory starting point.
fn preset(key: &str, l: &RawLdap) -> Result<LdapSettings, String> {
    match l.preset.as_deref().unwrap_or("openldap") {
        "openldap" => Ok(LdapSettings::openldap(&l.url, &l.base_dn)),
        "active_directory" => Ok(LdapSettings::active_directory(&l.url, &l.base_dn)),
        other => Err(format!(
            "{key}.ldap.preset = \"{other}\": use \"openldap\" or \"active_directory\""
        )),
    }
}

/// TLS, bind DN, search filter, scope, page size and timeout.
fn connection(key: &str, l: &RawLdap, s: &mut LdapSettings) -> Result<(), String> {
    s.starttls = l.starttls.unwrap_or(false);
    s.ca_file = l
        .ca_file
        .as_deref()
        .map(|p| absolute(p).display().to_string());
    s.bind_dn = l.bind_dn.clone();
    if let Some(filter) = &l.filter {
        s.filter = filter.clone();
    }
    s.scope = match l.scope.as_deref() {
        None | Some("subtree") => Scope::Subtree,
        Some("one") => Scope::OneLevel,
        Some(other) => {
            return Err(format!(
                "{key}.ldap.scope = \"{other}\": use \"subtree\" or \"one\""
            ))
        }
    };
    if let Some(p) = l.page_size {
        s.page_size = p;
    }
    s.timeout = duration_key(
        &format!("{key}.ldap.timeout"),
        l.timeout.as_deref(),
        s.timeout,
    )?;
    Ok(())
}

/// `mode` (syncrepl or poll; the preset's by default) with `full_every` and, for polling,
/// the change, high-water and server-identity attributes.
fn mode(key: &str, d: &RawDirectory, l: &RawLdap, preset: Mode) -> Result<Mode, String> {
    let full_every = |default| {
        duration_key(
            &format!("{key}.full_every"),
            d.full_every.as_deref(),
            default,
        )
    };
    Ok(match (l.mode.as_deref(), preset) {
        (None, Mode::Syncrepl { full_every: f })
        | (Some("syncrepl"), Mode::Syncrepl { full_every: f }) => Mode::Syncrepl {
            full_every: full_every(f)?,
        },
        (Some("syncrepl"), Mode::Poll { full_every: f, .. }) => Mode::Syncrepl {
            full_every: full_every(f)?,
        },
        (
            None | Some("poll"),
            Mode::Poll {
                change_attribute,
                high_water_attribute,
                server_id_attribute,
                server_id_entry_attribute,
                full_every: f,
            },
        ) => Mode::Poll {
            change_attribute: l.change_attribute.clone().unwrap_or(change_attribute),
            high_water_attribute: l.high_water_attribute.clone().or(high_water_attribute),
            server_id_attribute: l.server_id_attribute.clone().unwrap_or(server_id_attribute),
            server_id_entry_attribute: l
                .server_id_entry_attribute
                .clone()
                .or(server_id_entry_attribute),
            full_every: full_every(f)?,
        },
        (Some("poll"), Mode::Syncrepl { full_every: f }) => Mode::Poll {
            change_attribute: l
                .change_attribute
                .clone()
                .unwrap_or_else(|| "entryCSN".into()),
            high_water_attribute: l.high_water_attribute.clone(),
            server_id_attribute: l
                .server_id_attribute
                .clone()
                .unwrap_or_else(|| "entryUUID".into()),
            server_id_entry_attribute: l.server_id_entry_attribute.clone(),
            full_every: full_every(f)?,
        },
        (Some(other), _) => {
            return Err(format!(
                "{key}.ldap.mode = \"{other}\": use \"syncrepl\" or \"poll\""
            ))
        }
    })
}

/// `groups`: memberOf-style attributes, group entries, or none (the preset's by default).
fn group_source(key: &str, l: &RawLdap, preset: GroupSource) -> Result<GroupSource, String> {
    Ok(match l.groups.as_deref() {
        None => preset,
        Some("member_of") => GroupSource::MemberOf {
            attribute: l
                .member_of_attribute
                .clone()
                .unwrap_or_else(|| "memberOf".into()),
        },
        Some("entries") => GroupSource::GroupEntries {
            base_dn: l.group_base_dn.clone().ok_or_else(|| {
                format!("{key}.ldap.group_base_dn is required with groups = \"entries\"")
            })?,
            filter: l
                .group_filter
                .clone()
                .unwrap_or_else(|| "(|(objectClass=groupOfNames)(objectClass=posixGroup))".into()),
            member_attributes: l
                .group_member_attributes
                .clone()
                .unwrap_or_else(|| vec!["member".into(), "memberUid".into()]),
            name_attribute: l
                .group_name_attribute
                .clone()
                .unwrap_or_else(|| "cn".into()),
        },
        Some("none") => GroupSource::None,
        Some(other) => {
            return Err(format!(
                "{key}.ldap.groups = \"{other}\": use \"member_of\", \"entries\" or \"none\""
            ))
        }
    })
}

/// `[directory.attributes]`: which LDAP attribute fills each user field (empty = unmapped).
fn mapping(
    key: &str,
    attributes: &BTreeMap<String, String>,
    m: &mut LdapMapping,
) -> Result<(), String> {
    for (name, value) in attributes {
        let opt = Some(value.clone()).filter(|v| !v.is_empty());
        match name.as_str() {
            "key" => m.key = value.clone(),
            "id" => m.id = value.clone(),
            "name" => m.name = value.clone(),
            "email" => m.email = opt,
            "pin" => m.pin = opt,
            "card" => m.card = opt,
            "valid_from" => m.valid_from = opt,
            "valid_until" => m.valid_until = opt,
            "version" => m.version = opt,
            other => return Err(format!("{key}.attributes.{other} is not an LDAP mapping: use key, id, name, email, pin, card, valid_from, valid_until, version")),
        }
    }
    Ok(())
}

/// `enabled`: how an entry says whether its user is enabled.
fn enabled_rule(key: &str, l: &RawLdap, rule: &str) -> Result<EnabledRule, String> {
    let attribute = || {
        l.enabled_attribute.clone().ok_or_else(|| {
            format!("{key}.ldap.enabled_attribute is required with enabled = \"{rule}\"")
        })
    };
    Ok(match rule {
        "always" => EnabledRule::Always,
        "boolean" => EnabledRule::Boolean { attribute: attribute()?, absent: l.enabled_when_absent.unwrap_or(true) },
        "account_control" => EnabledRule::AccountControl { attribute: attribute()? },
        "disabled_when_present" => EnabledRule::DisabledWhenPresent { attribute: attribute()? },
        other => return Err(format!("{key}.ldap.enabled = \"{other}\": use always, boolean, account_control or disabled_when_present")),
    })
}

/// Reads the bind password (trailing newline trimmed), at daemon start.
pub fn with_password(d: &LdapDirectory) -> Result<LdapSettings, String> {
    let mut s = d.settings.clone();
    if let Some(path) = &d.bind_password_file {
        let text =
            crate::secret::read_line("ldap.bind_password_file", path).map_err(|e| e.to_string())?;
        s.bind_password = text.as_str().to_string();
    }
    Ok(s)
}
