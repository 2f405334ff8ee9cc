//! The admin JSON API under `/api/v1`: a thin frontend over the control socket's `Handler`
//! (routes → control `Request`s → `Handler::handle` → JSON), so the API and the socket can
//! never differ in rules, auditing or durability. Bearer tokens (`auth.rs`) map to the
//! socket's roles; refusals map to status codes (`ErrorKind`); PINs travel only in request
//! bodies (a PIN-like query parameter is refused, errors never quote a body). The OpenAPI
//! document at `/api/v1/openapi.json` is built from the handlers' own path attributes
//! (utoipa), so it lists exactly the routes served. Never touches the store.

mod auth;
mod import;
mod ops;
mod types;
mod users;

pub use auth::{Holder, Tokens, MIN_TOKEN_CHARS};

use crate::frontend::control::access::Role;
use crate::frontend::control::proto::{ErrorKind, Request, Response};
use crate::frontend::control::{ClassifyName, Handler, Input, Principal, Session};
use crate::frontend::http::{Peer, TokenScope, MAX_BODY};
use crate::frontend::throttle::Throttle;
use axum::extract::{FromRequestParts, Request as HttpRequest, State};
use axum::http::{header, request::Parts, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response as HttpResponse};
use axum::Router;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

/// Where the API lives.
pub const BASE: &str = "/api/v1";
/// Largest import upload (the one route with its own body limit).
pub const MAX_IMPORT_BODY: usize = 32 << 20;
/// Handler calls running at once (the control socket serves at most 4 sessions too); more
/// are answered 503 with `Retry-After`.
pub const MAX_CALLS: usize = 4;

/// What every API handler shares.
pub struct Api {
    handler: Arc<dyn Handler>,
    tokens: Tokens,
    /// The OpenAPI document as served, set once the routes are built.
    document: OnceLock<String>,
    /// Handler calls run here; the listener's `stop` waits for them, so no write runs after
    /// the daemon's final flush.
    tasks: TaskTracker,
    /// Handler calls in progress, at most `MAX_CALLS`.
    calls: Arc<Semaphore>,
    /// One import at a time (its upload is held in memory).
    import: Arc<Semaphore>,
    /// Wrong tokens, recorded at most once a minute per address.
    refusals: Mutex<Throttle<IpAddr>>,
}

impl Api {
    fn new(handler: Arc<dyn Handler>, tokens: Tokens, tasks: TaskTracker) -> Self {
        Api {
            handler,
            tokens,
            document: OnceLock::new(),
            tasks,
            calls: Arc::new(Semaphore::new(MAX_CALLS)),
            import: Arc::new(Semaphore::new(1)),
            refusals: Mutex::new(Throttle::new(4096)),
        }
    }
}

type Shared = Arc<Api>;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "pinwarden admin API",
        description = "What the control socket does, over HTTP: users, PINs, guests, import, \
                       sync, status, lockouts, audit and mail. Bearer tokens from \
                       [[http.token]]; scope read or admin. PINs only in request bodies."
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "users", description = "Users and their PINs"),
        (name = "guests", description = "Sponsored guests"),
        (name = "operations", description = "Status, sync, import, lockouts, audit, mail"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The API's routes and its OpenAPI document, both from the same handler attributes.
fn parts(api: Shared) -> (Router, utoipa::openapi::OpenApi) {
    let router = OpenApiRouter::with_openapi(ApiDoc::openapi());
    let router = users::routes(router);
    let router = ops::routes(router);
    let router = import::routes(router);
    router
        .routes(utoipa_axum::routes!(openapi_json))
        .with_state(api)
        .split_for_parts()
}

/// The OpenAPI document without a server (unit tests).
#[cfg(test)]
fn document() -> utoipa::openapi::OpenApi {
    let handler: Arc<dyn Handler> = Arc::new(NoHandler);
    let tokens = Tokens::from_secrets(Vec::new()).expect("no tokens is valid");
    parts(Arc::new(Api::new(handler, tokens, TaskTracker::new()))).1
}

#[cfg(test)]
struct NoHandler;
#[cfg(test)]
impl Handler for NoHandler {
    fn handle(&self, _: Request, _: Session) -> crate::frontend::control::Reply<'_> {
        Box::pin(async { Response::error("no handler") })
    }
}

