//! What the self-service page asks of the daemon (`daemon/web.rs` implements it over the
//! lifecycle), and the page's settings. Plain types: no store, no HTTP.

use crate::domain::Pin;
use serde::Serialize;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin as Boxed;
use std::time::Duration;

pub type WebFuture<'a, T> = Boxed<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a generated PIN does: shown once on the page, mailed, or both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NewPinDelivery {
    Show,
    Mail,
    Both,
}

impl NewPinDelivery {
    pub fn shows(self) -> bool {
        matches!(self, NewPinDelivery::Show | NewPinDelivery::Both)
    }
    pub fn mails(self) -> bool {
        matches!(self, NewPinDelivery::Mail | NewPinDelivery::Both)
    }
}

/// `[web]`: the self-service page.
#[derive(Clone, Debug, Serialize)]
pub struct WebSettings {
    /// How long a sign-in link works (default 30 minutes: greylisting alone delays mail
    /// 10–15); stated in the mail.
    #[serde(serialize_with = "crate::duration::serialize")]
    pub link_lifetime: Duration,
    pub new_pin: NewPinDelivery,
    /// `sign_in = ["ldap"]`: people may also sign in with their directory password (an
    /// LDAP bind as them; never stored).
    pub directory_password: bool,
}

impl Default for WebSettings {
    fn default() -> Self {
        WebSettings {
            link_lifetime: Duration::from_secs(30 * 60),
            new_pin: NewPinDelivery::Both,
            directory_password: false,
        }
    }
}

/// A signed-in person, as the page needs them.
#[derive(Clone, Debug)]
pub struct Who {
    pub user: String,
    pub csrf: String,
}

/// What opening a link (GET) shows: nothing is changed.
pub enum Opened {
    /// Usable: the page offers the button.
    Usable,
    /// Dead: why, in plain words.
    Refused(&'static str),
}

/// What a POST on a link did.
pub enum Spent {
    /// Signed in: the session cookie's value.
    SignedIn(String),
    /// Another browser: the page asks for the code from the mail.
    NeedCode,
    /// A wrong code (counted): ask again.
    WrongCode,
    Refused(&'static str),
}

/// What a POST on a reveal link did.
pub enum Revealed {
    /// Shown once; the link is spent.
    Pin(Pin),
    NeedCode,
    WrongCode,
    Refused(&'static str),
}

/// The account page's facts (never the PIN).
pub struct Account {
    pub id: String,
    pub name: String,
    /// "valid until …", "never expires", "none".
    pub validity: String,
    pub has_pin: bool,
    pub can_change: bool,
    pub mail_configured: bool,
    pub decisions: Vec<Decision>,
    /// A sponsor's guests (None: guests are off here, or the person is a guest).
    pub guests: Option<Vec<Guest>>,
}

pub struct Guest {
    pub id: String,
    pub name: String,
    pub until: String,
    pub last_use: String,
}

/// What a sponsor asks for on the page (the same rules as `pinwarden guest …`).
pub enum GuestForm {
    Invite {
        id: String,
        name: String,
        email: String,
        valid_for: String,
    },
    Extend {
        id: String,
        valid_for: String,
    },
    End {
        id: String,
    },
}

pub struct Decision {
    pub at: String,
    pub device: String,
    pub outcome: String,
}

/// A generated PIN: shown (`Some`) or only mailed.
pub type Generated = Option<Pin>;

pub trait WebService: Send + Sync + 'static {
    /// Starts sending a sign-in link to whoever `who` names (an address or an id), bound to
    /// the browser's `nonce`; returns at once, the same for every `who`.
    fn request_link(&self, who: String, nonce: String, source: IpAddr);
    fn open_link<'a>(&'a self, token: &'a str) -> WebFuture<'a, Opened>;
    fn spend_link<'a>(
        &'a self,
        token: &'a str,
        nonce: Option<&'a str>,
        code: Option<&'a str>,
        source: IpAddr,
    ) -> WebFuture<'a, Spent>;
    /// GET of a reveal link: its state only.
    fn open_reveal<'a>(&'a self, token: &'a str) -> WebFuture<'a, Opened>;
    /// POST of a reveal link with the mail's code: the PIN, once.
    fn reveal<'a>(
        &'a self,
        token: &'a str,
        code: Option<&'a str>,
        source: IpAddr,
    ) -> WebFuture<'a, Revealed>;
    /// Sign-in with the directory password: `SignedIn` or `Refused` (the same for an
    /// unknown id and a wrong password).
    fn password_sign_in<'a>(
        &'a self,
        id: &'a str,
        password: zeroize::Zeroizing<String>,
        source: IpAddr,
    ) -> WebFuture<'a, Spent>;
    fn session(&self, cookie: &str) -> Option<Who>;
    fn sign_out(&self, cookie: &str);
    fn account<'a>(&'a self, who: &'a Who) -> WebFuture<'a, Result<Account, String>>;
    /// Err: a message safe to show.
    fn generate<'a>(&'a self, who: &'a Who) -> WebFuture<'a, Result<Generated, String>>;
    /// Err: the policy's message (or a generic one), safe to show.
    fn change<'a>(&'a self, who: &'a Who, new: Pin) -> WebFuture<'a, Result<(), String>>;
    /// A sponsor's guest action; Ok: what to tell them; Err: a refusal safe to show.
    fn guest<'a>(&'a self, who: &'a Who, form: GuestForm) -> WebFuture<'a, Result<String, String>>;
    fn mail_configured(&self) -> bool;
    fn settings(&self) -> &WebSettings;
}
