use axum::{extract::State, http::StatusCode};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::extract::{IfMatch, Json, Path};
use crate::{
    auth::RequireStaff,
    domain::canned_replies::{self, CannedReply, CannedReplyPatch, NewCannedReply},
    error::{ErrorBody, Result},
    state::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, create)).routes(routes!(update, delete))
}

/// Every canned reply, by title (staff).
#[utoipa::path(get, path = "/api/canned-replies", tag = "canned replies", security(("bearer" = [])),
    responses((status = 200, body = Vec<CannedReply>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list(State(state): State<AppState>, _: RequireStaff) -> Result<Json<Vec<CannedReply>>> {
    Ok(Json(canned_replies::list(&state.store).await?))
}

/// Write a canned reply (staff). Its body may hold `{{requester.name}}`, `{{requester.email}}`,
/// `{{ticket.number}}`, `{{ticket.subject}}` and `{{agent.name}}`, filled in where it is used.
#[utoipa::path(post, path = "/api/canned-replies", tag = "canned replies", security(("bearer" = [])), request_body = NewCannedReply,
    responses((status = 201, body = CannedReply), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create(
    State(state): State<AppState>,
    RequireStaff(user): RequireStaff,
    Json(input): Json<NewCannedReply>,
) -> Result<(StatusCode, Json<CannedReply>)> {
    Ok((StatusCode::CREATED, Json(canned_replies::create(&state.store, &user, input).await?)))
}

/// Change a canned reply (staff). Honours `If-Match`.
#[utoipa::path(patch, path = "/api/canned-replies/{id}", tag = "canned replies", security(("bearer" = [])), params(("id" = String, Path)), request_body = CannedReplyPatch,
    responses((status = 200, body = CannedReply), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update(
    State(state): State<AppState>,
    _: RequireStaff,
    Path(id): Path<String>,
    IfMatch(v): IfMatch,
    Json(patch): Json<CannedReplyPatch>,
) -> Result<Json<CannedReply>> {
    Ok(Json(canned_replies::update(&state.store, &id, patch, v).await?))
}

/// Delete a canned reply (staff).
#[utoipa::path(delete, path = "/api/canned-replies/{id}", tag = "canned replies", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete(State(state): State<AppState>, _: RequireStaff, Path(id): Path<String>) -> Result<StatusCode> {
    canned_replies::delete(&state.store, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
