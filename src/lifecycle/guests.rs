//! Sponsored guests on `UserAdmin`: local users made in a sponsor's likeness (groups only
//! from the sponsor's, validity capped by `[guests] max_validity` and never past the
//! sponsor's own end), the invitation and the sponsor's notice queued with the guest, and
//! extending and ending guests. The sponsor is a parameter: a sponsor can touch only their
//! own guests. Guests that expired or whose sponsor was disabled or removed are ended by
//! `sweep_guests` (the lifecycle worker) and by `set_enabled`/`remove`. Writes through the
//! `Store` trait only and never sends mail (the outbox worker does).

use super::{validate_new, AdminError, NewUser, PinChoice, UserAdmin};

#[path = "guests_rules.rs"]
mod rules;

use crate::domain::{
    AdminAction, Lane, MailKind, Pin, PinSource, QueuedMail, Timestamp, User, UserOrigin,
};
use crate::duration::parse_duration;
use crate::lifecycle::mail::About;
use crate::store::each_user;
pub use rules::{guest_groups, guest_until, GuestAdded, GuestSettings, GuestView, NewGuest};
use rules::{sponsor_end, sponsor_name, view};
use std::collections::HashMap;

impl UserAdmin {
    /// Guest rules from `[guests]`.
    pub fn with_guests(mut self, guests: GuestSettings) -> Self {
        self.guests = guests;
        self
    }

    fn guests_allowed(&self) -> Result<(), AdminError> {
        match self.guests.allowed {
            true => Ok(()),
            false => Err(AdminError::Invalid(
                "guests are not allowed here: set [guests] allowed = true and restart".into(),
            )),
        }
    }

    /// The sponsor by id: an enabled user with current access who is not a guest.
    fn sponsor(&self, id: &str) -> Result<User, AdminError> {
        let now = Timestamp::now();
        let sponsor = self
            .store
            .user(id)?
            .ok_or_else(|| AdminError::Invalid(format!("no sponsor `{id}`: no such user")))?;
        let refuse = |why: &str| Err(AdminError::Invalid(format!("sponsor `{id}` {why}")));
        if sponsor.sponsor.is_some() {
            return refuse("is a guest: guests cannot sponsor guests");
        }
        if !sponsor.enabled {
            return refuse("is disabled");
        }
        if sponsor.valid_from.is_some_and(|t| t > now)
            || sponsor_end(&sponsor).is_some_and(|t| t <= now)
        {
            return refuse("has no current access");
        }
        Ok(sponsor)
    }

    /// The end of a guest of `sponsor` in `groups` given `valid_for` from now.
    fn until(
        &self,
        sponsor: &User,
        groups: &[String],
        valid_for: &str,
    ) -> Result<Timestamp, AdminError> {
        let valid_for = parse_duration(valid_for)
            .map_err(|e| AdminError::Invalid(format!("--valid-for `{valid_for}`: {e}")))?;
        let cap = self
            .lifecycle
            .forced_validity(groups)
            .map_or(self.guests.max_validity, |f| {
                f.min(self.guests.max_validity)
            });
        let end = sponsor_end(sponsor).map(|t| (t, sponsor.id.as_str()));
        guest_until(Timestamp::now(), valid_for, cap, end).map_err(AdminError::Invalid)
    }

