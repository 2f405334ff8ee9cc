//! The user record kept in the local cache, with its PIN record (a tag, never a PIN).

use super::{Tag, Timestamp};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserOrigin {
    /// Owned by a directory source; sync may change or remove it.
    Upstream,
    /// Created here (admin, import, guest); sync never touches it.
    Local,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PinSource {
    Upstream,
    Admin,
    User,
    Generated,
    Import,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinRecord {
    pub tag: Tag,
    pub set_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    pub source: PinSource,
    #[serde(default)]
    pub temporary: bool,
    /// A limited-use PIN: grants left (decremented in the grant's own store transaction;
    /// 0 = exhausted). None: unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uses_left: Option<u32>,
    /// The PIN's own weekly windows (`Mon-Fri 08:00-18:00`, the `[[schedule]]` syntax, in
    /// the site time zone); empty: any time the user's access allows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Case-preserved identifier (login name).
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_from: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<Timestamp>,
    pub origin: UserOrigin,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin: Option<PinRecord>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cards: Vec<String>,
    /// A second PIN that opens normally but raises a silent `duress` audit event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duress: Option<PinRecord>,
    /// The directory source that owns an `Upstream` user, and the user's key there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<UpstreamRef>,
    /// The user has been given a PIN before. `generation = "auto"` gives PINs to users who
    /// never had one; a PIN that expired or was removed is not replaced unasked.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pin_issued: bool,
    /// A PIN sent after a forgotten-PIN request: in the tag index beside the current PIN,
    /// which keeps working until this one is first used and replaces it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_pin: Option<PinRecord>,
    /// A guest: the user who sponsored it (its groups and validity came from them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sponsor: Option<String>,
}

/// Which `[[directory]]` owns an upstream user, and the entry's stable key at that source
/// (LDAP entryUUID, SCIM `id`, CSV user id). Only that source's sync may change the user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamRef {
    pub source: String,
    pub key: String,
    /// The entry's version at the source when last applied (see `UpstreamUser::version`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

impl User {
    pub fn new_local(id: impl Into<String>) -> Self {
        User {
            id: id.into(),
            name: String::new(),
            email: None,
            groups: Vec::new(),
            enabled: true,
            valid_from: None,
            valid_until: None,
            origin: UserOrigin::Local,
            pin: None,
            cards: Vec::new(),
            duress: None,
            upstream: None,
            pin_issued: false,
            pending_pin: None,
            sponsor: None,
        }
    }

    /// Every tag this user owns in the tag index (PIN and duress PIN).
    pub fn tags(&self) -> Vec<Tag> {
        self.pin
            .iter()
            .chain(self.duress.iter())
            .chain(self.pending_pin.iter())
            .map(|p| p.tag)
            .collect()
    }
}

/// The most bytes a user id may have: ids land on the terminal wire (`OK <id> …`).
pub const MAX_USER_ID_BYTES: usize = 128;

/// Why a text is not a user id; the message completes "the id …".
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BadUserId {
    #[error("is empty")]
    Empty,
    #[error("contains whitespace or control characters")]
    Spaces,
    #[error("is longer than {MAX_USER_ID_BYTES} bytes")]
    TooLong,
}

impl BadUserId {
    /// The whole rule, for a person who typed an id.
    pub const RULE: &'static str =
        "a user id must be 1 to 128 bytes without spaces or control characters";
}

/// The one rule for user ids, wherever they come from (an admin, an import file, a
/// directory): 1 to `MAX_USER_ID_BYTES` bytes, no whitespace or control characters.
pub fn check_user_id(id: &str) -> Result<(), BadUserId> {
    if id.is_empty() {
        Err(BadUserId::Empty)
    } else if id.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Err(BadUserId::Spaces)
    } else if id.len() > MAX_USER_ID_BYTES {
        Err(BadUserId::TooLong)
    } else {
        Ok(())
    }
}

/// A persisted failure counter for one lockout key (a device, a source address, a user).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockoutState {
    /// Consecutive failures since the last success or reset.
    pub failures: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locked_until: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<Timestamp>,
}
