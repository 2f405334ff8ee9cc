//! A sign-in or reveal link as stored: only keyed hashes of its token, code and browser
//! nonce, never the token itself. Plain data; the rules are in `lifecycle::links`.

use super::Timestamp;
use serde::{Deserialize, Serialize};

/// What a link is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkPurpose {
    /// Signs the person in to the self-service page.
    SignIn,
}

/// One live link; at most one per user (a newer link replaces it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebLink {
    /// Keyed hash of the token (the store key).
    #[serde(with = "hex::serde")]
    pub key: [u8; 32],
    pub user: String,
    pub purpose: LinkPurpose,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    /// The user's PIN version (`set_at`) when the link was made: a PIN change revokes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin_set_at: Option<Timestamp>,
    /// Keyed hash of the nonce cookie of the browser that asked for the link.
    #[serde(with = "hex::serde")]
    pub browser: [u8; 32],
    /// Keyed hash of the short code printed in the mail.
    #[serde(with = "hex::serde")]
    pub code: [u8; 32],
    /// Wrong codes typed for this link.
    #[serde(default)]
    pub code_failures: u32,
    /// Spent by a POST: never usable again.
    #[serde(default)]
    pub spent: bool,
}