    /// Creates guest `new` for `sponsor`: a local user with a generated PIN valid as long as
    /// the guest, the invitation (with the PIN, or a reveal link under `delivery = "reveal"`)
    /// and the sponsor's notice (without) queued in the same write.
    pub async fn guest_add(&self, sponsor: &str, new: NewGuest) -> Result<GuestAdded, AdminError> {
        self.guests_allowed()?;
        let sponsor = self.sponsor(sponsor)?;
        let groups = guest_groups(&new.groups, &sponsor).map_err(AdminError::Invalid)?;
        let as_user = NewUser {
            id: new.id.clone(),
            name: new.name.clone(),
            email: Some(new.email.clone()),
            groups: groups.clone(),
            ..NewUser::default()
        };
        validate_new(&as_user)?;
        if self.store.user(&new.id)?.is_some() {
            return Err(AdminError::UserExists(new.id));
        }
        let until = self.until(&sponsor, &groups, &new.valid_for)?;
        let mut user = User::new_local(new.id);
        user.name = new.name;
        user.email = Some(new.email);
        user.groups = groups;
        user.valid_until = Some(until);
        user.sponsor = Some(sponsor.id.clone());
        let (mut record, pin) = self
            .new_pin(&user, PinChoice::Generate, None, PinSource::Generated)
            .await?;
        let pin = pin.ok_or_else(|| AdminError::Invalid("no PIN was generated".into()))?;
        record.expires_at = Some(until);
        record.temporary = true;
        user.pin = Some(record);
        user.pin_issued = true;
        // Under `delivery = "reveal"` the invitation is a reveal link like any new PIN:
        // the guest's mail holds only the link and its code.
        let invitation = match self.reveal.is_some() {
            true => self.pin_mail(&user, MailKind::GuestInvitation, Lane::NewPin, &pin)?,
            false => self.guest_mail(&user, &sponsor, MailKind::GuestInvitation, Some(&pin))?,
        };
        let mut mail: Vec<QueuedMail> = invitation.into_iter().collect();
        let invited = !mail.is_empty();
        mail.extend(self.guest_mail(&user, &sponsor, MailKind::GuestNotice, None)?);
        self.store.insert_user_mailing(&user, &mail)?;
        let detail = format!("sponsor {}, until {until}", sponsor.id);
        self.audit(AdminAction::GuestAdd, &user.id, Some(detail));
        self.audit_queued(&mail);
        Ok(GuestAdded {
            valid_until: until,
            shown: (!invited).then_some(pin),
        })
    }

    /// The invitation to the guest (`pin` in it), or the notice to the sponsor (never a
    /// PIN; to the sponsor's address, about the guest). None without mail or an address.
    fn guest_mail(
        &self,
        guest: &User,
        sponsor: &User,
        kind: MailKind,
        pin: Option<&Pin>,
    ) -> Result<Option<QueuedMail>, AdminError> {
        let Some(composer) = &self.composer else {
            return Ok(None);
        };
        let (to, lane) = match kind {
            MailKind::GuestInvitation => (guest.email.clone(), Lane::NewPin),
            _ => (sponsor.email.clone(), Lane::Bulk),
        };
        let recipient = User {
            email: to,
            ..guest.clone()
        };
        let about = About {
            kind,
            lane,
            pin,
            sponsor: Some(sponsor_name(sponsor)),
        };
        composer
            .compose(&recipient, about)
            .map_err(AdminError::Invalid)
    }

    /// Guest `id`, if it is one, and `sponsor`'s when a sponsor is given.
    fn guest(&self, id: &str, sponsor: Option<&str>) -> Result<User, AdminError> {
        let user = self
            .store
            .user(id)?
            .ok_or_else(|| AdminError::NoSuchUser(id.into()))?;
        match (&user.sponsor, sponsor) {
            (None, _) => Err(AdminError::Invalid(format!(
                "user `{id}` is not a guest: use the user commands"
            ))),
            (Some(own), Some(asked)) if own != asked => Err(AdminError::Invalid(format!(
                "user `{id}` is not a guest of `{asked}`"
            ))),
            _ => Ok(user),
        }
    }

    /// Guests, every one or `sponsor`'s, by id.
    pub fn guest_list(&self, sponsor: Option<&str>) -> Result<Vec<GuestView>, AdminError> {
        let mut guests = Vec::new();
        each_user(self.store.as_ref(), |u| {
            if u.sponsor.is_some() && (sponsor.is_none() || u.sponsor.as_deref() == sponsor) {
                guests.push(view(u));
            }
            Ok::<_, AdminError>(())
        })?;
        // `each_user` visits by id already.
        Ok(guests)
    }

    /// Moves the end of guest `id` (and its PIN's expiry, the PIN unchanged) to `valid_for`
    /// from now, within the cap and the sponsor's own end; the sponsor is told.
    pub fn guest_extend(
        &self,
        id: &str,
        sponsor: Option<&str>,
        valid_for: &str,
    ) -> Result<Timestamp, AdminError> {
        self.guests_allowed()?;
        let mut guest = self.guest(id, sponsor)?;
        let sponsor = self.sponsor(guest.sponsor.as_deref().unwrap_or_default())?;
        let until = self.until(&sponsor, &guest.groups, valid_for)?;
        guest.valid_until = Some(until);
        for pin in guest.pin.iter_mut().chain(guest.duress.iter_mut()) {
            pin.expires_at = Some(until);
        }
        let mail: Vec<QueuedMail> = self
            .guest_mail(&guest, &sponsor, MailKind::GuestNotice, None)?
            .into_iter()
            .collect();
        self.store.update_user_mailing(&guest, &mail)?;
        // The thresholds count from the new end: each may be sent again once.
        self.store.forget_reminders(&guest.id)?;
        let detail = format!("sponsor {}, until {until}", sponsor.id);
        self.audit(AdminAction::GuestExtend, id, Some(detail));
        self.audit_queued(&mail);
        Ok(until)
    }

