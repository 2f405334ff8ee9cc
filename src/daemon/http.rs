//! The HTTP listener's routes, built from what the daemon has: readiness from the store and
//! the supervisor; the admin API over the control socket's handler (with `[[http.token]]`);
//! the self-service page and metrics join here.

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

pub fn spawn(
    bound: http::Bound,
    settings: &HttpSettings,
    store: &Arc<dyn Store>,
    supervisor: &Supervisor,
    admin: (Arc<dyn Handler>, http::api::Tokens),
) {
    let readiness = Arc::new(Readiness {
        store: Arc::clone(store),
        supervisor: supervisor.clone(),
    });
    let mut routes = http::health::routes(readiness);
    // The admin API over the control socket's handler, only with a token to use it; its
    // handler calls run on `tasks`, which the listener's stop waits for.
    let (handler, tokens) = admin;
    let tasks = tokio_util::task::TaskTracker::new();
    if !tokens.is_empty() {
        routes = routes.merge(http::api::routes(handler, tokens, tasks.clone()));
    }
    let app = http::app(routes, settings.tls.is_some());
    let server = http::Server::new(bound, app, settings, tasks);
    supervisor.spawn(server.name(), http::ACCEPT_RETRY, server);
}
