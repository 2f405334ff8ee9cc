//! `POST /api/v1/import`: a CSV (or, with `Content-Type: text/tab-separated-values`, TSV)
//! upload, fed into the handler's import as the CLI feeds a file: the same lines
//! (`control::import_feed`), a first pass to check, and a second when the handler asks
//! (`send_again`) to apply. Before a byte of the body is read the caller must hold an admin
//! token, a declared length must be within `MAX_IMPORT_BODY` and no other import may be in
//! progress (409 with `Retry-After`); the body is then read once into a buffer wiped when
//! done, by `IMPORT_BODY_DEADLINE`.

use super::types::{ErrorBody, ImportParams};
use super::{query, ApiError, ApiResult, Shared, Writer, MAX_IMPORT_BODY};
use crate::frontend::control::import_feed::feed_rows;
use crate::frontend::control::proto::Request;
use crate::frontend::control::Input;
use crate::frontend::http::stall::BodyClock;
use axum::body::{Body, HttpBody};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use zeroize::Zeroizing;

/// How long an import upload may take to arrive (32 MiB at ~110 KiB/s).
pub const IMPORT_BODY_DEADLINE: Duration = Duration::from_secs(300);

pub(super) fn routes(router: OpenApiRouter<Shared>) -> OpenApiRouter<Shared> {
    router.routes(routes!(import))
}

/// Imports users from a CSV/TSV file (header row `id,name,email,groups,pin,cards`): every
/// row is checked first; a file with any problem applies nothing and every problem is
/// reported.
#[utoipa::path(post, path = "/api/v1/import", tag = "operations", params(ImportParams),
    request_body(content = String, content_type = "text/csv", description = "The file"),
    responses(
        (status = 200, description = "Rows, added, updated, PINs set", body = serde_json::Value),
        (status = 403, description = "A read token (nothing is read)", body = ErrorBody),
        (status = 409, description = "Another import is in progress (Retry-After)", body = ErrorBody),
        (status = 413, description = "Larger than 32 MiB", body = ErrorBody),
        (status = 422, description = "Problems: nothing was applied", body = ErrorBody),
    ))]
async fn import(
    State(api): State<Shared>,
    caller: Writer<MAX_IMPORT_BODY>,
    uri: Uri,
    headers: HeaderMap,
    clock: Option<axum::Extension<BodyClock>>,
    body: Body,
) -> ApiResult {
    let p: ImportParams = query(&uri)?;
    let Ok(_one_import) = Arc::clone(&api.import).try_acquire_owned() else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "another import is in progress: try again when it is done",
        )
        .retry_after(10));
    };
    if let Some(axum::Extension(clock)) = clock {
        clock.extend(IMPORT_BODY_DEADLINE);
    }
    let tsv = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/tab-separated-values"));
    let delimiter = if tsv { b'\t' } else { b',' };
    let file = Arc::new(read_body(body, MAX_IMPORT_BODY).await?);
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

/// The body, at most `limit` bytes, in one buffer that is wiped when dropped (it may hold
/// PINs); a buffer outgrown is wiped before it is freed.
async fn read_body(mut body: Body, limit: usize) -> Result<Zeroizing<Vec<u8>>, ApiError> {
    let hinted = body.size_hint().upper().unwrap_or(0).min(limit as u64) as usize;
    let mut out = Zeroizing::new(Vec::with_capacity(hinted));
    while let Some(frame) =
        std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await
    {
        let frame = frame.map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("the upload could not be read: {e}"),
            )
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if out.len() + data.len() > limit {
            return Err(ApiError::too_large(limit));
        }
        if out.capacity() - out.len() < data.len() {
            let wanted = (out.len() + data.len()).max(out.capacity() * 2).min(limit);
            let mut grown = Zeroizing::new(Vec::with_capacity(wanted));
            grown.extend_from_slice(&out);
            out = grown;
        }
        out.extend_from_slice(&data);
    }
    Ok(out)
}