    /// Ends guest `id` now: the account is removed.
    pub fn guest_end(&self, id: &str, sponsor: Option<&str>) -> Result<(), AdminError> {
        let guest = self.guest(id, sponsor)?;
        let by = guest.sponsor.unwrap_or_default();
        self.end_guest(&guest.id, format!("sponsor {by}"))?;
        Ok(())
    }

    fn end_guest(&self, id: &str, detail: String) -> Result<bool, AdminError> {
        let ended = self.store.remove_user(id)?.is_some();
        if ended {
            tracing::info!(guest = %id, reason = %detail, "guest ended");
            self.audit(AdminAction::GuestEnd, id, Some(detail));
        }
        Ok(ended)
    }

    /// Ends every guest of `sponsor` (`why`: `disabled`, `removed`); how many.
    pub(super) fn end_guests_of(&self, sponsor: &str, why: &str) -> Result<usize, AdminError> {
        let mut ended = 0;
        each_user(self.store.as_ref(), |guest| {
            if guest.sponsor.as_deref() == Some(sponsor)
                && self.end_guest(&guest.id, format!("sponsor {sponsor} {why}"))?
            {
                ended += 1;
            }
            Ok::<_, AdminError>(())
        })?;
        Ok(ended)
    }

    /// Ends guests whose time is up (`expired`) and guests whose sponsor is gone or
    /// disabled (by a directory sync, say); how many. For the lifecycle worker.
    pub fn sweep_guests(&self, now: Timestamp) -> Result<usize, AdminError> {
        // Guests are few beside the directory: collect them page by page, then look each
        // sponsor up (a sweep never holds every user in memory).
        let mut guests = Vec::new();
        each_user(self.store.as_ref(), |u| {
            if u.origin == UserOrigin::Local && u.sponsor.is_some() {
                guests.push(u);
            }
            Ok::<_, AdminError>(())
        })?;
        let mut sponsors: HashMap<String, Option<User>> = HashMap::new();
        let mut ended = 0;
        for guest in &guests {
            let Some(sponsor) = guest.sponsor.as_deref() else {
                continue;
            };
            let why = if guest.valid_until.is_some_and(|t| t <= now) {
                "expired".to_string()
            } else {
                if !sponsors.contains_key(sponsor) {
                    sponsors.insert(sponsor.to_string(), self.store.user(sponsor)?);
                }
                match sponsors[sponsor].as_ref() {
                    None => format!("sponsor {sponsor} removed"),
                    Some(s) if !s.enabled => format!("sponsor {sponsor} disabled"),
                    Some(s) => match fit_to_sponsor(guest, s) {
                        // Still in the sponsor's likeness: nothing to do.
                        None => continue,
                        Some(fitted) if fitted.groups.is_empty() => {
                            format!("sponsor {sponsor} has none of the guest's groups left")
                        }
                        Some(fitted) => {
                            self.store.update_user(&fitted)?;
                            self.audit(
                                AdminAction::GuestExtend,
                                &guest.id,
                                Some(format!("fitted to sponsor {sponsor}'s groups and end")),
                            );
                            continue;
                        }
                    },
                }
            };
            if self.end_guest(&guest.id, why)? {
                ended += 1;
            }
        }
        Ok(ended)
    }
}

/// The guest narrowed to what its sponsor has now (a sync may have taken a group away or
/// moved the sponsor's end earlier): None when nothing has to change.
fn fit_to_sponsor(guest: &User, sponsor: &User) -> Option<User> {
    let mut fitted = guest.clone();
    fitted.groups.retain(|g| sponsor.groups.contains(g));
    if let Some(end) = sponsor_end(sponsor) {
        if fitted.valid_until.is_none_or(|t| t > end) {
            fitted.valid_until = Some(end);
        }
        if let Some(pin) = fitted.pin.as_mut() {
            if pin.expires_at.is_none_or(|t| t > end) {
                pin.expires_at = Some(end);
            }
        }
    }
    (fitted != *guest).then_some(fitted)
}
