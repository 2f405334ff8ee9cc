//! `/api/v1` operations and guests: status, sync now, lockouts, audit queries, the mail
//! outbox and previews, and sponsored guests; each one control request.

use super::types::{
    AuditParams, ErrorBody, GuestBody, GuestExtendBody, PreviewParams, SponsorQuery, SyncBody,
};
use super::{parse, path_id, query, ApiError, ApiResult, Caller, Shared, Writer};
use crate::domain::{AuditQuery, Timestamp};
use crate::frontend::control::proto::Request;
use crate::lifecycle::users::NewGuest;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use bytes::Bytes;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Audit events returned when `limit` is not given.
const AUDIT_DEFAULT_LIMIT: usize = 100;

pub(super) fn routes(router: OpenApiRouter<Shared>) -> OpenApiRouter<Shared> {
    router
        .routes(routes!(status))
        .routes(routes!(sync))
        .routes(routes!(lockouts))
        .routes(routes!(lockout_clear))
        .routes(routes!(audit))
        .routes(routes!(mail))
        .routes(routes!(mail_preview))
        .routes(routes!(guests, guest_add))
        .routes(routes!(guest_end))
        .routes(routes!(guest_extend))
}

/// What `pinwarden status` shows.
#[utoipa::path(get, path = "/api/v1/status", tag = "operations", responses(
    (status = 200, description = "The daemon's status", body = serde_json::Value),
    (status = 401, description = "No or wrong token", body = ErrorBody),
))]
async fn status(State(api): State<Shared>, caller: Caller) -> ApiResult {
    api.call(&caller, Request::Status).await
}

/// Runs directory sync now and answers with each source's summary.
#[utoipa::path(post, path = "/api/v1/sync", tag = "operations",
    request_body(content = Option<SyncBody>, description = "Optional; every source by default"),
    responses(
        (status = 200, description = "Each source's summary or error", body = serde_json::Value),
        (status = 400, description = "No such source", body = ErrorBody),
    ))]
async fn sync(State(api): State<Shared>, caller: Writer, body: Bytes) -> ApiResult {
    let b: SyncBody = if body.is_empty() {
        SyncBody::default()
    } else {
        parse(body)?
    };
    let request = Request::Sync {
        source: b.source,
        full: b.full,
        force: b.force,
    };
    api.call(&caller, request).await
}

/// Every lockout counter (device, source, user).
#[utoipa::path(get, path = "/api/v1/lockouts", tag = "operations",
    responses((status = 200, description = "The counters", body = serde_json::Value)))]
async fn lockouts(State(api): State<Shared>, caller: Caller) -> ApiResult {
    api.call(&caller, Request::LockoutList).await
}

/// Clears one lockout counter (`device:ID`, `source:ADDRESS`, `user:ID`); audited.
#[utoipa::path(delete, path = "/api/v1/lockouts/{key}", tag = "operations",
    params(("key" = String, Path, description = "The counter's key as listed")),
    responses(
        (status = 200, description = "Cleared", body = serde_json::Value),
        (status = 400, description = "Not a key, or no such counter", body = ErrorBody),
    ))]
async fn lockout_clear(
    State(api): State<Shared>,
    caller: Writer,
    Path(key): Path<String>,
) -> ApiResult {
    path_id("lockout key", &key)?;
    api.call(&caller, Request::LockoutClear { key }).await
}

/// Audit events, newest first, filtered by user, device, kind and time.
#[utoipa::path(get, path = "/api/v1/audit", tag = "operations", params(AuditParams),
    responses(
        (status = 200, description = "The events", body = serde_json::Value),
        (status = 400, description = "A malformed parameter", body = ErrorBody),
    ))]
