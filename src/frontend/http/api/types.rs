//! The API's request bodies and query parameters: what the OpenAPI document describes and
//! what is parsed (every unknown field refused). PINs only here, never in a query.

use crate::frontend::control::proto::WirePin;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

/// A new user (`PUT /api/v1/users/{id}`), optionally with a PIN given or generated.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUserBody {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    /// Card numbers as read; stored normalised.
    #[serde(default)]
    pub cards: Vec<String>,
    /// Access from (RFC 3339 or YYYY-MM-DD).
    #[serde(default)]
    pub valid_from: Option<String>,
    /// Access until (RFC 3339 or YYYY-MM-DD).
    #[serde(default)]
    pub valid_until: Option<String>,
    /// The PIN to set (subject to the PIN policy); or `generate`.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub pin: Option<WirePin>,
    /// Generate a PIN; it is in the response, once.
    #[serde(default)]
    pub generate: bool,
    /// PIN expiry: `never`, `1h`–`48h`, `1d`–`180d`.
    #[serde(default)]
    pub expires: Option<String>,
    /// A limited-use PIN: the grants it allows.
    #[serde(default)]
    pub uses: Option<u32>,
    /// The PIN's own weekly windows (`Mon-Fri 08:00-18:00`).
    #[serde(default)]
    pub windows: Vec<String>,
}

/// A new PIN: `{"pin": "…"}` or `{"generate": true}`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PinBody {
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub pin: Option<WirePin>,
    #[serde(default)]
    pub generate: bool,
    #[serde(default)]
    pub expires: Option<String>,
    #[serde(default)]
    pub uses: Option<u32>,
    #[serde(default)]
    pub windows: Vec<String>,
}

/// A duress PIN (opens, and raises the alarm).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DuressBody {
    #[schema(value_type = String)]
    pub pin: WirePin,
}

/// A new end of a user's PIN validity: `never`, a duration (`7d`) or a date/time.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidityBody {
    pub expires: String,
}

/// A new guest of `sponsor`, in the sponsor's likeness.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GuestBody {
    pub sponsor: String,
    pub id: String,
    #[serde(default)]
    pub name: String,
    pub email: String,
    /// Groups from the sponsor's; empty: all of the sponsor's.
    #[serde(default)]
    pub groups: Vec<String>,
    /// How long the guest may come (`8h`, `3d`).
    pub valid_for: String,
}

/// Move a guest's end to `valid_for` from now.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GuestExtendBody {
    pub valid_for: String,
    /// Only this sponsor's guest.
    #[serde(default)]
    pub sponsor: Option<String>,
}

/// Which sponsor's guests.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SponsorQuery {
    /// Only this sponsor's guests.
    pub sponsor: Option<String>,
}

/// Sync now: every source or one.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncBody {
    #[serde(default)]
    pub source: Option<String>,
    /// A full listing, not an incremental one.
    #[serde(default)]
    pub full: bool,
    /// Apply even past the mass-deletion guard.
    #[serde(default)]
    pub force: bool,
}

/// Audit events filtered by who, where, what and when (all given must match).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Events about this user.
    pub user: Option<String>,
    /// Events at this device.
    pub device: Option<String>,
    /// The event kind (`decision`, `admin`, `door`, `print`, `mail`, …).
    pub kind: Option<String>,
    /// At or after (RFC 3339 or YYYY-MM-DD).
    pub since: Option<String>,
    /// Before (RFC 3339 or YYYY-MM-DD).
    pub until: Option<String>,
    /// The newest this many (default 100, at most 10 000).
    pub limit: Option<usize>,
}

/// An import's options.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ImportParams {
    /// Check only; apply nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// With `dry_run`: hash every PIN to prove them unique.
    #[serde(default)]
    pub check_unique: bool,
}

/// A template rendered for a user with a placeholder PIN.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PreviewParams {
    pub template: String,
    pub user: String,
}

/// A refusal.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct ErrorBody {
    /// What was wrong and how to fix it; never quotes a PIN.
    pub error: String,
    /// An import's problems: `{line, message}` for each.
    pub problems: Option<Vec<serde_json::Value>>,
}
