//! Wiring of the self-service page: the frontend's `WebService` over the store, the admin
//! service and the composer, with the rules of `lifecycle::links`. Sign-in links live in the
//! store (keyed hashes only); sessions and the sign-in failure budget live in memory (a
//! restart signs everyone out and forgets the budget). Every write the page acknowledges is
//! flushed before the answer; every action is audited (`web:<id>` as the acting party).

use super::mail::Lifecycle;
use crate::config::Config;
use crate::crypto::Hasher;
use crate::domain::Pin;
use crate::domain::{AuditKind, AuditQuery, LinkPurpose, PinAction, Timestamp, WebLink};
use crate::frontend::http::web::service::{
    Account, Decision, Generated, GuestForm, Opened, Revealed, Spent, WebFuture, Who,
};
use crate::frontend::http::web::{WebService, WebSettings};
use crate::lifecycle::links::{
    self, Budget, Dead, Holder, LinkKeys, Requests, Sessions, TakenBudget,
};
use crate::lifecycle::mail::Composer;
use crate::lifecycle::policy::PolicyViolation;
use crate::lifecycle::users::{AdminError, UserAdmin};
use crate::live::Live;
use crate::notify::outbox::OutboxHandle;
use crate::notify::Templates;
use crate::store::{Store, StoreError};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

const KEY_PURPOSE: &str = "web links v1";
/// Link requests worked on at once (each may walk every user for an address).
const LINK_WALKS: usize = 2;
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
    /// "Someone holds this PIN" refusals per person (each one is an answer about a PIN).
    taken: Mutex<TakenBudget>,
    /// Link requests per source address (known and unknown addresses alike).
    requests: Mutex<Requests>,
    /// Link requests being worked on (a user walk each, on the blocking pool the core's
    /// flushes share): when all are taken a request is answered alike and dropped.
    walks: Arc<tokio::sync::Semaphore>,
    /// Whether the drop since the pool was last free has been audited (once per spell).
    walks_full_audited: std::sync::atomic::AtomicBool,
    /// How long recent directory-password checks of known ids took: an unknown id's
    /// (a search and a bind that cannot succeed) waits out their median.
    bind_times: crate::crypto::TagTimes,
}

pub struct DaemonWeb(Arc<Inner>);

#[path = "web_guests.rs"]
mod guests;
#[path = "web_password.rs"]
mod password;
#[path = "web_reveal.rs"]
mod reveal;
#[path = "web_links.rs"]
mod sign_in;

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
        taken: Mutex::default(),
        requests: Mutex::default(),
        walks: Arc::new(tokio::sync::Semaphore::new(LINK_WALKS)),
        walks_full_audited: Default::default(),
        bind_times: Default::default(),
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
    /// A well-formed token's link of `purpose`; a link of the other purpose is unknown here
    /// (a reveal link, whose code is in the same mail, must never start a session).
    fn link_of(&self, token: &str, purpose: LinkPurpose) -> Result<Option<WebLink>, StoreError> {
        if !links::is_token(token) {
            return Ok(None);
        }
        let link = self.store.link_get(&self.keys.token_key(token))?;
        Ok(link.filter(|l| l.purpose == purpose))
    }

    /// The first steps of spending a link from `source` (`what` names it in the audit): the
    /// source's budget, then the link the token names. A refusal is counted and audited,
    /// and its text is returned.
    fn admit(
        &self,
        token: &str,
        purpose: LinkPurpose,
        what: &str,
        source: IpAddr,
        now: Timestamp,
    ) -> Result<Result<WebLink, &'static str>, StoreError> {
        if lock(&self.budget).locked(&source_key(source), now) {
            let detail = format!("{what} from {source}: budget");
            self.audit(PinAction::WebRefused, "", Some(detail));
            return Ok(Err(PAUSED));
        }
        let Some(link) = self.link_of(token, purpose)? else {
            lock(&self.budget).count(&source_key(source), now);
            let detail = format!("unknown {what} from {source}");
            self.audit(PinAction::WebRefused, "", Some(detail));
            return Ok(Err(dead_text(Dead::Unknown)));
        };
        Ok(Ok(link))
    }

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

    fn holder(&self, id: &str) -> Result<Option<Holder>, StoreError> {
        Ok(self.store.user(id)?.map(|u| Holder {
            enabled: u.enabled,
            pin_set_at: u.pin.as_ref().map(|p| p.set_at),
            pending_set_at: u.pending_pin.as_ref().map(|p| p.set_at),
        }))
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
    /// The answer is the same whatever happens here; the source's budgets are checked in
    /// memory before any store work, and at most `LINK_WALKS` requests are worked on.
    fn request_link(&self, who: String, nonce: String, source: IpAddr) {
        use std::sync::atomic::Ordering;
        let inner = &self.0;
        let now = Timestamp::now();
        if lock(&inner.budget).locked(&source_key(source), now) {
            inner.audit(
                PinAction::WebRefused,
                "",
                Some(format!("link request from {source}: budget")),
            );
            return;
        }
        if !lock(&inner.requests).admit(&source_key(source), now) {
            inner.audit(
                PinAction::WebRefused,
                "",
                Some(format!("link request from {source}: too many requests")),
            );
            return;
        }
        let Ok(permit) = Arc::clone(&inner.walks).try_acquire_owned() else {
            if !inner.walks_full_audited.swap(true, Ordering::Relaxed) {
                inner.audit(
                    PinAction::WebRefused,
                    "",
                    Some("link requests: busy, dropped until one finishes".into()),
                );
            }
            return;
        };
        inner.walks_full_audited.store(false, Ordering::Relaxed);
        let inner = Arc::clone(inner);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            if let Err(e) = inner.send_link(&who, &nonce) {
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
        Box::pin(self.password(id, password, source))
    }

    /// A session of someone no longer enabled (disabled or removed since signing in)
    /// ends, with all of theirs; an unreadable store refuses the page without ending it.
    fn session(&self, cookie: &str) -> Option<Who> {
        let s = lock(&self.0.sessions).get(&self.0.keys, cookie, Timestamp::now())?;
        match self.0.store.user(&s.user) {
            Ok(Some(user)) if user.enabled => {}
            Ok(_) => {
                lock(&self.0.sessions).end_user(&s.user);
                self.0.audit(
                    PinAction::WebSignOut,
                    &s.user,
                    Some("no longer enabled".into()),
                );
                return None;
            }
            Err(e) => {
                tracing::error!(error = %e, "a session's person could not be read");
                return None;
            }
        }
        Some(Who {
            user: s.user,
            csrf: s.csrf,
        })
    }

    fn sign_out(&self, cookie: &str) {
        let ended = lock(&self.0.sessions).end(&self.0.keys, cookie);
        if let Some(user) = ended {
            self.0.audit(PinAction::WebSignOut, &user, None);
        }
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
            // Each "someone holds it" tells the person a PIN that works at a PIN-only door:
            // past a few a day, no more changes (the terminal's CHANGE counts them as
            // failures for the same reason).
            if lock(&self.0.taken).spent(&who.user, Timestamp::now()) {
                self.0.audit(
                    PinAction::ChangeRefused,
                    &who.user,
                    Some("too many PINs already in use today".into()),
                );
                return Err(
                    "Too many of the PINs you chose were already in use; try again later.".into(),
                );
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
                    if v == PolicyViolation::NotUnique {
                        lock(&self.0.taken).count(&who.user, Timestamp::now());
                    }
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
        Box::pin(self.guest_change(who, form))
    }

    fn mail_configured(&self) -> bool {
        self.0.composer.is_some()
    }

    fn settings(&self) -> &WebSettings {
        &self.0.settings
    }
}
