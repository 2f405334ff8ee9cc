//! The self-service page (`[web]`): sign-in by emailed link, then a person's PIN validity,
//! a generated PIN shown once, their own PIN where the site allows it, and their recent
//! decisions. Server-rendered, no JavaScript. Links survive mail scanners: a GET or HEAD
//! changes nothing, a POST from the page's visible button spends the link, from the browser
//! that asked for it (a `SameSite=Strict` nonce cookie) or with the code from the mail.
//! Every POST carries the session's CSRF token (403 without) and a cross-site POST is
//! refused. Cookies are `HttpOnly; SameSite=Strict; Path=/`, `Secure` under TLS (a
//! plain-HTTP listener, such as the loopback demo, cannot keep a `Secure` cookie). Calls
//! the daemon's `WebService`; never touches the store.

mod pages;
pub mod service;

pub use service::{NewPinDelivery, WebService, WebSettings};

use crate::domain::Pin;
use crate::frontend::http::Peer;
use axum::extract::{Form, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use maud::Markup;
use service::{Opened, Revealed, Spent, Who};
use std::collections::HashMap;
use std::sync::Arc;

const SESSION: &str = "pw_session";
const NONCE: &str = "pw_nonce";

#[derive(Clone)]
struct Web {
    service: Arc<dyn WebService>,
    secure: bool,
}

/// The page's routes; `secure` when cookies get `Secure`; `public_url` (`[http]
/// public_url`) is the page's own origin when set, else a POST's origin must name the
/// `Host` it was sent to, with the listener's scheme.
pub fn routes(service: Arc<dyn WebService>, secure: bool, public_url: Option<&str>) -> Router {
    let web = Web { service, secure };
    let own = Arc::new(public_url.map(origin_of));
    let scheme = if secure { "https" } else { "http" };
    Router::new()
        .route("/", get(home))
        .route("/static/self.css", get(css))
        .route("/sign-in", post(request_link))
        .route("/sign-in/password", post(password_sign_in))
        .route("/link/{token}", get(open_link).post(spend_link))
        .route("/reveal/{token}", get(open_reveal).post(reveal))
        .route("/pin/new", post(new_pin))
        .route("/pin/change", post(change_pin))
        .route("/guests", post(guests))
        .route("/sign-out", post(sign_out))
        .layer(axum::middleware::from_fn(move |request, next| {
            same_origin_posts(Arc::clone(&own), scheme, request, next)
        }))
        .with_state(web)
}

/// An origin's canonical text: lower case, no path, no default port.
fn origin_of(url: &str) -> String {
    let url = url.trim().to_ascii_lowercase();
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url.as_str()));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = match scheme {
        "https" => authority.strip_suffix(":443").unwrap_or(authority),
        "http" => authority.strip_suffix(":80").unwrap_or(authority),
        _ => authority,
    };
    format!("{scheme}://{authority}")
}

/// A POST must come from the page itself (login CSRF, form auto-posting): a
/// `Sec-Fetch-Site` other than `same-origin` or `none` (typed, bookmarked) is refused,
/// and so is an `Origin` that is `null` or not the page's own (scheme, host and port).
/// The listener's `Referrer-Policy: same-origin` makes browsers send the real origin.
async fn same_origin_posts(
    own: Arc<Option<String>>,
    scheme: &'static str,
    request: Request,
    next: Next,
) -> Response {
    if request.method() == Method::POST {
        let headers = request.headers();
        let fetch_site_ok = headers
            .get("sec-fetch-site")
            .map(|v| matches!(v.to_str(), Ok("same-origin" | "none")))
            .unwrap_or(true);
        let origin_ok = match headers.get(header::ORIGIN).map(|v| v.to_str()) {
            None => true,
            Some(Err(_)) => false,
            Some(Ok(origin)) => {
                let expected = match own.as_ref() {
                    Some(own) => Some(own.clone()),
                    None => headers
                        .get(header::HOST)
                        .and_then(|h| h.to_str().ok())
                        .map(|h| origin_of(&format!("{scheme}://{h}"))),
                };
                origin != "null" && expected.is_some_and(|e| origin_of(origin) == e)
            }
        };
        if !fetch_site_ok || !origin_ok {
            return forbidden("This form was sent from another site.");
        }
    }
    next.run(request).await
}

fn page(markup: Markup) -> Response {
    let mut r = (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        markup.into_string(),
    )
        .into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn forbidden(text: &str) -> Response {
    let mut r = page(pages::problem("Refused", text));
    *r.status_mut() = StatusCode::FORBIDDEN;
    r
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn set_cookie(r: &mut Response, name: &str, value: &str, max_age: Option<u64>, secure: bool) {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    if secure {
        c.push_str("; Secure");
    }
    if let Ok(v) = HeaderValue::from_str(&c) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
}

fn signed_in(web: &Web, headers: &HeaderMap) -> Option<Who> {
    web.service.session(cookie(headers, SESSION)?)
}

/// The signed-in person whose form carries their CSRF token; else why not (a 403).
fn checked(
    web: &Web,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<Who, &'static str> {
    let Some(who) = signed_in(web, headers) else {
        return Err("You are not signed in (or your session ended). Sign in again.");
    };
    let presented = form.get("csrf").map(String::as_str);
    if !crate::lifecycle::links::csrf_ok_text(&who.csrf, presented) {
        return Err("This form is missing its security token. Reload the page and try again.");
    }
    Ok(who)
}

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        pages::CSS,
    )
        .into_response()
}

