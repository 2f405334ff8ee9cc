//! The self-service page's pure rules: sign-in links (a 32-byte CSPRNG token, stored only
//! as a hash keyed from the pepper; a short code for another browser; a GET never spends
//! one, a POST from the browser that asked for it or with the code does, once), the
//! in-memory sessions after sign-in (lost at a restart: people sign in again) and the
//! failure budget on sign-in (the devices' leaky bucket, `core::lockout`, per source
//! address and per person, in memory). Time is passed in; knows no HTTP and no store.

use crate::core::lockout::{self, LockoutPolicy};
use crate::domain::{LinkPurpose, LockoutState, Timestamp, WebLink};
use base64::Engine;
use rand::RngCore;
use std::collections::HashMap;
use std::time::Duration;
use subtle::ConstantTimeEq;

/// Wrong codes after which a link is dead (the person asks for a new one).
pub const MAX_CODE_FAILURES: u32 = 5;
/// Letters and digits that cannot be misread (no 0/O, 1/I/L).
const CODE_ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
const CODE_LEN: usize = 6;
/// A session ends after this long without a request…
pub const SESSION_IDLE: Duration = Duration::from_secs(15 * 60);
/// …and in any case this long after sign-in.
pub const SESSION_MAX: Duration = Duration::from_secs(8 * 3600);
/// Sessions kept at once: the oldest goes first beyond this.
const MAX_SESSIONS: usize = 10_000;
/// Live sessions one person may have (each new sign-in past it ends their oldest).
pub const SESSIONS_PER_USER: usize = 5;

/// Keyed hashing of tokens, codes and nonces (the key derived from the pepper, so the
/// store alone cannot test a guess).
#[derive(Clone)]
pub struct LinkKeys {
    key: [u8; 32],
}

impl LinkKeys {
    pub fn new(key: [u8; 32]) -> Self {
        LinkKeys { key }
    }

    pub fn hash(&self, what: &str, value: &[u8]) -> [u8; 32] {
        use blake2::Digest;
        let mut h = blake2::Blake2b512::new();
        h.update(self.key);
        h.update(what.as_bytes());
        h.update([0]);
        h.update(value);
        let mut out = [0u8; 32];
        out.copy_from_slice(&h.finalize()[..32]);
        out
    }

    /// The store key of a token as it appears in a link.
    pub fn token_key(&self, token: &str) -> [u8; 32] {
        self.hash("token", token.as_bytes())
    }

    /// The stored form of a code as typed (case and spaces ignored).
    pub fn code_key(&self, code: &str) -> [u8; 32] {
        let typed: String = code
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        self.hash("code", typed.as_bytes())
    }

    pub fn nonce_key(&self, nonce: &str) -> [u8; 32] {
        self.hash("browser", nonce.as_bytes())
    }
}

