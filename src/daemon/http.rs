//! The HTTP listener's routes, built from what the daemon has: readiness from the store and
//! the supervisor; the admin API over the control socket's handler (with `[[http.token]]`);
//! `/metrics` from the registry `metrics.rs` fills (unless `[http] metrics = false`); the
//! self-service page (`web.rs`) with `[web]`.

use crate::frontend::control::Handler;
use crate::frontend::http::{self, health::Health, HttpSettings};
use crate::store::Store;
use crate::worker::Supervisor;
use std::sync::Arc;

/// `/readyz`: the store writes and every listener runs (what the watchdog also requires).
struct Readiness {
    store: Arc<dyn Store>,
    supervisor: Supervisor,
}

impl Health for Readiness {
    fn not_ready(&self) -> Vec<String> {
        super::workers::not_ready(self.store.as_ref(), &self.supervisor)
    }
}

/// The admin API's tokens, read from their files (refused when others may read one).
pub fn api_tokens(settings: &HttpSettings) -> anyhow::Result<http::api::Tokens> {
    http::api::Tokens::load(&settings.tokens).map_err(anyhow::Error::msg)
}

/// What the routes are built from beyond readiness: the admin handler (API and metrics),
/// the API's tokens and the self-service page.
pub type Parts<'a> = (
    &'a Arc<super::admin::Admin>,
    http::api::Tokens,
    Option<Arc<dyn http::web::WebService>>,
);

pub fn spawn(
    bound: http::Bound,
    settings: &HttpSettings,
    store: &Arc<dyn Store>,
    supervisor: &Supervisor,
    (admin, tokens, web): Parts<'_>,
) {
    let readiness = Arc::new(Readiness {
        store: Arc::clone(store),
        supervisor: supervisor.clone(),
    });
    let mut routes = http::health::routes(readiness);
    // The admin API over the control socket's handler, only with a token to use it; its
    // handler calls run on `tasks`, which the listener's stop waits for.
    let tasks = tokio_util::task::TaskTracker::new();
    if !tokens.is_empty() {
        let handler: Arc<dyn Handler> = admin.clone();
        routes = routes.merge(http::api::routes(handler, tokens, tasks.clone()));
    }
    if settings.metrics {
        let registry = Arc::new(super::metrics::registry(admin));
        routes = routes.merge(http::metrics::routes(registry));
    }
    if let Some(web) = web {
        routes = routes.merge(http::web::routes(
            web,
            settings.browser_sees_https(),
            settings.public_url.as_deref(),
        ));
    }
    let app = http::app(routes, settings.tls.is_some());
    let server = http::Server::new(bound, app, settings, tasks);
    supervisor.spawn(server.name(), http::ACCEPT_RETRY, server);
}
