//! Queued email as the store keeps it: which lane, which kind, for whom, and the sealed body
//! (subject and bodies encrypted by `notify::seal`; a PIN is never in clear here).

use super::Timestamp;
use serde::{Deserialize, Serialize};

/// Priority lanes, highest first: a bulk regeneration never starves a reset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lane {
    /// Reset and forgotten PINs: a person is waiting at a device.
    Reset,
    /// A new PIN for one person (admin add, set-pin, guest invitation).
    NewPin,
    /// Reminders, notices and mail from bulk work (import, sync, regeneration).
    Bulk,
}

impl Lane {
    pub const ALL: [Lane; 3] = [Lane::Reset, Lane::NewPin, Lane::Bulk];

    /// The byte that orders the lane's keys in the store.
    pub fn index(self) -> u8 {
        match self {
            Lane::Reset => 0,
            Lane::NewPin => 1,
            Lane::Bulk => 2,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Lane::Reset => "reset",
            Lane::NewPin => "new_pin",
            Lane::Bulk => "bulk",
        }
    }
}

/// What a message is about; each kind has its own template.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MailKind {
    NewPin,
    ResetPin,
    ExpiryReminder,
    GuestInvitation,
    ForgottenPin,
    /// To a sponsor: a guest was created, extended or ended (never the guest's PIN).
    GuestNotice,
    /// To a person who changed their own PIN: the change, never the PIN.
    PinChanged,
    /// A self-service sign-in link with its code and lifetime (never a PIN).
    SignIn,
    /// `[mail] delivery = "reveal"`: a link to a page that shows a new PIN once, its code
    /// and lifetime, instead of the PIN.
    PinLink,
}

impl MailKind {
    pub const ALL: [MailKind; 9] = [
        MailKind::NewPin,
        MailKind::ResetPin,
        MailKind::ExpiryReminder,
        MailKind::GuestInvitation,
        MailKind::ForgottenPin,
        MailKind::GuestNotice,
        MailKind::PinChanged,
        MailKind::SignIn,
        MailKind::PinLink,
    ];

    /// The template's file stem under the templates directory (`new_pin.txt`, …).
    pub fn template(self) -> &'static str {
        match self {
            MailKind::NewPin => "new_pin",
            MailKind::ResetPin => "reset_pin",
            MailKind::ExpiryReminder => "expiry_reminder",
            MailKind::GuestInvitation => "guest_invitation",
            MailKind::ForgottenPin => "forgotten_pin",
            MailKind::GuestNotice => "guest_notice",
            MailKind::PinChanged => "pin_changed",
            MailKind::SignIn => "sign_in",
            MailKind::PinLink => "pin_link",
        }
    }

    pub fn from_template(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.template() == name)
    }

    /// Whether the message delivers a PIN (then it is dropped once that PIN is superseded).
    pub fn carries_pin(self) -> bool {
        !matches!(
            self,
            MailKind::ExpiryReminder
                | MailKind::GuestNotice
                | MailKind::PinChanged
                | MailKind::SignIn
                | MailKind::PinLink
        )
    }
}

/// One message waiting in the outbox. `seq` is assigned by the store when queued; the
/// pair (lane, seq) orders a lane oldest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedMail {
    #[serde(default)]
    pub seq: u64,
    pub lane: Lane,
    pub kind: MailKind,
    /// The user the message is about.
    pub user: String,
    /// The recipient's address (an envelope address, not a secret).
    pub to: String,
    /// The version (`set_at`) of the user's PIN this message reports; the message is dropped
    /// unsent once the user's PIN is another one, expired or removed. None: about no PIN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin_set_at: Option<Timestamp>,
    pub created_at: Timestamp,
    /// Not sent before this (back-off after a temporary failure).
    pub not_before: Timestamp,
    #[serde(default)]
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Subject and bodies, sealed by `notify::Sealer` bound to `seal_binding()`.
    #[serde(with = "hex::serde")]
    pub sealed: Vec<u8>,
}

impl QueuedMail {
    /// What the sealed body is bound to: a body cannot be moved to another recipient or
    /// user by rewriting the row.
    pub fn seal_binding(user: &str, to: &str, kind: MailKind) -> Vec<u8> {
        format!("mail\0{}\0{user}\0{to}", kind.template()).into_bytes()
    }
}

/// Per lane: how many messages wait and since when.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LaneDepth {
    pub depth: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oldest: Option<Timestamp>,
}
