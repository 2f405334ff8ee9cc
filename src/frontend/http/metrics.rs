//! `/metrics`: renders the registry the daemon filled in the Prometheus text format
//! (version 0.0.4), off the async threads (a scrape reads a few status cells and counters,
//! never a user). Owns no metric and reads no store: the values come from the collectors
//! the daemon registered.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus_client::encoding::prometheus_text;
use prometheus_client::registry::Registry;
use std::sync::Arc;

pub fn routes(registry: Arc<Registry>) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let registry = Arc::clone(&registry);
            async move {
                match tokio::task::spawn_blocking(move || render(&registry)).await {
                    Ok(Ok(text)) => (
                        [(header::CONTENT_TYPE, prometheus_text::CONTENT_TYPE)],
                        text,
                    )
                        .into_response(),
                    _ => failed(),
                }
            }
        }),
    )
}

/// The registry in the Prometheus text format.
pub fn render(registry: &Registry) -> Result<String, std::fmt::Error> {
    let mut text = String::with_capacity(8 * 1024);
    prometheus_text::encode(&mut text, registry)?;
    Ok(text)
}

fn failed() -> Response {
    tracing::error!("could not render /metrics");
    (StatusCode::INTERNAL_SERVER_ERROR, "cannot render metrics\n").into_response()
}
