//! `user set-validity`: moves the expiry of a user's PIN (and duress PIN) without changing
//! the PIN or its version, so mail queued for it and reminders keyed by it still apply.

use super::{AdminError, UserAdmin};
use crate::domain::{AdminAction, Timestamp, UserOrigin};

impl UserAdmin {
    /// Sets when the user's PIN stops working (`None`: never). A PIN stays temporary while
    /// it has an expiry, and always for an upstream user (the directory's PIN replaces it).
    pub fn set_validity(&self, id: &str, until: Option<Timestamp>) -> Result<(), AdminError> {
        if until.is_some_and(|t| t <= Timestamp::now()) {
            return Err(AdminError::Invalid(
                "the new validity is in the past: give a later time, or remove the PIN".into(),
            ));
        }
        let mut user = self
            .store
            .user(id)?
            .ok_or_else(|| AdminError::NoSuchUser(id.into()))?;
        let upstream = user.origin == UserOrigin::Upstream;
        let Some(pin) = user.pin.as_mut() else {
            return Err(AdminError::Invalid(format!(
                "user `{id}` has no PIN: set one with `user set-pin {id}`"
            )));
        };
        pin.expires_at = until;
        pin.temporary = until.is_some() || upstream;
        if let Some(duress) = user.duress.as_mut() {
            duress.expires_at = until;
        }
        self.store.update_user(&user)?;
        // The thresholds count from the new expiry: each may be sent again once.
        self.store.forget_reminders(id)?;
        let detail = until.map_or("until never".to_string(), |t| format!("until {t}"));
        self.audit(AdminAction::ValiditySet, id, Some(detail));
        Ok(())
    }
}
