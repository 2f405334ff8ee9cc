//! The lifecycle side of `UserAdmin`: the generation mode and forced validities it applies,
//! the PIN mail it composes into the same store write, and the cooling-off check of
//! generated PINs. Never sends mail; the outbox worker does.

use super::{AdminError, UserAdmin};
use crate::domain::{
    AuditKind, Expiry, Lane, MailAction, MailKind, Pin, QueuedMail, Tag, Timestamp, User,
};
use crate::lifecycle::mail::{About, Composer};
use crate::lifecycle::settings::LifecycleSettings;
use std::sync::Arc;

impl UserAdmin {
    /// Generation mode, forced validities and cooling-off from `lifecycle`; PIN mail through
    /// `composer` (None: no `[smtp]`, nothing is mailed).
    pub fn with_lifecycle(
        mut self,
        lifecycle: LifecycleSettings,
        composer: Option<Arc<Composer>>,
        outbox: crate::notify::outbox::OutboxHandle,
    ) -> Self {
        self.lifecycle = lifecycle;
        self.composer = composer;
        self.outbox = outbox;
        self
    }

    /// New PINs go out as links to the self-service page (`[mail] delivery = "reveal"`).
    pub fn with_reveal(mut self, reveal: Option<crate::lifecycle::links::Reveal>) -> Self {
        self.reveal = reveal;
        self
    }

    /// The validity a PIN set here gets: the one asked for (or the default), shortened to
    /// the site's or the user's groups' forced validity.
    pub fn effective_expiry(&self, asked: Option<Expiry>, groups: &[String]) -> Expiry {
        let asked = asked.unwrap_or(self.default_expiry);
        match (asked, self.lifecycle.forced_validity(groups)) {
            (asked, None) => asked,
            (Expiry::Never, Some(forced)) => Expiry::After(forced),
            (Expiry::After(d), Some(forced)) => Expiry::After(d.min(forced)),
        }
    }

    /// The message reporting `user`'s new PIN, if mail is configured and the user has an
    /// address. A template that cannot render refuses the change (nothing is lost).
    pub(super) fn pin_mail(
        &self,
        user: &User,
        kind: MailKind,
        lane: Lane,
        pin: &Pin,
    ) -> Result<Option<QueuedMail>, AdminError> {
        let Some(composer) = &self.composer else {
            return Ok(None);
        };
        if let Some(reveal) = &self.reveal {
            return self.reveal_mail(reveal, composer, user, lane, pin);
        }
        let about = About {
            kind,
            lane,
            pin: Some(pin),
            sponsor: None,
        };
        composer.compose(user, about).map_err(AdminError::Invalid)
    }

    /// `pin_mail` under `delivery = "reveal"`: the PIN goes into a reveal link (written
    /// now; it is dead until the user record carrying this PIN version is written) and the
    /// mail carries only the link and its code.
    fn reveal_mail(
        &self,
        reveal: &crate::lifecycle::links::Reveal,
        composer: &Composer,
        user: &User,
        lane: Lane,
        pin: &Pin,
    ) -> Result<Option<QueuedMail>, AdminError> {
        let Some(record) = &user.pin else {
            return Ok(None);
        };
        if user.email.as_deref().is_none_or(str::is_empty) {
            return Ok(None);
        }
        let now = Timestamp::now();
        let never = now.plus(crate::lifecycle::links::REVEAL_MAX);
        let expires = record.expires_at.unwrap_or(never);
        let made = crate::lifecycle::links::reveal_link(
            &reveal.keys,
            &user.id,
            record.set_at,
            pin,
            expires,
            now,
        );
        let url = format!("{}/reveal/{}", reveal.base_url, made.token);
        let until = composer.templates().expiration(Some(made.link.expires_at));
        let mail = composer
            .compose_link(user, (MailKind::PinLink, lane), &url, &made.code, &until)
            .map_err(AdminError::Invalid)?;
        self.store.link_put(&made.link, &[])?;
        Ok(mail)
    }

    pub(super) fn audit_queued(&self, mail: &[QueuedMail]) {
        if !mail.is_empty() {
            self.outbox.wake();
        }
        for m in mail {
            self.store.record(AuditKind::Mail {
                action: MailAction::Queued,
                kind: m.kind,
                user: Some(m.user.clone()),
                lane: Some(m.lane),
                detail: None,
            });
        }
    }

    /// A tag that left the index within the cooling-off period is not issued again.
    pub(super) fn recently_retired(&self, tag: &Tag) -> Result<bool, AdminError> {
        let since = Timestamp::from_millis(
            Timestamp::now()
                .millis()
                .saturating_sub(self.lifecycle.cooling_off.as_millis() as i64),
        );
        Ok(self
            .store
            .tag_retired_at(tag)?
            .is_some_and(|at| at >= since))
    }
}

impl UserAdmin {
    /// Gives `id` a generated PIN and queues the new-PIN mail (bulk lane) in the same write,
    /// if the user still has none and never had one. Ok(false) when nothing was done.
    pub async fn provision(&self, id: &str) -> Result<bool, AdminError> {
        let Some(mut user) = self.store.user(id)? else {
            return Ok(false);
        };
        if user.pin.is_some() || user.pin_issued {
            return Ok(false);
        }
        let (record, shown) = self
            .new_pin(
                &user,
                super::PinChoice::Generate,
                None,
                crate::domain::PinSource::Generated,
            )
            .await?;
        let Some(pin) = shown else {
            return Ok(false);
        };
        user.pin = Some(record);
        user.pin_issued = true;
        let mail: Vec<QueuedMail> = self
            .pin_mail(&user, MailKind::NewPin, Lane::Bulk, &pin)?
            .into_iter()
            .collect();
        self.store.update_user_mailing(&user, &mail)?;
        self.audit_queued(&mail);
        Ok(true)
    }
}
