//! The account side of `UserAdmin`: the duress PIN, enabling, disabling and removing a
//! user (the last two end the guests the user sponsored). Audited; never the PIN.

use super::{AdminError, PinChoice, UserAdmin};
use crate::core::lockout;
use crate::domain::{AdminAction, Expiry, Pin, PinRecord, PinSource};

impl UserAdmin {
    /// Sets the user's duress PIN: it opens like the normal PIN and raises a silent duress
    /// event. It must pass the policy, be unique and differ from the user's own PIN.
    pub async fn set_duress(&self, id: &str, pin: Pin) -> Result<(), AdminError> {
        let mut user = self
            .store
            .user(id)?
            .ok_or_else(|| AdminError::NoSuchUser(id.into()))?;
        let (record, _) = self
            .new_pin(
                &user,
                PinChoice::Given(pin),
                Some(Expiry::Never),
                PinSource::Admin,
            )
            .await?;
        if user.pin.as_ref().is_some_and(|p| p.tag == record.tag) {
            return Err(AdminError::Invalid(
                "the duress PIN must differ from the user's PIN".into(),
            ));
        }
        // Good only while the user's own PIN is.
        let expires_at = user.pin.as_ref().and_then(|p| p.expires_at);
        user.duress = Some(PinRecord {
            temporary: false,
            expires_at,
            ..record
        });
        self.store.update_user(&user)?;
        self.audit(AdminAction::DuressSet, id, None);
        Ok(())
    }

    pub fn clear_duress(&self, id: &str) -> Result<(), AdminError> {
        let mut user = self
            .store
            .user(id)?
            .ok_or_else(|| AdminError::NoSuchUser(id.into()))?;
        user.duress = None;
        self.store.update_user(&user)?;
        self.audit(AdminAction::DuressClear, id, None);
        Ok(())
    }

    /// Removes the user, and ends the guests they sponsored.
    pub fn remove(&self, id: &str) -> Result<(), AdminError> {
        self.store
            .remove_user(id)?
            .ok_or_else(|| AdminError::NoSuchUser(id.into()))?;
        self.audit(AdminAction::UserRemove, id, None);
        self.end_guests_of(id, "removed")?;
        Ok(())
    }

    /// Enabling also clears a lock left by too many failed ID+PIN attempts; disabling ends
    /// the guests the user sponsored.
    pub fn set_enabled(&self, id: &str, enabled: bool) -> Result<(), AdminError> {
        let mut user = self
            .store
            .user(id)?
            .ok_or_else(|| AdminError::NoSuchUser(id.into()))?;
        user.enabled = enabled;
        self.store.update_user(&user)?;
        if enabled {
            self.store
                .update_lockout(&lockout::user_key(id), &|_| None)?;
        }
        self.audit(
            if enabled {
                AdminAction::UserEnable
            } else {
                AdminAction::UserDisable
            },
            id,
            None,
        );
        if !enabled {
            self.end_guests_of(id, "disabled")?;
        }
        Ok(())
    }
}