/// 32 random bytes, base64url without padding (43 characters): tokens, nonces, sessions.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Whether `text` has the shape of `random_token` (anything else is refused unhashed).
pub fn is_token(text: &str) -> bool {
    text.len() == 43
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub fn random_code() -> String {
    let mut rng = rand::rngs::OsRng;
    (0..CODE_LEN)
        .map(|_| {
            let i = (rng.next_u32() as usize) % CODE_ALPHABET.len();
            CODE_ALPHABET[i] as char
        })
        .collect()
}

/// A fresh link (token and code are returned for the mail; only their hashes are kept).
pub struct NewLink {
    pub token: String,
    pub code: String,
    pub link: WebLink,
}

pub fn new_link(
    keys: &LinkKeys,
    user: &str,
    pin_set_at: Option<Timestamp>,
    browser: [u8; 32],
    lifetime: Duration,
    now: Timestamp,
) -> NewLink {
    let token = random_token();
    let code = random_code();
    let link = WebLink {
        key: keys.token_key(&token),
        user: user.into(),
        purpose: LinkPurpose::SignIn,
        created_at: now,
        expires_at: now.plus(lifetime),
        pin_set_at,
        browser,
        code: keys.code_key(&code),
        code_failures: 0,
        spent: false,
        sealed_pin: None,
    };
    NewLink { token, code, link }
}

/// What `[mail] delivery = "reveal"` needs to make links: the page's address and the keys
/// the page checks them with.
#[derive(Clone)]
pub struct Reveal {
    pub base_url: String,
    pub keys: LinkKeys,
}

/// A reveal link lives at most this long (less when its PIN expires sooner).
pub const REVEAL_MAX: Duration = Duration::from_secs(7 * 86_400);

fn reveal_sealer(keys: &LinkKeys, token: &str) -> crate::notify::Sealer {
    crate::notify::Sealer::new(&keys.hash("reveal seal", token.as_bytes()))
}

/// A link that shows `pin` once (`[mail] delivery = "reveal"`): the PIN sealed under a key
/// derived from the token, which only the mail holds; spent with the mail's code (nobody's
/// browser asked for it, and a scanner that submits forms has no code).
pub fn reveal_link(
    keys: &LinkKeys,
    user: &str,
    pin_set_at: Timestamp,
    pin: &crate::domain::Pin,
    expires_at: Timestamp,
    now: Timestamp,
) -> NewLink {
    let token = random_token();
    let code = random_code();
    let key = keys.token_key(&token);
    let sealed = reveal_sealer(keys, &token).seal(&key, pin.expose().as_bytes());
    let link = WebLink {
        key,
        user: user.into(),
        purpose: LinkPurpose::Reveal,
        created_at: now,
        expires_at: expires_at.min(now.plus(REVEAL_MAX)),
        pin_set_at: Some(pin_set_at),
        browser: keys.hash("no browser", token.as_bytes()),
        code: keys.code_key(&code),
        code_failures: 0,
        spent: false,
        sealed_pin: Some(sealed),
    };
    NewLink { token, code, link }
}

/// The PIN a reveal link holds, opened with the link's own token.
pub fn open_pin(keys: &LinkKeys, token: &str, link: &WebLink) -> Option<crate::domain::Pin> {
    let sealed = link.sealed_pin.as_ref()?;
    let plain = reveal_sealer(keys, token).open(&link.key, sealed).ok()?;
    let text = std::str::from_utf8(&plain).ok()?;
    Some(crate::domain::Pin::new(text))
}

/// Why a link cannot be used (shown to the person in plain words).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dead {
    Unknown,
    Spent,
    Expired,
    /// Its user's PIN changed, or the user is gone or disabled.
    Revoked,
    TooManyCodes,
    /// A reveal link whose PIN was used at a device.
    Used,
}

impl Dead {
    pub fn reason(self) -> &'static str {
        match self {
            Dead::Unknown => "unknown",
            Dead::Spent => "used",
            Dead::Expired => "expired",
            Dead::Revoked => "revoked",
            Dead::TooManyCodes => "too_many_codes",
            Dead::Used => "pin_used",
        }
    }
}

/// What the user record says now: whether it is enabled and its PIN version.
#[derive(Clone, Copy, Debug)]
pub struct Holder {
    pub enabled: bool,
    pub pin_set_at: Option<Timestamp>,
    /// A forgotten-PIN PIN waiting for its first use (a reveal link may carry it).
    pub pending_set_at: Option<Timestamp>,
}

/// Whether a link may still be used (opened or spent) at `now`.
pub fn usable(link: &WebLink, holder: Option<Holder>, now: Timestamp) -> Result<(), Dead> {
    let Some(holder) = holder else {
        return Err(Dead::Revoked);
    };
    if link.spent {
        Err(Dead::Spent)
    } else if now >= link.expires_at {
        Err(Dead::Expired)
    } else if !holder.enabled || !current_pin(link, &holder) {
        Err(Dead::Revoked)
    } else if link.code_failures >= MAX_CODE_FAILURES {
        Err(Dead::TooManyCodes)
    } else {
        Ok(())
    }
}

/// Whether the PIN version the link was made for is still the user's: the PIN for a
/// sign-in link; for a reveal link the PIN or the pending PIN it carries.
fn current_pin(link: &WebLink, holder: &Holder) -> bool {
    holder.pin_set_at == link.pin_set_at
        || (link.purpose == LinkPurpose::Reveal
            && link.pin_set_at.is_some()
            && holder.pending_set_at == link.pin_set_at)
}