/// The `/api/v1` routes over `handler`, checked by `tokens`; handler calls run on `tasks`.
pub fn routes(handler: Arc<dyn Handler>, tokens: Tokens, tasks: TaskTracker) -> Router {
    let api = Arc::new(Api::new(handler, tokens, tasks));
    let (router, doc) = parts(Arc::clone(&api));
    let json = doc
        .to_pretty_json()
        .expect("the OpenAPI document serialises");
    let _ = api.document.set(json);
    router.layer(axum::middleware::from_fn(no_pin_in_url))
}

/// The OpenAPI 3.1 document of this API.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "operations",
    security(()),
    responses((status = 200, description = "This document", content_type = "application/json"))
)]
async fn openapi_json(State(api): State<Shared>) -> HttpResponse {
    let body = api.document.get().cloned().unwrap_or_default();
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Refuses a query that names a PIN (or another secret): URLs end up in logs and
/// histories, so a PIN travels only in a request body.
async fn no_pin_in_url(request: HttpRequest, next: Next) -> HttpResponse {
    let secretish = |k: &str| {
        let k = k.to_ascii_lowercase();
        ["pin", "code", "secret", "password", "token"]
            .iter()
            .any(|w| k.contains(w))
    };
    let query = request.uri().query().unwrap_or("");
    let named = query
        .split('&')
        .filter_map(|pair| pair.split('=').next())
        .any(|key| secretish(key) || secretish(&percent_decoded(key)));
    if named {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "PINs and other secrets go in the request body, never in the URL: nothing was done",
        )
        .into_response();
    }
    let mut response = json_refusal(next.run(request).await).await;
    // Answers may carry a generated PIN: no cache keeps them.
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}

/// A refusal made below the API's handlers (axum's body limit, 413; a body that could not
/// be read, 400) in the `{"error": …}` form the OpenAPI document describes.
async fn json_refusal(response: HttpResponse) -> HttpResponse {
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|t| t.as_bytes().starts_with(b"application/json"));
    let status = response.status();
    if json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
        format!(
            "the request body is too large: at most {} KiB ({} MiB for an import)",
            MAX_BODY >> 10,
            MAX_IMPORT_BODY >> 20
        )
    } else {
        let (_, body) = response.into_parts();
        let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
        match String::from_utf8_lossy(&text).trim() {
            "" => status.canonical_reason().unwrap_or("refused").to_string(),
            text => text.to_string(),
        }
    };
    ApiError::new(status, message).into_response()
}

fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap() * 16 + hex(l).unwrap()) as u8);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The caller, from its `Authorization: Bearer` header (the scheme in any case); no token
/// or a wrong one is 401, and a wrong one is recorded (`Handler::refused`, at most once a
/// minute per address, never the value presented).
pub struct Caller(Holder);

impl FromRequestParts<Shared> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Shared) -> Result<Self, ApiError> {
        let presented = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer);
        let Some(presented) = presented else {
            return Err(ApiError::unauthorized(
                "give a token: Authorization: Bearer <token> (see [[http.token]])",
            ));
        };
        match api.tokens.find(presented) {
            Some(holder) => Ok(Caller(holder)),
            None => {
                if let Some(Peer(peer)) = parts.extensions.get::<Peer>().copied() {
                    api.wrong_token(peer);
                }
                Err(ApiError::unauthorized("the token is not valid"))
            }
        }
    }
}

/// The token of an `Authorization: Bearer <token>` value; the scheme is case-insensitive.
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token)
}

/// A caller allowed to write, checked before any body is read: a read token is refused
/// (403, audited through the handler as every refusal) and a declared `Content-Length`
/// over `LIMIT` is 413, both without reading a byte of the body.
pub struct Writer<const LIMIT: usize = MAX_BODY>(Caller);

