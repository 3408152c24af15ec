use axum::{extract::State, http::StatusCode};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::extract::{IfMatch, Json, Path, Query};
use crate::{
    auth::{RequireAdmin, RequireStaff},
    domain::{
        Page,
        directory::{self, Listed},
        users::{self, NewUser, User, UserPatch, UserQuery},
    },
    error::{ErrorBody, Result},
    state::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, create)).routes(routes!(get, update, deactivate))
}

/// Look people up (staff): by `q` (name or email), `role` and `is_active`, newest first. Admins
/// get each account in full; agents get who each person is (id, name, email, role, whether
/// active) and nothing about the account. Customers: 403.
#[utoipa::path(get, path = "/api/users", tag = "users", security(("bearer" = [])), params(UserQuery),
    responses((status = 200, body = Page<Listed>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list(
    State(state): State<AppState>,
    RequireStaff(user): RequireStaff,
    Query(q): Query<UserQuery>,
) -> Result<Json<Page<Listed>>> {
    Ok(Json(Page::at_position(&state.store.db, directory::list(&state.store, &user, &q)).await?))
}

/// Create a user of any role (admins).
#[utoipa::path(post, path = "/api/users", tag = "users", security(("bearer" = [])), request_body = NewUser,
    responses((status = 201, body = User), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create(
    State(state): State<AppState>,
    RequireAdmin(admin): RequireAdmin,
    Json(input): Json<NewUser>,
) -> Result<(StatusCode, Json<User>)> {
    Ok((StatusCode::CREATED, Json(users::create(&state.store, Some(&admin), input).await?)))
}

/// One user (admins).
#[utoipa::path(get, path = "/api/users/{id}", tag = "users", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = User), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get(State(state): State<AppState>, _: RequireAdmin, Path(id): Path<String>) -> Result<Json<User>> {
    Ok(Json(users::get(&state.store.db, &id).await?.into()))
}

/// Change a user's email, name, role, password or active flag (admins). Honours `If-Match`.
#[utoipa::path(patch, path = "/api/users/{id}", tag = "users", security(("bearer" = [])), params(("id" = String, Path)), request_body = UserPatch,
    responses((status = 200, body = User), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update(
    State(state): State<AppState>,
    RequireAdmin(admin): RequireAdmin,
    Path(id): Path<String>,
    IfMatch(v): IfMatch,
    Json(patch): Json<UserPatch>,
) -> Result<Json<User>> {
    Ok(Json(users::update(&state.store, &admin, &id, patch, v).await?))
}

/// Deactivate a user (admins): they keep their history but can no longer sign in.
#[utoipa::path(delete, path = "/api/users/{id}", tag = "users", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = User), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn deactivate(
    State(state): State<AppState>,
    RequireAdmin(admin): RequireAdmin,
    Path(id): Path<String>,
) -> Result<Json<User>> {
    Ok(Json(users::deactivate(&state.store, &admin, &id).await?))
}
