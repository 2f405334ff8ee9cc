//! Composing the lifecycle's mail: a template rendered for one user, sealed and packed as a
//! `QueuedMail` for the store to queue in the same transaction as the change it reports.
//! Knows templates and the sealer; never sends anything and never touches the store.

use crate::domain::{Lane, MailKind, Pin, QueuedMail, Timestamp, User};
use crate::live::Live;
use crate::notify::{MailVars, Sealer, Templates};
use std::sync::Arc;
use zeroize::Zeroizing;

/// What a composed message is about, beyond the user: the PIN it carries (if any) and its
/// sponsor (guest invitations).
pub struct About<'a> {
    pub kind: MailKind,
    pub lane: Lane,
    pub pin: Option<&'a Pin>,
    pub sponsor: Option<&'a str>,
}

pub struct Composer {
    templates: Live<Templates>,
    sealer: Sealer,
}

impl Composer {
    /// `templates` may be replaced while the daemon runs (a reload): each message is
    /// rendered with the templates current when it is composed.
    pub fn new(templates: Live<Templates>, sealer: Sealer) -> Self {
        Composer { templates, sealer }
    }

    pub fn templates(&self) -> Arc<Templates> {
        self.templates.get()
    }

    /// The message for `user` (as it will be written), or None when the user has no email
    /// address. Err is a template that failed to render (a CR/LF in the subject, say); the
    /// caller refuses the change rather than lose the mail.
    pub fn compose(&self, user: &User, about: About<'_>) -> Result<Option<QueuedMail>, String> {
        let Some(to) = user.email.clone().filter(|e| !e.is_empty()) else {
            return Ok(None);
        };
        let record = user.pin.as_ref();
        let vars = MailVars {
            pin: about.pin.map(|p| Zeroizing::new(p.expose().to_owned())),
            username: user.id.clone(),
            name: user.name.clone(),
            pin_expiration: record.and_then(|p| p.expires_at),
            sponsor: about.sponsor.map(str::to_owned),
            ..Default::default()
        };
        self.finish(user, to, about, &vars)
    }

    /// A link for `user` (None without an address): a sign-in link, or a reveal link in
    /// place of a new PIN; the link, code and lifetime are sealed in the body like a PIN.
    pub fn compose_link(
        &self,
        user: &User,
        (kind, lane): (MailKind, Lane),
        link: &str,
        code: &str,
        lifetime: &str,
    ) -> Result<Option<QueuedMail>, String> {
        let Some(to) = user.email.clone().filter(|e| !e.is_empty()) else {
            return Ok(None);
        };
        let vars = MailVars {
            username: user.id.clone(),
            name: user.name.clone(),
            pin_expiration: user.pin.as_ref().and_then(|p| p.expires_at),
            link: Some(Zeroizing::new(link.to_owned())),
            code: Some(Zeroizing::new(code.to_owned())),
            link_lifetime: lifetime.to_owned(),
            ..Default::default()
        };
        let about = About {
            kind,
            lane,
            pin: None,
            sponsor: None,
        };
        self.finish(user, to, about, &vars)
    }

    fn finish(
        &self,
        user: &User,
        to: String,
        about: About<'_>,
        vars: &MailVars,
    ) -> Result<Option<QueuedMail>, String> {
        let record = user.pin.as_ref();
        let rendered =
            self.templates.get().render(about.kind, vars).map_err(|e| {
                format!("the {} mail cannot be composed: {e}", about.kind.template())
            })?;
        let bound = QueuedMail::seal_binding(&user.id, &to, about.kind);
        let sealed = self.sealer.seal(&bound, &rendered.to_bytes());
        let now = Timestamp::now();
        Ok(Some(QueuedMail {
            seq: 0,
            lane: about.lane,
            kind: about.kind,
            user: user.id.clone(),
            to,
            pin_set_at: record.map(|p| p.set_at),
            created_at: now,
            not_before: now,
            attempts: 0,
            last_error: None,
            sealed,
        }))
    }
}