impl<const LIMIT: usize> std::ops::Deref for Writer<LIMIT> {
    type Target = Caller;
    fn deref(&self) -> &Caller {
        &self.0
    }
}

impl<const LIMIT: usize> FromRequestParts<Shared> for Writer<LIMIT> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Shared) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, api).await?;
        if caller.0.scope != TokenScope::Admin {
            // The handler refuses on the role alone and records the refusal as for any
            // request; this stand-in write is never run.
            let probe = Request::Sync {
                source: None,
                full: false,
                force: false,
            };
            debug_assert!(!crate::frontend::control::access::read_only(&probe));
            return match api.call(&caller, probe).await {
                Err(refused) => Err(refused),
                Ok(_) => Err(ApiError::new(StatusCode::FORBIDDEN, "refused")),
            };
        }
        let declared = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|n| n > LIMIT as u64) {
            return Err(ApiError::too_large(LIMIT));
        }
        Ok(Writer(caller))
    }
}

/// A refusal: a status code and a JSON body `{"error", "problems"}` that never quotes a
/// request body.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: serde_json::Value,
    /// Seconds for `Retry-After` (a busy server, an import in progress).
    retry_after: Option<u32>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            body: serde_json::json!({ "error": message.into() }),
            retry_after: None,
        }
    }

    fn retry_after(mut self, seconds: u32) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    fn too_large(limit: usize) -> Self {
        let size = if limit >= 1 << 20 {
            format!("{} MiB", limit >> 20)
        } else {
            format!("{} KiB", limit >> 10)
        };
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is too large: this route accepts at most {size}"),
        )
    }

    fn unauthorized(message: &str) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, message)
    }

    /// A body that did not parse: the category only (serde could quote a PIN).
    fn malformed(e: &serde_json::Error) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("malformed request body: {}", e.classify_name()),
        )
    }

    fn from_response(response: Response) -> Self {
        let status = match response.kind {
            Some(ErrorKind::Invalid) => StatusCode::BAD_REQUEST,
            Some(ErrorKind::Forbidden) => StatusCode::FORBIDDEN,
            Some(ErrorKind::NotFound) => StatusCode::NOT_FOUND,
            Some(ErrorKind::Conflict) => StatusCode::CONFLICT,
            Some(ErrorKind::Policy) => StatusCode::UNPROCESSABLE_ENTITY,
            Some(ErrorKind::Unavailable) | Some(ErrorKind::Busy) => StatusCode::SERVICE_UNAVAILABLE,
            Some(ErrorKind::NotDurable) | None => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let retry_after = match response.kind {
            Some(ErrorKind::Busy) => Some(1),
            Some(ErrorKind::Unavailable) => Some(10),
            _ => None,
        };
        let mut body = serde_json::json!({
            "error": response.error.unwrap_or_else(|| "refused".into()),
        });
        if !response.problems.is_empty() {
            body["problems"] = serde_json::json!(response.problems);
        }
        ApiError {
            status,
            body,
            retry_after,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> HttpResponse {
        let mut response = (self.status, axum::Json(self.body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(seconds));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"pinwarden\""),
            );
        }
        response
    }
}

pub type ApiResult = Result<axum::Json<serde_json::Value>, ApiError>;

impl Api {
    /// Records a wrong token from `peer` (never its value), at most once a minute per
    /// address with a count of those left out.
    fn wrong_token(&self, peer: std::net::SocketAddr) {
        let reason = "a wrong admin API token";
        let admitted = self
            .refusals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .admit(peer.ip().to_canonical(), reason);
        if let Some(reason) = admitted {
            tracing::warn!(%peer, reason, "refused an admin API request");
            self.handler.refused("http", peer, reason);
        }
    }

    /// Runs `request` through the handler as `caller` with no input lines.
    async fn call(&self, caller: &Caller, request: Request) -> ApiResult {
        let (_lines, rx) = mpsc::channel(1);
        let (again, _) = mpsc::unbounded_channel();
        self.call_with(caller, request, Input::new(rx, again)).await
    }

