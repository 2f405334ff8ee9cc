//! Control socket messages. PINs travel only inside `WirePin`, which is wiped on drop and
//! never printed.

use crate::domain::Pin;
use crate::lifecycle::import::ImportProblem;
use crate::lifecycle::users::{NewGuest, NewUser};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A PIN inside a control message.
#[derive(Debug)]
pub struct WirePin(pub Pin);

impl Serialize for WirePin {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.expose())
    }
}

impl<'de> Deserialize<'de> for WirePin {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(WirePin(Pin::new(String::deserialize(d)?)))
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireRow {
    pub line: usize,
    pub id: String,
    pub name: String,
    pub email: Option<String>,
    pub groups: Vec<String>,
    pub pin: Option<WirePin>,
    #[serde(default)]
    pub cards: Vec<String>,
}

/// A control request. Every field a request does not take is refused, not ignored (a
/// misspelt option must not silently do something else).
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    Status,
    UserAdd {
        user: NewUser,
        pin: Option<WirePin>,
        #[serde(default)]
        generate: bool,
        expires: Option<String>,
        /// A limited-use PIN: the grants it allows.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        uses: Option<u32>,
        /// The PIN's own weekly windows (`Mon-Fri 08:00-18:00`).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        windows: Vec<String>,
    },
    UserSetPin {
        id: String,
        pin: Option<WirePin>,
        #[serde(default)]
        generate: bool,
        expires: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        uses: Option<u32>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        windows: Vec<String>,
    },
    UserSetDuress {
        id: String,
        pin: WirePin,
    },
    UserClearDuress {
        id: String,
    },
    UserRemove {
        id: String,
    },
    UserDisable {
        id: String,
    },
    UserEnable {
        id: String,
    },
    UserShow {
        id: String,
    },
    UserList,
    /// Move the expiry of a user's PIN without changing it: `never`, a duration from now
    /// (`7d`) or a date / RFC 3339 time in the future.
    UserSetValidity {
        id: String,
        expires: String,
    },
    /// Create a guest of `sponsor` in the sponsor's likeness.
    GuestAdd {
        sponsor: String,
        guest: NewGuest,
    },
    /// Guests, every one or `sponsor`'s.
    GuestList {
        #[serde(default)]
        sponsor: Option<String>,
    },
    /// Move a guest's end to `valid_for` from now; with `sponsor`, only that sponsor's guest.
    GuestExtend {
        id: String,
        #[serde(default)]
        sponsor: Option<String>,
        valid_for: String,
    },
    /// End a guest now; with `sponsor`, only that sponsor's guest.
    GuestEnd {
        id: String,
        #[serde(default)]
        sponsor: Option<String>,
    },
    /// Every queued message's state, never its body.
    MailList,
    /// Render a template for a user with a placeholder PIN.
    MailPreview {
        template: String,
        user: String,
    },
    /// An import: the rows follow on the same connection as `ImportFeed` lines, each
    /// pass ending with `end`; after a clean check the daemon answers `send_again` and the
    /// client sends the same file once more to be applied chunk by chunk.
    Import {
        #[serde(default)]
        dry_run: bool,
        /// With `dry_run`: hash the PINs too, to prove them unique (argon2 for every PIN).
        #[serde(default)]
        check_unique: bool,
    },
    Audit {
        last: usize,
    },
    /// Audit events filtered by user, device, kind and time, newest first.
    AuditQuery {
        query: crate::domain::AuditQuery,
    },
    /// Every lockout counter (device, source, user) and whether it is locked.
    LockoutList,
    /// Remove one lockout counter (`device:…`, `source:…`, `user:…`); audited.
    LockoutClear {
        key: String,
    },
    /// Run directory sync now (every source, or `source`) and answer with the summaries.
    Sync {
        #[serde(default)]
        source: Option<String>,
        #[serde(default)]
        full: bool,
        #[serde(default)]
        force: bool,
    },
}

/// Rows in one `ImportFeed::Rows` line at most: one store transaction on apply.
pub const IMPORT_CHUNK_ROWS: usize = 1000;

/// One line of an import after its request: a chunk of rows, the problems the client's
/// parser found (so every problem is reported in one pass), or the end of a pass.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "feed", rename_all = "snake_case", deny_unknown_fields)]
pub enum ImportFeed {
    Rows { rows: Vec<WireRow> },
    Problems { problems: Vec<ImportProblem> },
    End,
}

/// What kind of refusal an error is, for clients that map it (the admin API's status codes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The request's values are not acceptable (bad expiry, bad id, malformed request).
    Invalid,
    /// The caller may not make this request.
    Forbidden,
    /// No such user (or guest).
    NotFound,
    /// It exists already, or the PIN is taken.
    Conflict,
    /// A PIN rule refused it, or an import has problems.
    Policy,
    /// The store cannot be written now.
    Unavailable,
    /// Too much work in hand (the PIN hash pool is full): try again shortly.
    Busy,
    /// The change was made but could not be flushed to disk: a crash may undo it.
    NotDurable,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ErrorKind>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<ImportProblem>,
}

impl Response {
    pub fn ok(data: impl Serialize) -> Self {
        Response {
            ok: true,
            data: serde_json::to_value(data).ok(),
            ..Default::default()
        }
    }
    pub fn error(message: impl Into<String>) -> Self {
        Response {
            ok: false,
            error: Some(message.into()),
            ..Default::default()
        }
    }
    pub fn refused(kind: ErrorKind, message: impl Into<String>) -> Self {
        Response {
            kind: Some(kind),
            ..Response::error(message)
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Frame {
    Progress {
        done: usize,
        total: usize,
    },
    /// The import's rows were checked and are clean: send them again to be applied.
    SendAgain,
    Done(Response),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_a_request_does_not_take_is_refused() {
        let ok: Request = serde_json::from_str(r#"{"cmd":"user_show","id":"a"}"#).unwrap();
        assert!(matches!(ok, Request::UserShow { .. }));
        let err = serde_json::from_str::<Request>(r#"{"cmd":"user_show","id":"a","pin":"1"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `pin`"), "{err}");
        let nested = r#"{"cmd":"user_add","user":{"id":"a","nmae":"x"},"pin":null}"#;
        let err = serde_json::from_str::<Request>(nested)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `nmae`"), "{err}");
    }
}
