//! Reveal links on the page's side (a child of `daemon/web.rs`): finding one by its token,
//! whether it is still good (the PIN it carries neither used at a device, replaced nor
//! expired) and showing its PIN once with the mail's code, flushed before the answer.

use super::{dead_text, lock, source_key, user_key, Inner};
use crate::domain::{AuditKind, AuditQuery, LinkPurpose, PinAction, Timestamp, WebLink};
use crate::frontend::http::web::service::{Opened, Revealed};
use crate::lifecycle::links::{self, Dead, Proof, Spend};
use crate::store::StoreError;
use std::net::IpAddr;

impl Inner {
    /// `links::usable`, and for a reveal link: its PIN not used at a device since it was
    /// made (a grant for its user in the audit).
    fn reveal_usable(&self, link: &WebLink) -> Result<Result<(), Dead>, StoreError> {
        let now = Timestamp::now();
        if let Err(dead) = links::usable(link, self.holder(&link.user)?, now) {
            return Ok(Err(dead));
        }
        let query = AuditQuery {
            user: Some(link.user.clone()),
            kind: Some("decision".into()),
            since: Some(link.created_at),
            until: None,
            device: None,
            limit: 50,
        };
        let used = self.store.audit_query(&query)?.iter().any(|e| {
            matches!(&e.kind, AuditKind::Decision { outcome, .. } if outcome.as_str() == "grant")
        });
        Ok(if used { Err(Dead::Used) } else { Ok(()) })
    }

    pub(super) fn open_reveal(&self, token: &str) -> Result<Opened, StoreError> {
        let Some(link) = self.link_of(token, LinkPurpose::Reveal)? else {
            return Ok(Opened::Refused(dead_text(Dead::Unknown)));
        };
        Ok(match self.reveal_usable(&link)? {
            Ok(()) => Opened::Usable,
            Err(dead) => Opened::Refused(dead_text(dead)),
        })
    }

    pub(super) fn reveal(
        &self,
        token: &str,
        code: Option<&str>,
        source: IpAddr,
    ) -> Result<Revealed, StoreError> {
        let now = Timestamp::now();
        let link = match self.admit(token, LinkPurpose::Reveal, "reveal link", source, now)? {
            Ok(link) => link,
            Err(refusal) => return Ok(Revealed::Refused(refusal)),
        };
        if let Err(dead) = self.reveal_usable(&link)? {
            lock(&self.budget).count(&source_key(source), now);
            self.audit(
                PinAction::WebRefused,
                &link.user,
                Some(format!("reveal link {}", dead.reason())),
            );
            return Ok(Revealed::Refused(dead_text(dead)));
        }
        let proof = Proof {
            browser: None,
            code: code.map(|c| self.keys.code_key(c)),
        };
        match links::spend(&link, self.holder(&link.user)?, &proof, now) {
            Spend::Granted(spent) => {
                let Some(pin) = links::open_pin(&self.keys, token, &link) else {
                    return Ok(Revealed::Refused(dead_text(Dead::Unknown)));
                };
                let spent = WebLink {
                    sealed_pin: None,
                    ..spent
                };
                if !self.store.link_swap(&link, &spent)? {
                    return Ok(Revealed::Refused(dead_text(Dead::Spent)));
                }
                self.store.flush()?;
                self.audit(PinAction::WebPinRevealed, &link.user, None);
                Ok(Revealed::Pin(pin))
            }
            Spend::NeedCode => Ok(Revealed::NeedCode),
            Spend::WrongCode(counted) => {
                self.store.link_swap(&link, &counted)?;
                self.store.flush()?;
                let mut budget = lock(&self.budget);
                budget.count(&source_key(source), now);
                budget.count(&user_key(&link.user), now);
                drop(budget);
                self.audit(
                    PinAction::WebRefused,
                    &link.user,
                    Some("reveal: wrong code".into()),
                );
                Ok(Revealed::WrongCode)
            }
            Spend::Refused(dead) => Ok(Revealed::Refused(dead_text(dead))),
        }
    }
}