    /// Runs `request` with `input` as its lines, on its own task: when the client goes
    /// away (hyper drops this future) the handler is told through `gone` and stops between
    /// steps, as on the socket, instead of being dropped between a write and its flush.
    async fn call_with(&self, caller: &Caller, request: Request, input: Input) -> ApiResult {
        let Ok(permit) = Arc::clone(&self.calls).try_acquire_owned() else {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{MAX_CALLS} admin API requests are in progress: try again shortly"),
            )
            .retry_after(1));
        };
        let (progress, _ignored) = mpsc::unbounded_channel();
        let gone = CancellationToken::new();
        let _cancel_on_drop = gone.clone().drop_guard();
        let role = match caller.0.scope {
            TokenScope::Admin => Role::Admin,
            TokenScope::Read => Role::Read,
        };
        let session = Session {
            caller: Principal::Token(caller.0.name.clone()),
            role,
            progress,
            gone,
            input,
        };
        let handler = Arc::clone(&self.handler);
        let task = self.tasks.spawn(async move {
            let _permit = permit;
            handler.handle(request, session).await
        });
        let response = task.await.map_err(|e| {
            tracing::error!(error = %e, "an admin API request failed");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the request failed: see the log",
            )
        })?;
        if response.ok {
            Ok(axum::Json(response.data.unwrap_or(serde_json::Value::Null)))
        } else {
            Err(ApiError::from_response(response))
        }
    }
}

/// A JSON body parsed into `T` (unknown fields refused); the buffer is wiped afterwards
/// where it is ours alone (it may hold a PIN).
fn parse<T: serde::de::DeserializeOwned>(body: bytes::Bytes) -> Result<T, ApiError> {
    let parsed = serde_json::from_slice(&body).map_err(|e| ApiError::malformed(&e));
    if let Ok(mut owned) = body.try_into_mut() {
        zeroize::Zeroize::zeroize(&mut owned[..]);
    }
    parsed
}

/// An id taken from the path: never `.`/`..` or one with `/` (a URL-encoded slash), which
/// could only be an attempt to reach another path.
fn path_id(what: &str, id: &str) -> Result<(), ApiError> {
    if id == "." || id == ".." || id.contains('/') || id.contains(char::is_control) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "a {what} in the URL may not be `.` or `..` nor hold `/` or control characters"
            ),
        ));
    }
    Ok(())
}

