//! The HTTP listener's routes, built from what the daemon has: readiness from the store and
//! the supervisor; the self-service page, admin API and metrics join here.

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

pub fn spawn(
    bound: http::Bound,
    settings: &HttpSettings,
    store: &Arc<dyn Store>,
    supervisor: &Supervisor,
    web: Option<Arc<dyn http::web::WebService>>,
) {
    let readiness = Arc::new(Readiness {
        store: Arc::clone(store),
        supervisor: supervisor.clone(),
    });
    let mut routes = http::health::routes(readiness);
    if let Some(web) = web {
        routes = routes.merge(http::web::routes(web, settings.tls.is_some()));
    }
    let app = http::app(routes, settings.tls.is_some());
    let server = http::Server::new(bound, app, settings);
    supervisor.spawn(server.name(), http::ACCEPT_RETRY, server);
}
