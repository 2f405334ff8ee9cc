//! The HTTP listener (`[http]`, off unless configured): plain HTTP/1.1 or TLS from PEM
//! files, served by axum on the daemon's runtime as a supervised worker. The daemon builds
//! the routes from the parts it has (`health`, and the page, API and metrics when
//! configured); `app` wraps them in what every response gets: a body limit (413), security
//! headers, and an access log line that names the route, never the path or query (a link's
//! token is in its path). Like every frontend, it never touches the store.

pub mod api;
pub mod health;
pub mod metrics;
pub mod settings;
pub mod stall;
mod tls;
pub mod web;

pub use settings::{ApiToken, HttpSettings, TlsFiles, TokenScope};

use crate::frontend::tcp::pace::SourceSlots;
use crate::frontend::throttle::Throttle;
use crate::worker::{Context, Next, Settings, Worker};
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{header, HeaderValue};
use axum::middleware::Next as MiddlewareNext;
use axum::response::Response;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

pub const ACCEPT_RETRY: Settings =
    Settings::new(Duration::from_millis(100), Duration::from_secs(5));
/// Largest request body accepted unless a route says otherwise (an import upload does).
pub const MAX_BODY: usize = 64 * 1024;
/// A client must send its request head within this; a TLS handshake must finish within it.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// A bound listener, with its TLS acceptor when configured: bound at start so a port in
/// use or an unreadable certificate fails the start.
pub struct Bound {
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    pub addr: SocketAddr,
}

pub async fn bind(settings: &HttpSettings) -> anyhow::Result<Bound> {
    let tls = settings
        .tls
        .as_ref()
        .map(tls::acceptor)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let listener = TcpListener::bind(settings.listen).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot listen on {} (http.listen): {e}: is the port in use or privileged?",
            settings.listen
        )
    })?;
    let addr = listener.local_addr()?;
    Ok(Bound {
        listener,
        tls,
        addr,
    })
}

/// The routes with what every response gets (body limit, headers, access log).
pub fn app(routes: Router, tls: bool) -> Router {
    routes
        .fallback(|| async { (axum::http::StatusCode::NOT_FOUND, "not found\n") })
        .layer(axum::middleware::from_fn(move |req, next| {
            headers_and_log(req, next, tls)
        }))
        .layer(DefaultBodyLimit::max(MAX_BODY))
}

async fn headers_and_log(mut request: Request, next: MiddlewareNext, tls: bool) -> Response {
    let started = Instant::now();
    // The body must arrive by its deadline (a route may move it: the import upload).
    let clock = stall::BodyClock::new(tokio::time::Instant::now() + stall::BODY_DEADLINE);
    request.extensions_mut().insert(clock.clone());
    let request = request.map(|body| stall::DeadlineBody::wrap(body, clock));
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "(no route)".into());
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        // A sign-in link's token is in its path: never hand it to another site. Within
        // the site browsers then send a real `Origin` on POSTs (`no-referrer` made it
        // `null`), which the page checks.
        (header::REFERRER_POLICY, "same-origin"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
    ] {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    }
    if tls {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    tracing::debug!(
        target: "pinwarden::http",
        %method,
        route,
        status = response.status().as_u16(),
        ms = started.elapsed().as_secs_f64() * 1000.0,
        "http request"
    );
    response
}

/// The listener as a supervised worker: waiting for a connection is its idle wait, serving
/// one is spawned; at most `max_connections` at once and `max_per_source` from one address
/// (more are answered 503 and closed at accept); a client that accepts none of our bytes
/// for `stall::WRITE_STALL` is dropped. At shutdown open connections finish the request in
/// hand and close, and `stop` waits for them and for the handler calls in `tasks`.
pub struct Server {
    bound: Bound,
    app: Router,
    connections: TaskTracker,
    /// Work the routes spawn (admin API handler calls), waited for at `stop`.
    tasks: TaskTracker,
    places: Arc<tokio::sync::Semaphore>,
    sources: SourceSlots,
    refusals: Throttle<IpAddr>,
    accepted: Option<std::io::Result<(TcpStream, SocketAddr)>>,
}

impl Server {
    pub fn new(bound: Bound, app: Router, settings: &HttpSettings, tasks: TaskTracker) -> Self {
        Server {
            bound,
            app,
            connections: TaskTracker::new(),
            tasks,
            places: Arc::new(tokio::sync::Semaphore::new(settings.max_connections)),
            sources: SourceSlots::new(settings.max_per_source),
            refusals: Throttle::new(4096),
            accepted: None,
        }
    }

    /// Answers a connection over its address's limit with a 503 and closes it; logged at
    /// most once a minute per address, with a count of the rest.
    fn refuse(&mut self, stream: TcpStream, peer: SocketAddr) {
        if self.bound.tls.is_none() {
            let _ = stream.try_write(
                b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\n\
                  Content-Type: text/plain\r\nContent-Length: 30\r\nConnection: close\r\n\r\n\
                  too many connections from you\n",
            );
        }
        let reason = "per-source connection limit reached (http max_per_source)";
        if let Some(reason) = self.refusals.admit(peer.ip(), reason) {
            tracing::info!(%peer, reason, "refused an HTTP connection");
        }
    }

    pub fn name(&self) -> String {
        format!("http listener {}", self.bound.addr)
    }
}

impl Worker for Server {
    async fn work(&mut self, cx: &Context) -> Result<Next, String> {
        match self.accepted.take() {
            Some(Ok((stream, peer))) => {
                let Some(source) = self.sources.take(peer.ip().to_canonical()) else {
                    self.refuse(stream, peer);
                    return Ok(Next::Idle);
                };
                let Ok(place) = Arc::clone(&self.places).acquire_owned().await else {
                    return Ok(Next::Done);
                };
                let app = self.app.clone();
                let tls = self.bound.tls.clone();
                let shutdown = cx.shutdown().clone();
                self.connections.spawn(async move {
                    let _place = (place, source);
                    let _ = stream.set_nodelay(true);
                    let stream = stall::WriteStall::new(stream, stall::WRITE_STALL);
                    match tls {
                        None => serve(stream, app, peer, shutdown).await,
                        Some(acceptor) => {
                            let handshake =
                                tokio::time::timeout(HEAD_TIMEOUT, acceptor.accept(stream)).await;
                            match handshake {
                                Ok(Ok(stream)) => serve(stream, app, peer, shutdown).await,
                                Ok(Err(e)) => {
                                    tracing::debug!(%peer, error = %e, "TLS handshake failed")
                                }
                                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                            }
                        }
                    }
                });
            }
            Some(Err(e)) => return Err(format!("accept failed: {e}")),
            None => {}
        }
        Ok(Next::Idle)
    }

    async fn wait_for_work(&mut self) {
        self.accepted = Some(self.bound.listener.accept().await);
    }

    async fn stop(&mut self) {
        self.connections.close();
        self.connections.wait().await;
        // No admin API call may still be writing once the daemon makes its last flush.
        self.tasks.close();
        self.tasks.wait().await;
    }
}

/// The client's address, for handlers that budget by source.
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub SocketAddr);

/// Serves one connection (a request head within `HEAD_TIMEOUT`, also between keep-alive
/// requests); at shutdown the request in hand finishes and the connection closes.
async fn serve<IO>(io: IO, app: Router, peer: SocketAddr, shutdown: CancellationToken)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut request: hyper::Request<_>| {
        request.extensions_mut().insert(Peer(peer));
        app.clone().oneshot(request.map(axum::body::Body::new))
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .keep_alive(true);
    let connection = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => {}
        _ = shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}