/// A query string parsed into `T`, naming no value in its error.
fn query<T: serde::de::DeserializeOwned>(uri: &axum::http::Uri) -> Result<T, ApiError> {
    axum::extract::Query::<T>::try_from_uri(uri)
        .map(|q| q.0)
        .map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed query: unknown parameter or wrong value (see /api/v1/openapi.json)",
            )
        })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_document_names_every_route_once() {
        let doc = super::document();
        let paths: Vec<&String> = doc.paths.paths.keys().collect();
        assert!(paths.iter().all(|p| p.starts_with("/api/v1/")), "{paths:?}");
        assert!(doc.paths.paths.contains_key("/api/v1/users/{id}/pin"));
    }

    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tower::ServiceExt;

    /// A handler whose calls wait for the gate to open.
    struct Gated {
        gate: Arc<Semaphore>,
        started: Arc<AtomicUsize>,
    }

    impl Handler for Gated {
        fn handle(&self, _: Request, _: Session) -> crate::frontend::control::Reply<'_> {
            Box::pin(async move {
                self.started.fetch_add(1, Ordering::SeqCst);
                let _ = self.gate.acquire().await;
                Response::ok(serde_json::json!({}))
            })
        }
    }

    const TOKEN: &str = "admin-token-9f8e7d6c5b4a39281706";

    fn get(path: &str, authorization: &str) -> HttpRequest {
        axum::http::Request::builder()
            .uri(path)
            .header(header::AUTHORIZATION, authorization)
            .body(axum::body::Body::empty())
            .unwrap()
    }

    #[tokio::test]
    async fn handler_calls_are_capped_tracked_and_the_scheme_is_case_insensitive() {
        let gate = Arc::new(Semaphore::new(0));
        let started = Arc::new(AtomicUsize::new(0));
        let handler = Arc::new(Gated {
            gate: Arc::clone(&gate),
            started: Arc::clone(&started),
        });
        let secret = zeroize::Zeroizing::new(TOKEN.to_string());
        let tokens = Tokens::from_secrets(vec![("ops".into(), TokenScope::Admin, secret)]).unwrap();
        let tasks = TaskTracker::new();
        let app = routes(handler, tokens, tasks.clone());
        let mut waiting = Vec::new();
        for i in 0..MAX_CALLS {
            let scheme = if i % 2 == 0 { "Bearer" } else { "bEARER" };
            let request = get("/api/v1/status", &format!("{scheme} {TOKEN}"));
            waiting.push(tokio::spawn(app.clone().oneshot(request)));
        }
        while started.load(Ordering::SeqCst) < MAX_CALLS {
            tokio::task::yield_now().await;
        }
        let busy = app
            .clone()
            .oneshot(get("/api/v1/status", &format!("Bearer {TOKEN}")))
            .await
            .unwrap();
        assert_eq!(busy.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(busy.headers().contains_key(header::RETRY_AFTER));
        // The calls in hand are tracked: the listener's stop waits for them.
        tasks.close();
        let early = tokio::time::timeout(std::time::Duration::from_millis(50), tasks.wait());
        assert!(
            early.await.is_err(),
            "the tracker waits for the calls in hand"
        );
        gate.add_permits(MAX_CALLS);
        for w in waiting {
            assert_eq!(w.await.unwrap().unwrap().status(), StatusCode::OK);
        }
        tasks.wait().await;
    }

    #[tokio::test]
    async fn refusals_below_the_handlers_have_the_json_error_body() {
        let handler = Arc::new(Gated {
            gate: Arc::new(Semaphore::new(8)),
            started: Arc::new(AtomicUsize::new(0)),
        });
        let secret = zeroize::Zeroizing::new(TOKEN.to_string());
        let tokens = Tokens::from_secrets(vec![("ops".into(), TokenScope::Admin, secret)]).unwrap();
        let app = crate::frontend::http::app(routes(handler, tokens, TaskTracker::new()), false);
        // No Content-Length to refuse up front: axum's body limit answers, in our form.
        let big = axum::http::Request::builder()
            .method("PUT")
            .uri("/api/v1/users/huge")
            .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
            .body(axum::body::Body::from(vec![b' '; MAX_BODY + 1]))
            .unwrap();
        let wrong_method = axum::http::Request::builder()
            .method("PATCH")
            .uri("/api/v1/status")
            .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
            .body(axum::body::Body::empty())
            .unwrap();
        for (request, status) in [
            (big, StatusCode::PAYLOAD_TOO_LARGE),
            (wrong_method, StatusCode::METHOD_NOT_ALLOWED),
        ] {
            let response = app.clone().oneshot(request).await.unwrap();
            assert_eq!(response.status(), status);
            let body = axum::body::to_bytes(response.into_body(), 4096)
                .await
                .unwrap();
            let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert!(
                json["error"].as_str().is_some_and(|e| !e.is_empty()),
                "{json}"
            );
        }
    }

    #[test]
    fn busy_is_503_with_retry_after_and_a_change_not_flushed_is_500() {
        let busy = ApiError::from_response(Response::refused(ErrorKind::Busy, "busy"));
        assert_eq!(
            (busy.status, busy.retry_after),
            (StatusCode::SERVICE_UNAVAILABLE, Some(1))
        );
        let lost = ApiError::from_response(Response::refused(ErrorKind::NotDurable, "x"));
        assert_eq!(
            (lost.status, lost.retry_after),
            (StatusCode::INTERNAL_SERVER_ERROR, None)
        );
        assert_eq!(super::bearer("bearer abc"), Some("abc"));
        assert_eq!(super::bearer("Basic abc"), None);
    }

    #[test]
    fn query_keys_are_decoded_before_the_pin_check() {
        assert_eq!(super::percent_decoded("p%69n"), "pin");
        assert_eq!(super::percent_decoded("a+b%2"), "a b%2");
    }
}
