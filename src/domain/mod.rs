//! Plain domain types shared by every module: PINs, tags, users, requests, decisions and
//! audit events. No I/O, no tokio, no store: only data and the rules that belong to data.

mod audit_query;
mod digest;
mod link;
mod mail;
mod outcome;
mod time;
mod user;

pub use self::time::{parse_expiry, Expiry, Timestamp};
pub use audit_query::{AuditQuery, AUDIT_MAX_RESULTS, AUDIT_SCAN_LIMIT};
pub use digest::Digester;
pub use link::{LinkPurpose, WebLink, DEAD_LINK_KEPT};
pub use mail::{Lane, LaneDepth, MailKind, QueuedMail};
pub use outcome::{
    AdminAction, AlarmAction, CardAction, DaemonAction, DecisionOutcome, DoorAction, KeypadAction,
    MailAction, PinAction, PrintAction, SyncOutcome,
};
pub use user::{
    check_user_id, BadUserId, LockoutState, PinRecord, PinSource, UpstreamRef, User, UserOrigin,
    MAX_USER_ID_BYTES,
};

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// A PIN as typed by a person. Zeroized on drop; `Debug` and `Display` never show it.
/// PINs are strings: a leading zero is significant.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct Pin(String);

impl Pin {
    pub fn new(value: impl Into<String>) -> Self {
        Pin(value.into())
    }
    /// The secret characters. Callers must not log, store or echo them.
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn len(&self) -> usize {
        self.0.chars().count()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin(<redacted>)")
    }
}

/// The keyed argon2id hash of a PIN: the only form in which a PIN is ever stored.
#[derive(Clone, Copy, Serialize, Deserialize)]
pub struct Tag(#[serde(with = "hex::serde")] pub [u8; 32]);

impl Tag {
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl PartialEq for Tag {
    /// Constant-time comparison: tags are compared without leaking where they differ.
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}
impl Eq for Tag {}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Tag(<redacted>)")
    }
}

/// A configured device (a printer terminal group, a door). Identity comes from config,
/// never from a field a client chose.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DeviceId(pub String);

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the person presented.
#[derive(Clone, Debug)]
pub enum Credential {
    /// PIN-only login: the user is found by the PIN's tag.
    Pin(Pin),
    /// A user id followed by that user's PIN.
    IdPin { id: String, pin: Pin },
    /// A card (normalised) followed, within the reader's window, by its holder's PIN.
    CardPin { card: String, pin: Pin },
    /// A card (normalised) alone, from a network card reader: no PIN to hash.
    Card { card: String },
}

impl Credential {
    /// The PIN presented; `None` for a card alone.
    pub fn pin(&self) -> Option<&Pin> {
        match self {
            Credential::Pin(pin)
            | Credential::IdPin { pin, .. }
            | Credential::CardPin { pin, .. } => Some(pin),
            Credential::Card { .. } => None,
        }
    }
    pub fn kind(&self) -> &'static str {
        match self {
            Credential::Pin(_) => "pin",
            Credential::IdPin { .. } => "id+pin",
            Credential::CardPin { .. } => "card+pin",
            Credential::Card { .. } => "card",
        }
    }
}

/// The stored form of a card number: letters and digits only, upper case, leading zeros
/// stripped (`0004 82115` and `482115` are one card). `None` when nothing is left.
pub fn normalise_card(raw: &str) -> Option<String> {
    let kept: String = raw
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let trimmed = kept.trim_start_matches('0');
    (!trimmed.is_empty() && trimmed.len() <= 64).then(|| trimmed.to_string())
}

/// Where a request physically came from; used for lockout keys and the audit log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Origin {
    Tcp { peer: IpAddr },
    Keypad { port: String },
    Mqtt { topic: String },
}

