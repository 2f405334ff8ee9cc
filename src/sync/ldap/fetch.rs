//! One fetch over an open connection: the syncrepl refresh (OpenLDAP) or the change-attribute
//! poll (AD), group entries when membership lives there, and the mapping of each entry. Turns
//! what the server sent into a `Batch`; never touches the store.

use super::conn::{result_error, to_entry, Conn};
use super::cursor::{max_change, next_lower_bound, Cursor};
use super::mapping::{
    first_rdn_value, groups_from_attribute, key_from_values, map_entry, uuid_text, Entry,
    GroupIndex, MapError,
};
use super::refresh::{Info, Refresh, State};
use super::settings::{EnabledRule, GroupSource, LdapSettings, Mode, Scope};
use crate::domain::Timestamp;
use crate::sync::source::{Batch, Deletions, SourceError, UpstreamUser};
use ldap3::controls::{
    parse_syncinfo, ControlType, EntryState, MakeCritical, RefreshMode, SyncDone, SyncInfo,
    SyncRequest, SyncState,
};
use ldap3::ResultEntry;
use std::time::Duration;

/// Where this fetch takes each user's groups from.
enum Groups {
    Attribute(String),
    Index(GroupIndex),
    None,
}

/// The attributes a user search asks for.
fn user_attrs(s: &LdapSettings) -> Vec<String> {
    let m = &s.mapping;
    let mut attrs = vec![m.id.clone(), m.name.clone()];
    let optional = [
        &m.email,
        &m.pin,
        &m.card,
        &m.valid_from,
        &m.valid_until,
        &m.version,
    ];
    attrs.extend(optional.into_iter().flatten().cloned());
    match &m.enabled {
        EnabledRule::Always => {}
        EnabledRule::Boolean { attribute, .. }
        | EnabledRule::AccountControl { attribute }
        | EnabledRule::DisabledWhenPresent { attribute } => attrs.push(attribute.clone()),
    }
    if let GroupSource::MemberOf { attribute } = &s.group_source {
        attrs.push(attribute.clone());
    }
    if let Mode::Poll {
        change_attribute, ..
    } = &s.mode
    {
        attrs.extend([change_attribute.clone(), m.key.clone()]);
    }
    attrs.sort_by_key(|a| a.to_ascii_lowercase());
    attrs.dedup_by_key(|a| a.to_ascii_lowercase());
    attrs
}

/// Reads the group source; with group entries, also the digest of their membership.
async fn load_groups(
    conn: &mut Conn,
    s: &LdapSettings,
) -> Result<(Groups, Option<String>), SourceError> {
    let GroupSource::GroupEntries {
        base_dn,
        filter,
        member_attributes,
        name_attribute,
    } = &s.group_source
    else {
        return Ok(match &s.group_source {
            GroupSource::MemberOf { attribute } => (Groups::Attribute(attribute.clone()), None),
            _ => (Groups::None, None),
        });
    };
    let mut index = GroupIndex::default();
    let mut attrs = member_attributes.clone();
    attrs.push(name_attribute.clone());
    conn.paged(base_dn, Scope::Subtree, filter, &attrs, |group| {
        let name = group
            .texts(name_attribute)
            .ok()
            .and_then(|n| n.first().map(|n| n.to_string()))
            .or_else(|| first_rdn_value(&group.dn));
        let members: Result<Vec<&str>, MapError> = member_attributes
            .iter()
            .map(|a| group.texts(a))
            .collect::<Result<Vec<_>, _>>()
            .map(|lists| lists.concat());
        match (name, members) {
            (Some(name), Ok(members)) => index.add(&name, &members),
            _ => tracing::warn!(dn = %group.dn, "skipping a group entry without a usable name"),
        }
        Ok(())
    })
    .await?;
    let digest = hex::encode(index.digest());
    Ok((Groups::Index(index), Some(digest)))
}

/// Maps one entry; an unusable entry is logged (never with its values) and skipped.
fn map_one(s: &LdapSettings, groups: &Groups, key: String, entry: &Entry) -> Option<UpstreamUser> {
    let m = &s.mapping;
    let result = match groups {
        Groups::Attribute(attr) => groups_from_attribute(entry, attr),
        Groups::Index(index) => entry
            .single(&m.id)
            .map(|id| index.groups_of(&entry.dn, id.unwrap_or_default())),
        Groups::None => Ok(Vec::new()),
    }
    .and_then(|g| map_entry(m, key, entry, g));
    match result {
        Ok(user) => Some(user),
        Err(e) => {
            tracing::warn!(dn = %entry.dn, error = %e, "skipping a directory entry");
            None
        }
    }
}

fn malformed(what: &str) -> SourceError {
    SourceError::Malformed(what.to_owned())
}

