//! `/healthz` (the process answers) and `/readyz` (it can do its work: the store writes and
//! every listener runs — what the daemon supplies as `Health`).

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use std::sync::Arc;

/// What keeps the daemon from being ready; supplied by the daemon.
pub trait Health: Send + Sync + 'static {
    /// Empty when ready; otherwise one line per reason.
    fn not_ready(&self) -> Vec<String>;
}

pub fn routes(health: Arc<dyn Health>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(move || {
                let why = health.not_ready();
                async move {
                    if why.is_empty() {
                        (StatusCode::OK, "ready\n".to_string())
                    } else {
                        let mut text = String::from("not ready\n");
                        for reason in why {
                            text.push_str(&reason);
                            text.push('\n');
                        }
                        (StatusCode::SERVICE_UNAVAILABLE, text)
                    }
                }
            }),
        )
}
