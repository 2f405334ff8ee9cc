//! Wiring of the self-service page: the frontend's `WebService` over the store, the admin
//! service and the composer, with the rules of `lifecycle::links`. Sign-in links live in the
//! store (keyed hashes only); sessions and the sign-in failure budget live in memory (a
//! restart signs everyone out and forgets the budget). Every write the page acknowledges is
//! flushed before the answer; every action is audited (`web:<id>` as the acting party).

use super::mail::Lifecycle;
use crate::config::Config;
use crate::crypto::Hasher;
use crate::domain::Pin;
use crate::domain::{AuditKind, AuditQuery, Lane, MailKind, PinAction, Timestamp, User};
use crate::frontend::http::web::service::{
    Account, Decision, Generated, Guest, GuestForm, Opened, Revealed, Spent, WebFuture, Who,
};
use crate::frontend::http::web::{WebService, WebSettings};
use crate::lifecycle::links::{self, Budget, Dead, Holder, LinkKeys, Proof, Sessions, Spend};
use crate::lifecycle::mail::Composer;
use crate::lifecycle::policy::PolicyViolation;
use crate::lifecycle::users::{AdminError, UserAdmin};
use crate::live::Live;
use crate::notify::outbox::OutboxHandle;
use crate::notify::Templates;
use crate::store::{each_user, Store, StoreError};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

const KEY_PURPOSE: &str = "web links v1";
const BUSY: &str = "The page could not do that just now; try again in a minute.";
/// How far back the account page lists the person's decisions, and how many.
const DECISIONS_SINCE: Duration = Duration::from_secs(30 * 86_400);
const DECISIONS_SHOWN: usize = 20;

struct Inner {
    store: Arc<dyn Store>,
    users: Arc<UserAdmin>,
    composer: Option<Arc<Composer>>,
    outbox: OutboxHandle,
    templates: Live<Templates>,
    keys: LinkKeys,
    base_url: String,
    settings: WebSettings,
    can_change: bool,
    /// `[guests] allowed`: sponsors manage their guests on the page.
    guests_on: bool,
    /// LDAP directories by name, for `sign_in = ["ldap"]` (a user signs in against the
    /// directory that owns them).
    directories: Vec<(String, crate::sync::ldap::LdapSettings)>,
    sessions: Mutex<Sessions>,
    budget: Mutex<Budget>,
}

pub struct DaemonWeb(Arc<Inner>);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn build(
    config: &Config,
    settings: &WebSettings,
    store: &Arc<dyn Store>,
    life: &Lifecycle,
    hasher: &Hasher,
    base_url: String,
) -> anyhow::Result<Arc<dyn WebService>> {
    let mut directories = Vec::new();
    if settings.directory_password {
        for d in &config.directories {
            if let crate::config::DirectorySource::Ldap(l) = &d.source {
                let ldap = crate::config::ldap_settings(l).map_err(anyhow::Error::msg)?;
                directories.push((d.name.clone(), ldap));
            }
        }
    }
    Ok(Arc::new(DaemonWeb(Arc::new(Inner {
        store: Arc::clone(store),
        users: Arc::clone(&life.users),
        composer: life.composer.clone(),
        outbox: life.outbox.clone(),
        templates: life.templates.clone(),
        keys: LinkKeys::new(hasher.derive_key(KEY_PURPOSE)),
        base_url,
        settings: settings.clone(),
        can_change: config.self_service.user_can_change,
        guests_on: config.guests.allowed,
        directories,
        sessions: Mutex::default(),
        budget: Mutex::default(),
    }))))
}

/// What `[mail] delivery = "reveal"` makes links with: the page's address (the bound one
/// unless `public_url` says otherwise) and the same keys the page checks them with.
pub fn reveal(
    config: &Config,
    bound: Option<std::net::SocketAddr>,
    hasher: &Hasher,
) -> Option<links::Reveal> {
    let on = config.mail.delivery == crate::notify::PinDelivery::Reveal && config.web.is_some();
    let (settings, bound) = (config.http.as_ref()?, bound?);
    on.then(|| links::Reveal {
        base_url: settings.base_url(bound),
        keys: LinkKeys::new(hasher.derive_key(KEY_PURPOSE)),
    })
}

fn source_key(ip: IpAddr) -> String {
    format!("source:{ip}")
}

fn user_key(id: &str) -> String {
    format!("user:{id}")
}

