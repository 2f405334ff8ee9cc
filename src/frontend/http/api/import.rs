//! `POST /api/v1/import`: a CSV (or, with `Content-Type: text/tab-separated-values`, TSV)
//! upload, fed into the handler's import as the CLI feeds a file: the same lines
//! (`control::import_feed`), a first pass to check, and a second when the handler asks
//! (`send_again`) to apply. The body is held in memory (wiped when done), up to
//! `MAX_IMPORT_BODY`, this route's own body limit.

use super::types::{ErrorBody, ImportParams};
use super::{query, ApiResult, Caller, Shared, MAX_IMPORT_BODY};
use crate::frontend::control::import_feed::feed_rows;
use crate::frontend::control::proto::Request;
use crate::frontend::control::Input;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, Uri};
use bytes::Bytes;
use std::sync::Arc;
use tokio::sync::mpsc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use zeroize::Zeroizing;

pub(super) fn routes(router: OpenApiRouter<Shared>) -> OpenApiRouter<Shared> {
    let (schemas, paths, method) = routes!(import);
    router.routes((
        schemas,
        paths,
        method.layer(DefaultBodyLimit::max(MAX_IMPORT_BODY)),
    ))
}

/// Imports users from a CSV/TSV file (header row `id,name,email,groups,pin,cards`): every
/// row is checked first; a file with any problem applies nothing and every problem is
/// reported.
#[utoipa::path(post, path = "/api/v1/import", tag = "operations", params(ImportParams),
    request_body(content = String, content_type = "text/csv", description = "The file"),
    responses(
        (status = 200, description = "Rows, added, updated, PINs set", body = serde_json::Value),
        (status = 413, description = "Larger than 32 MiB"),
        (status = 422, description = "Problems: nothing was applied", body = ErrorBody),
    ))]
async fn import(
    State(api): State<Shared>,
    caller: Caller,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let p: ImportParams = query(&uri)?;
    let tsv = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/tab-separated-values"));
    let delimiter = if tsv { b'\t' } else { b',' };
    let file = Arc::new(Zeroizing::new(body.to_vec()));
    if let Ok(mut owned) = body.try_into_mut() {
        zeroize::Zeroize::zeroize(&mut owned[..]);
    }
    let (lines_tx, lines) = mpsc::channel(2);
    let (again, mut again_rx) = mpsc::unbounded_channel();
    let pass = move || {
        let (file, tx) = (Arc::clone(&file), lines_tx.clone());
        tokio::task::spawn_blocking(move || {
            let send = |line| tx.blocking_send(line).is_ok();
            feed_rows(Ok(std::io::Cursor::new(&file[..])), delimiter, &send);
        });
    };
    pass();
    let request = Request::Import {
        dry_run: p.dry_run,
        check_unique: p.check_unique,
    };
    let reply = api.call_with(&caller, request, Input::new(lines, again));
    tokio::pin!(reply);
    loop {
        tokio::select! {
            answer = &mut reply => return answer,
            Some(()) = again_rx.recv() => pass(),
        }
    }
}
