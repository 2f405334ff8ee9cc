//! What people do themselves, on `UserAdmin`'s side: a person's own new PIN (after the core
//! verified the old one) with its confirmation mail, and the pending PIN a forgotten-PIN
//! request becomes, with the mail carrying it. Policy and uniqueness as for any PIN set
//! here; the mail in the same store write. Decides no caps (`selfservice.rs` does).

use super::{AdminError, PinChoice, UserAdmin};
use crate::domain::{
    AuditKind, Lane, MailKind, Pin, PinAction, PinRecord, PinSource, QueuedMail, User,
};
use crate::lifecycle::mail::About;
use crate::lifecycle::policy::PolicyViolation;

impl UserAdmin {
    /// Sets `id`'s own new PIN (`CHANGE`): the policy, uniqueness and forced validities
    /// apply, and the current PIN's limits carry over (`inherit`); a pending (forgotten-PIN)
    /// PIN is dropped; a confirmation without the PIN is queued in the same write. The
    /// user is read again after the hashing: if it was disabled or its PIN changed (or
    /// was used) meanwhile, nothing is written (a generic failure). Err(Policy) is safe to
    /// show the person.
    pub async fn change_own(&self, id: &str, new: Pin) -> Result<(), AdminError> {
        let seen = self
            .store
            .user(id)?
            .ok_or_else(|| AdminError::NoSuchUser(id.into()))?;
        let (mut record, _) = self
            .new_pin(&seen, PinChoice::Given(new), None, PinSource::User)
            .await?;
        if seen.pin.as_ref().is_some_and(|p| p.tag == record.tag) {
            return Err(AdminError::Policy(PolicyViolation::NotUnique));
        }
        inherit(&mut record, seen.pin.as_ref());
        let mut user = self
            .store
            .user(id)?
            .ok_or_else(|| AdminError::NoSuchUser(id.into()))?;
        if !user.enabled || user.enabled != seen.enabled || user.pin != seen.pin {
            return Err(AdminError::Invalid(
                "the user changed while the new PIN was being checked".into(),
            ));
        }
        user.pin = Some(record);
        user.pending_pin = None;
        user.pin_issued = true;
        let mail: Vec<QueuedMail> = match &self.composer {
            Some(composer) => {
                let about = About {
                    kind: MailKind::PinChanged,
                    lane: Lane::NewPin,
                    pin: None,
                    sponsor: None,
                };
                composer
                    .compose(&user, about)
                    .map_err(AdminError::Invalid)?
                    .into_iter()
                    .collect()
            }
            None => Vec::new(),
        };
        self.store.update_user_mailing(&user, &mail)?;
        self.store.record(AuditKind::Pin {
            action: PinAction::SelfChanged,
            user: id.into(),
            detail: None,
        });
        self.audit_queued(&mail);
        Ok(())
    }

    /// A generated PIN a person asked for on the self-service page: policy, uniqueness and
    /// forced validities as for any PIN set here; mailed (new-PIN or reset mail) when `mail`;
    /// the caller shows it once. Audited as a PIN set by the acting party (`web:<id>`).
    pub async fn generate_own(&self, id: &str, mail: bool) -> Result<Pin, AdminError> {
        let mut user = self
            .store
            .user(id)?
            .ok_or_else(|| AdminError::NoSuchUser(id.into()))?;
        if !user.enabled {
            return Err(AdminError::Invalid("the account is disabled".into()));
        }
        let seen = user.pin.clone();
        let (mut record, shown) = self
            .new_pin(&user, PinChoice::Generate, None, PinSource::Generated)
            .await?;
        let pin = shown.ok_or_else(|| AdminError::Invalid("no PIN was generated".into()))?;
        inherit(&mut record, seen.as_ref());
        let (kind, lane) = match user.pin_issued || user.pin.is_some() {
            true => (MailKind::ResetPin, Lane::Reset),
            false => (MailKind::NewPin, Lane::NewPin),
        };
        let now = self
            .store
            .user(id)?
            .ok_or_else(|| AdminError::NoSuchUser(id.into()))?;
        if now.pin != seen || !now.enabled {
            return Err(AdminError::Invalid(
                "the user changed while the new PIN was being made".into(),
            ));
        }
        user.pin = Some(record);
        user.pin_issued = true;
        user.pending_pin = None;
        let queued: Vec<QueuedMail> = match mail {
            true => self
                .pin_mail(&user, kind, lane, &pin)?
                .into_iter()
                .collect(),
            false => Vec::new(),
        };
        self.store.update_user_mailing(&user, &queued)?;
        self.audit(
            crate::domain::AdminAction::PinSet,
            id,
            Some("generated on the self-service page".into()),
        );
        self.audit_queued(&queued);
        Ok(pin)
    }

    /// A forgotten-PIN reset for `user`: a generated PIN for the user's pending PIN (the
    /// current one keeps working until it is first used), with the current PIN's limits
    /// (`inherit`), and the mail carrying it (reset lane). Nothing is written: the caller
    /// settles both with the request (the store sets the pending PIN only if the user's PIN
    /// is still `user`'s). None when mail is not configured or the user has no address.
    pub async fn forgotten_reset(
        &self,
        user: &User,
    ) -> Result<Option<(PinRecord, QueuedMail)>, AdminError> {
        if self.composer.is_none() {
            return Ok(None);
        }
        let (mut record, shown) = self
            .new_pin(user, PinChoice::Generate, None, PinSource::Generated)
            .await?;
        inherit(&mut record, user.pin.as_ref());
        let Some(pin) = shown else {
            return Ok(None);
        };
        // The mail is keyed by the pending PIN it carries: current while that PIN is
        // pending or (after its first use) the user's PIN; a later reset supersedes it.
        let view = User {
            pin: Some(record.clone()),
            ..user.clone()
        };
        let Some(mut mail) = self.pin_mail(&view, MailKind::ForgottenPin, Lane::Reset, &pin)?
        else {
            return Ok(None);
        };
        mail.pin_set_at = Some(record.set_at);
        Ok(Some((record, mail)))
    }

    /// Wakes the outbox and audits a reset mail queued by the recovery worker.
    pub fn reset_queued(&self, mail: &QueuedMail) {
        self.audit_queued(std::slice::from_ref(mail));
    }
}

/// A PIN the person sets in place of `current` (self-change, forgotten reset) keeps its
/// limits: its weekly windows, the uses it has left and an expiry no later than its. No
/// current PIN: the new record as it is.
fn inherit(record: &mut PinRecord, current: Option<&PinRecord>) {
    let Some(current) = current else {
        return;
    };
    record.windows = current.windows.clone();
    record.uses_left = current.uses_left;
    record.expires_at = match (record.expires_at, current.expires_at) {
        (Some(new), Some(old)) => Some(new.min(old)),
        (new, old) => new.or(old),
    };
    record.temporary |= current.temporary;
}