impl Origin {
    /// The source address whose failures are budgeted separately from the device's.
    pub fn source_ip(&self) -> Option<IpAddr> {
        match self {
            Origin::Tcp { peer } => Some(*peer),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct AuthRequest {
    pub device: DeviceId,
    pub credential: Credential,
    pub origin: Origin,
    pub received_at: Timestamp,
}

/// Why a request was denied. Goes to the audit log only; the wire always says `DENY`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DenyReason {
    UnknownPin,
    UnknownUser,
    UnknownCard,
    WrongPin,
    Disabled,
    NotYetValid,
    AccountExpired,
    PinExpired,
    NoPin,
    GroupNotAllowed,
    OutsideSchedule,
    LockedOut,
    UserLockedOut,
    UnknownDevice,
    StoreUnavailable,
    /// The user's directory has not synced within its `max_staleness` and the device class
    /// is configured to deny rather than decide from the stale cache.
    DirectoryStale,
    /// A limited-use PIN with no use left (also when another terminal took the last one).
    UsesExhausted,
    /// The PIN's own weekday/time windows do not include now.
    OutsidePinWindow,
    /// The device does not take this credential mode (`[[device]] credentials`).
    CredentialNotAdmitted,
}

impl DenyReason {
    /// Whether this denial counts against the device/source failure budget. A lockout
    /// or an internal failure is not a guess and does not extend the lockout.
    pub fn counts_as_failure(self) -> bool {
        !matches!(
            self,
            DenyReason::LockedOut
                | DenyReason::StoreUnavailable
                | DenyReason::UnknownDevice
                | DenyReason::DirectoryStale
                | DenyReason::CredentialNotAdmitted
        )
    }
    pub fn as_str(self) -> &'static str {
        match self {
            DenyReason::UnknownPin => "unknown_pin",
            DenyReason::UnknownUser => "unknown_user",
            DenyReason::UnknownCard => "unknown_card",
            DenyReason::WrongPin => "wrong_pin",
            DenyReason::Disabled => "disabled",
            DenyReason::NotYetValid => "not_yet_valid",
            DenyReason::AccountExpired => "account_expired",
            DenyReason::PinExpired => "pin_expired",
            DenyReason::NoPin => "no_pin",
            DenyReason::GroupNotAllowed => "group_not_allowed",
            DenyReason::OutsideSchedule => "outside_schedule",
            DenyReason::LockedOut => "locked_out",
            DenyReason::UserLockedOut => "user_locked_out",
            DenyReason::UnknownDevice => "unknown_device",
            DenyReason::StoreUnavailable => "store_unavailable",
            DenyReason::DirectoryStale => "directory_stale",
            DenyReason::UsesExhausted => "uses_exhausted",
            DenyReason::OutsidePinWindow => "outside_pin_window",
            DenyReason::CredentialNotAdmitted => "credential_not_admitted",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// `duress` is set when the user's duress PIN was used: the door opens as usual and a
    /// silent duress event is raised.
    Grant {
        user: String,
        duress: bool,
    },
    Deny {
        reason: DenyReason,
    },
}

/// One line of the audit log. Never carries a PIN or a tag.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub at: Timestamp,
    #[serde(flatten)]
    pub kind: AuditKind,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum AuditKind {
    /// A decision on an authentication request.
    Decision {
        device: DeviceId,
        origin: Origin,
        credential: String,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        user: Option<String>,
        outcome: DecisionOutcome,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        reason: Option<DenyReason>,
        /// This decision came this many more times within a minute after this record's
        /// first (a flood of refusals is written once per window, then counted).
        #[serde(skip_serializing_if = "Option::is_none", default)]
        repeated: Option<u64>,
    },
    /// A failure budget ran out and a lock was set.
    Lockout {
        key: String,
        failures: u32,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        until: Option<Timestamp>,
    },
    /// An administrative change made over the control socket.
    Admin {
        action: AdminAction,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        user: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        detail: Option<String>,
        /// Who acted: `uid:<n>` for a control-socket caller, `pinwarden` for the daemon's
        /// own workers (absent in records written before it was kept).
        #[serde(skip_serializing_if = "Option::is_none", default)]
        by: Option<String>,
    },
    /// A connection refused at the door of a frontend (unknown source, connection limit).
    Refused {
        frontend: String,
        peer: String,
        reason: String,
    },
    /// Daemon lifecycle: started, stopped.
    Daemon { action: DaemonAction },
    /// The duress PIN was used: the person may be under threat. Never shown on the wire.
    Duress { device: DeviceId, user: String },
    /// A door actuator acted (or failed to).
    Door {
        door: DeviceId,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        user: Option<String>,
        action: DoorAction,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        detail: Option<String>,
    },
    /// A print release after a grant: jobs moved and released, or why they stayed held.
    Print {
        device: DeviceId,
        user: String,
        action: PrintAction,
        released: u32,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        detail: Option<String>,
    },
    /// A card read at a network reader that is not yet a decision (waiting for the PIN,
    /// or unreadable).
    Card {
        device: DeviceId,
        peer: String,
        action: CardAction,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        card: Option<String>,
    },
    /// A serial keypad appeared or disappeared.
    Keypad {
        device: DeviceId,
        port: String,
        action: KeypadAction,
        detail: String,
    },
    /// A directory sync run: applied, refused (mass-deletion guard) or failed. Counts only;
    /// never a PIN, a tag or which users share a PIN.
    Sync {
        source: String,
        outcome: SyncOutcome,
        #[serde(default)]
        added: usize,
        #[serde(default)]
        changed: usize,
        #[serde(default)]
        removed: usize,
        #[serde(default)]
        rehashed: usize,
        #[serde(default)]
        collisions: usize,
        #[serde(default)]
        skipped: usize,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        error: Option<String>,
    },
    /// A queued email's fate: queued, sent, refused, expired or superseded. Never its body.
    Mail {
        action: MailAction,
        kind: MailKind,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        user: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        lane: Option<Lane>,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        detail: Option<String>,
    },
    /// The PIN lifecycle acting on its own: a PIN swept at expiry, generated, or a weak
    /// directory PIN. Never the PIN.
    Pin {
        action: PinAction,
        /// Empty (and then left out) when no known user is meant: a forgotten-PIN request
        /// names whatever was typed, which may be a PIN.
        #[serde(skip_serializing_if = "String::is_empty", default)]
        user: String,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        detail: Option<String>,
    },
    /// An alarm for the operator (a forgotten-PIN spray, failures at a device). Never a PIN.
    Alarm {
        action: AlarmAction,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        detail: Option<String>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_debug_is_redacted() {
        let pin = Pin::new("048213");
        assert_eq!(format!("{pin:?}"), "Pin(<redacted>)");
        let cred = Credential::IdPin {
            id: "alice".into(),
            pin,
        };
        assert!(!format!("{cred:?}").contains("048213"));
    }

    #[test]
    fn card_numbers_are_normalised() {
        assert_eq!(normalise_card("0004 82115").as_deref(), Some("482115"));
        assert_eq!(normalise_card("00ab-cd").as_deref(), Some("ABCD"));
        assert_eq!(normalise_card("000"), None);
        assert_eq!(normalise_card(" - "), None);
    }

    #[test]
    fn one_rule_for_user_ids() {
        assert_eq!(check_user_id("alice.b-2@hr"), Ok(()));
        assert_eq!(check_user_id(&"é".repeat(64)), Ok(()), "128 bytes");
        assert_eq!(check_user_id(""), Err(BadUserId::Empty));
        for bad in ["a b", "a\tb", "a\u{7}", "a\u{a0}b"] {
            assert_eq!(check_user_id(bad), Err(BadUserId::Spaces), "{bad:?}");
        }
        assert_eq!(check_user_id(&"a".repeat(129)), Err(BadUserId::TooLong));
        assert_eq!(BadUserId::TooLong.to_string(), "is longer than 128 bytes");
    }

    #[test]
    fn tags_compare_by_value() {
        assert_eq!(Tag([7; 32]), Tag([7; 32]));
        assert_ne!(Tag([7; 32]), Tag([8; 32]));
        assert_eq!(format!("{:?}", Tag([7; 32])), "Tag(<redacted>)");
    }

    #[test]
    fn audit_event_json_shape() {
        let ev = AuditEvent {
            at: Timestamp::from_millis(0),
            kind: AuditKind::Decision {
                device: DeviceId("lobby".into()),
                origin: Origin::Tcp {
                    peer: "127.0.0.1".parse().unwrap(),
                },
                credential: "pin".into(),
                user: None,
                outcome: DecisionOutcome::Deny,
                reason: Some(DenyReason::UnknownPin),
                repeated: None,
            },
        };
        let json = serde_json::to_string(&ev).unwrap();
        assert!(json.contains(r#""event":"decision""#), "{json}");
        assert!(json.contains(r#""reason":"unknown_pin""#), "{json}");
        let back: AuditEvent = serde_json::from_str(&json).unwrap();
        assert_eq!(back, ev);
    }
}