fn user_filter(s: &LdapSettings) -> String {
    let f = s.filter.trim();
    if f.starts_with('(') {
        f.to_owned()
    } else {
        format!("({f})")
    }
}

/// An RFC 4533 refreshOnly search, resumed from the cursor's cookie unless the group
/// membership changed since (then a complete refresh).
pub async fn syncrepl(
    conn: &mut Conn,
    s: &LdapSettings,
    cursor: Option<Cursor>,
    now: Timestamp,
    full_every: Duration,
) -> Result<Batch, SourceError> {
    let (groups, digest) = load_groups(conn, s).await?;
    let (cookie, full_at) = match cursor {
        Some(Cursor::Syncrepl {
            cookie,
            groups,
            full_at,
        }) if groups == digest && Timestamp::from_millis(full_at).plus(full_every) > now => {
            (Some(cookie), full_at)
        }
        _ => (None, now.millis()),
    };
    let mut refresh = Refresh::new(cookie.is_none());
    let request = SyncRequest {
        mode: RefreshMode::RefreshOnly,
        cookie,
        reload_hint: false,
    }
    .critical();
    let res = conn
        .stream(
            &s.base_dn,
            s.scope,
            &user_filter(s),
            &user_attrs(s),
            vec![request.into()],
            |item| sync_item(&mut refresh, s, &groups, item),
        )
        .await?;
    if res.rc != 0 {
        return Err(result_error(&res));
    }
    let done = res
        .ctrls
        .iter()
        .find(|c| matches!(c.0, Some(ControlType::SyncDone)))
        .ok_or_else(|| malformed("the sync search ended without a Sync Done control"))?
        .1
        .parse::<SyncDone>();
    let outcome = refresh.done(done.cookie, done.refresh_deletes);
    if outcome.skipped > 0 {
        tracing::warn!(skipped = outcome.skipped, "directory entries skipped");
    }
    Ok(Batch {
        changed: outcome.changed,
        deletions: outcome.deletions,
        cursor: outcome.cookie.map(|cookie| {
            let groups = digest;
            Cursor::Syncrepl {
                cookie,
                groups,
                full_at,
            }
            .encode()
        }),
    })
}

fn sync_item(
    refresh: &mut Refresh,
    s: &LdapSettings,
    groups: &Groups,
    item: ResultEntry,
) -> Result<(), SourceError> {
    if item.is_intermediate() {
        refresh.info(info(parse_syncinfo(item))?);
        return Ok(());
    }
    if item.is_ref() {
        return Ok(());
    }
    let control = item
        .1
        .iter()
        .find(|c| matches!(c.0, Some(ControlType::SyncState)))
        .ok_or_else(|| malformed("an entry of the sync search has no Sync State control"))?;
    let sync_state = control.1.parse::<SyncState>();
    let key = uuid_text(&sync_state.entry_uuid)
        .ok_or_else(|| malformed("a Sync State control's entryUUID is not 16 bytes"))?;
    let state = match sync_state.state {
        EntryState::Present => State::Present,
        EntryState::Add => State::Add,
        EntryState::Modify => State::Modify,
        EntryState::Delete => State::Delete,
    };
    let user = match state {
        State::Add | State::Modify => map_one(s, groups, key.clone(), &to_entry(item)),
        State::Present | State::Delete => None,
    };
    refresh.entry(state, key, user);
    Ok(())
}

fn info(info: SyncInfo) -> Result<Info, SourceError> {
    Ok(match info {
        SyncInfo::NewCookie(c) => Info::NewCookie(c),
        SyncInfo::RefreshDelete { cookie, .. } | SyncInfo::RefreshPresent { cookie, .. } => {
            Info::Phase { cookie }
        }
        SyncInfo::SyncIdSet {
            cookie,
            refresh_deletes,
            sync_uuids,
        } => Info::IdSet {
            cookie,
            refresh_deletes,
            keys: sync_uuids
                .iter()
                .map(|u| uuid_text(u).ok_or_else(|| malformed("a syncIdSet UUID is not 16 bytes")))
                .collect::<Result<_, _>>()?,
        },
    })
}

/// What a poll does: a complete listing, or the entries changed since a lower bound.
#[derive(Debug, PartialEq, Eq)]
pub struct PollPlan {
    /// `None`: complete listing.
    pub since: Option<String>,
    /// When the last complete listing ran, after this fetch.
    pub full_at: i64,
}

