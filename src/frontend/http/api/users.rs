//! `/api/v1/users…`: list, show, create, remove, PIN (given or generated), duress PIN,
//! enable/disable and PIN validity, each one control request.

use super::types::{DuressBody, ErrorBody, NewUserBody, PinBody, ValidityBody};
use super::{parse, path_id, ApiError, ApiResult, Caller, Shared, Writer};
use crate::frontend::control::proto::Request;
use crate::lifecycle::users::NewUser;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use bytes::Bytes;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes(router: OpenApiRouter<Shared>) -> OpenApiRouter<Shared> {
    router
        .routes(routes!(list))
        .routes(routes!(show, create, remove))
        .routes(routes!(set_pin))
        .routes(routes!(set_duress, clear_duress))
        .routes(routes!(enable))
        .routes(routes!(disable))
        .routes(routes!(set_validity))
}

/// Every user (no PIN, no tag).
#[utoipa::path(get, path = "/api/v1/users", tag = "users", responses(
    (status = 200, description = "Every user", body = serde_json::Value),
    (status = 401, description = "No or wrong token", body = ErrorBody),
))]
async fn list(State(api): State<Shared>, caller: Caller) -> ApiResult {
    api.call(&caller, Request::UserList).await
}

/// One user.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users",
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 200, description = "The user", body = serde_json::Value),
        (status = 404, description = "No such user", body = ErrorBody),
    ))]
async fn show(State(api): State<Shared>, caller: Caller, Path(id): Path<String>) -> ApiResult {
    path_id("user id", &id)?;
    api.call(&caller, Request::UserShow { id }).await
}

/// Creates a local user, with a PIN given or generated (returned once) or none.
#[utoipa::path(put, path = "/api/v1/users/{id}", tag = "users",
    params(("id" = String, Path, description = "User id")),
    request_body = NewUserBody,
    responses(
        (status = 201, description = "Created; `generated_pin` once when generated", body = serde_json::Value),
        (status = 400, description = "Malformed or invalid", body = ErrorBody),
        (status = 403, description = "A read token", body = ErrorBody),
        (status = 409, description = "The user exists, or the PIN is taken", body = ErrorBody),
        (status = 422, description = "The PIN policy refused the PIN", body = ErrorBody),
        (status = 503, description = "The store cannot be written now", body = ErrorBody),
    ))]
async fn create(
    State(api): State<Shared>,
    caller: Writer,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, axum::Json<serde_json::Value>), ApiError> {
    path_id("user id", &id)?;
    let b: NewUserBody = parse(body)?;
    let user = NewUser {
        id,
        name: b.name,
        email: b.email,
        groups: b.groups,
        cards: b.cards,
        valid_from: b.valid_from,
        valid_until: b.valid_until,
    };
    let request = Request::UserAdd {
        user,
        pin: b.pin,
        generate: b.generate,
        expires: b.expires,
        uses: b.uses,
        windows: b.windows,
    };
    let created = api.call(&caller, request).await?;
    Ok((StatusCode::CREATED, created))
}

/// Removes a user.
#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "users",
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 200, description = "Removed", body = serde_json::Value),
        (status = 404, description = "No such user", body = ErrorBody),
    ))]
async fn remove(State(api): State<Shared>, caller: Writer, Path(id): Path<String>) -> ApiResult {
    path_id("user id", &id)?;
    api.call(&caller, Request::UserRemove { id }).await
}

/// Sets a user's PIN: `{"pin": "…"}` or `{"generate": true}` (the PIN is in the answer,
/// once).
#[utoipa::path(post, path = "/api/v1/users/{id}/pin", tag = "users",
    params(("id" = String, Path, description = "User id")),
    request_body = PinBody,
    responses(
        (status = 200, description = "Set; `generated_pin` once when generated", body = serde_json::Value),
        (status = 400, description = "Neither or both of pin and generate", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 409, description = "The PIN is taken", body = ErrorBody),
        (status = 422, description = "The PIN policy refused the PIN", body = ErrorBody),
    ))]
async fn set_pin(
    State(api): State<Shared>,
    caller: Writer,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    path_id("user id", &id)?;
    let b: PinBody = parse(body)?;
    if b.pin.is_none() && !b.generate {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "give {\"pin\": \"…\"} or {\"generate\": true}",
        ));
    }
    let request = Request::UserSetPin {
        id,
        pin: b.pin,
        generate: b.generate,
        expires: b.expires,
        uses: b.uses,
        windows: b.windows,
    };
    api.call(&caller, request).await
}

/// Sets a user's duress PIN.
#[utoipa::path(put, path = "/api/v1/users/{id}/duress", tag = "users",
    params(("id" = String, Path, description = "User id")),
    request_body = DuressBody,
    responses((status = 200, description = "Set", body = serde_json::Value)))]
async fn set_duress(
    State(api): State<Shared>,
    caller: Writer,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    path_id("user id", &id)?;
    let b: DuressBody = parse(body)?;
    api.call(&caller, Request::UserSetDuress { id, pin: b.pin })
        .await
}

/// Removes a user's duress PIN.
#[utoipa::path(delete, path = "/api/v1/users/{id}/duress", tag = "users",
    params(("id" = String, Path, description = "User id")),
    responses((status = 200, description = "Removed", body = serde_json::Value)))]
async fn clear_duress(
    State(api): State<Shared>,
    caller: Writer,
    Path(id): Path<String>,
) -> ApiResult {
    path_id("user id", &id)?;
    api.call(&caller, Request::UserClearDuress { id }).await
}

/// Lets a user in again.
#[utoipa::path(post, path = "/api/v1/users/{id}/enable", tag = "users",
    params(("id" = String, Path, description = "User id")),
    responses((status = 200, description = "Enabled", body = serde_json::Value)))]
async fn enable(State(api): State<Shared>, caller: Writer, Path(id): Path<String>) -> ApiResult {
    path_id("user id", &id)?;
    api.call(&caller, Request::UserEnable { id }).await
}

/// Keeps a user out (the PIN is kept).
#[utoipa::path(post, path = "/api/v1/users/{id}/disable", tag = "users",
    params(("id" = String, Path, description = "User id")),
    responses((status = 200, description = "Disabled", body = serde_json::Value)))]
async fn disable(State(api): State<Shared>, caller: Writer, Path(id): Path<String>) -> ApiResult {
    path_id("user id", &id)?;
    api.call(&caller, Request::UserDisable { id }).await
}

/// Moves the expiry of a user's PIN without changing it.
#[utoipa::path(put, path = "/api/v1/users/{id}/validity", tag = "users",
    params(("id" = String, Path, description = "User id")),
    request_body = ValidityBody,
    responses((status = 200, description = "Moved", body = serde_json::Value)))]
async fn set_validity(
    State(api): State<Shared>,
    caller: Writer,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    path_id("user id", &id)?;
    let b: ValidityBody = parse(body)?;
    let request = Request::UserSetValidity {
        id,
        expires: b.expires,
    };
    api.call(&caller, request).await
}