async fn home(State(web): State<Web>, headers: HeaderMap) -> Response {
    match signed_in(&web, &headers) {
        Some(who) => account_page(&web, &who, None, None).await,
        None => page(sign_in_page(&web, None)),
    }
}

async fn account_page(
    web: &Web,
    who: &Who,
    notice: Option<&str>,
    problem: Option<pages::Problem<'_>>,
) -> Response {
    match web.service.account(who).await {
        Ok(a) => page(pages::account(&a, &who.csrf, notice, problem)),
        Err(e) => page(pages::problem("Something went wrong", &e)),
    }
}

fn lifetime_text(web: &Web) -> String {
    let mins = web.service.settings().link_lifetime.as_secs().div_ceil(60);
    format!("{mins} minutes")
}

/// The same answer, at once, for every address: the lookup and the mail happen after it.
async fn request_link(
    State(web): State<Web>,
    Extension(peer): Extension<Peer>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let who = form
        .get("who")
        .map(|w| w.trim().to_string())
        .unwrap_or_default();
    let nonce = crate::lifecycle::links::random_token();
    if !who.is_empty() && who.len() <= 256 && web.service.mail_configured() {
        web.service.request_link(who, nonce.clone(), peer.0.ip());
    }
    let mut r = page(pages::link_sent(&lifetime_text(&web)));
    let age = web.service.settings().link_lifetime.as_secs();
    set_cookie(&mut r, NONCE, &nonce, Some(age), web.secure);
    r
}

/// GET (and HEAD): what the link's state is; nothing changes.
async fn open_link(State(web): State<Web>, Path(token): Path<String>) -> Response {
    let opened = web.service.open_link(&token).await;
    let status = match opened {
        Opened::Usable => StatusCode::OK,
        Opened::Refused(_) => StatusCode::GONE,
    };
    let mut r = page(pages::link(&token_for_page(&token), &opened, false, false));
    *r.status_mut() = status;
    r
}

/// The token as put back into the form's action: only a well-formed token is echoed.
fn token_for_page(token: &str) -> String {
    if crate::lifecycle::links::is_token(token) {
        token.to_string()
    } else {
        String::new()
    }
}

async fn spend_link(
    State(web): State<Web>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    Path(token): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let nonce = cookie(&headers, NONCE);
    let code = form
        .get("code")
        .map(String::as_str)
        .filter(|c| !c.trim().is_empty());
    let spent = web
        .service
        .spend_link(&token, nonce, code, peer.0.ip())
        .await;
    let token = token_for_page(&token);
    match spent {
        Spent::SignedIn(session) => {
            let mut r = Redirect::to("/").into_response();
            *r.status_mut() = StatusCode::SEE_OTHER;
            set_cookie(&mut r, SESSION, &session, None, web.secure);
            set_cookie(&mut r, NONCE, "", Some(0), web.secure);
            r
        }
        Spent::NeedCode => page(pages::link(&token, &Opened::Usable, true, false)),
        Spent::WrongCode => {
            let mut r = page(pages::link(&token, &Opened::Usable, true, true));
            *r.status_mut() = StatusCode::FORBIDDEN;
            r
        }
        Spent::Refused(why) => {
            let mut r = page(pages::refused_link(why));
            *r.status_mut() = StatusCode::GONE;
            r
        }
    }
}

async fn new_pin(
    State(web): State<Web>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let who = match checked(&web, &headers, &form) {
        Ok(who) => who,
        Err(why) => return forbidden(why),
    };
    let mails = web.service.settings().new_pin.mails() && web.service.mail_configured();
    match web.service.generate(&who).await {
        Ok(pin) => page(pages::new_pin(pin.as_ref().map(Pin::expose), mails)),
        Err(e) => account_page(&web, &who, None, Some(pages::Problem::Pin(&e))).await,
    }
}

async fn change_pin(
    State(web): State<Web>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let who = match checked(&web, &headers, &form) {
        Ok(who) => who,
        Err(why) => return forbidden(why),
    };
    let new = form.get("new").cloned().unwrap_or_default();
    let repeat = form.get("repeat").cloned().unwrap_or_default();
    if new != repeat {
        return account_page(
            &web,
            &who,
            None,
            Some(pages::Problem::Pin(
                "The two PINs differ. Type the same PIN twice.",
            )),
        )
        .await;
    }
    match web.service.change(&who, Pin::new(new)).await {
        Ok(()) => account_page(&web, &who, Some("Your new PIN is set."), None).await,
        Err(e) => account_page(&web, &who, None, Some(pages::Problem::Pin(&e))).await,
    }
}

