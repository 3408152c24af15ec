use axum::extract::State;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::extract::Json;
use crate::{
    auth::AuthUser,
    domain::preferences::{self, Preferences, PreferencesPatch},
    error::{ErrorBody, Result},
    state::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get, update))
}

/// What you chose to be told of.
#[utoipa::path(get, path = "/api/users/me/notification-preferences", tag = "notifications", security(("bearer" = [])),
    responses((status = 200, body = Preferences), (status = 401, body = ErrorBody)))]
async fn get(State(state): State<AppState>, user: AuthUser) -> Result<Json<Preferences>> {
    Ok(Json(preferences::get(&state.store.db, user.id()).await?))
}

/// Change what you are told of. Only staff can ask for new unassigned tickets (403 otherwise).
#[utoipa::path(put, path = "/api/users/me/notification-preferences", tag = "notifications", security(("bearer" = [])), request_body = PreferencesPatch,
    responses((status = 200, body = Preferences), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update(
    State(state): State<AppState>,
    user: AuthUser,
    Json(patch): Json<PreferencesPatch>,
) -> Result<Json<Preferences>> {
    Ok(Json(preferences::update(&state.store, &user, patch).await?))
}