async fn audit(State(api): State<Shared>, caller: Caller, uri: Uri) -> ApiResult {
    let p: AuditParams = query(&uri)?;
    let when = |name: &str, text: Option<String>| {
        text.map(|t| {
            Timestamp::parse(&t).ok_or_else(|| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("{name}: use 2026-12-31 or 2026-12-31T08:00:00Z"),
                )
            })
        })
        .transpose()
    };
    if p.limit == Some(0) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "limit: give 1 or more (100 by default)",
        ));
    }
    let query = AuditQuery {
        since: when("since", p.since)?,
        until: when("until", p.until)?,
        user: p.user,
        device: p.device,
        kind: p.kind,
        limit: p.limit.unwrap_or(AUDIT_DEFAULT_LIMIT),
    };
    api.call(&caller, Request::AuditQuery { query }).await
}

/// Every queued mail's state (never its body).
#[utoipa::path(get, path = "/api/v1/mail", tag = "operations",
    responses((status = 200, description = "The outbox", body = serde_json::Value)))]
async fn mail(State(api): State<Shared>, caller: Caller) -> ApiResult {
    api.call(&caller, Request::MailList).await
}

/// A template rendered for a user with a placeholder PIN.
#[utoipa::path(get, path = "/api/v1/mail/preview", tag = "operations", params(PreviewParams),
    responses((status = 200, description = "Subject, text and HTML", body = serde_json::Value)))]
async fn mail_preview(State(api): State<Shared>, caller: Caller, uri: Uri) -> ApiResult {
    let p: PreviewParams = query(&uri)?;
    let request = Request::MailPreview {
        template: p.template,
        user: p.user,
    };
    api.call(&caller, request).await
}

/// Guests, every one or one sponsor's.
#[utoipa::path(get, path = "/api/v1/guests", tag = "guests", params(SponsorQuery),
    responses((status = 200, description = "The guests", body = serde_json::Value)))]
async fn guests(State(api): State<Shared>, caller: Caller, uri: Uri) -> ApiResult {
    let p: SponsorQuery = query(&uri)?;
    api.call(&caller, Request::GuestList { sponsor: p.sponsor })
        .await
}

/// Creates a guest of a sponsor (the PIN is mailed, or in the answer once without mail).
#[utoipa::path(post, path = "/api/v1/guests", tag = "guests", request_body = GuestBody,
    responses(
        (status = 201, description = "Created", body = serde_json::Value),
        (status = 409, description = "The id exists", body = ErrorBody),
    ))]
async fn guest_add(
    State(api): State<Shared>,
    caller: Writer,
    body: Bytes,
) -> Result<(StatusCode, axum::Json<serde_json::Value>), ApiError> {
    let b: GuestBody = parse(body)?;
    let guest = NewGuest {
        id: b.id,
        name: b.name,
        email: b.email,
        groups: b.groups,
        valid_for: b.valid_for,
    };
    let request = Request::GuestAdd {
        sponsor: b.sponsor,
        guest,
    };
    Ok((StatusCode::CREATED, api.call(&caller, request).await?))
}

/// Ends a guest now.
#[utoipa::path(delete, path = "/api/v1/guests/{id}", tag = "guests",
    params(("id" = String, Path, description = "Guest id"), SponsorQuery),
    responses((status = 200, description = "Ended", body = serde_json::Value)))]
async fn guest_end(
    State(api): State<Shared>,
    caller: Writer,
    Path(id): Path<String>,
    uri: Uri,
) -> ApiResult {
    path_id("guest id", &id)?;
    let p: SponsorQuery = query(&uri)?;
    let request = Request::GuestEnd {
        id,
        sponsor: p.sponsor,
    };
    api.call(&caller, request).await
}

/// Moves a guest's end to `valid_for` from now.
#[utoipa::path(post, path = "/api/v1/guests/{id}/extend", tag = "guests",
    params(("id" = String, Path, description = "Guest id")),
    request_body = GuestExtendBody,
    responses((status = 200, description = "Extended", body = serde_json::Value)))]
async fn guest_extend(
    State(api): State<Shared>,
    caller: Writer,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    path_id("guest id", &id)?;
    let b: GuestExtendBody = parse(body)?;
    let request = Request::GuestExtend {
        id,
        sponsor: b.sponsor,
        valid_for: b.valid_for,
    };
    api.call(&caller, request).await
}