async fn sign_out(
    State(web): State<Web>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if let Err(why) = checked(&web, &headers, &form) {
        return forbidden(why);
    }
    if let Some(c) = cookie(&headers, SESSION) {
        web.service.sign_out(c);
    }
    let mut r = Redirect::to("/").into_response();
    *r.status_mut() = StatusCode::SEE_OTHER;
    set_cookie(&mut r, SESSION, "", Some(0), web.secure);
    r
}

/// GET (and HEAD) of a reveal link: its state; nothing changes.
async fn open_reveal(State(web): State<Web>, Path(token): Path<String>) -> Response {
    let opened = web.service.open_reveal(&token).await;
    let status = match opened {
        Opened::Usable => StatusCode::OK,
        Opened::Refused(_) => StatusCode::GONE,
    };
    let mut r = page(pages::reveal(&token_for_page(&token), &opened, false));
    *r.status_mut() = status;
    r
}

async fn reveal(
    State(web): State<Web>,
    Extension(peer): Extension<Peer>,
    Path(token): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let code = form
        .get("code")
        .map(String::as_str)
        .filter(|c| !c.trim().is_empty());
    let revealed = web.service.reveal(&token, code, peer.0.ip()).await;
    let token = token_for_page(&token);
    let (markup, status) = match revealed {
        Revealed::Pin(pin) => (pages::revealed(pin.expose()), StatusCode::OK),
        Revealed::NeedCode => (
            pages::reveal(&token, &Opened::Usable, false),
            StatusCode::OK,
        ),
        Revealed::WrongCode => (
            pages::reveal(&token, &Opened::Usable, true),
            StatusCode::FORBIDDEN,
        ),
        Revealed::Refused(why) => (pages::refused_link(why), StatusCode::GONE),
    };
    let mut r = page(markup);
    *r.status_mut() = status;
    r
}

/// A sponsor's guest form: invite, extend or end (the CLI's rules, audited as `web:<id>`).
async fn guests(
    State(web): State<Web>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let who = match checked(&web, &headers, &form) {
        Ok(who) => who,
        Err(why) => return forbidden(why),
    };
    let field = |k: &str| {
        form.get(k)
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    let asked = match form.get("action").map(String::as_str) {
        Some("invite") => service::GuestForm::Invite {
            id: field("id"),
            name: field("name"),
            email: field("email"),
            valid_for: field("valid_for"),
        },
        Some("extend") => service::GuestForm::Extend {
            id: field("id"),
            valid_for: field("valid_for"),
        },
        Some("end") => service::GuestForm::End { id: field("id") },
        _ => {
            return account_page(
                &web,
                &who,
                None,
                Some(pages::Problem::Guest("Choose what to do with the guest.")),
            )
            .await
        }
    };
    match web.service.guest(&who, asked).await {
        Ok(notice) => account_page(&web, &who, Some(&notice), None).await,
        Err(e) => account_page(&web, &who, None, Some(pages::Problem::Guest(&e))).await,
    }
}

fn sign_in_page(web: &Web, error: Option<&str>) -> Markup {
    let directory = web.service.settings().directory_password;
    pages::sign_in(web.service.mail_configured(), directory, error)
}

/// The directory password (`[web] sign_in = ["ldap"]`): an LDAP bind as the person.
async fn password_sign_in(
    State(web): State<Web>,
    Extension(peer): Extension<Peer>,
    Form(mut form): Form<HashMap<String, String>>,
) -> Response {
    if !web.service.settings().directory_password {
        return forbidden("Signing in with a directory password is not enabled here.");
    }
    let id = form
        .get("id")
        .map(|i| i.trim().to_string())
        .unwrap_or_default();
    let password = zeroize::Zeroizing::new(form.remove("password").unwrap_or_default());
    match web
        .service
        .password_sign_in(&id, password, peer.0.ip())
        .await
    {
        Spent::SignedIn(session) => {
            let mut r = Redirect::to("/").into_response();
            *r.status_mut() = StatusCode::SEE_OTHER;
            set_cookie(&mut r, SESSION, &session, None, web.secure);
            r
        }
        Spent::Refused(why) => {
            let mut r = page(sign_in_page(&web, Some(why)));
            *r.status_mut() = StatusCode::FORBIDDEN;
            r
        }
        Spent::NeedCode | Spent::WrongCode => forbidden("Sign-in refused."),
    }
}

#[cfg(test)]
mod origin_tests {
    use super::origin_of;

    #[test]
    fn origins_compare_by_scheme_host_and_port() {
        assert_eq!(
            origin_of("https://Pins.Example.org/"),
            "https://pins.example.org"
        );
        assert_eq!(
            origin_of("https://pins.example.org:443/a?b"),
            "https://pins.example.org"
        );
        assert_eq!(origin_of("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
        assert_ne!(
            origin_of("http://pins.example.org"),
            origin_of("https://pins.example.org")
        );
        assert_ne!(
            origin_of("https://pins.example.org:8443"),
            origin_of("https://pins.example.org")
        );
    }
}