/// Decides between a complete listing and an incremental poll.
pub fn plan_poll(
    cursor: Option<&Cursor>,
    server: &str,
    groups: Option<&str>,
    now: Timestamp,
    full_every: Duration,
) -> PollPlan {
    let full = PollPlan {
        since: None,
        full_at: now.millis(),
    };
    let Some(Cursor::Poll {
        server: saved,
        high_water: Some(high_water),
        full_at,
        groups: saved_groups,
    }) = cursor
    else {
        return full;
    };
    let due = Timestamp::from_millis(*full_at).plus(full_every) <= now;
    if saved != server || saved_groups.as_deref() != groups || due {
        return full;
    }
    PollPlan {
        since: Some(next_lower_bound(high_water)),
        full_at: *full_at,
    }
}

/// An AD-style poll: the root DSE names the server and the high-water mark; then a paged
/// search for everything (complete) or for entries whose change attribute grew.
pub async fn poll(
    conn: &mut Conn,
    s: &LdapSettings,
    cursor: Option<Cursor>,
    now: Timestamp,
) -> Result<Batch, SourceError> {
    let Mode::Poll {
        change_attribute,
        high_water_attribute,
        server_id_attribute,
        server_id_entry_attribute,
        full_every,
    } = &s.mode
    else {
        return Err(malformed("poll called for a syncrepl source"));
    };
    let mut root_attrs = vec![server_id_attribute.clone()];
    root_attrs.extend(high_water_attribute.iter().cloned());
    let root = conn.read("", &root_attrs).await?;
    let server =
        server_identity(conn, &root, server_id_attribute, server_id_entry_attribute).await?;
    let root_high = high_water_attribute
        .as_deref()
        .and_then(|a| root.single(a).ok().flatten().map(str::to_owned));
    let (groups, digest) = load_groups(conn, s).await?;
    let plan = plan_poll(
        cursor.as_ref(),
        &server,
        digest.as_deref(),
        now,
        *full_every,
    );
    let filter = match &plan.since {
        None => user_filter(s),
        Some(bound) => format!(
            "(&{}({}>={}))",
            user_filter(s),
            change_attribute,
            ldap3::ldap_escape(bound)
        ),
    };
    let mut high = match (&cursor, &plan.since) {
        (Some(Cursor::Poll { high_water, .. }), Some(_)) => high_water.clone(),
        _ => None,
    };
    let (mut changed, mut present) = (Vec::new(), Vec::new());
    let attrs = user_attrs(s);
    conn.paged(&s.base_dn, s.scope, &filter, &attrs, |entry| {
        if let Ok(Some(v)) = entry.single(change_attribute) {
            high = max_change(high.take(), v.trim());
        }
        let key = match key_from_values(&s.mapping.key, entry.values(&s.mapping.key)) {
            Ok(key) => key,
            Err(e) => {
                tracing::warn!(dn = %entry.dn, error = %e, "skipping an entry without a key");
                return Ok(());
            }
        };
        match map_one(s, &groups, key.clone(), &entry) {
            Some(user) => changed.push(user),
            None => present.push(key),
        }
        Ok(())
    })
    .await?;
    let high_water = root_high.or(high);
    let deletions = match plan.since {
        None => Deletions::AllExcept { present },
        Some(_) => Deletions::Keys(Vec::new()),
    };
    let cursor = Cursor::Poll {
        server,
        high_water,
        full_at: plan.full_at,
        groups: digest,
    };
    Ok(Batch {
        changed,
        deletions,
        cursor: Some(cursor.encode()),
    })
}

/// The server identity: the root DSE attribute's values, plus the named entry's attribute
/// when configured (AD: dsServiceName's invocationId).
async fn server_identity(
    conn: &mut Conn,
    root: &Entry,
    attr: &str,
    entry_attr: &Option<String>,
) -> Result<String, SourceError> {
    let mut values: Vec<String> = root.values(attr).iter().map(|v| text_or_hex(v)).collect();
    values.sort();
    let Some(first) = values.first().cloned() else {
        return Err(SourceError::Rejected(format!(
            "the root DSE has no `{attr}`: set server_id_attribute to one it has"
        )));
    };
    let mut id = values.join(";");
    if let Some(entry_attr) = entry_attr {
        let entry = conn.read(&first, std::slice::from_ref(entry_attr)).await?;
        let extra: Vec<String> = entry
            .values(entry_attr)
            .iter()
            .map(|v| text_or_hex(v))
            .collect();
        if extra.is_empty() {
            let e = MapError::Missing(entry_attr.clone());
            return Err(SourceError::Rejected(format!("`{first}`: {e}")));
        }
        id = format!("{id}|{}", extra.join(";"));
    }
    Ok(id)
}

fn text_or_hex(v: &[u8]) -> String {
    match std::str::from_utf8(v) {
        Ok(t) if !t.chars().any(char::is_control) => t.to_owned(),
        _ => hex::encode(v),
    }
}