/// What a POST on a link brings: the hash of the browser's nonce cookie, a typed code.
pub struct Proof {
    pub browser: Option<[u8; 32]>,
    pub code: Option<[u8; 32]>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Spend {
    /// Write this (spent) link, then sign in.
    Granted(WebLink),
    /// Another browser, no code: ask for it (nothing changes).
    NeedCode,
    /// A wrong code: write this (counted) link and ask again.
    WrongCode(WebLink),
    Refused(Dead),
}

/// The POST rule: the asking browser's cookie, else the code, spends a usable link.
pub fn spend(link: &WebLink, holder: Option<Holder>, proof: &Proof, now: Timestamp) -> Spend {
    if let Err(dead) = usable(link, holder, now) {
        return Spend::Refused(dead);
    }
    let same = |a: &[u8; 32], b: &[u8; 32]| bool::from(a.ct_eq(b));
    let by_browser = proof.browser.is_some_and(|b| same(&b, &link.browser));
    if by_browser || proof.code.is_some_and(|c| same(&c, &link.code)) {
        return Spend::Granted(WebLink {
            spent: true,
            ..link.clone()
        });
    }
    match proof.code {
        None => Spend::NeedCode,
        Some(_) => Spend::WrongCode(WebLink {
            code_failures: link.code_failures + 1,
            ..link.clone()
        }),
    }
}

/// The sign-in failure budget: the devices' leaky bucket (5 free, 30 s doubling to 1 h,
/// one forgiven every 5 minutes) per source address and per person: a request for an
/// unknown address, a refused link or a wrong code counts against the source; a link sent
/// and a wrong code against the person. In memory: a restart forgets it.
#[derive(Default)]
pub struct Budget {
    counters: HashMap<String, LockoutState>,
}

pub fn web_policy() -> LockoutPolicy {
    LockoutPolicy {
        free_failures: 5,
        initial_backoff: Duration::from_secs(30),
        max_backoff: Duration::from_secs(3600),
        forgive_every: Duration::from_secs(300),
        source_failures: 5,
        user_max_failures: 10,
        user_lock: Duration::from_secs(60),
        user_max_lock: Duration::from_secs(3600),
        alarm_per_hour: 0,
    }
}

impl Budget {
    pub fn locked(&self, key: &str, now: Timestamp) -> bool {
        lockout::is_locked(self.counters.get(key).copied(), now)
    }

    pub fn count(&mut self, key: &str, now: Timestamp) {
        let policy = web_policy();
        let next = lockout::on_failure(self.counters.get(key).copied(), &policy, now);
        if self.counters.len() >= MAX_SESSIONS && !self.counters.contains_key(key) {
            self.counters
                .retain(|_, s| lockout::is_locked(Some(*s), now));
        }
        self.counters.insert(key.to_string(), next);
    }
}

/// Refusals of a chosen PIN because someone else holds it, per person, over a rolling day.
/// Each one tells the person a PIN that opens a PIN-only door, so past
/// [`TAKEN_PER_DAY`] the person may not change their PIN until the oldest ages out. In
/// memory: a restart forgets it (the store's lockout keys name devices, sources and
/// failed ID+PIN users only; a new kind there would show in `status` and every reader).
#[derive(Default)]
pub struct TakenBudget {
    by_user: HashMap<String, Vec<Timestamp>>,
}

/// How many "someone holds this PIN" refusals a person gets per rolling day.
pub const TAKEN_PER_DAY: usize = 3;
const TAKEN_WINDOW: Duration = Duration::from_secs(86_400);

impl TakenBudget {
    /// Whether `user` has used up their refusals.
    pub fn spent(&mut self, user: &str, now: Timestamp) -> bool {
        self.prune(now);
        self.by_user
            .get(user)
            .is_some_and(|t| t.len() >= TAKEN_PER_DAY)
    }

    /// Counts one refusal against `user`.
    pub fn count(&mut self, user: &str, now: Timestamp) {
        self.prune(now);
        self.by_user.entry(user.to_string()).or_default().push(now);
    }

