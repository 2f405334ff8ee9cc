//! A sign-in or reveal link as stored: only keyed hashes of its token, code and browser
//! nonce, never the token itself (a reveal link's PIN sealed under a key from the token). Plain data; the rules are in `lifecycle::links`.

use super::Timestamp;
use serde::{Deserialize, Serialize};

/// What a link is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkPurpose {
    /// Signs the person in to the self-service page.
    SignIn,
    /// Shows a new PIN once (`[mail] delivery = "reveal"`).
    Reveal,
}

impl LinkPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkPurpose::SignIn => "sign_in",
            LinkPurpose::Reveal => "reveal",
        }
    }
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
    /// A reveal link's PIN, sealed under a key derived from the link's own token (the store
    /// alone cannot open it).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_hex")]
    pub sealed_pin: Option<Vec<u8>>,
}

/// How long a dead link (expired, or spent) is kept, so that opening it still says why it
/// is dead; then the lifecycle sweeper drops it (`Store::link_prune`).
pub const DEAD_LINK_KEPT: std::time::Duration = std::time::Duration::from_secs(86_400);

impl WebLink {
    /// Whether the store may forget this link at `now`: a day after it expired, or, spent,
    /// a day after it was made (a spent link's spending time is not kept).
    pub fn prunable(&self, now: Timestamp) -> bool {
        let dead_since = match self.spent {
            true => self.created_at.min(self.expires_at),
            false => self.expires_at,
        };
        now >= dead_since.plus(DEAD_LINK_KEPT)
    }

    /// The store's key for "the user's live link of this purpose".
    pub fn owner_key(&self) -> String {
        format!("{}\0{}", self.purpose.as_str(), self.user)
    }
}

mod opt_hex {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => s.serialize_str(&hex::encode(b)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        text.map(|t| hex::decode(t).map_err(serde::de::Error::custom))
            .transpose()
    }
}
