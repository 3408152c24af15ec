use axum::{extract::State, http::StatusCode};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::extract::{IfMatch, Json, Path, Query};
use crate::{
    auth::AuthUser,
    domain::{
        Page, PageQuery,
        comments::{self, Comment, CommentPatch, NewComment},
    },
    error::{ErrorBody, Result},
    state::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, create)).routes(routes!(get, update, delete))
}

/// Comments of a ticket, oldest first. Customers never see internal notes.
#[utoipa::path(get, path = "/api/tickets/{id}/comments", tag = "comments", security(("bearer" = [])), params(("id" = String, Path), PageQuery),
    responses((status = 200, body = Page<Comment>), (status = 404, body = ErrorBody)))]
async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<Comment>>> {
    Ok(Json(Page::at_position(&state.store.db, comments::list(&state.store, &user, &id, &page)).await?))
}

/// Comment on a ticket; `parent_id` makes a reply, `internal: true` a staff-only note.
#[utoipa::path(post, path = "/api/tickets/{id}/comments", tag = "comments", security(("bearer" = [])), params(("id" = String, Path)), request_body = NewComment,
    responses((status = 201, body = Comment), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    Json(input): Json<NewComment>,
) -> Result<(StatusCode, Json<Comment>)> {
    Ok((StatusCode::CREATED, Json(comments::create(&state.store, &user, &id, input).await?)))
}

/// One comment.
#[utoipa::path(get, path = "/api/comments/{id}", tag = "comments", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = Comment), (status = 404, body = ErrorBody)))]
async fn get(State(state): State<AppState>, user: AuthUser, Path(id): Path<String>) -> Result<Json<Comment>> {
    Ok(Json(comments::readable(&state.store.db, &user, &id).await?.0.into()))
}

/// Edit a comment (its author or staff). Honours `If-Match`.
#[utoipa::path(patch, path = "/api/comments/{id}", tag = "comments", security(("bearer" = [])), params(("id" = String, Path)), request_body = CommentPatch,
    responses((status = 200, body = Comment), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    IfMatch(v): IfMatch,
    Json(patch): Json<CommentPatch>,
) -> Result<Json<Comment>> {
    Ok(Json(comments::update(&state.store, &user, &id, patch, v).await?))
}

/// Delete a comment (its author or staff); replies stay.
#[utoipa::path(delete, path = "/api/comments/{id}", tag = "comments", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete(State(state): State<AppState>, user: AuthUser, Path(id): Path<String>) -> Result<StatusCode> {
    comments::delete(&state.store, &user, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
