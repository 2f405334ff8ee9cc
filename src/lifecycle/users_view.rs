//! What an administrator sees of users (`user show`, `user list`): everything but the tags,
//! with the lock state read from the user's lockout record. Reads only; changes nothing.

use super::{AdminError, UserAdmin};
use crate::core::lockout;
use crate::domain::{PinSource, Timestamp, User, UserOrigin};
use serde::{Deserialize, Serialize};

/// A user as shown to an administrator: everything but the tag.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UserView {
    pub id: String,
    pub name: String,
    pub email: Option<String>,
    pub groups: Vec<String>,
    #[serde(default)]
    pub cards: Vec<String>,
    pub enabled: bool,
    pub origin: UserOrigin,
    pub valid_from: Option<Timestamp>,
    pub valid_until: Option<Timestamp>,
    pub pin: Option<PinView>,
    /// Locked after too many failed ID+PIN attempts (cleared by `user enable` or a new PIN).
    pub locked: bool,
    pub failed_attempts: u32,
    #[serde(default)]
    pub has_duress_pin: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PinView {
    pub set_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub source: PinSource,
    pub temporary: bool,
    /// A limited-use PIN: grants left (0: exhausted). None: unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uses_left: Option<u32>,
    /// The PIN's own weekly windows (site time zone); empty: any time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<String>,
}

impl UserAdmin {
    pub fn show(&self, id: &str) -> Result<UserView, AdminError> {
        let user = self
            .store
            .user(id)?
            .ok_or_else(|| AdminError::NoSuchUser(id.into()))?;
        self.view(user)
    }

    pub fn list(&self) -> Result<Vec<UserView>, AdminError> {
        self.store
            .users()?
            .into_iter()
            .map(|u| self.view(u))
            .collect()
    }

    fn view(&self, u: User) -> Result<UserView, AdminError> {
        let state = self.store.lockout(&lockout::user_key(&u.id))?;
        Ok(UserView {
            locked: lockout::user_locked(state, crate::core::clock::now()),
            has_duress_pin: u.duress.is_some(),
            failed_attempts: state.map_or(0, |s| s.failures),
            pin: u.pin.map(|p| PinView {
                set_at: p.set_at,
                expires_at: p.expires_at,
                source: p.source,
                temporary: p.temporary,
                uses_left: p.uses_left,
                windows: p.windows,
            }),
            id: u.id,
            name: u.name,
            email: u.email,
            groups: u.groups,
            cards: u.cards,
            enabled: u.enabled,
            origin: u.origin,
            valid_from: u.valid_from,
            valid_until: u.valid_until,
        })
    }
}