    fn prune(&mut self, now: Timestamp) {
        self.by_user.retain(|_, times| {
            times.retain(|t| t.until(now) < TAKEN_WINDOW);
            !times.is_empty()
        });
    }
}

/// Sign-in link requests per source address over a rolling hour, known and unknown
/// addresses alike (so the budget cannot tell whether an address exists); checked before
/// the user walk an address needs. In memory.
#[derive(Default)]
pub struct Requests {
    by_source: HashMap<String, Vec<Timestamp>>,
}

/// How many link requests a source address may make per rolling hour (an office may share
/// one address, so more than a person's).
pub const LINK_REQUESTS_PER_HOUR: usize = 20;
const REQUEST_WINDOW: Duration = Duration::from_secs(3600);

impl Requests {
    /// Counts a request from `source`; false (and not counted) past the allowance.
    pub fn admit(&mut self, source: &str, now: Timestamp) -> bool {
        self.by_source.retain(|_, times| {
            times.retain(|t| t.until(now) < REQUEST_WINDOW);
            !times.is_empty()
        });
        let times = self.by_source.entry(source.to_string()).or_default();
        if times.len() >= LINK_REQUESTS_PER_HOUR {
            return false;
        }
        times.push(now);
        true
    }
}

/// A signed-in person.
#[derive(Clone, Debug)]
pub struct Session {
    pub user: String,
    /// The form token every POST must carry.
    pub csrf: String,
    started: Timestamp,
    seen: Timestamp,
}

/// Sessions by the hash of their cookie; in memory only.
#[derive(Default)]
pub struct Sessions {
    by_key: HashMap<[u8; 32], Session>,
}

impl Sessions {
    /// Starts a session; returns its cookie value.
    pub fn start(&mut self, keys: &LinkKeys, user: &str, now: Timestamp) -> String {
        self.by_key.retain(|_, s| alive(s, now));
        // A person's oldest session ends past `SESSIONS_PER_USER`.
        let theirs = self.by_key.values().filter(|s| s.user == user).count();
        if theirs >= SESSIONS_PER_USER {
            if let Some(oldest) = self
                .by_key
                .iter()
                .filter(|(_, s)| s.user == user)
                .min_by_key(|(_, s)| s.seen)
                .map(|(k, _)| *k)
            {
                self.by_key.remove(&oldest);
            }
        }
        if self.by_key.len() >= MAX_SESSIONS {
            if let Some(oldest) = self
                .by_key
                .iter()
                .min_by_key(|(_, s)| s.seen)
                .map(|(k, _)| *k)
            {
                self.by_key.remove(&oldest);
            }
        }
        let cookie = random_token();
        let session = Session {
            user: user.into(),
            csrf: random_token(),
            started: now,
            seen: now,
        };
        self.by_key
            .insert(keys.hash("session", cookie.as_bytes()), session);
        cookie
    }

    /// The live session of a cookie, its idle time restarted.
    pub fn get(&mut self, keys: &LinkKeys, cookie: &str, now: Timestamp) -> Option<Session> {
        let key = keys.hash("session", cookie.as_bytes());
        let session = self.by_key.get_mut(&key)?;
        if !alive(session, now) {
            self.by_key.remove(&key);
            return None;
        }
        session.seen = now;
        Some(session.clone())
    }

    /// Ends a session; returns whose it was.
    pub fn end(&mut self, keys: &LinkKeys, cookie: &str) -> Option<String> {
        self.by_key
            .remove(&keys.hash("session", cookie.as_bytes()))
            .map(|s| s.user)
    }

    /// Ends every session of `user` (a new sign-in link was asked for elsewhere, say).
    pub fn end_user(&mut self, user: &str) {
        self.by_key.retain(|_, s| s.user != user);
    }
}

fn alive(s: &Session, now: Timestamp) -> bool {
    now < s.seen.plus(SESSION_IDLE) && now < s.started.plus(SESSION_MAX)
}

/// Whether a form's CSRF token is the session's.
pub fn csrf_ok(session: &Session, presented: Option<&str>) -> bool {
    csrf_ok_text(&session.csrf, presented)
}

/// `csrf_ok` against the token text (constant time).
pub fn csrf_ok_text(csrf: &str, presented: Option<&str>) -> bool {
    presented.is_some_and(|p| bool::from(p.as_bytes().ct_eq(csrf.as_bytes())))
}

#[cfg(test)]
#[path = "links_tests.rs"]
mod tests;
