use axum::{extract::State, http::StatusCode};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::extract::{IfMatch, Json, Path, Query};
use crate::{
    auth::{MaybeUser, RequireStaff},
    domain::{
        Page,
        kb::{self, Article, ArticlePatch, ArticleQuery, NewArticle},
        search::ArticleHit,
    },
    error::{ErrorBody, Result},
    state::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, create)).routes(routes!(get, update, delete))
}

/// Articles, newest first; with `q`, the matches best first. Without a token (or as a customer): published ones only.
#[utoipa::path(get, path = "/api/kb/articles", tag = "kb", params(ArticleQuery),
    responses((status = 200, body = Page<ArticleHit>), (status = 422, body = ErrorBody)))]
async fn list(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    Query(q): Query<ArticleQuery>,
) -> Result<Json<Page<ArticleHit>>> {
    Ok(Json(Page::at_position(&state.store.db, kb::list(&state.store, user.as_ref(), &q)).await?))
}

/// Write an article (staff); it stays a draft until `status` is `published`.
#[utoipa::path(post, path = "/api/kb/articles", tag = "kb", security(("bearer" = [])), request_body = NewArticle,
    responses((status = 201, body = Article), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create(
    State(state): State<AppState>,
    RequireStaff(user): RequireStaff,
    Json(input): Json<NewArticle>,
) -> Result<(StatusCode, Json<Article>)> {
    Ok((StatusCode::CREATED, Json(kb::create(&state.store, &user, input).await?)))
}

/// One article (drafts for staff only).
#[utoipa::path(get, path = "/api/kb/articles/{id}", tag = "kb", params(("id" = String, Path)),
    responses((status = 200, body = Article), (status = 404, body = ErrorBody)))]
async fn get(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    Path(id): Path<String>,
) -> Result<Json<Article>> {
    Ok(Json(kb::get(&state.store, user.as_ref(), &id).await?))
}

/// Edit, publish or unpublish an article (staff). Honours `If-Match`.
#[utoipa::path(patch, path = "/api/kb/articles/{id}", tag = "kb", security(("bearer" = [])), params(("id" = String, Path)), request_body = ArticlePatch,
    responses((status = 200, body = Article), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update(
    State(state): State<AppState>,
    RequireStaff(user): RequireStaff,
    Path(id): Path<String>,
    IfMatch(v): IfMatch,
    Json(patch): Json<ArticlePatch>,
) -> Result<Json<Article>> {
    Ok(Json(kb::update(&state.store, &user, &id, patch, v).await?))
}

/// Delete an article (staff).
#[utoipa::path(delete, path = "/api/kb/articles/{id}", tag = "kb", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete(
    State(state): State<AppState>,
    RequireStaff(user): RequireStaff,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    kb::delete(&state.store, &user, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
