//! The LDAP/AD source's settings: plain data with presets for OpenLDAP (inetOrgPerson,
//! syncrepl) and Active Directory (uSNChanged polling). Config parsing lives in `config/`;
//! this file only says what each knob means and checks the values make sense together.

use std::fmt;
use std::time::Duration;

/// Largest page the source asks for: Active Directory's default `MaxPageSize`.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// Everything the LDAP source needs to fetch users. Build one with [`LdapSettings::openldap`]
/// or [`LdapSettings::active_directory`] and override fields.
#[derive(Clone)]
pub struct LdapSettings {
    /// `ldap://host:port` or `ldaps://host:port` (LDAPS: TLS from the first byte).
    pub url: String,
    /// Upgrade an `ldap://` connection with StartTLS before binding. Ignored for `ldaps://`.
    pub starttls: bool,
    /// PEM file of the CA certificates trusted for the server's certificate. `None`: the
    /// system's trust store.
    pub ca_file: Option<String>,
    /// DN (or AD `user@domain`) for the simple bind. `None`: anonymous.
    pub bind_dn: Option<String>,
    /// The bind password, already read from `bind_password_file` by the config loader.
    /// Never logged; `Debug` redacts it.
    pub bind_password: String,
    /// Where users live, e.g. `ou=people,dc=example,dc=org`.
    pub base_dn: String,
    /// Which entries under `base_dn` are users, e.g. `(objectClass=inetOrgPerson)`.
    pub filter: String,
    /// How deep below `base_dn` to look.
    pub scope: Scope,
    /// Entries per page for paged searches (RFC 2696), 1..=1000.
    pub page_size: u32,
    /// How long any single step (connect, TLS, bind, the next message of a search) may wait
    /// for the server before the fetch gives up as unavailable.
    pub timeout: Duration,
    /// How changes are found: syncrepl (OpenLDAP) or polling a change attribute (AD).
    pub mode: Mode,
    /// Where group membership comes from.
    pub group_source: GroupSource,
    /// Which attributes hold what.
    pub mapping: LdapMapping,
}

/// Search depth below the base DN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Only the entries directly below the base.
    OneLevel,
    /// The whole subtree.
    Subtree,
}

/// How incremental fetches find changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// RFC 4533 content synchronisation, refreshOnly, resumed from the saved cookie.
    /// The server needs the `syncprov` overlay, and the bind DN a size limit of unlimited
    /// (`limits dn.exact="…" size=unlimited`): OpenLDAP does not page a sync search.
    /// Keys are the entries' entryUUIDs.
    Syncrepl {
        /// Interval between complete refreshes (no cookie). They catch what syncrepl does
        /// not carry: OpenLDAP's memberof overlay does not replicate `memberOf` changes, so
        /// a user added to a group shows up at the next complete refresh (use
        /// `GroupSource::GroupEntries` to see it at the next fetch).
        full_every: Duration,
    },
    /// Poll for entries whose `change_attribute` grew (AD `uSNChanged`), with a complete
    /// listing on the first fetch, whenever the server identity changes and every
    /// `full_every`. Deletions are only seen by the complete listings.
    Poll {
        /// An attribute every write raises: AD `uSNChanged`; OpenLDAP `entryCSN` or
        /// `modifyTimestamp`. Integer values are compared as numbers, others as strings.
        change_attribute: String,
        /// A root DSE attribute read *before* each search whose value becomes the next
        /// high-water mark (AD `highestCommittedUSN`), so a write committed during a paged
        /// search is not skipped. `None`: the highest `change_attribute` seen.
        high_water_attribute: Option<String>,
        /// A root DSE attribute naming the server (AD `dsServiceName`). A different value
        /// means another server or a restored one: the next fetch is a complete listing.
        server_id_attribute: String,
        /// When set, `server_id_attribute` holds a DN and this attribute of that entry is
        /// part of the identity too (AD `invocationId`, which changes on a restore).
        server_id_entry_attribute: Option<String>,
        /// Interval between complete listings, which are what catch deletions.
        full_every: Duration,
    },
}