fn dead_text(dead: Dead) -> &'static str {
    match dead {
        Dead::Unknown => "is not valid",
        Dead::Spent => "has already been used",
        Dead::Expired => "has expired",
        Dead::Revoked => "was replaced by a newer link or a PIN change",
        Dead::TooManyCodes => "was closed after too many wrong codes",
        Dead::Used => "was closed: its PIN has been used",
    }
}

const PAUSED: &str = "cannot be used from here for a few minutes after too many failed attempts";

impl Inner {
    fn audit(&self, action: PinAction, user: &str, detail: Option<String>) {
        self.store.record(AuditKind::Pin {
            action,
            user: user.into(),
            detail,
        });
    }

    async fn blocking<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Inner) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, String> {
        let inner = Arc::clone(self);
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
    }

    /// The user `who` names: an id, else (with an `@`) the one enabled user with that
    /// address. A walk over every user for an address; it runs after the answer was sent.
    fn find(&self, who: &str) -> Result<Option<User>, StoreError> {
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

    fn send_link(&self, who: &str, nonce: &str, source: IpAddr) -> Result<(), StoreError> {
        let now = Timestamp::now();
        if lock(&self.budget).locked(&source_key(source), now) {
            self.audit(
                PinAction::WebRefused,
                "",
                Some(format!("link request from {source}: budget")),
            );
            return Ok(());
        }
        // An unknown address counts against the source (a whole office may share one
        // address, so a known person's request does not); every link counts against its
        // person (no one's mailbox is flooded).
        let Some(user) = self.find(who)? else {
            lock(&self.budget).count(&source_key(source), now);
            self.audit(
                PinAction::WebRefused,
                "",
                Some(format!("link request from {source}: no such person")),
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

    fn holder(&self, id: &str) -> Result<Option<Holder>, StoreError> {
        Ok(self.store.user(id)?.map(|u| Holder {
            enabled: u.enabled,
            pin_set_at: u.pin.as_ref().map(|p| p.set_at),
            pending_set_at: u.pending_pin.as_ref().map(|p| p.set_at),
        }))
    }

    fn open(&self, token: &str) -> Result<Opened, StoreError> {
        if !links::is_token(token) {
            return Ok(Opened::Refused(dead_text(Dead::Unknown)));
        }
        let Some(link) = self.store.link_get(&self.keys.token_key(token))? else {
            return Ok(Opened::Refused(dead_text(Dead::Unknown)));
        };
        let holder = self.holder(&link.user)?;
        Ok(match links::usable(&link, holder, Timestamp::now()) {
            Ok(()) => Opened::Usable,
            Err(dead) => Opened::Refused(dead_text(dead)),
        })
    }

    fn spend(
        &self,
        token: &str,
        nonce: Option<&str>,
        code: Option<&str>,
        source: IpAddr,
    ) -> Result<Spent, StoreError> {
        let now = Timestamp::now();
        if lock(&self.budget).locked(&source_key(source), now) {
            self.audit(
                PinAction::WebRefused,
                "",
                Some(format!("link from {source}: budget")),
            );
            return Ok(Spent::Refused(PAUSED));
        }
        let link = match links::is_token(token) {
            true => self.store.link_get(&self.keys.token_key(token))?,
            false => None,
        };
        let Some(link) = link else {
            lock(&self.budget).count(&source_key(source), now);
            self.audit(
                PinAction::WebRefused,
                "",
                Some(format!("unknown link from {source}")),
            );
            return Ok(Spent::Refused(dead_text(Dead::Unknown)));
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

    /// A well-formed token's reveal link, if it is one.
    fn reveal_link(&self, token: &str) -> Result<Option<crate::domain::WebLink>, StoreError> {
        if !links::is_token(token) {
            return Ok(None);
        }
        let link = self.store.link_get(&self.keys.token_key(token))?;
        Ok(link.filter(|l| l.purpose == crate::domain::LinkPurpose::Reveal))
    }

    /// `links::usable`, and for a reveal link: its PIN not used at a device since it was
    /// made (a grant for its user in the audit).
    fn reveal_usable(&self, link: &crate::domain::WebLink) -> Result<Result<(), Dead>, StoreError> {
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

    fn open_reveal(&self, token: &str) -> Result<Opened, StoreError> {
        let Some(link) = self.reveal_link(token)? else {
            return Ok(Opened::Refused(dead_text(Dead::Unknown)));
        };
        Ok(match self.reveal_usable(&link)? {
            Ok(()) => Opened::Usable,
            Err(dead) => Opened::Refused(dead_text(dead)),
        })
    }

    fn reveal(
        &self,
        token: &str,
        code: Option<&str>,
        source: IpAddr,
    ) -> Result<Revealed, StoreError> {
        let now = Timestamp::now();
        if lock(&self.budget).locked(&source_key(source), now) {
            self.audit(
                PinAction::WebRefused,
                "",
                Some(format!("reveal from {source}: budget")),
            );
            return Ok(Revealed::Refused(PAUSED));
        }
        let Some(link) = self.reveal_link(token)? else {
            lock(&self.budget).count(&source_key(source), now);
            self.audit(
                PinAction::WebRefused,
                "",
                Some(format!("unknown reveal link from {source}")),
            );
            return Ok(Revealed::Refused(dead_text(Dead::Unknown)));
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
                let spent = crate::domain::WebLink {
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

    /// A sponsor's guests with their end and last use (the newest grant in the audit).
    fn guests_of(&self, sponsor: &str) -> Result<Vec<Guest>, StoreError> {
        let templates = self.templates.get();
        let listed = self
            .users
            .guest_list(Some(sponsor))
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let mut guests = Vec::new();
        for g in listed {
            let query = AuditQuery {
                user: Some(g.id.clone()),
                kind: Some("decision".into()),
                limit: 50,
                ..AuditQuery::default()
            };
            let last = self.store.audit_query(&query)?.into_iter().find(|e| {
                matches!(&e.kind, AuditKind::Decision { outcome, .. } if outcome.as_str() == "grant")
            });
            guests.push(Guest {
                name: if g.name.is_empty() {
                    g.id.clone()
                } else {
                    g.name.clone()
                },
                until: templates.expiration(g.valid_until),
                last_use: last
                    .map(|e| templates.expiration(Some(e.at)))
                    .unwrap_or_else(|| "not yet".into()),
                id: g.id,
            });
        }
        Ok(guests)
    }

    fn account(&self, who: &Who) -> Result<Account, StoreError> {
        let user = self
            .store
            .user(&who.user)?
            .ok_or_else(|| StoreError::Unavailable("the account is gone".into()))?;
        let templates = self.templates.get();
        let now = Timestamp::now();
        let validity = match &user.pin {
            None => "You have no PIN at the moment.".to_string(),
            Some(p) => match p.expires_at {
                Some(at) if at <= now => "Your PIN has expired.".to_string(),
                Some(at) => format!(
                    "Your PIN is valid until {}.",
                    templates.expiration(Some(at))
                ),
                None => "Your PIN does not expire.".to_string(),
            },
        };
        let query = AuditQuery {
            user: Some(user.id.clone()),
            kind: Some("decision".into()),
            since: Some(Timestamp::from_millis(
                now.millis() - DECISIONS_SINCE.as_millis() as i64,
            )),
            until: None,
            device: None,
            limit: DECISIONS_SHOWN,
        };
        let decisions = self
            .store
            .audit_query(&query)?
            .into_iter()
            .filter_map(|e| match e.kind {
                AuditKind::Decision {
                    device, outcome, ..
                } => Some(Decision {
                    at: templates.expiration(Some(e.at)),
                    device: device.0,
                    outcome: match outcome.as_str() {
                        "grant" => "granted".into(),
                        "deny" => "refused".into(),
                        other => other.into(),
                    },
                }),
                _ => None,
            })
            .collect();
        let guests = match self.guests_on && user.sponsor.is_none() {
            true => Some(self.guests_of(&user.id)?),
            false => None,
        };
        Ok(Account {
            guests,
            id: user.id.clone(),
            name: user.name.clone(),
            validity,
            has_pin: user.pin.is_some(),
            can_change: self.can_change,
            mail_configured: self.composer.is_some(),
            decisions,
        })
    }
}

fn shown(e: AdminError, user: &str, what: &str) -> String {
    match e {
        AdminError::Policy(v) => v.to_string(),
        other => {
            tracing::error!(user, error = %other, "{what} on the self-service page failed");
            BUSY.to_string()
        }
    }
}

impl WebService for DaemonWeb {
    fn request_link(&self, who: String, nonce: String, source: IpAddr) {
        let inner = Arc::clone(&self.0);
        tokio::task::spawn_blocking(move || {
            if let Err(e) = inner.send_link(&who, &nonce, source) {
                tracing::error!(error = %e, "a sign-in link could not be made");
            }
        });
    }

    fn open_link<'a>(&'a self, token: &'a str) -> WebFuture<'a, Opened> {
        let token = token.to_string();
        Box::pin(async move {
            self.0
                .blocking(move |i| i.open(&token))
                .await
                .unwrap_or(Opened::Refused(
                    "cannot be checked just now; try again in a minute",
                ))
        })
    }

    fn spend_link<'a>(
        &'a self,
        token: &'a str,
        nonce: Option<&'a str>,
        code: Option<&'a str>,
        source: IpAddr,
    ) -> WebFuture<'a, Spent> {
        let (token, nonce, code) = (
            token.to_string(),
            nonce.map(str::to_string),
            code.map(str::to_string),
        );
        Box::pin(async move {
            self.0
                .blocking(move |i| i.spend(&token, nonce.as_deref(), code.as_deref(), source))
                .await
                .unwrap_or(Spent::Refused(
                    "cannot be used just now; try again in a minute",
                ))
        })
    }

    fn open_reveal<'a>(&'a self, token: &'a str) -> WebFuture<'a, Opened> {
        let token = token.to_string();
        Box::pin(async move {
            self.0
                .blocking(move |i| i.open_reveal(&token))
                .await
                .unwrap_or(Opened::Refused(
                    "cannot be checked just now; try again in a minute",
                ))
        })
    }

    fn reveal<'a>(
        &'a self,
        token: &'a str,
        code: Option<&'a str>,
        source: IpAddr,
    ) -> WebFuture<'a, Revealed> {
        let (token, code) = (token.to_string(), code.map(str::to_string));
        Box::pin(async move {
            self.0
                .blocking(move |i| i.reveal(&token, code.as_deref(), source))
                .await
                .unwrap_or(Revealed::Refused(
                    "cannot be used just now; try again in a minute",
                ))
        })
    }

    fn password_sign_in<'a>(
        &'a self,
        id: &'a str,
        password: zeroize::Zeroizing<String>,
        source: IpAddr,
    ) -> WebFuture<'a, Spent> {
        Box::pin(async move {
            const WRONG: &str = "The user name or password is wrong.";
            let inner = &self.0;
            let now = Timestamp::now();
            {
                let budget = lock(&inner.budget);
                if budget.locked(&source_key(source), now) || budget.locked(&user_key(id), now) {
                    drop(budget);
                    inner.audit(
                        PinAction::WebRefused,
                        "",
                        Some(format!("password from {source}: budget")),
                    );
                    return Spent::Refused("Too many failed attempts; wait a few minutes.");
                }
            }
            let found = {
                let id = id.to_string();
                inner.blocking(move |i| i.store.user(&id)).await
            };
            let user = match found {
                Ok(Some(u)) if u.enabled => Some(u),
                Ok(_) => None,
                Err(_) => {
                    return Spent::Refused(
                        "The page cannot check that just now; try again in a minute.",
                    )
                }
            };
            let directory = user.as_ref().and_then(|u| {
                let source_name = &u.upstream.as_ref()?.source;
                inner.directories.iter().find(|(n, _)| n == source_name)
            });
            let checked = match (user.as_ref(), directory) {
                (Some(u), Some((_, ldap))) => {
                    crate::sync::ldap::bind::check_password(ldap, &u.id, &password).await
                }
                _ => Ok(false),
            };
            match checked {
                Ok(true) => {
                    let user = user.map(|u| u.id).unwrap_or_default();
                    inner.audit(
                        PinAction::WebSignIn,
                        &user,
                        Some("directory password".into()),
                    );
                    Spent::SignedIn(lock(&inner.sessions).start(&inner.keys, &user, now))
                }
                Ok(false) => {
                    let mut budget = lock(&inner.budget);
                    budget.count(&source_key(source), now);
                    budget.count(&user_key(id), now);
                    drop(budget);
                    let who = user.map(|u| u.id).unwrap_or_default();
                    inner.audit(
                        PinAction::WebRefused,
                        &who,
                        Some(format!("directory password from {source}")),
                    );
                    Spent::Refused(WRONG)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "a directory password could not be checked");
                    Spent::Refused("The directory cannot be reached just now; try again later.")
                }
            }
        })
    }

    fn session(&self, cookie: &str) -> Option<Who> {
        let s = lock(&self.0.sessions).get(&self.0.keys, cookie, Timestamp::now())?;
        Some(Who {
            user: s.user,
            csrf: s.csrf,
        })
    }

    fn sign_out(&self, cookie: &str) {
        lock(&self.0.sessions).end(&self.0.keys, cookie);
    }

    fn account<'a>(&'a self, who: &'a Who) -> WebFuture<'a, Result<Account, String>> {
        let who = who.clone();
        Box::pin(async move {
            self.0
                .blocking(move |i| i.account(&who))
                .await
                .map_err(|e| {
                    tracing::error!(error = %e, "the self-service account page failed");
                    BUSY.to_string()
                })
        })
    }

    fn generate<'a>(&'a self, who: &'a Who) -> WebFuture<'a, Result<Generated, String>> {
        Box::pin(async move {
            let delivery = self.0.settings.new_pin;
            let mail = delivery.mails() && self.0.composer.is_some();
            let by = format!("web:{}", who.user);
            let made =
                crate::lifecycle::actor::acting(by, self.0.users.generate_own(&who.user, mail))
                    .await
                    .map_err(|e| shown(e, &who.user, "a new PIN"))?;
            self.0
                .blocking(|i| i.store.flush())
                .await
                .map_err(|_| BUSY.to_string())?;
            if mail {
                self.0.outbox.wake();
            }
            Ok(delivery.shows().then_some(made))
        })
    }

    fn change<'a>(&'a self, who: &'a Who, new: Pin) -> WebFuture<'a, Result<(), String>> {
        Box::pin(async move {
            if !self.0.can_change {
                return Err("This site does not let people choose their own PIN.".into());
            }
            let by = format!("web:{}", who.user);
            match crate::lifecycle::actor::acting(by, self.0.users.change_own(&who.user, new)).await
            {
                Ok(()) => {
                    self.0
                        .blocking(|i| i.store.flush())
                        .await
                        .map_err(|_| BUSY.to_string())?;
                    self.0.outbox.wake();
                    Ok(())
                }
                Err(AdminError::Policy(v)) => {
                    self.0
                        .audit(PinAction::ChangeRefused, &who.user, Some(v.to_string()));
                    Err(match v {
                        PolicyViolation::NotUnique => {
                            "This PIN cannot be used; choose another.".to_string()
                        }
                        other => other.to_string(),
                    })
                }
                Err(e) => Err(shown(e, &who.user, "a PIN change")),
            }
        })
    }

    fn guest<'a>(&'a self, who: &'a Who, form: GuestForm) -> WebFuture<'a, Result<String, String>> {
        Box::pin(async move {
            if !self.0.guests_on {
                return Err("Guests are not allowed here.".into());
            }
            let users = &self.0.users;
            let sponsor = who.user.as_str();
            let by = format!("web:{sponsor}");
            let templates = self.0.templates.get();
            let work = async {
                match form {
                    GuestForm::Invite {
                        id,
                        name,
                        email,
                        valid_for,
                    } => {
                        let new = crate::lifecycle::users::NewGuest {
                            id: id.clone(),
                            name,
                            email,
                            groups: Vec::new(),
                            valid_for,
                        };
                        let added = users.guest_add(sponsor, new).await?;
                        let until = templates.expiration(Some(added.valid_until));
                        Ok(match added.shown {
                            Some(pin) => format!(
                                "Guest {id} can come in until {until}. Their PIN, shown only \
                                 this once: {}",
                                pin.expose()
                            ),
                            None => format!("Guest {id} can come in until {until}; their PIN was mailed to them."),
                        })
                    }
                    GuestForm::Extend { id, valid_for } => {
                        let until = users.guest_extend(&id, Some(sponsor), &valid_for)?;
                        Ok(format!(
                            "Guest {id} can now come in until {}.",
                            templates.expiration(Some(until))
                        ))
                    }
                    GuestForm::End { id } => {
                        users.guest_end(&id, Some(sponsor))?;
                        Ok(format!("Guest {id} has been ended."))
                    }
                }
            };
            let done: Result<String, AdminError> = crate::lifecycle::actor::acting(by, work).await;
            match done {
                Ok(notice) => {
                    self.0
                        .blocking(|i| i.store.flush())
                        .await
                        .map_err(|_| BUSY.to_string())?;
                    self.0.outbox.wake();
                    Ok(notice)
                }
                Err(AdminError::Store(e)) => {
                    tracing::error!(error = %e, "a guest change on the self-service page failed");
                    Err(BUSY.to_string())
                }
                Err(e) => Err(e.to_string()),
            }
        })
    }

    fn mail_configured(&self) -> bool {
        self.0.composer.is_some()
    }

    fn settings(&self) -> &WebSettings {
        &self.0.settings
    }
}
