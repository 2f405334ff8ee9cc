//! Sign-in links on the page's side (a child of `daemon/web.rs`): who a request names,
//! the link and its mail written in one store write and flushed, the state a GET shows and
//! the spend a POST makes, with the failure budget and the audit.

use super::{dead_text, lock, source_key, user_key, Inner, PAUSED};
use crate::domain::{Lane, LinkPurpose, MailKind, PinAction, Timestamp, User};
use crate::frontend::http::web::service::{Opened, Spent};
use crate::lifecycle::links::{self, Dead, Proof, Spend};
use crate::store::{each_user, StoreError};
use std::net::IpAddr;

impl Inner {
    /// The user `who` names: an id, else (with an `@`) the one enabled user with that
    /// address. A walk over every user for an address; it runs after the answer was sent.
    pub(super) fn find(&self, who: &str) -> Result<Option<User>, StoreError> {
        if let Some(user) = self.store.user(who)? {
            return Ok(Some(user));
        }
        if !who.contains('@') {
            return Ok(None);
        }
        let mut found = Vec::new();
        each_user(self.store.as_ref(), |u: User| {
            if u.email
                .as_deref()
                .is_some_and(|e| e.eq_ignore_ascii_case(who))
            {
                found.push(u);
            }
            Ok::<_, StoreError>(())
        })?;
        // An address shared by several people signs none of them in.
        Ok(match found.len() {
            1 => found.pop(),
            _ => None,
        })
    }

    /// Makes and mails a link for the person `who` names; the source's budgets were
    /// checked by the caller (every request counts there, known or unknown alike, so the
    /// budget cannot tell whether an address exists); every link counts against its
    /// person (no one's mailbox is flooded).
    pub(super) fn send_link(&self, who: &str, nonce: &str) -> Result<(), StoreError> {
        let now = Timestamp::now();
        let Some(user) = self.find(who)? else {
            self.audit(
                PinAction::WebRefused,
                "",
                Some("link request: no such person".into()),
            );
            return Ok(());
        };
        let Some(composer) = &self.composer else {
            return Ok(());
        };
        if !user.enabled || user.email.as_deref().is_none_or(str::is_empty) {
            self.audit(
                PinAction::WebRefused,
                &user.id,
                Some("link request: disabled or no address".into()),
            );
            return Ok(());
        }
        {
            let mut budget = lock(&self.budget);
            if budget.locked(&user_key(&user.id), now) {
                drop(budget);
                self.audit(
                    PinAction::WebRefused,
                    &user.id,
                    Some("link request: budget".into()),
                );
                return Ok(());
            }
            budget.count(&user_key(&user.id), now);
        }
        let made = links::new_link(
            &self.keys,
            &user.id,
            user.pin.as_ref().map(|p| p.set_at),
            self.keys.nonce_key(nonce),
            self.settings.link_lifetime,
            now,
        );
        let url = format!("{}/link/{}", self.base_url, made.token);
        let minutes = self.settings.link_lifetime.as_secs().div_ceil(60);
        let mail = composer
            .compose_link(
                &user,
                (MailKind::SignIn, Lane::Reset),
                &url,
                &made.code,
                &format!("{minutes} minutes"),
            )
            .map_err(StoreError::Unavailable)?;
        let mail: Vec<_> = mail.into_iter().collect();
        self.store.link_put(&made.link, &mail)?;
        self.store.flush()?;
        self.audit(
            PinAction::WebLinkSent,
            &user.id,
            Some(format!("{minutes} minutes")),
        );
        self.outbox.wake();
        Ok(())
    }

    pub(super) fn open(&self, token: &str) -> Result<Opened, StoreError> {
        let Some(link) = self.link_of(token, LinkPurpose::SignIn)? else {
            return Ok(Opened::Refused(dead_text(Dead::Unknown)));
        };
        let holder = self.holder(&link.user)?;
        Ok(match links::usable(&link, holder, Timestamp::now()) {
            Ok(()) => Opened::Usable,
            Err(dead) => Opened::Refused(dead_text(dead)),
        })
    }

    pub(super) fn spend(
        &self,
        token: &str,
        nonce: Option<&str>,
        code: Option<&str>,
        source: IpAddr,
    ) -> Result<Spent, StoreError> {
        let now = Timestamp::now();
        let link = match self.admit(token, LinkPurpose::SignIn, "link", source, now)? {
            Ok(link) => link,
            Err(refusal) => return Ok(Spent::Refused(refusal)),
        };
        if lock(&self.budget).locked(&user_key(&link.user), now) {
            self.audit(
                PinAction::WebRefused,
                &link.user,
                Some("link: budget".into()),
            );
            return Ok(Spent::Refused(PAUSED));
        }
        let proof = Proof {
            browser: nonce.map(|n| self.keys.nonce_key(n)),
            code: code.map(|c| self.keys.code_key(c)),
        };
        let holder = self.holder(&link.user)?;
        match links::spend(&link, holder, &proof, now) {
            Spend::Granted(spent) => {
                if !self.store.link_swap(&link, &spent)? {
                    return Ok(Spent::Refused(dead_text(Dead::Spent)));
                }
                self.store.flush()?;
                let how = if proof.browser.is_some_and(|b| b == link.browser) {
                    "link, same browser"
                } else {
                    "link and code"
                };
                self.audit(PinAction::WebSignIn, &link.user, Some(how.into()));
                let cookie = lock(&self.sessions).start(&self.keys, &link.user, now);
                Ok(Spent::SignedIn(cookie))
            }
            Spend::NeedCode => Ok(Spent::NeedCode),
            Spend::WrongCode(counted) => {
                self.store.link_swap(&link, &counted)?;
                self.store.flush()?;
                let mut budget = lock(&self.budget);
                budget.count(&source_key(source), now);
                budget.count(&user_key(&link.user), now);
                drop(budget);
                self.audit(PinAction::WebRefused, &link.user, Some("wrong code".into()));
                Ok(Spent::WrongCode)
            }
            Spend::Refused(dead) => {
                lock(&self.budget).count(&source_key(source), now);
                self.audit(
                    PinAction::WebRefused,
                    &link.user,
                    Some(format!("link {}", dead.reason())),
                );
                Ok(Spent::Refused(dead_text(dead)))
            }
        }
    }
}