/// Where a user's groups come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupSource {
    /// A multi-valued attribute of the user holding group DNs (`memberOf`); the group's
    /// name is the value of the DN's first RDN (`cn=staff,ou=groups,…` → `staff`).
    MemberOf { attribute: String },
    /// Group entries listing their members, read in full on every fetch. Member values
    /// may be DNs (groupOfNames `member`) or user ids (posixGroup `memberUid`); both are
    /// matched. When the membership changes, the fetch becomes a complete listing.
    GroupEntries {
        base_dn: String,
        /// e.g. `(|(objectClass=groupOfNames)(objectClass=posixGroup))`.
        filter: String,
        /// e.g. `["member", "memberUid"]`.
        member_attributes: Vec<String>,
        /// The group's name, e.g. `cn`.
        name_attribute: String,
    },
    /// Users carry no groups.
    None,
}

/// Which attribute holds each user field. Names are matched case-insensitively.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LdapMapping {
    /// The stable key in poll mode (AD `objectGUID`, shown in GUID form; a text value is
    /// taken as is). Syncrepl mode always keys by the entryUUID the server sends.
    pub key: String,
    /// The login id (`uid`, AD `sAMAccountName`). Required on every entry.
    pub id: String,
    /// Display name (`cn`, AD `displayName`). Falls back to the id when absent.
    pub name: String,
    pub email: Option<String>,
    /// The plaintext PIN attribute. `None`: the directory carries no PINs.
    pub pin: Option<String>,
    /// Card numbers (multi-valued).
    pub card: Option<String>,
    pub enabled: EnabledRule,
    /// Start of the account's validity: GeneralizedTime, RFC 3339, a date, or an AD
    /// FILETIME integer.
    pub valid_from: Option<String>,
    /// End of the account's validity, same formats (AD `accountExpires`; 0 and
    /// 9223372036854775807 mean never).
    pub valid_until: Option<String>,
    /// An attribute every write changes (OpenLDAP `entryCSN`, AD `uSNChanged`): an entry
    /// whose version is unchanged keeps its hashed PIN, so complete refreshes re-hash only
    /// what changed. `None`: every PIN a fetch carries is re-hashed.
    pub version: Option<String>,
}

/// How an entry says whether its user may log in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EnabledRule {
    /// Every entry the filter matches is enabled.
    Always,
    /// A boolean attribute (`TRUE`/`FALSE`, also `1`/`0`, `yes`/`no`); `absent` applies
    /// when the entry lacks it.
    Boolean { attribute: String, absent: bool },
    /// AD `userAccountControl`: disabled when bit 2 (ACCOUNTDISABLE) is set.
    AccountControl { attribute: String },
    /// Disabled while the attribute is present, e.g. ppolicy's `pwdAccountLockedTime`.
    DisabledWhenPresent { attribute: String },
}

/// Settings that cannot work; each message names the field and the fix.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SettingsError {
    #[error("ldap.{field}: {problem}")]
    Invalid {
        field: &'static str,
        problem: String,
    },
}

fn invalid(field: &'static str, problem: impl Into<String>) -> SettingsError {
    SettingsError::Invalid {
        field,
        problem: problem.into(),
    }
}

impl LdapSettings {
    /// OpenLDAP with inetOrgPerson users, syncrepl and memberOf (the memberof overlay).
    /// PIN, card and validity use the `pinwarden*` attributes of the example schema
    /// (`tests/fixtures/ldap/pinwarden.schema`); point them elsewhere as needed.
    pub fn openldap(url: &str, base_dn: &str) -> Self {
        LdapSettings {
            url: url.to_owned(),
            starttls: false,
            ca_file: None,
            bind_dn: None,
            bind_password: String::new(),
            base_dn: base_dn.to_owned(),
            filter: "(objectClass=inetOrgPerson)".to_owned(),
            scope: Scope::Subtree,
            page_size: MAX_PAGE_SIZE,
            timeout: Duration::from_secs(30),
            mode: Mode::Syncrepl {
                full_every: Duration::from_secs(24 * 3600),
            },
            group_source: GroupSource::MemberOf {
                attribute: "memberOf".to_owned(),
            },
            mapping: LdapMapping {
                key: "entryUUID".to_owned(),
                id: "uid".to_owned(),
                name: "cn".to_owned(),
                email: Some("mail".to_owned()),
                pin: Some("pinwardenPin".to_owned()),
                card: Some("pinwardenCard".to_owned()),
                enabled: EnabledRule::DisabledWhenPresent {
                    attribute: "pwdAccountLockedTime".to_owned(),
                },
                valid_from: Some("pinwardenValidFrom".to_owned()),
                valid_until: Some("pinwardenValidUntil".to_owned()),
                version: Some("entryCSN".to_owned()),
            },
        }
    }

    /// Active Directory: person accounts, uSNChanged polling against one domain controller,
    /// a complete listing every 6 hours, memberOf groups, userAccountControl and
    /// accountExpires. AD has no PIN attribute: set `mapping.pin` (and `card`).
    pub fn active_directory(url: &str, base_dn: &str) -> Self {
        let mut s = LdapSettings::openldap(url, base_dn);
        s.filter = "(&(objectCategory=person)(objectClass=user))".to_owned();
        s.mode = Mode::Poll {
            change_attribute: "uSNChanged".to_owned(),
            high_water_attribute: Some("highestCommittedUSN".to_owned()),
            server_id_attribute: "dsServiceName".to_owned(),
            server_id_entry_attribute: Some("invocationId".to_owned()),
            full_every: Duration::from_secs(6 * 3600),
        };
        s.mapping = LdapMapping {
            key: "objectGUID".to_owned(),
            id: "sAMAccountName".to_owned(),
            name: "displayName".to_owned(),
            email: Some("mail".to_owned()),
            pin: None,
            card: None,
            enabled: EnabledRule::AccountControl {
                attribute: "userAccountControl".to_owned(),
            },
            valid_from: None,
            valid_until: Some("accountExpires".to_owned()),
            version: Some("uSNChanged".to_owned()),
        };
        s
    }

    /// Checks the values make sense together.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let scheme_ok = self.url.starts_with("ldap://") || self.url.starts_with("ldaps://");
        if !scheme_ok {
            return Err(invalid("url", "use an ldap:// or ldaps:// URL"));
        }
        if self.starttls && self.url.starts_with("ldaps://") {
            return Err(invalid(
                "starttls",
                "ldaps:// is already TLS; use ldap:// with starttls, or drop starttls",
            ));
        }
        if self.page_size == 0 || self.page_size > MAX_PAGE_SIZE {
            let problem = format!("must be between 1 and {MAX_PAGE_SIZE}");
            return Err(invalid("page_size", problem));
        }
        if self.timeout.is_zero() {
            return Err(invalid("timeout", "must be longer than zero, e.g. \"30s\""));
        }
        if ldap3::parse_filter(&self.filter).is_err() {
            return Err(invalid(
                "filter",
                "is not an LDAP filter, e.g. (objectClass=person)",
            ));
        }
        if let GroupSource::GroupEntries { filter, .. } = &self.group_source {
            if ldap3::parse_filter(filter).is_err() {
                return Err(invalid("group_filter", "is not an LDAP filter"));
            }
        }
        let (Mode::Poll { full_every, .. } | Mode::Syncrepl { full_every }) = &self.mode;
        if full_every.is_zero() {
            return Err(invalid(
                "full_every",
                "must be longer than zero, e.g. \"6h\"",
            ));
        }
        if self.bind_dn.is_some() && self.bind_password.is_empty() {
            return Err(invalid(
                "bind_password_file",
                "bind_dn is set but the password is empty: an empty simple bind is anonymous",
            ));
        }
        Ok(())
    }
}

impl fmt::Debug for LdapSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LdapSettings")
            .field("url", &self.url)
            .field("starttls", &self.starttls)
            .field("ca_file", &self.ca_file)
            .field("bind_dn", &self.bind_dn)
            .field("bind_password", &"<redacted>")
            .field("base_dn", &self.base_dn)
            .field("filter", &self.filter)
            .field("scope", &self.scope)
            .field("page_size", &self.page_size)
            .field("timeout", &self.timeout)
            .field("mode", &self.mode)
            .field("group_source", &self.group_source)
            .field("mapping", &self.mapping)
            .finish()
    }
}
